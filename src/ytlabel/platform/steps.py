"""The pipeline's stages as library functions; the KFP components in components/ are thin wrappers.

A dataset travels between stages as a small JSON manifest (`DatasetManifest`): shard URIs per level
(s3:// on a cluster, local paths in `make demo`) and their record counts, so training pods read the
data where it lies instead of through KFP's artifact store.
"""

import dataclasses
import json
import os
import urllib.request

from ytlabel.data import reader, sources, stream, synth
from ytlabel.errors import YtlabelError
from ytlabel.models.spec import ARCHITECTURES

SYNTHETIC = "synthetic"


@dataclasses.dataclass
class DatasetManifest:
    train: dict[str, list[str]]  # level -> shard URIs
    eval: dict[str, list[str]]
    videos: dict[str, int]  # "train"/"eval" -> videos (of the first level present)
    source: str

    def dump(self, path: str) -> None:
        with open(path, "w") as handle:
            json.dump(dataclasses.asdict(self), handle, indent=2)

    @classmethod
    def load(cls, path: str) -> "DatasetManifest":
        with open(path) as handle:
            return cls(**json.load(handle))


def ingest(source: str, out_dir: str, shard_fraction: float, eval_fraction: float, synthetic_videos: int = 600,
           seed: int = 7) -> DatasetManifest:
    """Resolves (or, for source "synthetic", generates into out_dir) the shards and splits them.

    `shard_fraction` keeps every n-th shard (n = round(1 / fraction)); the split ranks shards by a
    hash of their names, so the same shards always land on the same side.
    """
    if not 0 < shard_fraction <= 1:
        raise YtlabelError(f"shard_fraction={shard_fraction}: must be in (0, 1]")
    if source == SYNTHETIC:
        synth.generate(synth.SynthConfig(videos=synthetic_videos, shards=6, seed=seed, frames=40, noise=2.0), out_dir)
        levels = {"video": os.path.join(out_dir, "video"), "frame": os.path.join(out_dir, "frame")}
    else:
        shards = sources.resolve_shards(source)
        levels = {reader.detect_dataset_level(shards): source}
    train, evaluation, videos = {}, {}, {}
    for level, location in levels.items():
        shards = sources.every_nth(sources.resolve_shards(location), max(1, round(1 / shard_fraction)))
        train[level], evaluation[level] = sources.split_shards(shards, eval_fraction)
        if not train[level] or not evaluation[level]:
            raise YtlabelError(f"{source}: {len(shards)} {level}-level shard(s) cannot be split into train and eval; "
                               f"raise shard_fraction or lower eval_fraction")
        videos.setdefault("train", sum(stream.count_records(train[level])))
        videos.setdefault("eval", sum(stream.count_records(evaluation[level])))
    return DatasetManifest(train, evaluation, videos, source)


def plan_runs(architectures: list[str], frameworks: list[str], expansion_archs: list[str], levels: list[str]) -> list[dict]:
    """One {arch, framework, expansion} per training job; archs whose data level is missing are refused."""
    unknown = sorted(set(architectures) - set(ARCHITECTURES))
    if unknown:
        raise YtlabelError(f"unknown architectures {unknown}; choose from {sorted(ARCHITECTURES)}")
    missing = sorted(arch for arch in architectures if ARCHITECTURES[arch].level not in levels)
    if missing:
        raise YtlabelError(f"{missing} need {ARCHITECTURES[missing[0]].level}-level data, the dataset has {levels}")
    if set(frameworks) - {"torch", "keras"} or not frameworks:
        raise YtlabelError(f"frameworks={frameworks}: choose from ['keras', 'torch']")
    runs = [{"arch": arch, "framework": framework, "expansion": False} for arch in architectures for framework in frameworks]
    runs += [{"arch": arch, "framework": framework, "expansion": True}
             for arch in expansion_archs if arch in architectures for framework in frameworks]
    return runs


def run_name(arch: str, framework: str, expansion: bool) -> str:
    return f"{arch.replace('_', '-')}-{framework}{'-expanded' if expansion else ''}"


def pick_winner(summaries: list[dict]) -> dict:
    """The run with the highest GAP@20 (ties: the first in plan order)."""
    if not summaries:
        raise YtlabelError("no evaluated runs to choose from")
    return max(summaries, key=lambda summary: summary["gap_at_20"])


def first_video(shards: list[str]) -> dict:
    """A V1 instance built from the first record of `shards` (a real request for the deployed model)."""
    import base64

    record = next(iter(reader.read_shard(shards[0])))
    if hasattr(record, "num_frames"):
        frames = {name: [{"b64": base64.b64encode(row.tobytes()).decode()} for row in codes]
                  for name, codes in (("rgb", record.rgb), ("audio", record.audio))}
        return {"id": record.id, "labels": record.labels.tolist(), "instance": frames}
    return {"id": record.id, "labels": record.labels.tolist(),
            "instance": {"mean_rgb": record.rgb.tolist(), "mean_audio": record.audio.tolist()}}


def serve_and_ask(model_ref: str, registry: str, video: dict, timeout_s: float = 120.0) -> dict:
    """Starts `ytlabel serve` on a free 127.0.0.1 port, sends one V1 request, stops it; returns the answer."""
    from ytlabel.serving.server import running

    name = model_ref.split("@")[0].split(":")[0]
    with running("--model", model_ref, "--registry", registry, "--top-k", "5", timeout_s=timeout_s) as url:
        body = json.dumps({"instances": [video["instance"]]}).encode()
        request = urllib.request.Request(f"{url}/v1/models/{name}:predict", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["predictions"][0]


def top_class_confusion(run_dir: str, shards: list[str], classes: int = 8) -> tuple[list[str], list[list[int]]]:
    """A confusion matrix over the `classes` most frequent true labels of `shards` (plus "other"):
    row = a video's most frequent true label among them, column = the model's top-1 class."""
    import numpy as np

    from ytlabel.data.batching import prepare
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
        examples = [prepare(record, predictor.options) for record in chunk]
        kept = [(record, example) for record, example in zip(chunk, examples) if example is not None]
        if not kept:
            continue
        batch = {key: np.stack([example[key] for _, example in kept]) for key in kept[0][1] if key != "labels"}
        predicted = np.argmax(predictor.predict(batch), axis=1)
        for (record, _), guess in zip(kept, predicted):
            present = [label for label in record.labels if label in index]
            row = index[min(present, key=top.index)] if present else len(top)
            matrix[row, index.get(int(guess), len(top))] += 1
    vocabulary = load_vocabulary()
    return [vocabulary.name(label) or str(label) for label in top] + ["other"], matrix.tolist()
