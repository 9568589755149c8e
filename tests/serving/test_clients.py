"""`ytlabel serve` driven by the clients services already run: NVIDIA Triton's `tritonclient.http` and KServe's
`InferenceRESTClient`, for a video-level and a frame-level model in both frameworks. Every answer must equal
the model's own in-process forward; every refusal is a 4xx in the protocol's {"error": ...} form."""

import asyncio
import json
import os
import re
import urllib.error
import urllib.request

import numpy as np
import pytest

from ytlabel.config import load_config
from ytlabel.data import schema
from ytlabel.models import spec
from ytlabel.models.predictor import load_predictor
from ytlabel.registry import Registry
from ytlabel.serving import payload
from ytlabel.serving.server import running

pytestmark = pytest.mark.slow
TOP_K = 5
OUTPUTS = ["class_ids", "scores", "labels", "genres", "genre_scores"]
SMALL = {
    "fc": [
        "model.rgb_hidden=8",
        "model.audio_hidden=4",
        "model.head_hidden=8",
        "epochs=1",
        "batch_size=8",
        "validation_fraction=0",
    ],
    "bilstm": ["model.hidden=6", "max_frames=12", "epochs=1", "batch_size=8", "validation_fraction=0"],
}


@pytest.fixture(
    scope="module",
    params=[("fc", "torch"), ("fc", "keras"), ("bilstm", "torch"), ("bilstm", "keras")],
    ids=lambda p: "-".join(p),
)
def served(request, synth_dir, tmp_path_factory):
    """(url, model name, pulled model directory, level) of a registry version served on 127.0.0.1."""
    from ytlabel.training.run import train

    arch, framework = request.param
    level = "video" if arch == "fc" else "frame"
    root = tmp_path_factory.mktemp(f"{arch}-{framework}")
    train(load_config(arch, framework, os.path.join(synth_dir, level), str(root / "run"), None, SMALL[arch]))
    name = f"yt8m-{arch}-{framework}"
    registry = Registry(str(root / "registry"))
    registry.push(str(root / "run"), name)
    registry.push(str(root / "run"), name)  # version 2: the answers must say which version they came from
    registry.pull(f"{name}:2", str(root / "mnt-models"))
    with running("--model", str(root / "mnt-models"), "--top-k", str(TOP_K), timeout_s=120.0) as url:
        yield url, name, str(root / "mnt-models"), level


def _inputs(level: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Two videos: float means for video level, quantized frames (uint8 codes) for frame level."""
    rng = np.random.default_rng(seed)
    if level == "video":
        return {
            "mean_rgb": rng.normal(size=(2, schema.RGB_DIM)).astype(np.float32),
            "mean_audio": rng.normal(size=(2, schema.AUDIO_DIM)).astype(np.float32),
        }
    return {
        "rgb": rng.integers(0, 256, size=(2, 7, schema.RGB_DIM), dtype=np.uint8),
        "audio": rng.integers(0, 256, size=(2, 7, schema.AUDIO_DIM), dtype=np.uint8),
    }


def _datatype(array: np.ndarray) -> str:
    return {np.dtype(np.uint8): "UINT8", np.dtype(np.float32): "FP32"}[array.dtype]


def _expected(model_dir: str, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(class ids, FP32 scores) [n, TOP_K] of the model run in this process on the same inputs."""
    predictor = load_predictor(model_dir)
    batch = payload.from_tensors({name: (_datatype(a), a) for name, a in inputs.items()}, predictor.options)
    probabilities = spec.probabilities(predictor.predict(batch.inputs))
    ids = np.stack([payload.top_indices(row, TOP_K) for row in probabilities])
    return ids.astype(np.int32), np.take_along_axis(probabilities, ids, axis=1).astype(np.float32)


def _text(array: np.ndarray) -> list:
    return [[v.decode() if isinstance(v, bytes) else v for v in row] for row in array.tolist()]


def _triton(url: str):
    import tritonclient.http as triton

    return triton, triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=60.0)


