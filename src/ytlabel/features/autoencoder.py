"""Train the denoising autoencoder behind `ytlabel expand` (PyTorch on the CPU or a GPU).

The encoder expands each modality separately (rgb 1024 -> rgb_dim, audio 128 -> audio_dim, ReLU) and
one linear decoder reconstructs the whole clean 1152-d vector from both codes. Inputs are corrupted
with Gaussian noise during training (the "denoising"), so the over-complete code cannot just copy.
Video-level data trains on the mean features; frame-level data on every `frame_stride`-th frame.
"""

import dataclasses
import hashlib
import os
import time

import numpy as np
import torch
from torch import nn

from ytlabel.data import reader, schema, sources
from ytlabel.data.examples import l2_normalize_pair
from ytlabel.data.records import VIDEO
from ytlabel.errors import ConfigError
from ytlabel.features.encoder import save_encoder


@dataclasses.dataclass(frozen=True)
class ExpandConfig:
    """Autoencoder settings; every field is validated.

    Attributes:
        rgb_dim: code width for RGB (1024 in); 2048 doubles it.
        audio_dim: code width for audio (128 in).
        noise: std of the Gaussian corruption added to inputs while training, relative to each
            feature's standard deviation over the training samples (so L2-normalised and raw
            features get the same signal-to-noise ratio).
        epochs: passes over the training samples.
        batch_size: samples per step.
        learning_rate: Adam step size.
        holdout: fraction kept out for the reported loss: whole shards when there are at least
            1/holdout of them, else a seeded share of samples.
        frame_stride: frame-level data: use every k-th frame of each video as a sample.
        seed: initialisation, shuffling and noise.
        l2_normalize: train on unit-length [rgb, audio] vectors; models using this encoder must
            normalise their inputs the same way (training checks it).
    """

    rgb_dim: int = 2048
    audio_dim: int = 256
    noise: float = 0.1
    epochs: int = 5
    batch_size: int = 256
    learning_rate: float = 1e-3
    holdout: float = 0.1
    frame_stride: int = 10
    seed: int = 0
    l2_normalize: bool = False

    def __post_init__(self):
        for name in ("rgb_dim", "audio_dim", "epochs", "batch_size", "frame_stride"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r}: must be >= 1")
        if self.noise < 0 or self.learning_rate <= 0:
            raise ConfigError(f"noise={self.noise!r} must be >= 0 and learning_rate={self.learning_rate!r} > 0")
        if not 0.0 < self.holdout < 1.0:
            raise ConfigError(f"holdout={self.holdout!r}: must be in (0, 1)")


