import itertools

import pytest

from ytlabel.data.partition import Assignment, assign


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 9])
@pytest.mark.parametrize("readers", [1, 2, 3, 4, 6, 9])
def test_every_record_goes_to_exactly_one_reader(shards, readers):
    records_per_shard = 7
    seen = []
    for reader in range(readers):
        for part in assign(shards, reader, readers):
            seen += [(part.shard, i) for i in range(records_per_shard) if i % part.stride == part.offset]
    assert sorted(seen) == list(itertools.product(range(shards), range(records_per_shard)))


def test_few_shards_are_shared_record_by_record():
    assert assign(2, 0, 3) == [Assignment(0, stride=2, offset=0)]
    assert assign(2, 1, 3) == [Assignment(1, stride=1, offset=0)]
    assert assign(2, 2, 3) == [Assignment(0, stride=2, offset=1)]
    assert assign(5, 1, 2) == [Assignment(1), Assignment(3)]


def test_reader_out_of_range_is_refused():
    with pytest.raises(ValueError, match="reader 3 is outside"):
        assign(4, 3, 3)
