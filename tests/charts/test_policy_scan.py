"""The chart under a Kubernetes policy scanner (checkov, pinned in requirements/checkov.lock, its own venv),
and the NetworkPolicies it renders selecting the pods they are written for.

Each ci values file is rendered as a platform team installs it (`helm template --namespace ml`, every optional
API served) and the rendered objects are scanned: zero failures, and every suppression is an inline
`checkov.io/skipN` annotation that gives its reason.
"""

import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

from ytlabel.platform import inference, manifests

CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "ytlabel")
VALUES = sorted(glob.glob(os.path.join(CHART, "ci", "*-values.yaml")))
CHECKOV = os.path.join(os.path.dirname(sys.executable), "..", "tools", "checkov", "bin", "checkov")
ALL_APIS = ("--api-versions", "monitoring.coreos.com/v1", "--api-versions", "trainer.kubeflow.org/v1alpha1")


def _helm() -> str:
    return os.path.join(os.path.dirname(sys.executable), "helm")


def _template(*args: str) -> str:
    done = subprocess.run(
        [_helm(), "template", "rel", CHART, "--namespace", "ml", *ALL_APIS, *args], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _scan(folder) -> dict:
    """checkov's Kubernetes checks over every YAML file in `folder`: its JSON summary and results.

    --skip-download: checkov would otherwise ask its vendor's API for guidelines (unreachable here, and the
    checks run the same without them).
    """
    if not os.path.exists(CHECKOV):
        pytest.fail("checkov is missing: run `make test-deps` (it installs requirements/checkov.lock)")
    done = subprocess.run(
        [CHECKOV, "--directory", str(folder), "--framework", "kubernetes", "--skip-download", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr[-2000:]  # 1: checks failed; anything else: checkov broke
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report


def test_every_ci_values_file_passes_the_scanner_with_reasoned_suppressions(tmp_path):
    documents = 0
    for values in VALUES:
        rendered = _template("-f", values)
        documents += sum(1 for doc in yaml.safe_load_all(rendered) if doc)
        (tmp_path / os.path.basename(values)).write_text(rendered)
    report = _scan(tmp_path)
    failed = [(check["check_id"], check["resource"]) for check in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["resource_count"] == documents  # checkov read every object we rendered
    assert report["summary"]["passed"] > 150
    for skipped in report["results"]["skipped_checks"]:
        # Only the test pod carries suppressions, each with a sentence saying why it holds for that pod.
        assert skipped["resource"].startswith("Pod.ml."), skipped["resource"]
        assert len(skipped["check_result"]["suppress_comment"].split()) >= 6, skipped["check_id"]


def test_the_scanner_fails_what_it_should(tmp_path):
    """The same scan on a pod that breaks the policies: it must name the failures (so a pass above means
    something)."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "loose", "namespace": "default"},
        "spec": {
            "containers": [{"name": "c", "image": "example/loose:latest", "securityContext": {"privileged": True}}]
        },
    }
    (tmp_path / "loose.yaml").write_text(yaml.safe_dump(pod))
    failed = {check["check_id"] for check in _scan(tmp_path)["results"]["failed_checks"]}
    # privileged, default namespace, :latest tag, no probes, no resource limits
    assert {"CKV_K8S_16", "CKV_K8S_21", "CKV_K8S_14", "CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_11"} <= failed


def test_the_pinned_digest_replaces_the_tag_and_lifts_the_test_pods_exceptions():
    digest = "sha256:" + "ab" * 32
    objects = list(yaml.safe_load_all(_template("--set", f"image.digests.pipeline={digest}")))
    [pod] = [obj for obj in objects if obj and obj["kind"] == "Pod"]
    assert pod["spec"]["containers"][0]["image"] == f"ghcr.io/ytlabel/ytlabel-pipeline@{digest}"
    skips = {value.split("=")[0] for key, value in pod["metadata"]["annotations"].items() if key.startswith("checkov")}
    assert skips == {"CKV_K8S_8", "CKV_K8S_9", "CKV_K8S_35"}
    done = subprocess.run(
        [_helm(), "template", "rel", CHART, "--set", "image.digests.pipeline=sha256:short"],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "image/digests/pipeline" in done.stderr


def test_every_namespaced_object_names_the_release_namespace():
    cluster_scoped = {"ClusterServingRuntime", "ClusterTrainingRuntime"}
    objects = [
        obj for obj in yaml.safe_load_all(_template("-f", os.path.join(CHART, "ci", "champion-values.yaml"))) if obj
    ]
    assert {obj["kind"] for obj in objects} >= {"NetworkPolicy", "InferenceService", "Pod", "Role"}
    for obj in objects:
        expected = None if obj["kind"] in cluster_scoped else "ml"
        assert obj["metadata"].get("namespace") == expected, (obj["kind"], obj["metadata"]["name"])


# --- the NetworkPolicies select the pods they are written for -------------------------------------------


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def _policies(*args: str) -> dict:
    return {
        obj["metadata"]["name"].rsplit("-", 1)[1]: obj  # <fullname>-serving, -trainer, -test
        for obj in yaml.safe_load_all(_template(*args))
        if obj and obj["kind"] == "NetworkPolicy"
    }


def test_network_policies_are_off_by_default_and_select_our_pods_when_on():
    assert _policies() == {}
    policies = _policies("--set", "networkPolicy.enabled=true", "--set", "serving.champion.enabled=true")
    assert sorted(policies) == ["serving", "test", "trainer"]
    objects = [obj for obj in yaml.safe_load_all(_template("--set", "serving.champion.enabled=true")) if obj]

    # predictors: the chart's champion and what `platform render --serve` writes
    [chart_isvc] = [obj for obj in objects if obj["kind"] == "InferenceService"]
    ours_isvc = inference.inference_service("yt8m", "s3://ytlabel/registry/yt8m/1")
    for isvc in (chart_isvc, ours_isvc):
        assert _matches(policies["serving"]["spec"]["podSelector"], isvc["spec"]["predictor"]["labels"])
    # trainers: Trainer v2 runtime pods and `platform render`'s PyTorchJob/TFJob pods
    trainer_labels = [
        runtime["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["metadata"]["labels"]
        for runtime in objects
        if runtime["kind"] == "ClusterTrainingRuntime"
    ]
    job = manifests.training_job(
        manifests.JobSettings(
            arch="fc", framework="torch", data="s3://d/train", out="s3://d/runs/fc", image="t:1", workers=2
        )
    )
    trainer_labels += [spec["template"]["metadata"]["labels"] for spec in job["spec"]["pytorchReplicaSpecs"].values()]
    assert len(trainer_labels) == 4
    trainer = policies["trainer"]["spec"]
    for labels in trainer_labels:
        assert _matches(trainer["podSelector"], labels)
        assert _matches(trainer["ingress"][0]["from"][0]["podSelector"], labels)  # from each other
        assert _matches(trainer["egress"][0]["to"][0]["podSelector"], labels)  # to each other
        assert not _matches(policies["serving"]["spec"]["podSelector"], labels)
    [test_pod] = [obj for obj in objects if obj["kind"] == "Pod"]
    assert _matches(policies["test"]["spec"]["podSelector"], test_pod["metadata"]["labels"])


def test_network_policy_peers_come_from_values():
    policies = _policies("-f", os.path.join(CHART, "ci", "champion-values.yaml"))
    serving_from = policies["serving"]["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert serving_from["values"] == ["istio-system", "monitoring"]
    trainer = policies["trainer"]["spec"]
    assert trainer["policyTypes"] == ["Ingress", "Egress"]
    dns, s3 = trainer["egress"][1], trainer["egress"][2]
    assert dns["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "kube-system"}
    assert {(port["port"], port["protocol"]) for port in dns["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert s3 == {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"port": 443, "protocol": "TCP"}]}
    assert policies["test"]["spec"]["egress"] == trainer["egress"][1:]  # the test pod reaches DNS and S3 only
    assert "ingress" not in policies["test"]["spec"]  # and nothing reaches it


def test_notes_say_whether_network_policies_are_on():
    def notes(*args: str) -> str:
        return subprocess.run(
            [_helm(), "install", "rel", CHART, "--dry-run=client", *args], capture_output=True, text=True, check=True
        ).stdout

    assert "Left out: NetworkPolicies (--set networkPolicy.enabled=true" in notes()
    assert "predictors take traffic only from knative-serving, istio-system, kourier-system" in notes(
        "--set", "networkPolicy.enabled=true"
    )