class DenoisingAutoencoder(nn.Module):
    def __init__(self, rgb_dim: int, audio_dim: int):
        super().__init__()
        self.encoder_rgb = nn.Linear(schema.RGB_DIM, rgb_dim)
        self.encoder_audio = nn.Linear(schema.AUDIO_DIM, audio_dim)
        self.decoder = nn.Linear(rgb_dim + audio_dim, schema.FEATURE_DIM)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(batch, 1152) -> reconstruction (batch, 1152)."""
        rgb, audio = features[:, : schema.RGB_DIM], features[:, schema.RGB_DIM :]
        code = torch.cat([torch.relu(self.encoder_rgb(rgb)), torch.relu(self.encoder_audio(audio))], dim=-1)
        return self.decoder(code)


def load_features(shards: list[str], level: str, frame_stride: int, l2_normalize: bool = False) -> np.ndarray:
    """(samples, 1152) float32 [rgb, audio] rows from every record of `shards`."""
    rows = []
    for shard in shards:
        for record in reader.read_shard(shard, level):
            if level == VIDEO:
                rows.append(np.concatenate([record.rgb, record.audio])[None, :])
            else:
                rgb = schema.dequantize(record.rgb[::frame_stride])
                rows.append(np.concatenate([rgb, schema.dequantize(record.audio[::frame_stride])], axis=1))
    features = np.concatenate(rows).astype(np.float32)
    if l2_normalize:
        rgb, audio = l2_normalize_pair(features[:, : schema.RGB_DIM], features[:, schema.RGB_DIM :])
        features = np.concatenate([rgb, audio], axis=1)
    return features


def fingerprint(shards: list[str]) -> str:
    """sha256 over shard names and sizes: identifies the data without reading it twice."""
    digest = hashlib.sha256()
    for shard in shards:
        size = os.path.getsize(shard) if os.path.exists(shard) else -1
        digest.update(f"{os.path.basename(shard)}:{size}\n".encode())
    return digest.hexdigest()


def expand(data: str | list[str], out_dir: str, config: ExpandConfig, log=print) -> dict:
    """Trains the autoencoder on `data` and writes the encoder artifact to `out_dir`; returns its metadata."""
    started = time.perf_counter()
    shards = sources.resolve_shards(data)
    level = reader.detect_dataset_level(shards)
    # Whole shards are held out when there are enough of them for the fraction to mean something.
    by_shard = len(shards) * config.holdout >= 1.0
    train_shards, held_shards = sources.split_shards(shards, config.holdout) if by_shard else (shards, [])
    train = load_features(train_shards, level, config.frame_stride, config.l2_normalize)
    if held_shards:
        held = load_features(held_shards, level, config.frame_stride, config.l2_normalize)
    else:  # few shards: hold out a seeded share of samples instead
        rng = np.random.default_rng(config.seed)
        mask = rng.random(len(train)) < config.holdout
        train, held = train[~mask], train[mask]

    torch.manual_seed(config.seed)
    model = DenoisingAutoencoder(config.rgb_dim, config.audio_dim)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    train_tensor, held_tensor = torch.from_numpy(train), torch.from_numpy(held)
    # Corruption relative to each feature's spread: an absolute 0.1 swamps L2-normalised features
    # (about 0.02 per dimension) and the encoder then learns an almost dead code.
    noise_scale = config.noise * torch.from_numpy(train.std(axis=0).astype(np.float32))
    for epoch in range(config.epochs):
        order = torch.randperm(len(train_tensor), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            clean = train_tensor[order[start : start + config.batch_size]]
            noisy = clean + noise_scale * torch.randn(clean.shape, generator=generator)
            loss = nn.functional.mse_loss(model(noisy), clean)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(clean)
        log(f"expand: epoch {epoch + 1}/{config.epochs} train mse {total / len(train_tensor):.5f}")

    with torch.no_grad():
        train_mse = float(nn.functional.mse_loss(model(train_tensor), train_tensor))
        held_mse = float(nn.functional.mse_loss(model(held_tensor), held_tensor))
    baseline = float(np.mean((held - train.mean(axis=0)) ** 2))  # predicting the training mean
    with torch.no_grad():
        rgb_code = torch.relu(model.encoder_rgb(train_tensor[:, : schema.RGB_DIM]))
        audio_code = torch.relu(model.encoder_audio(train_tensor[:, schema.RGB_DIM :]))
    weights = {
        "rgb_kernel": model.encoder_rgb.weight.detach().T.numpy(),
        "rgb_bias": model.encoder_rgb.bias.detach().numpy(),
        "audio_kernel": model.encoder_audio.weight.detach().T.numpy(),
        "audio_bias": model.encoder_audio.bias.detach().numpy(),
        # Consumers see standardised codes (features/encoder.py); units that never fire get std 1.
        "rgb_code_mean": rgb_code.mean(0).numpy(),
        "rgb_code_std": _safe_std(rgb_code),
        "audio_code_mean": audio_code.mean(0).numpy(),
        "audio_code_std": _safe_std(audio_code),
    }
    metadata = {
        "config": dataclasses.asdict(config),
        "level": level,
        "train_samples": len(train),
        "heldout_samples": len(held),
        "train_mse": train_mse,
        "heldout_mse": held_mse,
        "heldout_mse_of_mean_baseline": baseline,
        "data_fingerprint": fingerprint(shards),
        "data_shards": len(shards),
        "wall_s": round(time.perf_counter() - started, 2),
    }
    save_encoder(out_dir, weights, metadata)
    log(f"expand: held-out mse {held_mse:.5f} (predicting the mean: {baseline:.5f}); wrote {out_dir}")
    return metadata


def _safe_std(codes: torch.Tensor) -> np.ndarray:
    std = codes.std(0).numpy()
    return np.where(std > 1e-6, std, 1.0).astype(np.float32)
