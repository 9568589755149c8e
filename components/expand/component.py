"""expand: learn the over-complete autoencoder encoding of the 1152-d features (ytlabel expand)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False)
def expand(
    dataset: Input[Dataset],
    rgb_dim: int,
    audio_dim: int,
    epochs: int,
    run_root: str,
    pipeline_run: str,
    encoder: Output[Model],
):
    """Trains the encoder on the video-level (else frame-level) training shards, L2-normalised like the
    video presets, into the artifact, and copies it to <run_root>/<run>/encoder when that is s3://
    (training pods read it there: metadata "uri")."""
    from ytlabel.pipeline import stages
    from ytlabel.pipeline.dataset import DatasetSplit

    summary = stages.expand(
        DatasetSplit.load(dataset.path),
        encoder.path,
        stages.run_folder(run_root, pipeline_run, "encoder"),
        rgb_dim,
        audio_dim,
        epochs,
    )
    encoder.metadata.update(
        {
            "rgb_dim": rgb_dim,
            "audio_dim": audio_dim,
            "uri": summary["uri"],
            **{key: summary[key] for key in ("heldout_mse", "heldout_mse_of_mean_baseline", "data_fingerprint")},
        }
    )
