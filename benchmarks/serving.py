"""Serving latency and throughput of `ytlabel serve` against the in-process forward (prints JSON).

For fc and bilstm in both frameworks (default model sizes, weights from a one-step training run on
synthetic data: latency does not depend on what the weights learnt), each model is pushed to a file
registry, pulled like KServe's storage initializer would, and served by a real KServe ModelServer on
127.0.0.1. Measured in the same run:

  forward_p50_ms     predictor.predict on a prepared batch of 1, in this process (the anchor)
  p50_ms, p99_ms     V1 :predict round trips at batch 1, one client, keep-alive connection
  overhead_p50_ms    p50_ms - forward_p50_ms: HTTP, JSON, payload checks and answer building
  videos_per_s_c8    batch-1 requests from 8 concurrent clients

Frame-level requests carry 300 frames in the YT8M quantized form, twice: as V1 JSON with one
{"b64": ...} per frame, and as a V2 request whose UINT8 tensors travel as raw bytes (the binary
tensor extension, `ytlabel.serving.client`). One row per model and protocol; the last stdout line
is the JSON list.
Usage: python benchmarks/serving.py [--requests 200] [--work DIR] [--archs fc,bilstm]
"""

import argparse
import base64
import concurrent.futures
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from common import run_ytlabel

from ytlabel.data import synth
from ytlabel.registry import Registry
from ytlabel.serving.client import binary_infer_request
from ytlabel.serving.server import running

FRAMES = 300
JSON = {"Content-Type": "application/json"}


def _percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2)


def _requests(level: str, name: str, rng: np.random.Generator) -> list[tuple[str, str, bytes, dict]]:
    """(protocol, path, body, headers) per way of sending one video to model `name`."""
    if level == "video":
        instance = {
            "mean_rgb": rng.normal(size=1024).round(5).tolist(),
            "mean_audio": rng.normal(size=128).round(5).tolist(),
        }
        return [("v1 json", f"/v1/models/{name}:predict", json.dumps({"instances": [instance]}).encode(), JSON)]
    codes = {
        field: rng.integers(0, 256, (FRAMES, width), dtype=np.uint8) for field, width in (("rgb", 1024), ("audio", 128))
    }
    instance = {
        field: [{"b64": base64.b64encode(row.tobytes()).decode()} for row in rows] for field, rows in codes.items()
    }
    binary, headers = binary_infer_request({field: rows[None] for field, rows in codes.items()})
    return [
        ("v1 json", f"/v1/models/{name}:predict", json.dumps({"instances": [instance]}).encode(), JSON),
        ("v2 binary", f"/v2/models/{name}/infer", binary, headers),
    ]


def _client(port: int, path: str, body: bytes, headers: dict, count: int) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"request failed with {response.status}")
        times.append((time.perf_counter() - started) * 1000)
    connection.close()
    return times


def measure(arch: str, framework: str, work: str, data: str, requests: int) -> list[dict]:
    from ytlabel.models.predictor import load_predictor
    from ytlabel.serving.payload import from_instances

    level = "video" if arch == "fc" else "frame"
    run = os.path.join(work, "runs", f"{arch}-{framework}")
    shutil.rmtree(run, ignore_errors=True)
    run_ytlabel(
        "train",
        "--arch",
        arch,
        "--framework",
        framework,
        "--data",
        os.path.join(data, level),
        "--out",
        run,
        "--config",
        arch,
        "epochs=1",
        "max_steps_per_epoch=1",
        "batch_size=8",
        "validation_fraction=0",
    )
    name = f"bench-{arch}-{framework}"
    registry = Registry(os.path.join(work, "registry"))
    registry.push(run, name)
    model_dir = os.path.join(work, "mnt", name)
    shutil.rmtree(model_dir, ignore_errors=True)
    registry.pull(name, model_dir)

    ways = _requests(level, name, np.random.default_rng(0))
    predictor = load_predictor(model_dir)
    batch = from_instances(json.loads(ways[0][2])["instances"], predictor.options).inputs
    for _ in range(3):
        predictor.predict(batch)  # warm-up: graph tracing, allocator
    forward = []
    for _ in range(max(20, requests // 4)):
        started = time.perf_counter()
        predictor.predict(batch)
        forward.append((time.perf_counter() - started) * 1000)

    rows = []
    with running("--model", model_dir, log_path=os.path.join(work, f"{name}.log")) as url:
        port = int(url.rsplit(":", 1)[1])
        for protocol, path, body, headers in ways:
            _client(port, path, body, headers, 5)  # warm-up
            latencies = _client(port, path, body, headers, requests)
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                done = list(pool.map(lambda _: _client(port, path, body, headers, max(1, requests // 8)), range(8)))  # noqa: B023 - called within this iteration only
            elapsed = time.perf_counter() - started
            rows.append(
                {
                    "arch": arch,
                    "framework": framework,
                    "protocol": protocol,
                    "request_kb": round(len(body) / 1024, 1),
                    "forward_p50_ms": _percentile(forward, 50),
                    "p50_ms": _percentile(latencies, 50),
                    "p99_ms": _percentile(latencies, 99),
                    "overhead_p50_ms": round(_percentile(latencies, 50) - _percentile(forward, 50), 2),
                    "videos_per_s_c8": round(sum(len(times) for times in done) / elapsed, 1),
                }
            )
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="sequential batch-1 requests per model")
    parser.add_argument("--archs", default="fc,bilstm")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-serve-bench-")
    data = os.path.join(work, "synth")
    if not os.path.exists(os.path.join(data, "synth.json")):
        synth.generate(synth.SynthConfig(videos=32, shards=2, seed=0, frames=FRAMES), data)
    rows = [
        row
        for arch in args.archs.split(",")
        for framework in ("torch", "keras")
        for row in measure(arch, framework, work, data, args.requests)
    ]
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
