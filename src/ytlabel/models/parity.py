"""The contract between frameworks: same spec -> same trainable parameter count, and weights moved
from one framework to the other -> the same logits (max |difference| <= 1e-4 in float32)."""

import dataclasses

import numpy as np

from ytlabel.data import schema
from ytlabel.models.spec import ARCHITECTURES, VIDEO, make_spec

TOLERANCE = 1e-4


@dataclasses.dataclass(frozen=True)
class ParityResult:
    arch: str
    torch_params: int
    keras_params: int
    max_abs_diff: float  # torch -> keras
    max_abs_diff_back: float  # keras -> torch

    @property
    def ok(self) -> bool:
        return self.torch_params == self.keras_params and max(self.max_abs_diff, self.max_abs_diff_back) <= TOLERANCE


def sample_batch(level: str, batch: int = 4, frames: int = 9, seed: int = 0) -> dict[str, np.ndarray]:
    """Dequantized-range random inputs; frame level mixes full, short and one-frame videos (zero-padded)."""
    rng = np.random.default_rng(seed)
    if level == VIDEO:
        return {
            "rgb": rng.uniform(-2, 2, (batch, schema.RGB_DIM)).astype(np.float32),
            "audio": rng.uniform(-2, 2, (batch, schema.AUDIO_DIM)).astype(np.float32),
        }
    num_frames = np.array([frames, max(1, frames // 2), 1, frames - 1][:batch] + [frames] * max(0, batch - 4), np.int64)
    rgb = rng.uniform(-2, 2, (batch, frames, schema.RGB_DIM)).astype(np.float32)
    audio = rng.uniform(-2, 2, (batch, frames, schema.AUDIO_DIM)).astype(np.float32)
    padding = np.arange(frames)[None, :] >= num_frames[:, None]
    rgb[padding], audio[padding] = 0.0, 0.0
    return {"rgb": rgb, "audio": audio, "num_frames": num_frames}


def torch_logits(model, batch: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    model.eval()
    with torch.no_grad():
        return model({key: torch.from_numpy(value) for key, value in batch.items()}).numpy()


def keras_logits(model, batch: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(model(batch, training=False))


def check(arch: str, spec=None, seed: int = 0) -> ParityResult:
    """Builds `arch` in both frameworks from one spec and measures the contract."""
    import torch

    from ytlabel.models import keras as keras_models
    from ytlabel.models import torch as torch_models
    from ytlabel.models.keras import layers as keras_layers
    from ytlabel.models.torch import layers as torch_layers

    spec = spec or make_spec(arch)
    torch.manual_seed(seed)
    torch_model = torch_models.build(arch, spec)
    keras_model = keras_models.build(arch, spec)
    batch = sample_batch(ARCHITECTURES[arch].level, seed=seed)

    keras_layers.import_weights(keras_model, torch_layers.export_weights(torch_model))
    forward = float(np.max(np.abs(torch_logits(torch_model, batch) - keras_logits(keras_model, batch))))

    fresh = keras_models.build(arch, spec)  # Keras-initialised weights, carried back to torch
    torch_layers.import_weights(torch_model, keras_layers.export_weights(fresh))
    back = float(np.max(np.abs(torch_logits(torch_model, batch) - keras_logits(fresh, batch))))
    return ParityResult(
        arch,
        torch_layers.trainable_parameters(torch_model),
        keras_layers.trainable_parameters(keras_model),
        forward,
        back,
    )
