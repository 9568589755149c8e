"""evaluate: YT8M metrics of one trained run on the held-out shards, shown in the Kubeflow UI."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Markdown, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def evaluate(dataset: Input[Dataset], model: Input[Model], metrics: Output[Metrics],
             top_classes: Output[ClassificationMetrics], summary: Output[Markdown]) -> str:
    """Writes metrics.json into the run, logs the headline metrics, a confusion matrix of the most
    frequent classes (true label -> top-1 prediction), and returns a JSON summary for `select`."""
    import json

    import numpy as np

    from ytlabel.evaluation.evaluate import evaluate_run
    from ytlabel.models.spec import ARCHITECTURES
    from ytlabel.platform.steps import DatasetManifest, top_class_confusion
    from ytlabel.training.outputs import RunDir

    run_dir = model.metadata["run_dir"]
    data = DatasetManifest.load(f"{dataset.path}/dataset.json")
    shards = data.eval[ARCHITECTURES[model.metadata["arch"]].level]
    result = evaluate_run(run_dir, shards, batch_size=64)
    run = RunDir(run_dir)
    run.write_json("metrics.json", result)
    run.sync()
    for key in ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1", "loss", "videos_per_s"):
        if result.get(key) is not None:
            metrics.log_metric(key, round(float(result[key]), 6))
    names, matrix = top_class_confusion(run_dir, shards, classes=8)
    top_classes.log_confusion_matrix(names, np.asarray(matrix).tolist())
    label = f"{model.metadata['arch']}/{model.metadata['framework']}" + (" + expansion" if model.metadata["expansion"] else "")
    with open(summary.path, "w") as handle:
        handle.write(f"### {label}\n\n| GAP@20 | Hit@1 | PERR | mAP | genre Hit@1 |\n|---|---|---|---|---|\n"
                     f"| {result['gap_at_20']:.4f} | {result['hit_at_1']:.4f} | {result['perr']:.4f} | "
                     f"{result['map']:.4f} | {result['genre_hit_at_1']:.4f} |\n")
    return json.dumps({"run_dir": run_dir, "arch": model.metadata["arch"], "framework": model.metadata["framework"],
                       "expansion": model.metadata["expansion"], "gap_at_20": result["gap_at_20"],
                       "hit_at_1": result["hit_at_1"]})
