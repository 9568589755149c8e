"""A real KServe ModelServer (`ytlabel serve`) on a free 127.0.0.1 port: V1, V2, errors, metrics, 503."""

import asyncio
import base64
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from ytlabel.config import load_config
from ytlabel.data import schema
from ytlabel.models.predictor import load_predictor
from ytlabel.processes import free_port
from ytlabel.registry import Registry
from ytlabel.serving.client import binary_infer_request
from ytlabel.serving.server import running

pytestmark = pytest.mark.slow


def running_server(*args: str):
    """`ytlabel serve ARGS` on a free 127.0.0.1 port until the block ends (see serving.server.running)."""
    return running(*args, timeout_s=90.0)


def _post(url: str, body, headers: dict | None = None) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers=headers or {"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _published(run: str, tmp_path_factory, name: str) -> str:
    """The run pushed to a file registry and pulled like KServe's storage initializer would."""
    root = tmp_path_factory.mktemp("serve")
    registry = Registry(str(root / "registry"))
    registry.push(run, name)
    registry.promote(name, 1, "champion")
    registry.pull(f"{name}@champion", str(root / "mnt-models"))
    return str(root / "mnt-models")


@pytest.fixture(scope="module")
def fc_models(fc_run, tmp_path_factory) -> str:
    return _published(fc_run, tmp_path_factory, "yt8m-fc")


@pytest.fixture(scope="module")
def bilstm_models(synth_dir, tmp_path_factory) -> str:
    from ytlabel.training.run import train

    out = str(tmp_path_factory.mktemp("runs") / "bilstm-keras")
    train(
        load_config(
            "bilstm",
            "keras",
            os.path.join(synth_dir, "frame"),
            out,
            None,
            ["model.hidden=6", "max_frames=12", "epochs=1", "batch_size=8", "validation_fraction=0"],
        )
    )
    return _published(out, tmp_path_factory, "yt8m-bilstm")


def _video_batch(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 1024)).astype(np.float32), rng.normal(size=(n, 128)).astype(np.float32)


def test_fc_answers_v1_and_v2_like_the_model_in_process(fc_models):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    rgb, audio = _video_batch(3, 0)
    predictor = load_predictor(fc_models)
    from ytlabel.data.examples import l2_normalize_pair

    inputs = dict(
        zip(("rgb", "audio"), l2_normalize_pair(rgb, audio) if predictor.options.l2_normalize else (rgb, audio))
    )
    expected = 1 / (1 + np.exp(-predictor.predict(inputs).astype(np.float64)))

    async def both(url):
        v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
        body = {"instances": [{"mean_rgb": r.tolist(), "mean_audio": a.tolist()} for r, a in zip(rgb, audio)]}
        first = await v1.infer(url, body, model_name="yt8m-fc")
        v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
        tensors = [InferInput("mean_rgb", [3, 1024], "FP32"), InferInput("mean_audio", [3, 128], "FP32")]
        tensors[0].set_data_from_numpy(rgb, binary_data=False)
        tensors[1].set_data_from_numpy(audio, binary_data=False)
        second = await v2.infer(url, InferRequest("yt8m-fc", tensors), model_name="yt8m-fc")
        ready = await v2.is_model_ready(url, "yt8m-fc")
        return first, second, ready

    with running_server("--model", fc_models, "--top-k", "5") as url:
        v1, v2, ready = asyncio.run(both(url))
        with urllib.request.urlopen(f"{url}/metrics") as response:
            metrics = response.read().decode()
    assert ready is True
    top = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    for i, prediction in enumerate(v1["predictions"]):
        assert [label["id"] for label in prediction["labels"]] == top[i].tolist()
        assert [label["score"] for label in prediction["labels"]] == pytest.approx(expected[i, top[i]], abs=2e-6)
        assert prediction["labels"][0]["name"] and len(prediction["genres"]) == 3
    outputs = {output.name: output for output in v2.outputs}
    assert outputs["class_ids"].shape == [3, 5] and outputs["class_ids"].as_numpy().tolist() == top.tolist()
    np.testing.assert_allclose(outputs["scores"].as_numpy(), expected[np.arange(3)[:, None], top], atol=2e-6)
    assert outputs["labels"].as_numpy().reshape(3, 5)[0, 0] == v1["predictions"][0]["labels"][0]["name"]
    assert outputs["genres"].shape == [3, 3]
    genre = v1["predictions"][0]["genres"][0]["genre"]
    assert f'ytlabel_predictions_total{{genre="{genre}",model="yt8m-fc"}}' in metrics
    assert 'ytlabel_request_videos_count{model="yt8m-fc"} 2.0' in metrics  # one V1 and one V2 request


