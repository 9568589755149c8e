"""The chart's own pods, as `helm template` renders them with default values, run with the built images.

Two pod specs in the chart run without an operator: the `helm test` pod (the pipeline image lists the
registry with the release's S3 settings) and the ClusterServingRuntime's container (the serving image, as
KServe instantiates it for an InferenceService). Both run here as containers on a pod network with S3."""

import os
import subprocess
import sys
import time

import yaml
from pods import run_pod
from test_serving import _get, runtime_pod, storage_initializer

from ytlabel.platform import images

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
HELM = os.path.join(os.path.dirname(sys.executable), "helm")


def helm_template(*settings: str) -> list[dict]:
    done = subprocess.run(
        [
            HELM,
            "template",
            "ytlabel",
            os.path.join(ROOT, "charts", "ytlabel"),
            "--namespace",
            "kubeflow",
            *(arg for setting in settings for arg in ("--set", setting)),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_helm_test_pod_lists_the_registry(engine, network, s3_in_network, fc_run, monkeypatch):
    from ytlabel.registry import Registry

    for key, value in s3_in_network.host_env().items():
        monkeypatch.setenv(key, value)
    Registry("s3://ytlabel/registry").push(fc_run, "yt8m")
    [pod] = [doc for doc in helm_template("s3.endpoint=http://s3:8333") if doc["kind"] == "Pod"]
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["image"] == images.PIPELINE
    container = run_pod(
        engine, pod["spec"], name=pod["metadata"]["name"], network=network, secrets={"ytlabel-s3": s3_in_network.secret}
    )
    assert container.wait(timeout_s=120) == 0, container.logs()
    listing = container.logs().splitlines()
    assert listing[0].split()[:3] == ["MODEL", "VERSION", "ARCH"], listing  # `registry list`'s header
    assert [line.split()[:4] for line in listing[1:]] == [["yt8m", "1", "fc", "torch"]], listing


def test_chart_serving_runtime_container_becomes_ready(engine, network, s3_in_network, fc_run, tmp_path, monkeypatch):
    from ytlabel.registry import Registry

    for key, value in s3_in_network.host_env().items():
        monkeypatch.setenv(key, value)
    Registry("s3://ytlabel/registry").push(fc_run, "yt8m")
    [runtime] = [doc for doc in helm_template() if doc["kind"] == "ClusterServingRuntime"]
    container = runtime["spec"]["containers"][0]
    assert container["image"] == images.SERVING
    models = tmp_path / "models"
    storage_initializer(s3_in_network, "s3://ytlabel/registry/yt8m/1", str(models))
    pod = run_pod(
        engine,
        runtime_pod(runtime, "yt8m"),
        name="yt8m-predictor-chart",
        network=network,
        mounts={"kserve-provision-location": str(models)},
        publish=(8080,),
    )
    url = f"http://127.0.0.1:{pod.host_port(8080)}"
    deadline = time.monotonic() + 180
    while _get(url + container["readinessProbe"]["httpGet"]["path"])[0] != 200:
        assert pod.state()["Running"] and time.monotonic() < deadline, pod.logs(40)
        time.sleep(1)
    status, body = _get(f"{url}/v2/models/yt8m")
    assert status == 200 and b'"name":"yt8m"' in body.replace(b" ", b"")
