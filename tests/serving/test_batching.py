"""Concurrent requests share forward passes: each gets exactly its own answer, errors stay with their request."""

import asyncio
import json
import threading
import urllib.request

import numpy as np
import pytest

from ytlabel.serving.batching import Batcher, BatchingOptions, merge

WEIGHTS = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)


class Forward:
    """A linear model that records the batch sizes it saw; the first call waits until released, so the
    requests sent meanwhile queue up behind it, as they do behind a real forward."""

    def __init__(self):
        self.sizes: list[int] = []
        self.release = threading.Event()

    def __call__(self, batch: dict) -> np.ndarray:
        if not self.sizes:
            self.release.wait(timeout=5)
        self.sizes.append(len(batch["rgb"]))
        if np.isnan(batch["rgb"]).any():
            raise ValueError("a NaN reached the forward")
        return batch["rgb"] @ WEIGHTS


def _request(videos: int, seed: int) -> dict:
    return {"rgb": np.random.default_rng(seed).normal(size=(videos, 4)).astype(np.float32)}


async def _concurrently(batcher: Batcher, forward: Forward, requests: list[dict]):
    tasks = [asyncio.create_task(batcher(requests[0]))]
    await asyncio.sleep(0.02)  # the first request's forward has started (and waits for the release)
    tasks += [asyncio.create_task(batcher(request)) for request in requests[1:]]
    await asyncio.sleep(0.02)  # the others are queued behind it
    forward.release.set()
    return await asyncio.gather(*tasks, return_exceptions=True)


def test_queued_requests_share_one_forward_and_each_gets_its_own_rows():
    forward = Forward()
    batcher = Batcher(forward, BatchingOptions(max_videos=6))
    requests = [_request(videos, seed) for seed, videos in enumerate((1, 2, 3, 1, 4))]
    answers = asyncio.run(_concurrently(batcher, forward, requests))
    # The first runs alone; the four queued behind it (10 videos) split at max_videos=6: 2+3+1, then 4.
    assert forward.sizes == [1, 6, 4]
    assert (batcher.forwards, batcher.requests) == (3, 5)
    for request, answer in zip(requests, answers):
        np.testing.assert_allclose(answer, request["rgb"] @ WEIGHTS, rtol=1e-6)


def test_a_request_that_breaks_the_forward_fails_alone():
    forward = Forward()
    batcher = Batcher(forward, BatchingOptions(max_videos=64))
    requests = [_request(2, seed) for seed in range(4)]
    requests[2]["rgb"][1, 0] = np.nan
    answers = asyncio.run(_concurrently(batcher, forward, requests))
    assert isinstance(answers[2], ValueError) and "NaN" in str(answers[2])
    for index in (0, 1, 3):
        np.testing.assert_allclose(answers[index], requests[index]["rgb"] @ WEIGHTS, rtol=1e-6)
    # first alone, then the merged three fail, then each of the three alone (one of them fails)
    assert forward.sizes == [2, 6, 2, 2, 2]


def test_frame_requests_are_padded_to_the_longest():
    short = {"rgb": np.ones((1, 3, 2), np.float32), "num_frames": np.array([3])}
    long = {"rgb": np.full((2, 5, 2), 2.0, np.float32), "num_frames": np.array([5, 4])}
    merged = merge([short, long])
    assert merged["rgb"].shape == (3, 5, 2) and merged["num_frames"].tolist() == [3, 5, 4]
    assert merged["rgb"][0, 3:].sum() == 0 and merged["rgb"][0, :3].sum() == 6
    # That zero padding past num_frames leaves every frame model's logits alone is held, in both
    # frameworks, by tests/models/test_parity.py::test_padding_does_not_change_the_output.


@pytest.mark.parametrize(
    "options, message", [({"max_videos": 0}, "max_videos=0"), ({"max_wait_ms": -1}, "max_wait_ms=-1")]
)
def test_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        BatchingOptions(**options)


@pytest.mark.slow
def test_the_server_batches_concurrent_clients_and_answers_each_as_if_alone(fc_run, tmp_path_factory):
    from test_server import _published, running_server

    models = _published(fc_run, tmp_path_factory, "yt8m-fc")
    rng = np.random.default_rng(3)
    bodies = [
        {
            "instances": [
                {"mean_rgb": rng.normal(size=1024).tolist(), "mean_audio": rng.normal(size=128).tolist()}
                for _ in range(count)
            ]
        }
        for count in (1, 2, 1, 3, 1, 1, 2, 1)
    ]

    def post(url, body):
        request = urllib.request.Request(
            f"{url}/v1/models/yt8m-fc:predict",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())["predictions"]

    # A 300 ms wait makes the batching certain: all eight clients are released together.
    with running_server("--model", models, "--max-wait-ms", "300") as url:
        alone = [post(url, body) for body in bodies]
        together: list = [None] * len(bodies)
        start = threading.Barrier(len(bodies))

        def client(index):
            start.wait()
            together[index] = post(url, bodies[index])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            metrics = response.read().decode()
    for one, other in zip(alone, together):
        assert [label["id"] for video in one for label in video["labels"]] == [
            label["id"] for video in other for label in video["labels"]
        ]
        np.testing.assert_allclose(
            [label["score"] for video in one for label in video["labels"]],
            [label["score"] for video in other for label in video["labels"]],
            rtol=1e-5,
        )
    count = float(
        next(
            line.split()[-1]
            for line in metrics.splitlines()
            if line.startswith('ytlabel_forward_videos_count{model="yt8m-fc"}')
        )
    )
    total = float(
        next(
            line.split()[-1]
            for line in metrics.splitlines()
            if line.startswith('ytlabel_forward_videos_sum{model="yt8m-fc"}')
        )
    )
    # 8 sequential requests (one forward each), then the 8 concurrent ones in far fewer forwards (the
    # load-time probe calls the predictor directly, not through the batcher).
    assert total == 2 * 12 and count <= 8 + 3


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--max-batch", "0"], "--max-batch=0: must be >= 1"),
        (["--max-wait-ms", "5000"], "--max-wait-ms=5000.0: must be in [0, 1000]"),
    ],
)
def test_serve_refuses_bad_batching_flags_in_one_line(tmp_path, capsys, flags, message):
    from tests.helpers.cli_rule import one_error_line
    from ytlabel.cli import main

    assert main(["serve", "--model", str(tmp_path), *flags]) == 2
    assert message in one_error_line(capsys)
