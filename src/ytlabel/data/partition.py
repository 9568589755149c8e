"""Which records each loader worker reads, so that no record is read twice or missed.

Readers are numbered globally: reader = rank * workers_per_rank + worker, out of
readers = world_size * workers_per_rank. With at least as many shards as readers, whole shards go
round-robin (each shard is read by exactly one reader). With fewer shards, each shard is shared by
a group of readers that take every k-th record of it; the readers step over the others' records
without decoding them.
"""

import dataclasses

from ytlabel.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Assignment:
    """Read shard `shard` keeping records whose index i satisfies i % stride == offset."""

    shard: int
    stride: int = 1
    offset: int = 0


def assign(num_shards: int, reader: int, readers: int) -> list[Assignment]:
    """The shards (and record subsets) reader `reader` of `readers` must read.

    Raises:
        ValueError: no shards, or reader outside [0, readers).
    """
    if num_shards < 1:
        raise ConfigError("there are no shards to assign")
    if not 0 <= reader < readers:
        raise ConfigError(f"reader {reader} is outside [0, {readers})")
    if num_shards >= readers:
        return [Assignment(shard) for shard in range(reader, num_shards, readers)]
    shard = reader % num_shards
    sharing = [r for r in range(readers) if r % num_shards == shard]
    return [Assignment(shard, stride=len(sharing), offset=sharing.index(reader))]