def test_triton_client_sees_a_ready_server_and_complete_model_metadata(served):
    url, name, _, level = served
    _, client = _triton(url)
    try:
        assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
        assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
        metadata = client.get_model_metadata(name)
    finally:
        client.close()
    assert metadata["versions"] == ["2"]
    assert metadata["platform"] == f"ytlabel_{name.rsplit('-', 1)[1]}"
    if level == "video":
        assert metadata["inputs"] == [
            {"name": "mean_rgb", "datatype": "FP32", "shape": [-1, 1024]},
            {"name": "mean_audio", "datatype": "FP32", "shape": [-1, 128]},
        ]
    else:
        assert metadata["inputs"] == [
            {"name": "rgb", "datatype": "FP32", "shape": [-1, -1, 1024]},
            {"name": "audio", "datatype": "FP32", "shape": [-1, -1, 128]},
            {"name": "num_frames", "datatype": "INT64", "shape": [-1]},
        ]
    assert [(o["name"], o["datatype"], o["shape"]) for o in metadata["outputs"]] == [
        ("class_ids", "INT32", [-1, TOP_K]),
        ("scores", "FP32", [-1, TOP_K]),
        ("labels", "BYTES", [-1, TOP_K]),
        ("genres", "BYTES", [-1, 3]),
        ("genre_scores", "FP32", [-1, 3]),
    ]


@pytest.mark.parametrize("binary_inputs", [False, True], ids=["json-inputs", "binary-inputs"])
def test_triton_client_answers_equal_the_model_in_process(served, binary_inputs):
    url, name, model_dir, level = served
    inputs = _inputs(level)
    ids, scores = _expected(model_dir, inputs)
    triton, client = _triton(url)
    try:
        tensors = []
        for key, array in inputs.items():
            tensor = triton.InferInput(key, list(array.shape), _datatype(array))
            tensor.set_data_from_numpy(array, binary_data=binary_inputs)
            tensors.append(tensor)
        everything = client.infer(name, tensors)  # no outputs named: tritonclient asks for all, binary_data_output
        as_json = client.infer(
            name, tensors, outputs=[triton.InferRequestedOutput(o, binary_data=False) for o in OUTPUTS]
        )
        subset = client.infer(
            name,
            tensors,
            outputs=[
                triton.InferRequestedOutput("scores", binary_data=True),
                triton.InferRequestedOutput("class_ids", binary_data=False),
            ],
        )
    finally:
        client.close()
    answer = everything.get_response()
    assert [o["name"] for o in answer["outputs"]] == OUTPUTS and answer["model_version"] == "2"
    assert not any("data" in o for o in answer["outputs"])  # raw bytes after the JSON header
    assert all("data" in o for o in as_json.get_response()["outputs"])
    for output in OUTPUTS:  # tritonclient gives raw BYTES as bytes and JSON ones as str
        assert _text(as_json.as_numpy(output)) == _text(everything.as_numpy(output)), output
    assert everything.as_numpy("class_ids").tolist() == ids.tolist()
    np.testing.assert_allclose(everything.as_numpy("scores"), scores, rtol=1e-6, atol=1e-7)
    assert everything.as_numpy("labels").shape == (2, TOP_K) and everything.as_numpy("genres").shape == (2, 3)
    outputs = subset.get_response()["outputs"]
    assert [o["name"] for o in outputs] == ["scores", "class_ids"]
    assert "data" not in outputs[0] and outputs[0]["parameters"]["binary_data_size"] == 2 * TOP_K * 4
    assert subset.as_numpy("scores").tolist() == everything.as_numpy("scores").tolist()  # raw FP32, bit for bit
    assert subset.as_numpy("class_ids").tolist() == ids.tolist() and subset.as_numpy("labels") is None


def test_triton_client_gets_a_400_naming_an_output_that_does_not_exist(served):
    url, name, _, level = served
    triton, client = _triton(url)
    inputs = _inputs(level)
    try:
        tensors = [triton.InferInput(k, list(a.shape), _datatype(a)) for k, a in inputs.items()]
        for tensor, array in zip(tensors, inputs.values()):
            tensor.set_data_from_numpy(array, binary_data=False)
        with pytest.raises(triton.InferenceServerException) as refused:
            client.infer(name, tensors, outputs=[triton.InferRequestedOutput("logits")])
    finally:
        client.close()
    assert refused.value.status() == "400"
    assert refused.value.message() == (
        "requested output 'logits' does not exist; this model answers class_ids, scores, labels, genres, genre_scores"
    )


