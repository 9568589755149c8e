"""The dataset a pipeline run works on, and the training grid over it.

A dataset travels between stages as a `DatasetSplit` (dataset.json): shard URIs per level and split
(s3:// on a cluster, local paths in `make demo`) and their record counts, so training pods read the
data where it lies instead of through KFP's artifact store.
"""

import dataclasses
import os

from ytlabel import storage
from ytlabel.data import reader, sources, stream, synth
from ytlabel.errors import YtlabelError
from ytlabel.models.spec import ARCHITECTURES

SYNTHETIC = "synthetic"
DATASET_FILE = "dataset.json"  # inside the KFP Dataset artifact


@dataclasses.dataclass
class DatasetSplit:
    train: dict[str, list[str]]  # level -> shard URIs
    eval: dict[str, list[str]]
    videos: dict[str, int]  # "train"/"eval" -> videos (of the first level present)
    source: str

    def dump(self, folder: str) -> None:
        storage.write_json(os.path.join(folder, DATASET_FILE), dataclasses.asdict(self))

    @classmethod
    def load(cls, folder: str) -> "DatasetSplit":
        return cls(**storage.read_json(os.path.join(folder, DATASET_FILE)))


def ingest(source: str, out_dir: str, shard_fraction: float, eval_fraction: float, synthetic_videos: int = 600,
           seed: int = 7, publish_uri: str = "") -> DatasetSplit:
    """Resolves (or, for source "synthetic", generates into out_dir) the shards and splits them.

    `shard_fraction` keeps every n-th shard (n = round(1 / fraction)); the split ranks shards by a
    hash of their names, so the same shards always land on the same side. Generated data is copied to
    `publish_uri` when that is s3:// (where a cluster's training pods can read it).
    """
    if not 0 < shard_fraction <= 1:
        raise YtlabelError(f"shard_fraction={shard_fraction}: must be in (0, 1]")
    if source == SYNTHETIC:
        synth.generate(synth.SynthConfig(videos=synthetic_videos, shards=6, seed=seed, frames=40, noise=2.0), out_dir)
        if storage.is_remote(publish_uri):
            storage.sync_up(out_dir, publish_uri)
            out_dir = publish_uri
        levels = {level: storage.join(out_dir, level) for level in ("video", "frame")}
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
    return DatasetSplit(train, evaluation, videos, source)


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
