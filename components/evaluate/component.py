"""evaluate: YT8M metrics of one trained run on the held-out shards, shown in the Kubeflow UI."""

from kfp import dsl
from kfp.dsl import HTML, ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def evaluate(
    dataset: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    top_classes: Output[ClassificationMetrics],
    summary: Output[Markdown],
    genres: Output[HTML],
) -> str:
    """Writes metrics.json into the run, logs the headline metrics, a confusion matrix of the most
    frequent classes (true label -> top-1 prediction), the per-genre table as a page, and returns a JSON
    summary for `select`."""
    import json

    from ytlabel import runs
    from ytlabel.pipeline import stages
    from ytlabel.pipeline.dataset import DatasetSplit

    data = DatasetSplit.load(dataset.path)
    run = model.metadata
    result = stages.evaluate(data, run)
    for key, value in (runs.headline(result, extra=("videos_per_s",)) or {}).items():
        metrics.log_metric(key, round(float(value), 6))
    top_classes.log_confusion_matrix(*result["confusion"])
    label = runs.run_label(run["arch"], run["framework"], run["expansion"])
    with open(summary.path, "w") as handle:
        handle.write(stages.metrics_table(label, result))
    with open(genres.path, "w") as handle:
        handle.write(stages.genre_table_html(label, result))
    return json.dumps(result["summary"])