def test_bad_requests_get_400_and_the_server_keeps_serving(fc_models):
    with running_server("--model", fc_models) as url:
        predict = f"{url}/v1/models/yt8m-fc:predict"
        cases = [
            (
                {"instances": [{"mean_rgb": [0.0] * 1000, "mean_audio": [0.0] * 128}]},
                "mean_rgb: shape [1000], expected [1024]",
            ),
            ({"instances": [{"mean_rgb": [0.0] * 1024}]}, "missing 'mean_audio'"),
            ({"instances": [{"mean_rgb": ["x"] * 1024, "mean_audio": [0.0] * 128}]}, "must be numbers"),
            ({"inputs": []}, 'V1 body must be {"instances": [...]}'),
        ]
        for body, words in cases:
            status, answer = _post(predict, body)
            assert status == 400 and words in answer["error"], answer
        # NaN is not JSON, but Python's json writes it: KServe's decoder refuses it before our model sees it.
        status, answer = _post(
            predict,
            b'{"instances": [{"mean_rgb": [NaN' + b", 0.0" * 1023 + b'], "mean_audio": [' + b"0.0, " * 127 + b"0.0]}]}",
        )
        assert status == 400
        status, answer = _post(predict, b"not json", {"Content-Type": "text/plain"})
        assert status == 400 and "not JSON" in answer["error"]
        status, answer = _post(
            f"{url}/v2/models/yt8m-fc/infer",
            {
                "inputs": [
                    {"name": "mean_rgb", "shape": [1, 1000], "datatype": "FP32", "data": [0.0] * 1000},
                    {"name": "mean_audio", "shape": [1, 128], "datatype": "FP32", "data": [0.0] * 128},
                ]
            },
        )
        assert status == 400 and "input 'mean_rgb': shape [1, 1000], expected [n, 1024]" in answer["error"]
        status, answer = _post(predict, {"instances": [{"mean_rgb": [0.1] * 1024, "mean_audio": [0.1] * 128}]})
        assert status == 200 and len(answer["predictions"][0]["labels"]) == 20
        with urllib.request.urlopen(f"{url}/metrics") as response:
            metrics = response.read().decode()
        # The four cases above, the NaN one KServe itself refused, and the non-JSON body.
        assert 'ytlabel_rejected_requests_total{model="yt8m-fc",protocol="v1"} 6.0' in metrics
        assert 'ytlabel_rejected_requests_total{model="yt8m-fc",protocol="v2"} 1.0' in metrics


def test_frame_model_takes_quantized_and_float_frames(bilstm_models):
    rng = np.random.default_rng(3)
    rgb_codes = rng.integers(0, 256, size=(9, 1024), dtype=np.uint8)
    audio_codes = rng.integers(0, 256, size=(9, 128), dtype=np.uint8)
    quantized = {
        "rgb": [{"b64": base64.b64encode(r.tobytes()).decode()} for r in rgb_codes],
        "audio": [{"b64": base64.b64encode(a.tobytes()).decode()} for a in audio_codes],
    }
    floats = {"rgb": schema.dequantize(rgb_codes).tolist(), "audio": schema.dequantize(audio_codes).tolist()}
    with running_server("--model", bilstm_models, "--name", "frames") as url:
        status_q, answer_q = _post(f"{url}/v1/models/frames:predict", {"instances": [quantized]})
        status_f, answer_f = _post(f"{url}/v1/models/frames:predict", {"instances": [floats]})
        status_v2, answer_v2 = _post(
            f"{url}/v2/models/frames/infer",
            {
                "inputs": [
                    {"name": "rgb", "shape": [1, 9, 1024], "datatype": "UINT8", "data": rgb_codes.ravel().tolist()},
                    {"name": "audio", "shape": [1, 9, 128], "datatype": "UINT8", "data": audio_codes.ravel().tolist()},
                ]
            },
        )
        body, headers = binary_infer_request({"rgb": rgb_codes[None], "audio": audio_codes[None]})
        status_raw, answer_raw = _post(f"{url}/v2/models/frames/infer", body, headers)
        status_cut, answer_cut = _post(f"{url}/v2/models/frames/infer", body[:-100], headers)  # truncated
        status_long, answer_long = _post(
            f"{url}/v1/models/frames:predict",
            {"instances": [{"rgb": [[0.0] * 1024] * 301, "audio": [[0.0] * 128] * 301}]},
        )
        with urllib.request.urlopen(f"{url}/metrics") as response:
            metrics = response.read().decode()
    assert (status_q, status_f, status_v2, status_raw) == (200, 200, 200, 200)
    assert answer_q == answer_f
    scores = {output["name"]: output["data"] for output in answer_v2["outputs"]}
    assert scores["class_ids"] == [label["id"] for label in answer_q["predictions"][0]["labels"]]
    assert answer_raw["outputs"] == answer_v2["outputs"]  # the binary extension: same codes, same answer
    assert status_long == 400 and "301 frames; at most 300" in answer_long["error"]
    assert status_cut == 400 and "does not match its JSON header" in answer_cut["error"]
    assert 'ytlabel_request_frames_sum{model="frames"} 36.0' in metrics  # four requests of 9 frames


