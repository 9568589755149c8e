"""train: render the PyTorchJob (torch) or TFJob (keras) for one architecture and run it to completion."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def train(dataset: Input[Dataset], encoder: Input[Model], arch: str, framework: str, expansion: bool, epochs: int,
          workers: int, gpus_per_worker: int, settings: dict, run_root: str, backend: str, namespace: str,
          trainer_image_torch: str, trainer_image_keras: str, pipeline_run: str,
          model: Output[Model], manifest: Output[Artifact]):
    """Launches the job on `backend` ("kubernetes" or "local") and waits; the run directory lands under
    `run_root` (s3:// on a cluster, so pods can resume), recorded in the Model artifact's metadata.
    `settings` holds `ytlabel train` key=value overrides: under "all" for every run, under an
    architecture's name for that architecture only."""
    import json
    import os

    import yaml

    from ytlabel.models.spec import ARCHITECTURES
    from ytlabel.platform import launch, manifests
    from ytlabel.platform.steps import DatasetManifest, run_name
    from ytlabel.training.outputs import RunDir

    data = DatasetManifest.load(os.path.join(dataset.path, "dataset.json"))
    name = run_name(arch, framework, expansion)
    out = f"{run_root.rstrip('/')}/{pipeline_run}/{name}"
    overrides = [f"epochs={epochs}", "validation_fraction=0", *settings.get("all", []), *settings.get(arch, [])]
    if expansion:
        overrides.append(f"encoder={encoder.uri if encoder.uri.startswith('s3://') else encoder.path}")
    shards = data.train[ARCHITECTURES[arch].level]
    job = manifests.training_job(manifests.TrainJobSettings(
        arch, framework, ",".join(shards), out,
        trainer_image_torch if framework == "torch" else trainer_image_keras, workers=workers, gpus=gpus_per_worker,
        overrides=tuple(overrides), name=f"ytlabel-{name}-{pipeline_run}"[:63].rstrip("-"), namespace=namespace,
        labels={"ytlabel.io/pipeline-run": pipeline_run[:63]}))
    with open(manifest.path, "w") as handle:
        yaml.safe_dump(job, handle, sort_keys=False)
    outcome = launch.backend(backend).run(job)
    result = RunDir(out).read_json("result.json")
    model.metadata.update({"run_dir": out, "arch": arch, "framework": framework, "expansion": expansion,
                           "job": outcome.name, "job_seconds": outcome.seconds,
                           "train_loss": result.get("train_loss"), "videos_per_s": result.get("videos_per_s")})
    with open(model.path, "w") as handle:
        json.dump({"run_dir": out}, handle)