def test_kserve_client_v1_and_v2_answers_equal_the_model_in_process(served):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    url, name, model_dir, level = served
    inputs = _inputs(level, seed=1)
    ids, scores = _expected(model_dir, inputs)

    async def ask():
        v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
        tensors = []
        for key, array in inputs.items():
            tensor = InferInput(key, list(array.shape), _datatype(array))
            tensor.set_data_from_numpy(array, binary_data=False)
            tensors.append(tensor)
        second = await v2.infer(url, InferRequest(name, tensors), model_name=name)
        ready = await v2.is_model_ready(url, name)
        v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
        if level == "video":
            instances = [{"mean_rgb": r.tolist(), "mean_audio": a.tolist()} for r, a in zip(*inputs.values())]
        else:
            instances = [
                {"rgb": schema.dequantize(r).tolist(), "audio": schema.dequantize(a).tolist()}
                for r, a in zip(*inputs.values())
            ]
        first = await v1.infer(url, {"instances": instances}, model_name=name)
        return first, second, ready

    v1, v2, ready = asyncio.run(ask())
    # KServe 0.21's client drops model_version when it parses a V2 answer (InferResponse.from_bytes); the
    # server sends it (the triton test reads it), and the V1 answer carries it.
    assert ready is True and v1["model_version"] == "2"
    outputs = {output.name: output.as_numpy() for output in v2.outputs}
    assert outputs["class_ids"].tolist() == ids.tolist()
    np.testing.assert_allclose(outputs["scores"], scores, rtol=1e-6, atol=1e-7)
    assert [[label["id"] for label in p["labels"]] for p in v1["predictions"]] == ids.tolist()
    np.testing.assert_allclose(
        [[label["score"] for label in p["labels"]] for p in v1["predictions"]], scores, rtol=1e-6
    )


def _raw(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_protocol_cases_answer_in_the_protocols_error_form(served):
    url, name, _, level = served
    infer = f"{url}/v2/models/{name}/infer"
    inputs = _inputs(level)
    v2 = json.dumps(
        {
            "inputs": [
                {"name": key, "shape": list(a.shape), "datatype": _datatype(a), "data": a.ravel().tolist()}
                for key, a in inputs.items()
            ]
        }
    ).encode()
    v1 = json.dumps({"instances": [{key.removeprefix("mean_"): a[0].tolist() for key, a in inputs.items()}]}).encode()
    # No content type at all (tritonclient, `curl -d` without -H): the whole body is the JSON header.
    status, headerless = _raw(infer, v2, {"Content-Type": ""})
    assert status == 200 and headerless["model_version"] == "2"
    status, typed = _raw(infer, v2, {"Content-Type": "application/json"})
    assert status == 200 and typed["outputs"] == headerless["outputs"]
    cases = [
        (infer, b"not json", {"Content-Type": "application/json"}, "the body is not JSON"),
        (infer, b"not json", {}, "is not an inference request in JSON"),
        (
            infer,
            v1,
            {"Content-Type": "application/json"},
            'inputs: Field required (a V1 body {"instances": [...]} goes to /v1/models/<name>:predict)',
        ),
        (infer, v1, {}, "is not an inference request in JSON"),
    ]
    before = _rejected(url, name)
    for where, body, headers, words in cases:
        status, answer = _raw(where, body, headers)
        assert status == 400 and list(answer) == ["error"] and words in answer["error"], (body[:20], answer)
        assert len(json.dumps(answer)) < 400  # never the request echoed back
    assert _rejected(url, name) == before + 4  # KServe's refusals count as well as ours


def _rejected(url: str, name: str) -> float:
    with urllib.request.urlopen(f"{url}/metrics") as response:
        metrics = response.read().decode()
    found = re.search(
        rf'^ytlabel_rejected_requests_total{{model="{name}",protocol="v2"}} (\S+)$', metrics, re.MULTILINE
    )
    return float(found.group(1)) if found else 0.0