def test_serve_refuses_a_directory_that_is_not_a_registry_version(fc_run):
    done = subprocess.run(
        [sys.executable, "-m", "ytlabel", "serve", "--model", fc_run, "--http-port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "no manifest.json; serve a registry version" in done.stderr and "Traceback" not in done.stderr


def test_serve_pulls_a_registry_reference(fc_run, tmp_path):
    registry = Registry(str(tmp_path / "registry"))
    registry.push(fc_run, "yt8m-fc")
    registry.promote("yt8m-fc", 1, "champion")
    with running_server("--model", "yt8m-fc@champion", "--registry", str(tmp_path / "registry")) as url:  # noqa: SIM117 - nested: the inner block needs the outer one running
        with urllib.request.urlopen(f"{url}/v1/models/yt8m-fc") as response:
            assert json.loads(response.read()) == {"name": "yt8m-fc", "ready": True}


def test_a_model_that_is_not_ready_answers_503(fc_models):
    """KServe's own REST app in process (no socket): a registered model before load() is not ready."""
    from fastapi.testclient import TestClient
    from kserve.model_repository import ModelRepository
    from kserve.protocol.dataplane import DataPlane
    from kserve.protocol.model_repository_extension import ModelRepositoryExtension
    from kserve.protocol.rest.server import RESTServer

    from ytlabel.serving.model import YT8MModel

    repository = ModelRepository()
    repository.update(YT8MModel("yt8m-fc", fc_models))  # load() not called: ready is False
    server = RESTServer(
        "kserve.model_server:app",
        DataPlane(model_registry=repository),
        ModelRepositoryExtension(model_registry=repository),
        http_port=0,
    )
    server.create_application()
    from kserve.model_server import app

    client = TestClient(app)
    answer = client.post(
        "/v1/models/yt8m-fc:predict", json={"instances": [{"mean_rgb": [0.0] * 1024, "mean_audio": [0.0] * 128}]}
    )
    assert answer.status_code == 503 and "yt8m-fc" in answer.json()["error"]


def test_a_port_in_use_is_one_line(fc_models):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ytlabel", "serve", "--model", fc_models, "--http-port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"ytlabel: error: --http-port {port}: cannot listen on "
        f"127.0.0.1:{port} (Address already in use); another server "
        f"holds it, pick another port"
    )
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr


def _serving_workers(supervisor: int) -> list:
    import psutil

    return [child for child in psutil.Process(supervisor).children() if "--listen-fd" in child.cmdline()]


def test_several_processes_share_the_port_and_metrics_add_them_all_up(fc_models):
    """`--workers 2`: two `ytlabel serve` processes accept on one socket; every answer is the same, and
    /metrics counts the requests of both (one process's own registry would count only its share)."""
    import psutil

    body = {"instances": [{"mean_rgb": [0.5] * 1024, "mean_audio": [-0.5] * 128}]}
    with running_server("--model", fc_models, "--workers", "2") as url:
        supervisor = next(
            process
            for process in psutil.Process().children()
            if "serve" in process.cmdline() and "--workers" in process.cmdline()
        )
        workers = _serving_workers(supervisor.pid)
        answers = [_post(f"{url}/v1/models/yt8m-fc:predict", body) for _ in range(24)]
        with urllib.request.urlopen(f"{url}/metrics") as response:
            metrics = response.read().decode()
    assert len(workers) == 2 and len({worker.pid for worker in workers}) == 2
    assert {status for status, _ in answers} == {200}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert 'ytlabel_request_videos_count{model="yt8m-fc"} 24.0' in metrics
    assert not any(worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE for worker in workers)


def test_a_worker_that_dies_stops_the_server_with_an_error(fc_models):
    import signal
    import time

    import psutil

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ytlabel", "serve", "--model", fc_models, "--workers", "2", "--http-port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while len(_serving_workers(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = _serving_workers(server.pid)
        assert len(workers) == 2
        os.kill(workers[0].pid, signal.SIGKILL)
        _, stderr = server.communicate(timeout=60)
    finally:
        server.kill()
    assert server.returncode == 2
    assert (
        stderr.strip().splitlines()[-1] == "ytlabel: error: a serving worker exited with code -9; see its lines above"
    )
    assert not workers[1].is_running() or workers[1].status() == psutil.STATUS_ZOMBIE
