"""Synthetic YT8M v2 data with known structure, so the architectures differ for real reasons.

Every class gets a hidden *kind* that decides where its evidence lives:

    both      a fixed direction added to every frame's RGB and audio: visible to every model;
    rgb       the same, RGB only: invisible to an audio-only stream;
    audio     the same, audio only: invisible to an RGB-only stream;
    temporal  +direction in the first half of the video, -direction in the second: the frame mean
              cancels exactly, so video-level models (mean_rgb) cannot see it; sequence models can.

On top of the signal sit a per-video "style" offset (does not average out over frames) and
per-frame noise, both scaled by `noise`. Labels follow the real vocabulary's TrainVideoCount
(Zipf-like) and co-occur within a genre (Vertical1). The generator also writes, per video, its
own Bayes-style class posterior computed from the features it wrote (the oracle): the ceiling a
model can reach on this data. See docs/synthetic-data.md.

Output layout (ids match across the three folders, shard by shard):

    DIR/video/synth-00000-of-00004.tfrecord   tf.train.Example, v2 video-level schema
    DIR/frame/synth-00000-of-00004.tfrecord   tf.train.SequenceExample, v2 frame-level schema
    DIR/oracle/synth-00000-of-00004.tfrecord  tf.train.Example: `id`, `scores` [3862]
    DIR/synth.json                            settings and class kinds, written last
"""

import dataclasses
import json
import math
import os
from collections.abc import Iterator

import numpy as np

from ytlabel import storage
from ytlabel.data import records, schema, wire
from ytlabel.data.sources import SYNTH_TRUTH
from ytlabel.data.tfrecord import TFRecordWriter
from ytlabel.data.vocabulary import Vocabulary, load_vocabulary
from ytlabel.errors import ConfigError, DataError

