"""select: compare every evaluated run (ytlabel report) and pick the winner by GAP@20."""

from kfp import dsl
from kfp.dsl import Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def select(summaries: list, report: Output[Markdown], winner: dsl.OutputPath(dict)) -> float:
    """Builds the models x frameworks comparison (table, findings, plots beside it), writes the winner's
    {run_dir, arch, framework, expansion, gap_at_20} to `winner` and returns its GAP@20 for the threshold.
    (A NamedTuple return would be tidier, but kfp.local 2.17 evaluates conditions on NamedTuple
    fields as False.)"""
    import json
    import os
    import shutil

    from ytlabel.evaluation.report import build_report
    from ytlabel.platform.steps import pick_winner
    from ytlabel.training.outputs import RunDir

    rows = [json.loads(summary) for summary in summaries]
    best = pick_winner(rows)
    plots_dir = os.path.join(os.path.dirname(report.path), "comparison")  # beside the Markdown artifact
    built = build_report([RunDir(row["run_dir"]).local for row in rows], plots_dir)
    shutil.copyfile(os.path.join(plots_dir, "report.md"), report.path)
    report.metadata.update({"runs": len(rows), "winner": f"{best['arch']}/{best['framework']}",
                            "winner_gap_at_20": best["gap_at_20"], "plots": len(built["plots"])})
    print(f"select: {len(rows)} runs; winner {best['arch']}/{best['framework']}"
          f"{' + expansion' if best['expansion'] else ''} with GAP@20 {best['gap_at_20']:.4f}")
    for finding in built["findings"]:
        print(f"  - {finding}")
    with open(winner, "w") as handle:
        json.dump(best, handle)
    return float(best["gap_at_20"])
