"""benchmarks/gpu.py on the CPU path: the script a lent GPU runs works, and its checks hold here."""

import importlib.util
import math
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def gpu_benchmark():
    spec = importlib.util.spec_from_file_location("gpu_benchmark", os.path.join(ROOT, "benchmarks", "gpu.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_path_measures_every_row_and_checks_the_unpack(gpu_benchmark, tmp_path):
    out = tmp_path / "gpu.json"
    result = gpu_benchmark.main(
        [
            "--device",
            "cpu",
            "--small",
            "--repeats",
            "2",
            "--steps",
            "2",
            "--batch",
            "8",
            "--frames",
            "20",
            "--out",
            str(out),
        ]
    )
    assert out.read_text().startswith("{")
    transfer = result["transfer"]
    assert transfer["max_abs_difference"] == 0.0  # the device's unpack is the numpy one, bit for bit
    # 8 videos x 20 frames: float32 features + a 3,862-wide float multi-hot + int64 frame counts, against
    # uint8 codes + int64 frame counts, label ids and label counts.
    assert transfer["bytes"]["float32"] == 8 * 20 * 1152 * 4 + 8 * 3862 * 4 + 8 * 8
    label_id_bytes = transfer["bytes"]["packed"] - (8 * 20 * 1152 + 8 * 8 + 8 * 8)
    assert label_id_bytes % 8 == 0 and 8 <= label_id_bytes // 8 <= 8 * 5  # 1..5 int64 label ids per video
    assert set(transfer["rows"]) == {
        "float32_pageable",
        "float32_pinned",
        "cpu_unpack_then_copy",
        "packed_unpack_on_device",
    }
    assert all(row["ms"] > 0 and row["min_ms"] <= row["ms"] <= row["max_ms"] for row in transfer["rows"].values())
    rows = {(row["arch"], row["amp"]): row for row in result["steps"]}
    assert sorted(rows) == [("bilstm", False), ("bilstm", True), ("fc", False), ("fc", True)]
    for arch in ("fc", "bilstm"):
        assert rows[(arch, True)]["skipped"].startswith("AMP trains in float16 on CUDA only")
        assert rows[(arch, False)]["videos_per_s"] > 0 and math.isfinite(rows[(arch, False)]["final_loss"])
        assert rows[(arch, False)]["peak_memory_mb"] is None
    assert result["nvml"] == {"available": False}
