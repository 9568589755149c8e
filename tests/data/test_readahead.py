"""The read-ahead thread both training loops use: order kept, errors raised in place, stoppable early."""

import threading
import time

import pytest

from ytlabel.data.readahead import ReadAhead


def test_items_arrive_in_order_and_the_thread_ends():
    ahead = ReadAhead(range(50), depth=3)
    assert list(ahead) == list(range(50))
    ahead.close()
    assert not ahead._thread.is_alive()


def test_an_error_in_the_source_is_raised_where_its_item_would_be():
    def source():
        yield from (1, 2)
        raise ValueError("shard 3: record 7 is corrupt")

    ahead = ReadAhead(source(), depth=4)
    assert next(ahead) == 1 and next(ahead) == 2
    with pytest.raises(ValueError, match="record 7 is corrupt"):
        next(ahead)
    with pytest.raises(StopIteration):  # a failed stream stays finished
        next(ahead)


def test_it_reads_at_most_depth_ahead_and_close_stops_it_mid_stream():
    produced = []

    def source():
        for item in range(1000):
            produced.append(item)
            yield item

    with ReadAhead(source(), depth=2) as ahead:
        assert next(ahead) == 0
        time.sleep(0.2)
        # one item handed out, two waiting in the queue, one held by the blocked put
        assert len(produced) == 4
    assert not ahead._thread.is_alive() and len(produced) == 4
    assert not any(thread.name == "ytlabel-read-ahead" for thread in threading.enumerate())


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="depth=0"):
        ReadAhead([], depth=0)
