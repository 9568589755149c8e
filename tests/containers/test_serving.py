"""The serving image as KServe runs it: our ClusterServingRuntime's container, with its arguments and probe,
and the model placed in /mnt/models by the storage-initializer contract from a registry version on S3.

KServe's storage initializer (an init container) copies every object under the InferenceService's
storageUri into the emptyDir `kserve-provision-location`, which the kserve-container mounts read-only at
/mnt/models. Here the test does that copy with the MinIO client (as the initializer does with boto3), from a
version pushed by `ytlabel registry push` to S3 in a container."""

import asyncio
import json
import os
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from pods import run_pod

from tests.helpers.model_helpers import TINY_FC
from ytlabel.platform import images, inference

NAME = "yt8m-fc"


def storage_initializer(s3, storage_uri: str, target: str) -> None:
    """Every object under storage_uri, copied to target at its relative path (KServe's initializer contract)."""
    bucket, prefix = storage_uri.removeprefix("s3://").split("/", 1)
    for item in s3.client.list_objects(bucket, prefix=prefix.rstrip("/") + "/", recursive=True):
        relative = item.object_name[len(prefix.rstrip("/")) + 1 :]
        path = os.path.join(target, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.client.fget_object(bucket, item.object_name, path)
        os.chmod(path, 0o644)
    for folder, subfolders, _ in os.walk(target):
        os.chmod(folder, 0o755)


def runtime_pod(runtime: dict, isvc: str) -> dict:
    """The kserve-container of our ClusterServingRuntime as KServe instantiates it for one InferenceService."""
    [container] = runtime["spec"]["containers"]
    mounts = [
        *container.get("volumeMounts", []),
        {"name": "kserve-provision-location", "mountPath": "/mnt/models", "readOnly": True},
    ]
    container = {
        **container,
        "args": [arg.replace("{{.Name}}", isvc) for arg in container["args"]],
        "volumeMounts": mounts,
    }
    volumes = [*runtime["spec"].get("volumes", []), {"name": "kserve-provision-location", "emptyDir": {}}]
    return {"containers": [container], "volumes": volumes}


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_runtime_serves_a_registry_version_from_s3(
    engine, network, s3_in_network, fc_run, synth_dir, tmp_path, monkeypatch, framework
):
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig

    from ytlabel.config import load_config
    from ytlabel.models.predictor import load_predictor
    from ytlabel.registry import Registry
    from ytlabel.training.run import train

    for key, value in s3_in_network.host_env().items():
        monkeypatch.setenv(key, value)
    run = fc_run
    if framework == "keras":
        run = str(tmp_path / "fc-keras")
        train(
            load_config(
                "fc",
                "keras",
                os.path.join(synth_dir, "video"),
                run,
                None,
                TINY_FC,
            )
        )
    registry = Registry("s3://ytlabel/registry")
    version = registry.push(run, NAME)["version"]
    [*_, isvc] = inference.serving_objects(f"{NAME}:{version}", "s3://ytlabel/registry")
    storage_uri = isvc["spec"]["predictor"]["model"]["storageUri"]
    models = tmp_path / "mnt-models"
    storage_initializer(s3_in_network, storage_uri, str(models))

    runtime = inference.cluster_serving_runtime(images.SERVING)
    container = runtime["spec"]["containers"][0]
    port = container["ports"][0]["containerPort"]
    probe = container["readinessProbe"]["httpGet"]
    assert probe["port"] == port
    pod = run_pod(
        engine,
        runtime_pod(runtime, NAME),
        name=f"{NAME}-predictor-{framework}",
        network=network,
        mounts={"kserve-provision-location": str(models)},
        publish=(port,),
    )
    url = f"http://127.0.0.1:{pod.host_port(port)}"
    deadline = time.monotonic() + 180
    while _get(url + probe["path"])[0] != 200:
        assert pod.state()["Running"] and time.monotonic() < deadline, pod.logs(40)
        time.sleep(1)

    rgb = np.random.default_rng(0).normal(size=(2, 1024)).astype(np.float32)
    audio = np.random.default_rng(1).normal(size=(2, 128)).astype(np.float32)

    async def ask():
        v1 = InferenceRESTClient(RESTConfig(protocol="v1"))
        body = {"instances": [{"mean_rgb": r.tolist(), "mean_audio": a.tolist()} for r, a in zip(rgb, audio)]}
        first = await v1.infer(url, body, model_name=NAME)
        v2 = InferenceRESTClient(RESTConfig(protocol="v2"))
        tensors = [InferInput("mean_rgb", [2, 1024], "FP32"), InferInput("mean_audio", [2, 128], "FP32")]
        tensors[0].set_data_from_numpy(rgb, binary_data=False)
        tensors[1].set_data_from_numpy(audio, binary_data=False)
        second = await v2.infer(url, InferRequest(NAME, tensors), model_name=NAME)
        return first, second

    v1, v2 = asyncio.run(ask())
    # The same answer as the predictor loaded in this process from the same files.
    from ytlabel.data.examples import l2_normalize_pair

    predictor = load_predictor(str(models))
    inputs = dict(
        zip(("rgb", "audio"), l2_normalize_pair(rgb, audio) if predictor.options.l2_normalize else (rgb, audio))
    )
    expected = 1 / (1 + np.exp(-predictor.predict(inputs).astype(np.float64)))
    top = np.argsort(-expected, axis=1, kind="stable")[:, :20]
    assert [[label["id"] for label in p["labels"]] for p in v1["predictions"]] == top.tolist()
    outputs = {output.name: output for output in v2.outputs}
    assert outputs["class_ids"].as_numpy().tolist() == top.tolist()
    np.testing.assert_allclose(outputs["scores"].as_numpy(), expected[np.arange(2)[:, None], top], atol=2e-6)
    status, body = _get(f"{url}/v2/models/{NAME}/ready")
    assert status == 200 and json.loads(body)["ready"] is True
    assert pod.state()["Running"]
