"""expand -> train -> evaluate -> select -> register: one function per pipeline stage.

Everything a pipeline run writes lies under `<run_root>/<pipeline run>/` (s3:// on a cluster):
    encoder/        the autoencoder expansion (training pods read it from there)
    data/           synthetic shards, when the run generated its data
    <run name>/     one run directory per grid cell, e.g. fc-torch, fc-keras-expanded
"""

from ytlabel import runs, storage
from ytlabel.errors import YtlabelError
from ytlabel.kinds import FRAME, VIDEO
from ytlabel.models.spec import ARCHITECTURES
from ytlabel.pipeline.dataset import DatasetSplit


def run_folder(run_root: str, pipeline_run: str, *names: str) -> str:
    """`<run_root>/<pipeline_run>/<names...>`, each part kept inside the root."""
    if not run_root:
        raise YtlabelError("run_root is empty: name where training runs go (s3://bucket/prefix on a cluster)")
    return storage.join(run_root, pipeline_run, *names)


def train_overrides(arch: str, epochs: int, settings: dict, encoder: str = "") -> list[str]:
    """`ytlabel train` key=value settings: the epochs, then settings["all"], then settings[arch], then the encoder.

    Later settings win, so an architecture's own entry overrides what "all" says.
    """
    unknown = sorted(set(settings) - {"all", *ARCHITECTURES})
    if unknown:
        raise YtlabelError(f"train_settings keys {unknown}: use 'all' or an architecture ({sorted(ARCHITECTURES)})")
    overrides = [f"epochs={epochs}", "validation_fraction=0", *settings.get("all", []), *settings.get(arch, [])]
    if encoder:
        overrides.append(f"encoder={encoder}")
    return overrides


def expand(
    data: DatasetSplit, folder: str, publish_uri: str, rgb_dim: int, audio_dim: int, epochs: int, log=print
) -> dict:
    """Trains the encoder on the video-level (else frame-level) training shards into `folder`, copies it to
    `publish_uri` when that is s3://, and returns the summary with "uri": where training reads it."""
    from ytlabel.features.autoencoder import ExpandConfig
    from ytlabel.features.autoencoder import expand as train_encoder

    shards = data.train.get(VIDEO) or data.train[FRAME]
    config = ExpandConfig(rgb_dim=rgb_dim, audio_dim=audio_dim, epochs=epochs, batch_size=64, l2_normalize=True)
    summary = train_encoder(shards, folder, config, log=log)
    uri = folder
    if storage.is_remote(publish_uri):
        storage.sync_up(folder, publish_uri)
        uri = publish_uri
    return {**summary, "uri": uri}


def train(
    data: DatasetSplit,
    arch: str,
    framework: str,
    expansion: bool,
    *,
    epochs: int,
    workers: int,
    gpus: int,
    settings: dict,
    run_root: str,
    pipeline_run: str,
    backend: str,
    namespace: str,
    image: str,
    encoder: str = "",
    trainer: str = "auto",
) -> tuple[dict, dict]:
    """Renders the job of one grid cell (trainer v1: PyTorchJob or TFJob; v2: TrainJob; auto: what the cluster
    serves), runs it on `backend` to the end, and returns (the job manifest, what the run is: run_dir, arch,
    framework, expansion and its figures)."""
    from ytlabel.platform import manifests, trainer_v2

    name = runs.run_name(arch, framework, expansion)
    out = run_folder(run_root, pipeline_run, name)
    overrides = train_overrides(arch, epochs, settings, encoder if expansion else "")
    job_settings = manifests.JobSettings(
        arch,
        framework,
        ",".join(data.train[ARCHITECTURES[arch].level]),
        out,
        image,
        workers=workers,
        gpus=gpus,
        overrides=tuple(overrides),
        name=f"ytlabel-{name}-{pipeline_run}"[:63].rstrip("-"),
        namespace=namespace,
        labels={"ytlabel.io/pipeline-run": pipeline_run[:63]},
    )
    v2 = resolve_trainer(trainer, backend) == "v2"
    job = trainer_v2.train_job(job_settings) if v2 else manifests.training_job(job_settings)
    outcome = job_backend(backend).run(job)
    result = runs.read_result(out)
    return job, {
        "run_dir": out,
        "arch": arch,
        "framework": framework,
        "expansion": expansion,
        "job": outcome.name,
        "job_seconds": outcome.seconds,
        "train_loss": result.get("train_loss"),
        "videos_per_s": result.get("videos_per_s"),
    }


BACKENDS = ("kubernetes", "local")


def job_backend(name: str):
    """Where the pipeline runs its training jobs: `local` (platform/local.py, this machine's processes with the
    pods' env contract) or `kubernetes` (platform/cluster.py, through the API). Both return a JobOutcome."""
    if name == "local":
        from ytlabel.platform.local import LocalBackend

        return LocalBackend()
    if name == "kubernetes":
        from ytlabel.platform.cluster import KubernetesBackend

        return KubernetesBackend()
    raise YtlabelError(f"backend {name!r}: choose one of {list(BACKENDS)}")


def resolve_trainer(trainer: str, backend: str) -> str:
    """ "v1" or "v2": as given, or for "auto" what the cluster serves (API discovery; Trainer v2 first).
    The local backend reproduces either contract; "auto" picks v1 there."""
    if trainer in ("v1", "v2"):
        return trainer
    if trainer != "auto":
        raise YtlabelError(f"trainer {trainer!r}: choose auto, v1 (PyTorchJob/TFJob) or v2 (TrainJob)")
    if backend == "kubernetes":
        from ytlabel.platform.cluster import trainer_api

        return trainer_api()
    return "v1"


