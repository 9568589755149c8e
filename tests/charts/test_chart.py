"""The Helm chart: lint --strict, template every ci values file with and without the Prometheus
operator API, and validate every rendered object (strict schemas and CRDs; rules with promtool)."""

import glob
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ytlabel.platform.validate import problems

CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "ytlabel")
VALUES = sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml")))
MONITORING = {"PodMonitor", "ServiceMonitor", "PrometheusRule"}


def _helm() -> str:
    helm = os.path.join(os.path.dirname(sys.executable), "helm")
    if not os.path.exists(helm):
        pytest.fail("helm is missing: run `make test-deps` (tools/fetch_helm.py installs the pinned binary)")
    return helm


def _template(*args: str) -> list[dict]:
    done = subprocess.run(
        [_helm(), "template", "rel", CHART, "--namespace", "ml", *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def test_lint_strict():
    done = subprocess.run([_helm(), "lint", "--strict", CHART], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("operator", [False, True], ids=["plain-cluster", "prometheus-operator"])
@pytest.mark.parametrize("values", VALUES, ids=[os.path.basename(v) for v in VALUES])
def test_every_rendered_object_validates(values, operator, tmp_path):
    objects = _template("-f", values, *(["--api-versions", "monitoring.coreos.com/v1"] if operator else []))
    kinds = {obj["kind"] for obj in objects}
    settings = yaml.safe_load(open(values))
    monitoring_wanted = operator and settings.get("monitoring", {}).get("podMonitor", {}).get("enabled", True)
    assert bool(kinds & MONITORING) == bool(monitoring_wanted), kinds
    assert {"Role", "RoleBinding"} <= kinds  # pipeline runs always get their least-privilege Role
    for obj in objects:
        if obj["kind"] == "PrometheusRule":
            _check_rules(obj, tmp_path)
            continue
        assert problems(obj) == [], (obj["kind"], obj["metadata"]["name"])
        for spec in _pod_specs(obj):
            _check_restricted(spec, obj)


def test_champion_values_render_the_expected_objects():
    objects = {
        (obj["kind"], obj["metadata"]["name"]): obj
        for obj in _template(
            "-f", os.path.join(CHART, "ci", "champion-values.yaml"), "--api-versions", "monitoring.coreos.com/v1"
        )
    }
    service = objects[("InferenceService", "yt8m-fc")]
    assert service["spec"]["predictor"]["model"]["storageUri"] == "s3://example-models/ytlabel/yt8m-fc/7"
    assert service["spec"]["predictor"]["model"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert service["spec"]["predictor"]["serviceAccountName"] == "yt-serving"
    assert objects[("ServiceAccount", "yt-serving")]["secrets"] == [{"name": "aws-models"}]
    runtime = objects[("ClusterServingRuntime", "ytlabel")]["spec"]["containers"][0]
    assert runtime["image"] == "registry.example.com/ml/ytlabel-serving:0.1.0"
    assert runtime["args"][:5] == ["serve", "--model", "/mnt/models", "--name", "{{.Name}}"]
    rules = objects[("Role", "yt-pipeline")]["rules"]
    assert {resource for rule in rules for resource in rule["resources"]} == {
        "pytorchjobs",
        "tfjobs",
        "pytorchjobs/status",
        "tfjobs/status",
        "trainjobs",
        "trainjobs/status",
        "pods",
        "pods/log",
        "inferenceservices",
    }
    assert all("secrets" not in rule["resources"] and "*" not in rule["verbs"] for rule in rules)
    assert objects[("PodMonitor", "yt-trainers")]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_trainer_v2_runtimes_are_the_ones_the_platform_renders(framework):
    """Only on a cluster that serves Trainer v2, and then the same runtime `platform/trainer_v2.py` targets."""
    from ytlabel.platform import images, trainer_v2

    assert not [obj for obj in _template() if obj["kind"] == "ClusterTrainingRuntime"]
    objects = {
        obj["metadata"]["name"]: obj
        for obj in _template("--api-versions", "trainer.kubeflow.org/v1alpha1")
        if obj["kind"] == "ClusterTrainingRuntime"
    }
    assert sorted(objects) == ["ytlabel-keras", "ytlabel-torch"]
    chart, ours = (
        objects[f"ytlabel-{framework}"],
        trainer_v2.cluster_training_runtime(framework, images.trainer(framework)),
    )
    assert problems(chart) == []
    for runtime in (chart, ours):  # the chart's security contexts are its own helpers' (checked as restricted below)
        pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        _check_restricted(pod, runtime)
        del pod["securityContext"], pod["containers"][0]["securityContext"]
    assert chart["spec"] == ours["spec"]
    assert not [
        obj
        for obj in _template(
            "--api-versions", "trainer.kubeflow.org/v1alpha1", "--set", "trainer.runtimes.enabled=false"
        )
        if obj["kind"] == "ClusterTrainingRuntime"
    ]


def test_training_runtimes_take_node_selector_and_tolerations_from_values():
    objects = _template(
        "--api-versions",
        "trainer.kubeflow.org/v1alpha1",
        "--set",
        "trainer.nodeSelector.pool=a100",
        "--set",
        "trainer.tolerations[0].key=nvidia.com/gpu",
        "--set",
        "trainer.tolerations[0].operator=Exists",
        "--set",
        "trainer.tolerations[0].effect=NoSchedule",
    )
    runtimes = [obj for obj in objects if obj["kind"] == "ClusterTrainingRuntime"]
    assert len(runtimes) == 2
    for runtime in runtimes:
        assert problems(runtime) == []
        pod = runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"pool": "a100"}
        assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


@pytest.mark.parametrize("release", ["ytlabel", "prod", "ytlabel-staging"])
def test_render_names_the_service_accounts_the_chart_creates(release, capsys):
    from ytlabel.cli import main

    done = subprocess.run([_helm(), "template", release, CHART], capture_output=True, text=True, check=True)
    accounts = {
        obj["metadata"]["name"] for obj in yaml.safe_load_all(done.stdout) if obj and obj["kind"] == "ServiceAccount"
    }
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--release", release]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    trainer = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["serviceAccountName"]
    assert main(["platform", "render", "--serve", "yt8m:1", "--registry", "s3://r/registry", "--release", release]) == 0
    account, service = yaml.safe_load_all(capsys.readouterr().out)
    assert trainer in accounts and account["metadata"]["name"] in accounts
    assert service["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    assert (
        trainer
        == ("ytlabel" if release == "ytlabel" else release if "ytlabel" in release else f"{release}-ytlabel")
        + "-trainer"
    )


def test_rendered_inference_service_is_as_restricted_as_the_charts():
    from ytlabel.platform import inference

    [chart] = [obj for obj in _template("--set", "serving.champion.enabled=true") if obj["kind"] == "InferenceService"]
    ours = inference.inference_service("yt8m", "s3://ytlabel/registry/yt8m/1")
    assert ours["spec"]["predictor"]["securityContext"] == chart["spec"]["predictor"]["securityContext"]
    assert ours["spec"]["predictor"]["securityContext"]["runAsNonRoot"] is True and problems(ours) == []


def test_optional_objects_left_out_are_named_and_can_be_forced():
    assert not [obj for obj in _template() if obj["kind"] in ("ClusterTrainingRuntime", "PodMonitor")]
    forced = [obj["kind"] for obj in _template("--set", "apis.trainerV2=true", "--set", "apis.prometheusOperator=true")]
    assert forced.count("ClusterTrainingRuntime") == 2 and {"PodMonitor", "ServiceMonitor", "PrometheusRule"} <= set(
        forced
    )
    notes = subprocess.run(
        [_helm(), "install", "rel", CHART, "--dry-run=client"], capture_output=True, text=True, check=True
    ).stdout
    assert "Left out: the ClusterTrainingRuntimes ytlabel-torch and ytlabel-keras" in notes
    assert "--set apis.trainerV2=true" in notes and "--set apis.prometheusOperator=true" in notes
    notes = subprocess.run(
        [_helm(), "install", "rel", CHART, "--dry-run=client", "--set", "apis.trainerV2=true"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "ClusterTrainingRuntimes" not in notes


def test_values_schema_refuses_unknown_and_malformed_values():
    for setting, words in (
        ("s3.bogus=1", "additional properties 'bogus' not allowed"),
        ("s3.registry=ftp://x", "s3/registry"),
        ("serving.champion.name=Bad_Name", "serving/champion/name"),
        ("trainer.tolerations[0].effect=Sometimes", "trainer/tolerations/0/effect"),
    ):
        done = subprocess.run([_helm(), "template", "rel", CHART, "--set", setting], capture_output=True, text=True)
        assert done.returncode != 0 and words in done.stderr, (setting, done.stderr)


def _pod_specs(obj: dict) -> list[dict]:
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    return []


def _check_restricted(spec: dict, obj: dict) -> None:
    assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]


def _check_rules(obj: dict, tmp_path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian package prometheus) is required; `make test-deps` installs it"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": obj["spec"]["groups"]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0 and "SUCCESS: 4 rules found" in done.stdout, done.stdout + done.stderr
