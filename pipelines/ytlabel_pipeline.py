"""The ytlabel pipeline: ingest -> expand -> train (architecture x framework) -> evaluate -> select
-> register + promote champion -> deploy, with an exit handler that removes leftover training jobs.

Its parameters are the run form in the Kubeflow UI. Compile with
    python pipelines/ytlabel_pipeline.py            (writes pipelines/ytlabel_pipeline.yaml)
and run locally with `make demo` (pipelines/run_local.py, kfp.local).
"""

import os
import sys

from kfp import compiler, dsl, kubernetes

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))  # components/

from components.cleanup.component import cleanup
from components.deploy.component import deploy
from components.evaluate.component import evaluate
from components.expand.component import expand
from components.ingest.component import ingest
from components.plan.component import plan
from components.register.component import register
from components.select.component import select
from components.train.component import train
from ytlabel.platform import images

COMPILED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ytlabel_pipeline.yaml")
# The Secret the Helm chart's s3.existingSecret names: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
# AWS_ENDPOINT_URL for the registry, the runs and the data (training pods get it too, via envFrom).
S3_SECRET = "ytlabel-s3"
S3_KEYS = {key: key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL")}


def _s3(task):
    """Gives a task the S3 settings from the Secret (on a cluster; kfp.local ignores Kubernetes config)."""
    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=S3_KEYS)
    return task


@dsl.pipeline(
    name="ytlabel",
    description="Label YouTube-8M videos: train every architecture in PyTorch and "
    "Keras, evaluate with the YT8M metrics, register and serve the winner.",
)
def ytlabel_pipeline(
    data_source: str = "s3://ytlabel/data/yt8m-v2-video",
    shard_fraction: float = 1.0,
    eval_fraction: float = 0.2,
    synthetic_videos: int = 600,
    architectures: list = ["logistic", "fc", "bilstm", "stream_lstm", "fc_stream_lstm"],  # noqa: B006 - KFP reads a pipeline parameter default from the signature
    frameworks: list = ["torch", "keras"],  # noqa: B006 - KFP reads a pipeline parameter default from the signature
    expansion_archs: list = ["fc"],  # noqa: B006 - KFP reads a pipeline parameter default from the signature
    epochs: int = 5,
    workers: int = 2,
    gpus_per_worker: int = 1,
    train_settings: dict = {},  # noqa: B006 - KFP reads a pipeline parameter default from the signature
    threshold: float = 0.5,
    registry: str = "s3://ytlabel/registry",
    model_name: str = "yt8m",
    run_root: str = "s3://ytlabel/runs",
    backend: str = "kubernetes",
    trainer: str = "auto",
    namespace: str = "kubeflow",
    trainer_image_torch: str = images.trainer("torch"),
    trainer_image_keras: str = images.trainer("keras"),
    encoder_rgb_dim: int = 2048,
    encoder_audio_dim: int = 256,
    encoder_epochs: int = 5,
    learning_curves: str = "",
):
    """Args (the run form):
    data_source: YT8M v2 shards as files, dirs, globs or s3://bucket/prefix; or the official download,
        yt8m://2/video/train?shard=1/100&mirror=us; or "synthetic". Parts joined by commas cover
        different levels: "s3://bucket/video-shards,synthetic" adds generated frame-level data.
    synthetic_videos: size of the generated dataset when data_source is "synthetic".
    shard_fraction: use every n-th shard (n = round(1 / fraction)) for quick runs.
    architectures, frameworks: the grid trained in parallel; expansion_archs are trained a
        second time on the autoencoder expansion.
    workers, gpus_per_worker: pods per training job and GPUs per pod.
    train_settings: `ytlabel train` overrides, {"all": [...], "<arch>": [...]}.
    threshold: GAP@20 the winner must beat to be registered and deployed.
    registry, model_name: where the winner is published (and promoted to @champion).
    run_root: where the run's encoder, generated data and training run directories go (s3:// on a cluster).
    backend: "kubernetes" (training jobs and the InferenceService) or "local" (processes on the node).
    trainer: which Kubeflow training API runs the jobs: "v1" (PyTorchJob/TFJob, training operator),
        "v2" (TrainJob on Kubeflow Trainer, our ytlabel-torch/ytlabel-keras runtimes) or "auto"
        (what the cluster serves; the local backend then reproduces v1's env contract).
    learning_curves: optional benchmarks/learning_curves.py JSON (a path or s3://); when given, the
        comparison page adds GAP@20 against training videos and each model's gain per doubling.
    """
    run_id = dsl.PIPELINE_JOB_ID_PLACEHOLDER
    sweeper = cleanup(backend=backend, namespace=namespace, pipeline_run=run_id).set_caching_options(False)
    with dsl.ExitHandler(sweeper, name="run-and-clean-up"):
        data = _s3(
            ingest(
                data_source=data_source,
                shard_fraction=shard_fraction,
                eval_fraction=eval_fraction,
                synthetic_videos=synthetic_videos,
                run_root=run_root,
                pipeline_run=run_id,
            )
        )
        encoder = _s3(
            expand(
                dataset=data.outputs["dataset"],
                rgb_dim=encoder_rgb_dim,
                audio_dim=encoder_audio_dim,
                epochs=encoder_epochs,
                run_root=run_root,
                pipeline_run=run_id,
            )
        )
        grid = plan(
            architectures=architectures,
            frameworks=frameworks,
            expansion_archs=expansion_archs,
            levels=data.outputs["Output"],
        )
        with dsl.ParallelFor(grid.output, name="architecture-x-framework") as run:
            trained = train(
                dataset=data.outputs["dataset"],
                encoder=encoder.outputs["encoder"],
                arch=run.arch,
                framework=run.framework,
                expansion=run.expansion,
                epochs=epochs,
                workers=workers,
                gpus_per_worker=gpus_per_worker,
                settings=train_settings,
                run_root=run_root,
                backend=backend,
                namespace=namespace,
                trainer_image_torch=trainer_image_torch,
                trainer_image_keras=trainer_image_keras,
                pipeline_run=run_id,
                trainer=trainer,
            )
            _s3(trained).set_caching_options(False)  # launches a job: a side effect
            scored = _s3(evaluate(dataset=data.outputs["dataset"], model=trained.outputs["model"]))
        chosen = _s3(select(summaries=dsl.Collected(scored.outputs["Output"]), learning_curves=learning_curves))
        with dsl.If(chosen.outputs["Output"] > threshold, name="winner-beats-threshold"):
            published = register(winner=chosen.outputs["winner"], registry=registry, model_name=model_name)
            _s3(published).set_caching_options(False)
            served = deploy(
                model_ref=published.output,
                registry=registry,
                backend=backend,
                namespace=namespace,
                dataset=data.outputs["dataset"],
            )
            _s3(served).set_caching_options(False)


def compile_pipeline(path: str = COMPILED) -> str:
    compiler.Compiler().compile(ytlabel_pipeline, path)
    return path


if __name__ == "__main__":
    print(f"wrote {compile_pipeline(sys.argv[1] if len(sys.argv) > 1 else COMPILED)}")
