"""expand: learn the over-complete autoencoder encoding of the 1152-d features (ytlabel expand)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def expand(dataset: Input[Dataset], rgb_dim: int, audio_dim: int, epochs: int, encoder: Output[Model]):
    """Trains the encoder on the video-level (else frame-level) training shards, L2-normalised like the
    video presets, and writes encoder.npz + encoder.json into the artifact."""
    import os

    from ytlabel.features.autoencoder import ExpandConfig
    from ytlabel.features.autoencoder import expand as train_encoder
    from ytlabel.platform.steps import DatasetManifest

    manifest = DatasetManifest.load(os.path.join(dataset.path, "dataset.json"))
    shards = manifest.train.get("video") or manifest.train["frame"]
    config = ExpandConfig(rgb_dim=rgb_dim, audio_dim=audio_dim, epochs=epochs, batch_size=64, l2_normalize=True)
    summary = train_encoder(shards, encoder.path, config, log=print)
    encoder.metadata.update({"rgb_dim": rgb_dim, "audio_dim": audio_dim, "heldout_mse": summary["heldout_mse"],
                             "heldout_mse_of_mean_baseline": summary["heldout_mse_of_mean_baseline"],
                             "data_fingerprint": summary["data_fingerprint"]})
