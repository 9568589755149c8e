"""Fuzzing the record parsers at length: N mutated cases (hypothesis, derandomized) through the TFRecord
framing and the Example / SequenceExample decoders, in two modes: hostile framing (mutations of a framed
file) and hostile payloads behind valid framing (CRCs recomputed, so mutations reach the protobuf decoders).

The property is the test's (tests/data/test_fuzz.py): every case reads valid records or raises DataError.
Anything else stops the run and is reported. Also recorded: the slowest case (a hang would show) and the
peak RSS before and after each mode (memory must stay bounded whatever a length field says; hypothesis's
own bookkeeping grows with the cases, so a third run draws the same mutations from a seeded numpy generator and
reports the growth of parsing alone).

Prints one JSON line. Usage: python benchmarks/fuzz.py [--cases 20000]
"""

import argparse
import json
import os
import resource
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data"))

from fuzz_cases import operations, run_case, seed_payloads
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20000, help="cases per mode")
    args = parser.parse_args()
    seeds = seed_payloads()
    folder = tempfile.mkdtemp(prefix="ytlabel-fuzz-")
    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures = {"cases_per_mode": args.cases}
    started = time.perf_counter()
    for mode, reframe in (("hostile_framing", False), ("hostile_payload", True)):
        outcomes, slowest = {"read": 0, "data-error": 0}, 0.0

        @settings(
            max_examples=args.cases,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(choice=st.integers(0, 100), ops=operations, skip_corrupt=st.booleans())
        def case(choice, ops, skip_corrupt):
            nonlocal slowest
            begun = time.perf_counter()
            outcomes[run_case(os.path.join(folder, "case.tfrecord"), seeds, choice, ops, reframe, skip_corrupt)] += 1  # noqa: B023 - called within this iteration only
            slowest = max(slowest, time.perf_counter() - begun)

        mode_started = time.perf_counter()
        case()  # any exception other than DataError propagates and fails the run
        figures[mode] = {
            **outcomes,
            "crashes": 0,
            "slowest_case_ms": round(slowest * 1000, 2),
            "cases_per_s": round(sum(outcomes.values()) / (time.perf_counter() - mode_started), 1),
            "peak_rss_mb_after": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    # Memory of parsing alone: the same mutations drawn by a seeded numpy generator, no hypothesis bookkeeping.
    rng = np.random.default_rng(0)
    kinds = ("flip", "truncate", "insert", "overwrite", "varint", "wiretype", "length")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    plain = {"read": 0, "data-error": 0}
    for index in range(args.cases):
        ops = [
            (kinds[rng.integers(len(kinds))], int(rng.integers(1 << 20)), int(rng.integers(1 << 62)))
            for _ in range(int(rng.integers(1, 5)))
        ]
        plain[run_case(os.path.join(folder, "case.tfrecord"), seeds, index, ops, bool(index % 2), bool(index % 3))] += 1
    figures["plain_loop"] = {
        **plain,
        "crashes": 0,
        "peak_rss_growth_mb": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1),
    }
    figures["seconds"] = round(time.perf_counter() - started, 1)
    figures["peak_rss_mb_before"] = round(rss_start / 1024, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
