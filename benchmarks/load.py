"""Load on `ytlabel serve`: throughput and latency at 1, 8 and 32 concurrent clients (prints JSON).

For fc and bilstm in both frameworks (default sizes, weights from a one-step run on synthetic data:
latency does not depend on what the weights learnt), each model is pushed to a file registry, pulled
as KServe's storage initializer would, and served by a real KServe ModelServer on 127.0.0.1 with the
default batching. The load generator is an asyncio client in this process: each of C clients keeps
one HTTP/1.1 keep-alive connection and sends its next batch-1 V1 request as soon as the previous
answer arrives (a closed loop, like a service calling the endpoint). Every level is bounded by
--requests and --seconds, whichever comes first, after a warm-up.

Per model and concurrency: requests/s, p50/p99 latency, errors, and from the server's own
/metrics the mean videos per forward pass (how much batching happened). Ratios are against the
single-client row of the same model in the same run. Frame-level requests carry 300 quantized
frames as V1 `{"b64": ...}` (the preset keeps every 2nd). The last stdout line is the JSON.

With `--replicas R`, R servers of the same model run side by side and client i talks to server i mod R, as
a Kubernetes Service spreads connections over an InferenceService's replicas; with `--workers N` each server
is `ytlabel serve --workers N` (N processes on one port). Both put more than one process behind the port.

Usage: python benchmarks/load.py [--archs fc,bilstm] [--frameworks torch,keras] [--clients 1,8,32]
       [--requests 600] [--seconds 20] [--replicas 1] [--workers 1] [--work DIR]
"""

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time

import numpy as np
from common import run_ytlabel
from serving import _requests

from ytlabel.data import synth
from ytlabel.registry import Registry
from ytlabel.serving.server import THREAD_SETTINGS, running


class Connection:
    """One keep-alive HTTP/1.1 connection that POSTs a fixed body and reads the whole answer."""

    def __init__(self, port: int, path: str, body: bytes, headers: dict):
        lines = [
            f"POST {path} HTTP/1.1",
            "Host: 127.0.0.1",
            f"Content-Length: {len(body)}",
            *(f"{key}: {value}" for key, value in headers.items()),
        ]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.port = port
        self.reader = self.writer = None

    async def post(self) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def closed_loop(ports: list[int], way: tuple, clients: int, requests: int, seconds: float) -> dict:
    """`clients` connections sending back to back until `requests` are answered or `seconds` pass; with several
    servers (replicas), client i talks to server i mod replicas, as a Service spreads connections."""
    _, path, body, headers = way
    connections = [Connection(ports[index % len(ports)], path, body, headers) for index in range(clients)]
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(connection: Connection):
        nonlocal errors
        while len(latencies) + errors < requests and time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await connection.post()
            if status == 200:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(connection) for connection in connections))
    elapsed = time.perf_counter() - started
    for connection in connections:
        connection.close()
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "p99_ms": round(float(np.percentile(latencies, 99)), 2),
    }


def _forward_stats(url: str, name: str) -> tuple[float, float]:
    """(forwards, videos) so far, from the server's ytlabel_forward_videos histogram."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = {
        line.split("{")[0]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("ytlabel_forward_videos_") and f'model="{name}"' in line and "_bucket" not in line
    }
    return values.get("ytlabel_forward_videos_count", 0.0), values.get("ytlabel_forward_videos_sum", 0.0)


def measure(
    arch: str,
    framework: str,
    work: str,
    data: str,
    levels: list[int],
    requests: int,
    seconds: float,
    replicas: int = 1,
    workers: int = 1,
) -> list[dict]:
    level = "video" if arch == "fc" else "frame"
    run = os.path.join(work, "runs", f"{arch}-{framework}")
    if not os.path.exists(os.path.join(run, "result.json")):
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
    name = f"load-{arch}-{framework}"
    model_dir = os.path.join(work, "mnt", name)
    if not os.path.exists(model_dir):
        registry = Registry(os.path.join(work, "registry"))
        registry.push(run, name)
        registry.pull(name, model_dir)
    way = _requests(level, name, np.random.default_rng(0))[0]  # V1 JSON
    rows = []
    started = time.perf_counter()
    # Each replica as a pod with its share of the cores would be: threads = cores / replicas (ytlabel serve sizes
    # its thread pools from what it may use; on one machine without CPU limits each would take every core).
    threads = str(max(1, (os.cpu_count() or 1) // replicas))
    saved = {name: os.environ.get(name) for name in THREAD_SETTINGS}
    if replicas > 1:
        os.environ.update({name: threads for name in THREAD_SETTINGS})
    with contextlib.ExitStack() as servers:
        servers.callback(_restore, saved)
        urls = [
            servers.enter_context(
                running(
                    "--model",
                    model_dir,
                    "--workers",
                    str(workers),
                    timeout_s=600,
                    log_path=os.path.join(work, f"{name}-{replica}.log"),
                )
            )
            for replica in range(replicas)
        ]
        ready_s = round(time.perf_counter() - started, 1)
        ports = [int(url.rsplit(":", 1)[1]) for url in urls]
        asyncio.run(closed_loop(ports, way, len(ports), 10 * len(ports), seconds))  # warm-up, every server
        for clients in levels:
            before = [_forward_stats(url, name) for url in urls]
            row = asyncio.run(closed_loop(ports, way, clients, requests, seconds))
            after = [_forward_stats(url, name) for url in urls]
            forwards = sum(a[0] - b[0] for a, b in zip(after, before))
            videos = sum(a[1] - b[1] for a, b in zip(after, before))
            row = {
                "arch": arch,
                "framework": framework,
                "replicas": replicas,
                "workers": workers,
                "request_kb": round(len(way[2]) / 1024, 1),
                **row,
                "videos_per_forward": round(videos / forwards, 2) if forwards else None,
                "server_ready_s": ready_s,
            }
            if rows:
                row["throughput_vs_1_client"] = round(row["requests_per_s"] / rows[0]["requests_per_s"], 2)
                row["p99_vs_1_client"] = round(row["p99_ms"] / rows[0]["p99_ms"], 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def _restore(saved: dict) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default="fc,bilstm")
    parser.add_argument("--frameworks", default="torch,keras")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=600, help="at most this many answers per level")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per level")
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="server processes, each its own `ytlabel serve`, clients spread over them (a Service's view)",
    )
    parser.add_argument("--workers", type=int, default=1, help="`ytlabel serve --workers`: processes per server")
    parser.add_argument("--work", default=None)
    args = parser.parse_args()
    work = args.work or tempfile.mkdtemp(prefix="ytlabel-load-")
    data = os.path.join(work, "synth")
    if not os.path.exists(os.path.join(data, "synth.json")):
        synth.generate(synth.SynthConfig(videos=32, shards=2, seed=0, frames=300), data)
    levels = [int(count) for count in args.clients.split(",")]
    rows = [
        row
        for arch in args.archs.split(",")
        for framework in args.frameworks.split(",")
        for row in measure(
            arch, framework, work, data, levels, args.requests, args.seconds, args.replicas, args.workers
        )
    ]
    print(json.dumps({"date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(), "rows": rows}))


if __name__ == "__main__":
    main()
