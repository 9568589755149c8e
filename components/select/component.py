"""select: compare every evaluated run (ytlabel report) and pick the winner by GAP@20."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def select(summaries: list, report: Output[Markdown]) -> NamedTuple("Selection", [("winner", dict), ("gap_at_20", float)]):
    """Builds the models x frameworks comparison (table, findings, plots beside it) and returns the
    winner's {run_dir, arch, framework, expansion, gap_at_20} and its GAP@20 (for the threshold)."""
    import json
    import os
    import shutil
    from collections import namedtuple

    from ytlabel.evaluation.report import build_report
    from ytlabel.platform.steps import pick_winner
    from ytlabel.training.outputs import RunDir

    rows = [json.loads(summary) for summary in summaries]
    winner = pick_winner(rows)
    plots_dir = os.path.join(os.path.dirname(report.path), "report")
    built = build_report([RunDir(row["run_dir"]).local for row in rows], plots_dir)
    shutil.copyfile(os.path.join(plots_dir, "report.md"), report.path)
    report.metadata.update({"runs": len(rows), "winner": f"{winner['arch']}/{winner['framework']}",
                            "winner_gap_at_20": winner["gap_at_20"], "plots": len(built["plots"])})
    print(f"select: {len(rows)} runs; winner {winner['arch']}/{winner['framework']}"
          f"{' + expansion' if winner['expansion'] else ''} with GAP@20 {winner['gap_at_20']:.4f}")
    for finding in built["findings"]:
        print(f"  - {finding}")
    return namedtuple("Selection", ["winner", "gap_at_20"])(winner, float(winner["gap_at_20"]))
