"""train: render the training job for one architecture (PyTorchJob/TFJob, or a Trainer v2 TrainJob) and run it to
completion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def train(
    dataset: Input[Dataset],
    encoder: Input[Model],
    arch: str,
    framework: str,
    expansion: bool,
    epochs: int,
    workers: int,
    gpus_per_worker: int,
    settings: dict,
    run_root: str,
    backend: str,
    namespace: str,
    trainer_image_torch: str,
    trainer_image_keras: str,
    pipeline_run: str,
    trainer: str,
    model: Output[Model],
    manifest: Output[Artifact],
):
    """Launches the job on `backend` ("kubernetes" or "local") and waits. `trainer`: "v1" (PyTorchJob/TFJob),
    "v2" (TrainJob on Kubeflow Trainer) or "auto" (what the cluster serves). The run directory lands under
    `run_root` (s3:// on a cluster, so pods can resume), recorded in the Model artifact's metadata.
    `settings` holds `ytlabel train` key=value overrides: under "all" for every run, under an
    architecture's name for that architecture only."""
    import json

    import yaml

    from ytlabel.pipeline import stages
    from ytlabel.pipeline.dataset import DatasetSplit

    job, run = stages.train(
        DatasetSplit.load(dataset.path),
        arch,
        framework,
        expansion,
        epochs=epochs,
        workers=workers,
        gpus=gpus_per_worker,
        settings=settings,
        run_root=run_root,
        pipeline_run=pipeline_run,
        backend=backend,
        namespace=namespace,
        image=trainer_image_torch if framework == "torch" else trainer_image_keras,
        encoder=encoder.metadata.get("uri") or encoder.path,
        trainer=trainer,
    )
    with open(manifest.path, "w") as handle:
        yaml.safe_dump(job, handle, sort_keys=False)
    model.metadata.update(run)
    with open(model.path, "w") as handle:
        json.dump({"run_dir": run["run_dir"]}, handle)
