"""Mixed valid and invalid traffic against a running `ytlabel serve` of a video-level model, from N
concurrent keep-alive clients: what tests/serving/test_abuse.py runs small and benchmarks/serving_abuse.py
runs at 10,000 requests. Loopback only, bounded in count."""

import collections
import concurrent.futures
import http.client
import json
import time
import urllib.parse

import numpy as np
import psutil

from ytlabel.serving.client import binary_infer_request

JSON = {"Content-Type": "application/json"}


def request_mix(name: str, seed: int = 0) -> dict[str, tuple[str, bytes, dict, int]]:
    """kind -> (path, body, headers, expected status). One valid kind, the rest hostile or mistaken."""
    rng = np.random.default_rng(seed)
    instance = {
        "mean_rgb": rng.normal(size=1024).round(4).tolist(),
        "mean_audio": rng.normal(size=128).round(4).tolist(),
    }
    valid = json.dumps({"instances": [instance]}).encode()
    v1, v2 = f"/v1/models/{name}:predict", f"/v2/models/{name}/infer"
    binary, binary_headers = binary_infer_request(
        {
            "mean_rgb": rng.normal(size=(1, 1024)).astype(np.float32),
            "mean_audio": rng.normal(size=(1, 128)).astype(np.float32),
        }
    )
    return {
        "valid": (v1, valid, JSON, 200),
        "truncated_json": (v1, valid[: len(valid) // 2], JSON, 400),
        "wrong_type": (v1, json.dumps({"instances": [{**instance, "mean_rgb": "abc"}]}).encode(), JSON, 400),
        "wrong_width": (v1, json.dumps({"instances": [{**instance, "mean_rgb": [0.0] * 1023}]}).encode(), JSON, 400),
        "nan": (
            v1,
            json.dumps({"instances": [{**instance, "mean_rgb": [float("nan")] + instance["mean_rgb"][1:]}]}).encode(),
            JSON,
            400,
        ),
        "too_many_videos": (v1, json.dumps({"instances": [instance] * 257}).encode(), JSON, 400),
        "not_json": (v1, b"\x00\xff" * 2048, JSON, 400),
        "empty": (v1, b"", JSON, 400),
        "truncated_binary": (v2, binary[:-64], binary_headers, 400),
    }


def server_pid(port: int) -> int:
    """The pid of this process's child serving on `port` (the `running` helper's subprocess)."""
    for child in psutil.Process().children(recursive=True):
        try:
            if "serve" in child.cmdline() and str(port) in child.cmdline():
                return child.pid
        except psutil.Error:
            continue
    raise RuntimeError(f"no child process serves port {port}")


def hammer(url: str, name: str, requests: int, concurrency: int, valid_share: float = 0.7, seed: int = 0) -> dict:
    """Sends `requests` requests (valid with probability valid_share, else a random invalid kind) from
    `concurrency` clients; returns counts by kind and status, 5xx, latency percentiles and server RSS."""
    port = urllib.parse.urlsplit(url).port
    mix = request_mix(name, seed)
    invalid = [kind for kind in mix if kind != "valid"]
    rng = np.random.default_rng(seed)
    plan = [
        "valid" if rng.random() < valid_share else invalid[int(rng.integers(len(invalid)))] for _ in range(requests)
    ]
    process = psutil.Process(server_pid(port))
    outcomes: collections.Counter = collections.Counter()
    unexpected: collections.Counter = collections.Counter()
    latencies: dict[str, list[float]] = collections.defaultdict(list)
    rss: list[float] = []

    def client(kinds: list[str]) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for kind in kinds:
            path, body, headers, expected = mix[kind]
            started = time.perf_counter()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            latencies["valid" if kind == "valid" else "invalid"].append(time.perf_counter() - started)
            outcomes[(kind, response.status)] += 1
            if response.status != expected:
                unexpected[(kind, response.status)] += 1
            if response.will_close:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.close()

    warm = min(500, requests // 10)
    client(plan[:warm])  # warm-up: lazy imports, first traces, allocator
    rss.append(process.memory_info().rss)
    started = time.perf_counter()
    chunks = [plan[warm + i :: concurrency] for i in range(concurrency)]
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(client, chunks))
    seconds = time.perf_counter() - started
    rss.append(process.memory_info().rss)

    def percentiles(values: list[float]) -> dict:
        return (
            {
                "p50_ms": round(float(np.percentile(values, 50)) * 1000, 2),
                "p99_ms": round(float(np.percentile(values, 99)) * 1000, 2),
            }
            if values
            else {}
        )

    return {
        "requests": requests,
        "concurrency": concurrency,
        "seconds": round(seconds, 1),
        "requests_per_s": round((requests - warm) / seconds, 1),
        "status": {f"{kind} {status}": count for (kind, status), count in sorted(outcomes.items())},
        "server_errors": sum(count for (_, status), count in outcomes.items() if status >= 500),
        "unexpected": {f"{kind} {status}": count for (kind, status), count in sorted(unexpected.items())},
        "valid": percentiles(latencies["valid"]),
        "invalid": percentiles(latencies["invalid"]),
        "server_rss_mb_after_warmup": round(rss[0] / 2**20, 1),
        "server_rss_mb_at_end": round(rss[1] / 2**20, 1),
        "server_rss_growth": round(rss[1] / rss[0] - 1, 4),
    }
