"""What a training run reads: its shards and counts, the encoder check, and the stream plan of this rank."""

import dataclasses
import hashlib
import json
import os

from ytlabel.config import TrainConfig
from ytlabel.data import sources, stream
from ytlabel.data.examples import InputOptions
from ytlabel.errors import YtlabelError
from ytlabel.training.distributed import Place


@dataclasses.dataclass(frozen=True)
class RunData:
    train_shards: list[str]
    train_counts: list[int]
    validation_shards: list[str]
    options: InputOptions

    def fingerprint(self) -> dict:
        """What the model was trained on, for the registry: shard names with their record counts, hashed.

        Names and counts (not bytes) keep it cheap on S3 and stable across copies of the same shards.
        """
        listing = sorted(zip((os.path.basename(shard) for shard in self.train_shards), self.train_counts))
        digest = hashlib.sha256(json.dumps(listing).encode()).hexdigest()
        return {"shards": len(listing), "videos": sum(self.train_counts), "sha256": digest}


def check_encoder(config: TrainConfig) -> None:
    """The encoder must see inputs normalised as during `ytlabel expand`, or its codes mean nothing."""
    if not config.encoder:
        return
    from ytlabel.features.encoder import load_encoder

    trained_on = bool(load_encoder(config.encoder).metadata.get("config", {}).get("l2_normalize", False))
    if trained_on != config.l2_normalize:
        raise YtlabelError(
            f"encoder {config.encoder} was trained with l2_normalize={str(trained_on).lower()} but this run has "
            f"l2_normalize={str(config.l2_normalize).lower()}; set l2_normalize={str(trained_on).lower()} or "
            f"re-run `ytlabel expand`{' --l2-normalize' if config.l2_normalize else ''}"
        )


def resolve_data(config: TrainConfig) -> RunData:
    """Training and validation shards with their record counts."""
    check_encoder(config)
    shards = sources.resolve_shards(config.data)
    if config.validation_data:
        train, validation = shards, sources.resolve_shards(config.validation_data)
    elif config.validation_fraction > 0 and len(shards) > 1:
        train, validation = sources.split_shards(shards, config.validation_fraction)
    else:
        train, validation = shards, []
    return RunData(train, stream.count_records(train), validation, config.input_options())


def make_plan(config: TrainConfig, data: RunData, place: Place) -> stream.StreamPlan:
    if config.loader_workers is None:
        raise YtlabelError("loader_workers is still auto: training.run.choose_readers settles it before the plan")
    plan = stream.StreamPlan(
        shards=tuple(data.train_shards),
        counts=tuple(data.train_counts),
        options=data.options,
        batch_size=config.batch_size,
        seed=config.seed,
        rank=place.rank,
        world_size=place.world_size,
        readers=max(1, config.loader_workers),
        shuffle_buffer=config.shuffle_buffer,
        max_steps=config.max_steps_per_epoch,
        skip_corrupt=config.skip_corrupt,
    )
    if plan.steps_per_epoch < 1:
        raise YtlabelError(
            f"not enough training data for one batch of {config.batch_size} per rank and reader "
            f"({sum(data.train_counts)} videos in {len(data.train_shards)} shards, world size {place.world_size}, "
            f"{plan.readers} reader(s) per rank); lower batch_size or loader_workers"
        )
    return plan
