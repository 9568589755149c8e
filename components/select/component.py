"""select: compare every evaluated run (ytlabel report) and pick the winner by GAP@20."""

from kfp import dsl
from kfp.dsl import HTML, Markdown, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def select(
    summaries: list,
    report: Output[Markdown],
    report_page: Output[HTML],
    winner: dsl.OutputPath(dict),
    learning_curves: str = "",
) -> float:
    """Builds the models x frameworks comparison: `report_page` is the page the Kubeflow UI shows (table,
    findings and every plot inline, and the learning curves when `learning_curves` names their JSON), `report`
    the same as Markdown with its plots beside it. Writes the winner's
    {run_dir, arch, framework, expansion, gap_at_20} to `winner` and returns its GAP@20 for the threshold.
    (A NamedTuple return would be tidier, but kfp.local 2.17 evaluates conditions on NamedTuple
    fields as False.)"""
    import json
    import os
    import shutil

    from ytlabel import runs
    from ytlabel.pipeline import stages

    plots_dir = os.path.join(os.path.dirname(report.path), "comparison")  # beside the Markdown artifact
    best, built = stages.select([json.loads(summary) for summary in summaries], plots_dir, learning_curves or None)
    shutil.copyfile(os.path.join(plots_dir, "report.md"), report.path)
    shutil.copyfile(os.path.join(plots_dir, "report.html"), report_page.path)
    report.metadata.update(
        {
            "runs": len(summaries),
            "winner": f"{best['arch']}/{best['framework']}",
            "winner_gap_at_20": best["gap_at_20"],
            "plots": len(built["plots"]),
        }
    )
    print(
        f"select: {len(summaries)} runs; winner {runs.run_label(best['arch'], best['framework'], best['expansion'])}"
        f" with GAP@20 {best['gap_at_20']:.4f}"
    )
    for finding in built["findings"]:
        print(f"  - {finding}")
    with open(winner, "w") as handle:
        json.dump(best, handle)
    return float(best["gap_at_20"])
