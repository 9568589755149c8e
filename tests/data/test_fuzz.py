"""Fuzzing the parsers (hypothesis): mutated real and synthetic records through the TFRecord framing and the
Example / SequenceExample decoders either read as valid records or raise DataError; nothing else escapes.
A few thousand cases here; benchmarks/fuzz.py runs 20,000+ and records time and memory."""

import pytest
from fuzz_cases import check, operations, run_case, seed_payloads, write_seed_shards
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SEEDS = seed_payloads()


def test_the_seeds_read_cleanly(tmp_path):
    assert [check(path, skip_corrupt=False) for path in write_seed_shards(str(tmp_path))] == [3, 2]


@pytest.mark.slow  # thousands of hypothesis cases
@pytest.mark.parametrize("reframe", [True, False], ids=["valid-framing-hostile-payload", "hostile-framing"])
def test_mutated_records_read_or_raise_data_error(tmp_path, reframe):
    outcomes = []

    @settings(
        max_examples=3000,
        deadline=2000,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(choice=st.integers(0, 100), ops=operations, skip_corrupt=st.booleans())
    def case(choice, ops, skip_corrupt):
        outcomes.append(run_case(str(tmp_path / "case.tfrecord"), SEEDS, choice, ops, reframe, skip_corrupt))

    case()
    # Both outcomes happen: the mutations reach deep enough to be refused, and not everything is refused.
    assert len(outcomes) == 3000 and {"read", "data-error"} <= set(outcomes)
