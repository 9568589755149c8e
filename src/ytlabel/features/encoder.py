"""The encoder artifact: what `ytlabel expand` writes and every model can load (numpy only).

An encoder keeps the two modalities apart so two-stream models stay two-stream:

    rgb_code   = (relu(rgb   @ rgb_kernel   + rgb_bias)   - rgb_code_mean)   / rgb_code_std
    audio_code = (relu(audio @ audio_kernel + audio_bias) - audio_code_mean) / audio_code_std

The codes are standardised with their mean and std over the training samples: raw ReLU codes are all
non-negative and tiny, and a ReLU tower on top of them stopped training (see docs/benchmarks.md).
Artifacts without the statistics use mean 0 and std 1.

Files in the artifact directory:
    encoder.npz    rgb_kernel (1024, R), rgb_bias (R,), audio_kernel (128, A), audio_bias (A,), float32
    encoder.json   metadata: dims, activation, noise, losses, data fingerprint, sha256 of encoder.npz
"""

import dataclasses
import hashlib
import json
import os

import numpy as np

from ytlabel import storage
from ytlabel.data import schema
from ytlabel.errors import YtlabelError

WEIGHTS = "encoder.npz"
METADATA = "encoder.json"
FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Encoder:
    """Loaded encoder weights. Kernels are (in, out) as in Keras Dense layers."""

    rgb_kernel: np.ndarray
    rgb_bias: np.ndarray
    audio_kernel: np.ndarray
    audio_bias: np.ndarray
    metadata: dict  # encoder.json
    rgb_code_mean: np.ndarray | None = None
    rgb_code_std: np.ndarray | None = None
    audio_code_mean: np.ndarray | None = None
    audio_code_std: np.ndarray | None = None

    def standardisation(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """(mean, std) of one modality's code; identity when the artifact has none."""
        width = self.rgb_dim if modality == "rgb" else self.audio_dim
        mean, std = getattr(self, f"{modality}_code_mean"), getattr(self, f"{modality}_code_std")
        if mean is None or std is None:
            return np.zeros(width, np.float32), np.ones(width, np.float32)
        return mean, std

    @property
    def rgb_dim(self) -> int:
        return self.rgb_kernel.shape[1]

    @property
    def audio_dim(self) -> int:
        return self.audio_kernel.shape[1]

    def encode(self, rgb: np.ndarray, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes for (…, 1024) rgb and (…, 128) audio, float32; used by tests and the numpy reference."""
        codes = []
        for modality, features, kernel, bias in (
            ("rgb", rgb, self.rgb_kernel, self.rgb_bias),
            ("audio", audio, self.audio_kernel, self.audio_bias),
        ):
            mean, std = self.standardisation(modality)
            codes.append(((np.maximum(features @ kernel + bias, 0.0) - mean) / std).astype(np.float32))
        return codes[0], codes[1]


def save_encoder(out_dir: str, weights: dict[str, np.ndarray], metadata: dict) -> None:
    """Writes encoder.npz, then encoder.json last (a directory without its metadata is incomplete)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except ValueError:
        raise YtlabelError(
            f"{out_dir}: the encoder's figures are not finite (did its training diverge? lower "
            f"--learning-rate); nothing was saved"
        ) from None
    if not all(np.isfinite(value).all() for value in weights.values()):
        raise YtlabelError(f"{out_dir}: the encoder's weights are not finite; nothing was saved")
    os.makedirs(out_dir, exist_ok=True)
    _check_shapes(weights, out_dir)
    path = os.path.join(out_dir, WEIGHTS)
    with storage.AtomicTarget(path) as partial:
        np.savez(partial, **{key: np.asarray(value, np.float32) for key, value in weights.items()})
    metadata = {
        **metadata,
        "format_version": FORMAT_VERSION,
        "rgb_dim": int(weights["rgb_kernel"].shape[1]),
        "audio_dim": int(weights["audio_kernel"].shape[1]),
        "activation": "relu",
        "weights_sha256": _sha256(path),
    }
    storage.atomic_write(
        os.path.join(out_dir, METADATA), json.dumps(metadata, indent=2, sort_keys=True, allow_nan=False)
    )


def load_encoder(path: str) -> Encoder:
    """Reads and verifies an encoder directory, local or s3:// (copied to a temporary directory first).

    Raises:
        YtlabelError: missing files, a checksum mismatch or shapes that do not fit the features.
    """
    try:
        with storage.local_copy(path) as local:
            return _load_local(local)
    except storage.NotFound:
        raise YtlabelError(f"{path}: not an encoder artifact (nothing stored there)") from None


def _load_local(path: str) -> Encoder:
    metadata_path, weights_path = os.path.join(path, METADATA), os.path.join(path, WEIGHTS)
    if not os.path.exists(metadata_path):
        raise YtlabelError(f"{path}: not an encoder artifact (no {METADATA}; was `ytlabel expand` interrupted?)")
    with open(metadata_path) as handle:
        metadata = json.load(handle)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise YtlabelError(
            f"{metadata_path}: format_version {metadata.get('format_version')!r}, expected {FORMAT_VERSION}"
        )
    if not os.path.exists(weights_path) or _sha256(weights_path) != metadata["weights_sha256"]:
        raise YtlabelError(f"{weights_path}: missing or does not match the sha256 in {METADATA}")
    with np.load(weights_path) as archive:
        weights = {key: archive[key].astype(np.float32) for key in archive.files}
    _check_shapes(weights, path)
    return Encoder(metadata=metadata, **weights)


def _check_shapes(weights: dict[str, np.ndarray], where: str) -> None:
    expected_in = {"rgb_kernel": schema.RGB_DIM, "audio_kernel": schema.AUDIO_DIM}
    for name, rows in expected_in.items():
        kernel, bias = weights.get(name), weights.get(name.replace("kernel", "bias"))
        if (
            kernel is None
            or bias is None
            or kernel.ndim != 2
            or kernel.shape[0] != rows
            or bias.shape != kernel.shape[1:]
        ):
            raise YtlabelError(f"{where}: encoder weight {name!r} must be ({rows}, code) with a matching bias")


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
