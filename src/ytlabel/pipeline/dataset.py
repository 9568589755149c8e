"""The dataset a pipeline run works on, and the training grid over it.

A dataset travels between stages as a `DatasetSplit` (dataset.json): shard URIs per level and split
(s3:// on a cluster, local paths in `make demo`) and their record counts, so training pods read the
data where it lies instead of through KFP's artifact store.
"""

import dataclasses
import os
import urllib.parse

from ytlabel import storage
from ytlabel.data import download, reader, sources, stream, synth
from ytlabel.errors import YtlabelError
from ytlabel.kinds import FRAMEWORKS, LEVELS
from ytlabel.models.spec import ARCHITECTURES

SYNTHETIC = "synthetic"
# yt8m://2/video/train?shard=1/100&mirror=us: the official download (base_url= a private mirror). The shard is
# written i/N here, not the official i,N, because commas separate the parts of a data source.
OFFICIAL = "yt8m://"
DATASET_FILE = "dataset.json"  # inside the KFP Dataset artifact


@dataclasses.dataclass
class DatasetSplit:
    train: dict[str, list[str]]  # level -> shard URIs
    eval: dict[str, list[str]]
    videos: dict[str, int]  # "train"/"eval" -> videos (of the first level present)
    source: str
    synthetic: list[str] = dataclasses.field(default_factory=list)  # levels whose data was generated

    def dump(self, folder: str) -> None:
        storage.write_json(os.path.join(folder, DATASET_FILE), dataclasses.asdict(self))

    @classmethod
    def load(cls, folder: str) -> "DatasetSplit":
        return cls(**storage.read_json(os.path.join(folder, DATASET_FILE)))


def ingest(
    source: str,
    out_dir: str,
    shard_fraction: float,
    eval_fraction: float,
    synthetic_videos: int = 600,
    seed: int = 7,
    publish_uri: str = "",
) -> DatasetSplit:
    """Resolves, downloads or generates the shards of `source` and splits each level into train and eval.

    `source` is one or more comma-separated parts:
    - files, directories, globs or s3:// prefixes of YT8M v2 shards (together one level);
    - `yt8m://VERSION/LEVEL/SPLIT?shard=i/N&mirror=us`: the official download (`ytlabel data download`),
      into `publish_uri` (out_dir when empty): on a cluster an s3:// folder the training pods read;
    - `synthetic`: generated data for every level the other parts lack (into out_dir, copied to
      `publish_uri` when that is s3://). `real-sample,synthetic` trains video-level models on real videos
      and frame-level models on synthetic ones.

    `shard_fraction` keeps every n-th shard (n = round(1 / fraction)); the split ranks shards by a
    hash of their names, so the same shards always land on the same side.
    """
    if not 0 < shard_fraction <= 1:
        raise YtlabelError(f"shard_fraction={shard_fraction}: must be in (0, 1]")
    parts = [part.strip() for part in source.split(",") if part.strip()]
    levels: dict[str, str | list[str]] = {}
    located = [part for part in parts if part != SYNTHETIC and not part.startswith(OFFICIAL)]
    if located:
        shards = sources.resolve_shards(located)
        _claim(levels, reader.detect_dataset_level(shards), shards, source)
    downloads = [_official(part) for part in parts if part.startswith(OFFICIAL)]
    targets = [storage.join(publish_uri or out_dir, "yt8m", str(number)) for number in range(len(downloads))]
    for (partition, _), target in zip(downloads, targets):  # every level claimed before anything is downloaded
        _claim(levels, partition.level.removesuffix("_level"), target, source)
    for (partition, query), target in zip(downloads, targets):
        download.download(
            str(partition),
            target,
            shard=query.get("shard", "1/1").replace("/", ","),
            mirror=query.get("mirror", "us"),
            base_url=query.get("base_url"),
            progress=False,
        )
    synthetic = []
    if SYNTHETIC in parts:
        synth.generate(synth.SynthConfig(videos=synthetic_videos, shards=6, seed=seed, frames=40, noise=2.0), out_dir)
        generated = out_dir
        if storage.is_remote(publish_uri):
            storage.sync_up(out_dir, publish_uri)
            generated = publish_uri
        synthetic = [level for level in LEVELS if level not in levels]
        levels.update({level: storage.join(generated, level) for level in synthetic})
    if not levels:
        raise YtlabelError(f"data_source {source!r} names no data")
    train: dict[str, list[str]] = {}
    evaluation: dict[str, list[str]] = {}
    videos: dict[str, int] = {}
    for level, location in levels.items():
        shards = sources.every_nth(sources.resolve_shards(location), max(1, round(1 / shard_fraction)))
        train[level], evaluation[level] = sources.split_shards(shards, eval_fraction)
        if not train[level] or not evaluation[level]:
            raise YtlabelError(
                f"{source}: {len(shards)} {level}-level shard(s) cannot be split into train and eval; "
                f"raise shard_fraction or lower eval_fraction"
            )
        videos.setdefault("train", sum(stream.count_records(train[level])))
        videos.setdefault("eval", sum(stream.count_records(evaluation[level])))
    return DatasetSplit(train, evaluation, videos, source, synthetic)


def _claim(levels: dict, level: str, shards, source: str) -> None:
    if level in levels:
        raise YtlabelError(f"data_source {source!r}: two parts hold {level}-level data; list one source per level")
    levels[level] = shards


def _official(source: str) -> tuple[download.Partition, dict[str, str]]:
    """A yt8m:// source's partition and its parameters (shard, mirror, base_url), checked."""
    parts = urllib.parse.urlsplit(source)
    query = {key: values[-1] for key, values in urllib.parse.parse_qs(parts.query).items()}
    unknown = sorted(set(query) - {"shard", "mirror", "base_url"})
    if unknown:
        raise YtlabelError(f"{source}: unknown parameters {unknown}; yt8m:// takes shard, mirror and base_url")
    return download.Partition.parse(parts.netloc + parts.path), query


def plan_runs(
    architectures: list[str], frameworks: list[str], expansion_archs: list[str], levels: list[str]
) -> list[dict]:
    """One {arch, framework, expansion} per training job; archs whose data level is missing are refused."""
    unknown = sorted(set(architectures) - set(ARCHITECTURES))
    if unknown:
        raise YtlabelError(f"unknown architectures {unknown}; choose from {sorted(ARCHITECTURES)}")
    missing = sorted(arch for arch in architectures if ARCHITECTURES[arch].level not in levels)
    if missing:
        raise YtlabelError(f"{missing} need {ARCHITECTURES[missing[0]].level}-level data, the dataset has {levels}")
    if set(frameworks) - set(FRAMEWORKS) or not frameworks:
        raise YtlabelError(f"frameworks={frameworks}: choose from ['keras', 'torch']")
    runs = [
        {"arch": arch, "framework": framework, "expansion": False} for arch in architectures for framework in frameworks
    ]
    runs += [
        {"arch": arch, "framework": framework, "expansion": True}
        for arch in expansion_archs
        if arch in architectures
        for framework in frameworks
    ]
    return runs