KINDS = ("both", "rgb", "audio", "temporal")
KIND_SHARES = (0.4, 0.2, 0.2, 0.2)
SIGNAL = 2.0
"""Length of a present class's shift along its (unit) signature direction."""
STYLE_STD = 0.25
"""Per-video, per-dimension offset std at noise=1: the noise a frame mean cannot average away."""
FRAME_STD = 0.5
"""Per-frame, per-dimension noise std at noise=1."""
MAX_LABELS = 12
ORACLE_KEY = "scores"
TRUTH = SYNTH_TRUTH  # synth.json: what the generator knows, its settings and the class ids of each kind
_QUANT_VAR = float(schema.DEQUANT_SCALE) ** 2 / 12.0


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What to generate. Every field is validated on construction.

    Attributes:
        videos: number of videos in total.
        shards: number of shards per level; videos are split into contiguous, near-equal blocks.
        seed: the whole dataset (signatures, kinds, every video) is a function of this seed.
        frames: longest video in frames (1 frame per second), at most 300 like the real data.
        frame_jitter: video lengths are uniform in [ceil(frames * (1 - jitter)), frames]; 0 makes
            every video `frames` long (benchmarks), 0.5 gives a spread for min_frames filtering.
        noise: scales both nuisance terms; 0 leaves only the signal and quantization.
        labels_per_video: mean labels per video (1 + Poisson), the real data has about 3.
        same_genre: probability that each further label comes from the first label's genre.
    """

    videos: int
    shards: int = 4
    seed: int = 0
    frames: int = schema.MAX_FRAMES
    frame_jitter: float = 0.5
    noise: float = 1.0
    labels_per_video: float = 3.0
    same_genre: float = 0.75

    def __post_init__(self):
        _require(self.videos >= 1, "videos", self.videos, "must be >= 1")
        _require(1 <= self.shards <= self.videos, "shards", self.shards, f"must be in [1, videos={self.videos}]")
        _require(2 <= self.frames <= schema.MAX_FRAMES, "frames", self.frames, f"must be in [2, {schema.MAX_FRAMES}]")
        _require(0.0 <= self.frame_jitter < 1.0, "frame_jitter", self.frame_jitter, "must be in [0, 1)")
        _require(self.noise >= 0.0, "noise", self.noise, "must be >= 0")
        _require(
            1.0 <= self.labels_per_video <= MAX_LABELS,
            "labels_per_video",
            self.labels_per_video,
            f"must be in [1, {MAX_LABELS}]",
        )
        _require(0.0 <= self.same_genre <= 1.0, "same_genre", self.same_genre, "must be in [0, 1]")

    @property
    def min_frames(self) -> int:
        return max(2, math.ceil(self.frames * (1.0 - self.frame_jitter)))


def _require(ok: bool, field: str, value, rule: str) -> None:
    if not ok:
        raise ConfigError(f"{field}={value!r}: {rule}")


@dataclasses.dataclass(frozen=True)
class SyntheticVideo:
    """One generated video: the frame-level record, its video-level means and the oracle scores."""

    frames: records.FrameRecord
    mean_rgb: np.ndarray  # (1024,) float32
    mean_audio: np.ndarray  # (128,) float32
    oracle: np.ndarray  # (3862,) float32 posterior per class


class World:
    """The hidden truth shared by all videos of one seed: class kinds, signatures and label prior."""

    def __init__(self, config: SynthConfig, vocabulary: Vocabulary):
        self.config = config
        rng = np.random.default_rng([config.seed, 0x5EED])
        self.kinds = rng.choice(len(KINDS), size=schema.NUM_CLASSES, p=KIND_SHARES).astype(np.int8)
        self.rgb_signatures = _unit_rows(rng.standard_normal((schema.NUM_CLASSES, schema.RGB_DIM)))
        self.audio_signatures = _unit_rows(rng.standard_normal((schema.NUM_CLASSES, schema.AUDIO_DIM)))
        counts = vocabulary.train_counts.astype(np.float64)
        self.prior = counts / counts.sum()
        self._cumulative = np.cumsum(self.prior)
        self.genre_ids = vocabulary.genre_ids
        self._genre_members = [np.flatnonzero(vocabulary.genre_ids == g) for g in range(len(vocabulary.genres))]
        self._genre_cumulative = [np.cumsum(self.prior[m]) for m in self._genre_members]
        # Marginal chance that a class is among a video's labels, for the oracle's prior log-odds.
        marginal = np.clip(self.prior * config.labels_per_video, 1e-9, 0.5)
        self.prior_logit = np.log(marginal / (1.0 - marginal))

    def video(self, index: int) -> SyntheticVideo:
        """Generates video `index`; depends only on (seed, index), not on shard count or order."""
        config = self.config
        rng = np.random.default_rng([config.seed, index])
        labels = self._labels(rng)
        length = int(rng.integers(config.min_frames, config.frames + 1))
        style_std, frame_std = STYLE_STD * config.noise, FRAME_STD * config.noise
        # (frames, 1024) and (frames, 128): style offset + frame noise + class signals.
        rgb = rng.normal(0.0, style_std, schema.RGB_DIM) + rng.normal(0.0, frame_std, (length, schema.RGB_DIM))
        audio = rng.normal(0.0, style_std, schema.AUDIO_DIM) + rng.normal(0.0, frame_std, (length, schema.AUDIO_DIM))
        half = length // 2
        sign = np.zeros(length)
        sign[:half], sign[length - half :] = 1.0, -1.0  # sums to zero: the mean cancels exactly
        for label in labels:
            kind = KINDS[self.kinds[label]]
            if kind in ("both", "rgb"):
                rgb += SIGNAL * self.rgb_signatures[label]
            if kind in ("both", "audio"):
                audio += SIGNAL * self.audio_signatures[label]
            if kind == "temporal":
                rgb += SIGNAL * np.outer(sign, self.rgb_signatures[label])
        rgb_codes, audio_codes = schema.quantize(rgb), schema.quantize(audio)
        rgb_values, audio_values = schema.dequantize(rgb_codes), schema.dequantize(audio_codes)
        mean_rgb = rgb_values.mean(axis=0, dtype=np.float64).astype(np.float32)
        mean_audio = audio_values.mean(axis=0, dtype=np.float64).astype(np.float32)
        oracle = self._oracle(rgb_values, mean_rgb, mean_audio, style_std, frame_std)
        video_id = f"s{config.seed}v{index:07d}"
        frames = records.FrameRecord(id=video_id, labels=labels, rgb=rgb_codes, audio=audio_codes)
        return SyntheticVideo(frames=frames, mean_rgb=mean_rgb, mean_audio=mean_audio, oracle=oracle)

    def _labels(self, rng: np.random.Generator) -> np.ndarray:
        wanted = min(MAX_LABELS, 1 + int(rng.poisson(self.config.labels_per_video - 1.0)))
        first = _draw(self._cumulative, rng)
        chosen = {first}
        members = self._genre_members[self.genre_ids[first]]
        cumulative = self._genre_cumulative[self.genre_ids[first]]
        for _ in range(8 * MAX_LABELS):  # bounded: a small genre may run out of unused classes
            if len(chosen) == wanted:
                break
            if rng.random() < self.config.same_genre:
                chosen.add(int(members[_draw(cumulative, rng)]))
            else:
                chosen.add(_draw(self._cumulative, rng))
        return np.array(sorted(chosen), dtype=np.int32)

    def _oracle(self, rgb_values, mean_rgb, mean_audio, style_std, frame_std) -> np.ndarray:
        """Posterior per class from matched filters on the written features, (3862,) float32.

        Each class's evidence is a projection onto its signature; under "absent" it is Gaussian
        noise around 0, under "present" around SIGNAL, so the log-likelihood ratio is
        (SIGNAL * x - SIGNAL**2 / 2) / variance. Cross-talk between signatures (~1/sqrt(dim)) and
        clipping are ignored, so this is near-optimal rather than exact.
        """
        length = rgb_values.shape[0]
        half = length // 2
        mean_var = style_std**2 + (frame_std**2 + _QUANT_VAR) / length
        temporal_var = (frame_std**2 + _QUANT_VAR) / (2 * half)
        difference = rgb_values[:half].mean(axis=0) - rgb_values[length - half :].mean(axis=0)
        evidence = {
            "rgb": (self.rgb_signatures @ mean_rgb, mean_var),
            "audio": (self.audio_signatures @ mean_audio, mean_var),
            "temporal": (self.rgb_signatures @ difference / 2.0, temporal_var),
        }
        llr = {name: (SIGNAL * x - SIGNAL**2 / 2.0) / max(var, 1e-12) for name, (x, var) in evidence.items()}
        by_kind = np.stack([llr["rgb"] + llr["audio"], llr["rgb"], llr["audio"], llr["temporal"]])
        logit = self.prior_logit + by_kind[self.kinds, np.arange(schema.NUM_CLASSES)]
        return (1.0 / (1.0 + np.exp(-np.clip(logit, -60.0, 60.0)))).astype(np.float32)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def _draw(cumulative: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probabilities given by a cumulative sum (faster than rng.choice)."""
    return int(min(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"), len(cumulative) - 1))


def encode_oracle(video_id: str, scores: np.ndarray) -> bytes:
    """Serializes the oracle scores as a tf.train.Example with `id` and `scores`."""
    message = wire.Example()
    features = message.features.feature
    features[schema.ID_KEY].bytes_list.value.append(video_id.encode())
    features[ORACLE_KEY].float_list.value.extend(scores.tolist())
    return message.SerializeToString(deterministic=True)


def decode_oracle(payload: bytes) -> tuple[str, np.ndarray]:
    """(video id, (3862,) float32 scores) from an oracle record."""
    message = wire.Example()
    message.ParseFromString(payload)
    features = message.features.feature
    return features[schema.ID_KEY].bytes_list.value[0].decode(), np.array(
        features[ORACLE_KEY].float_list.value, np.float32
    )


def shard_name(shard: int, shards: int) -> str:
    return f"synth-{shard:05d}-of-{shards:05d}.tfrecord"


def generate(config: SynthConfig, out_dir: str, vocabulary: Vocabulary | None = None) -> dict:
    """Writes the dataset described by `config` under `out_dir` and returns its ground truth
    (the content of synth.json).

    Streams one video at a time: memory does not grow with `config.videos`.

    Raises:
        DataError: `out_dir` already holds generated data (nothing is overwritten).
    """
    if os.path.exists(os.path.join(out_dir, TRUTH)) or any(
        os.path.isdir(os.path.join(out_dir, sub)) and os.listdir(os.path.join(out_dir, sub))
        for sub in ("video", "frame", "oracle")
    ):
        raise DataError("already holds a generated dataset; choose another --out or remove it first", source=out_dir)
    world = World(config, vocabulary or load_vocabulary())
    for sub in ("video", "frame", "oracle"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    label_count = 0
    for shard, indices in enumerate(_blocks(config.videos, config.shards)):
        name = shard_name(shard, config.shards)
        with (
            TFRecordWriter(os.path.join(out_dir, "video", name)) as video_out,
            TFRecordWriter(os.path.join(out_dir, "frame", name)) as frame_out,
            TFRecordWriter(os.path.join(out_dir, "oracle", name)) as oracle_out,
        ):
            for index in indices:
                video = world.video(index)
                f = video.frames
                video_out.write(records.encode_video(f.id, f.labels, video.mean_rgb, video.mean_audio))
                frame_out.write(records.encode_frames(f.id, f.labels, f.rgb, f.audio))
                oracle_out.write(encode_oracle(f.id, video.oracle))
                label_count += len(f.labels)
    truth = {
        "config": dataclasses.asdict(config),
        "signal": SIGNAL,
        "style_std": STYLE_STD * config.noise,
        "frame_std": FRAME_STD * config.noise,
        "labels_per_video_observed": label_count / config.videos,
        "kinds": {kind: np.flatnonzero(world.kinds == k).tolist() for k, kind in enumerate(KINDS)},
    }
    storage.atomic_write(os.path.join(out_dir, TRUTH), json.dumps(truth))
    return truth


def _blocks(videos: int, shards: int) -> Iterator[range]:
    for shard in range(shards):
        yield range(shard * videos // shards, (shard + 1) * videos // shards)