def evaluate(data: DatasetSplit, run: dict, batch_size: int = 64) -> dict:
    """The YT8M metrics of `run` (train's description) on the held-out shards of its level, written to the
    run's metrics.json; returns the metrics with "summary" (the record `select` compares) and "confusion"
    (class names and matrix of the most frequent classes, for the UI)."""
    from ytlabel.evaluation.evaluate import evaluate_run

    level = ARCHITECTURES[run["arch"]].level
    shards = data.eval[level]
    result = evaluate_run(run["run_dir"], shards, batch_size=batch_size)
    runs.write_metrics(run["run_dir"], result)
    result["summary"] = {key: run[key] for key in ("run_dir", "arch", "framework", "expansion")}
    result["summary"].update({key: result[key] for key in ("gap_at_20", "hit_at_1")}, synthetic=level in data.synthetic)
    result["confusion"] = top_class_confusion(run["run_dir"], shards, classes=8)
    return result


def metrics_table(label: str, metrics: dict) -> str:
    """A Markdown table of the headline metrics, for the Kubeflow UI."""
    keys = [key for key in runs.HEADLINE if metrics.get(key) is not None]
    return (
        f"### {label}\n\n| "
        + " | ".join(keys)
        + " |\n|"
        + "---|" * len(keys)
        + "\n| "
        + " | ".join(f"{metrics[key]:.4f}" for key in keys)
        + " |\n"
    )


def genre_table_html(label: str, metrics: dict) -> str:
    """A page for the Kubeflow UI: the run's headline metrics and its average precision per genre
    (Vertical1), best first, each with a bar of its value."""
    import html

    headline = "".join(
        f"<tr><th>{key}</th><td>{metrics[key]:.4f}</td></tr>" for key in runs.HEADLINE if metrics.get(key) is not None
    )
    genres = sorted((metrics.get("per_genre_ap") or {}).items(), key=lambda item: -item[1])
    on = f" on {metrics['videos']:,} held-out videos" if metrics.get("videos") else ""
    rows = "".join(
        f'<tr><td>{html.escape(name)}</td><td>{ap:.4f}</td><td><div class="bar" style="width:'
        f'{round(300 * ap)}px"></div></td></tr>'
        for name, ap in genres
    )
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(label)}</title><style>'
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:13px;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}.bar{height:10px;background:#1f77b4}"
        f"</style></head><body><h1>{html.escape(label)}{on}</h1><table>{headline}</table>"
        f"<h2>Average precision per genre ({len(genres)} genres with positives)</h2>"
        f"<table><tr><th>genre</th><th>AP</th><th></th></tr>{rows}</table></body></html>\n"
    )


def pick_winner(summaries: list[dict]) -> dict:
    """The run with the highest GAP@20 (ties: the first in plan order).

    Scores on different evaluation data do not compare: when some runs were evaluated on real videos and
    others on generated ones (a `real,synthetic` data source), the champion is the best of the real ones.
    """
    if not summaries:
        raise YtlabelError("no evaluated runs to choose from")
    real = [summary for summary in summaries if not summary.get("synthetic", False)]
    return max(real or summaries, key=lambda summary: summary["gap_at_20"])


def select(summaries: list[dict], report_dir: str, learning_curves: str | None = None) -> tuple[dict, dict]:
    """The winner, and the comparison report (`ytlabel report`) of every run written to `report_dir`, with the
    learning curves of `learning_curves` (benchmarks/learning_curves.py's JSON, local or s3://) when given."""
    from ytlabel.evaluation.report import build_report

    best = pick_winner(summaries)
    return best, build_report(
        [summary["run_dir"] for summary in summaries], report_dir, learning_curves=learning_curves
    )


def register(winner: dict, registry: str, model_name: str, alias: str = "champion") -> str:
    """Pushes the winning run (local or s3://) as the next version of `model_name`, points `alias` at it,
    and returns NAME:VERSION."""
    from ytlabel.registry import Registry

    store = Registry(registry)
    manifest = store.push(winner["run_dir"], model_name)
    store.promote(model_name, manifest["version"], alias)
    return f"{model_name}:{manifest['version']}"


def top_class_confusion(run_dir: str, shards: list[str], classes: int = 8) -> tuple[list[str], list[list[int]]]:
    """A confusion matrix over the `classes` most frequent true labels of `shards` (plus "other"):
    row = a video's most frequent true label among them, column = the model's top-1 class."""
    import numpy as np

    from ytlabel.data import examples, reader
    from ytlabel.data.vocabulary import load_vocabulary
    from ytlabel.models.predictor import load_predictor

    predictor = load_predictor(run_dir)
    records = [record for shard in shards for record in reader.read_shard(shard)]
    counts = np.bincount(np.concatenate([record.labels for record in records]), minlength=1)
    top = [int(c) for c in np.argsort(-counts, kind="stable")[:classes] if counts[c] > 0]
    index = {label: i for i, label in enumerate(top)}
    matrix = np.zeros((len(top) + 1, len(top) + 1), dtype=int)
    for start in range(0, len(records), 64):
        chunk = records[start : start + 64]
        kept = [record for record in chunk if examples.kept(record, predictor.options)]
        if not kept:
            continue
        batch = examples.prepare_batch(kept, predictor.options)
        batch.pop("labels")
        predicted = np.argmax(predictor.predict(batch), axis=1)
        for record, guess in zip(kept, predicted):
            present = [label for label in record.labels if label in index]
            row = index[min(present, key=top.index)] if present else len(top)
            matrix[row, index.get(int(guess), len(top))] += 1
    vocabulary = load_vocabulary()
    return [vocabulary.name(label) or str(label) for label in top] + ["other"], matrix.tolist()
