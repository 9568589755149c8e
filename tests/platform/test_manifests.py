"""Rendered manifests pass strict offline validation; the validator itself catches what a cluster would."""

import json

import pytest
import yaml

from tests.helpers.cli_rule import one_error_line
from ytlabel.cli import main
from ytlabel.errors import ConfigError
from ytlabel.models.spec import ARCHITECTURES
from ytlabel.platform import inference as I
from ytlabel.platform import manifests as M
from ytlabel.platform.validate import ManifestError, crd_schemas, problems, validate
from ytlabel.training.distributed import keras_place, torch_place

IMAGE = "ghcr.io/ytlabel/ytlabel-trainer:0.1.0"


def _job(arch="fc", framework="torch", **fields):
    return M.training_job(M.JobSettings(arch, framework, "s3://data/train", "s3://runs/x", IMAGE, **fields))


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("workers, gpus", [(1, 0), (3, 1)])
def test_every_training_job_validates(arch, framework, workers, gpus):
    job = _job(arch, framework, workers=workers, gpus=gpus)
    assert problems(job) == []
    kind, field, roles = (
        ("PyTorchJob", "pytorchReplicaSpecs", ("Master", "Worker"))
        if framework == "torch"
        else ("TFJob", "tfReplicaSpecs", ("Chief", "Worker"))
    )
    assert job["kind"] == kind and job["metadata"]["name"] == f"ytlabel-{arch.replace('_', '-')}-{framework}"
    replicas = job["spec"][field]
    assert {role: spec["replicas"] for role, spec in replicas.items()} == (
        {roles[0]: 1, roles[1]: workers - 1} if workers > 1 else {roles[0]: 1}
    )
    container = replicas[roles[0]]["template"]["spec"]["containers"][0]
    assert container["name"] == ("pytorch" if framework == "torch" else "tensorflow")
    assert container["command"][:6] == ["ytlabel", "train", "--arch", arch, "--framework", framework]
    assert "metrics_port=9100" in container["command"] and "metrics_host=0.0.0.0" in container["command"]
    assert container["envFrom"] == [{"secretRef": {"name": "ytlabel-s3"}}]
    assert container["resources"]["limits"].get("nvidia.com/gpu") == (str(gpus) if gpus else None)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert replicas[roles[0]]["restartPolicy"] == "OnFailure"


def test_the_operator_env_contract_reaches_our_places():
    """The variables the training operator injects into these pods are the ones `ytlabel train` reads."""
    # PyTorchJob: the operator sets these in every pod of a 3-replica job (Master is rank 0).
    for rank in range(3):
        place = torch_place(
            {"MASTER_ADDR": "ytlabel-fc-torch-master-0", "MASTER_PORT": "23456", "WORLD_SIZE": "3", "RANK": str(rank)}
        )
        assert (place.rank, place.world_size, place.writer, place.local_rank) == (rank, 3, rank == 0, 0)
    # TFJob: TF_CONFIG with a chief and workers; the chief writes, one process per pod.
    cluster = {"chief": ["chief-0:2222"], "worker": ["worker-0:2222", "worker-1:2222"]}
    places = [
        keras_place({"TF_CONFIG": json.dumps({"cluster": cluster, "task": task})})
        for task in ({"type": "chief", "index": 0}, {"type": "worker", "index": 0}, {"type": "worker", "index": 1})
    ]
    assert [(p.rank, p.world_size, p.writer, p.local_rank) for p in places] == [
        (0, 3, True, 0),
        (1, 3, False, 0),
        (2, 3, False, 0),
    ]


def test_serving_objects_validate():
    service = I.inference_service("yt8m-fc", "s3://models/ytlabel/yt8m-fc/3", gpus=1)
    assert problems(service) == []
    model = service["spec"]["predictor"]["model"]
    assert model["storageUri"] == "s3://models/ytlabel/yt8m-fc/3" and model["runtime"] == I.MODEL_FORMAT
    assert service["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Standard"
    runtime = I.cluster_serving_runtime("ghcr.io/ytlabel/ytlabel-serving:0.1.0")
    assert problems(runtime) == []
    assert runtime["spec"]["containers"][0]["args"][:3] == ["serve", "--model", "/mnt/models"]
    account, secret = I.s3_credentials("http://minio-service.kubeflow:9000", "AKID", "SECRET")
    assert problems(account) == [] and problems(secret) == []
    assert secret["stringData"]["AWS_ACCESS_KEY_ID"] == "AKID" and "<" not in str(secret["stringData"])
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio-service.kubeflow:9000"
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    assert account["secrets"] == [{"name": secret["metadata"]["name"]}]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda job: job["spec"]["pytorchReplicaSpecs"]["Master"].update(bogus=1), "'bogus' was unexpected"),
        (
            lambda job: job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].update(
                name="main"
            ),
            "needs a container named 'pytorch'",
        ),
        (lambda job: job["spec"]["pytorchReplicaSpecs"]["Master"].update(replicas=2), "exactly one replica"),
        (
            lambda job: (
                job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].pop("image")
                and job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0].pop("name")
            ),
            "'name' is a required property",
        ),
        (lambda job: job["metadata"].update(name="Fc_Job"), "DNS-1035"),
        (lambda job: job["metadata"].update(labels={"a": 1}), "metadata.labels: must map strings to strings"),
        (lambda job: job["spec"]["runPolicy"].update(backoffLimit="3"), "'3' is not of type 'integer'"),
    ],
)
def test_the_validator_rejects_what_a_cluster_would(change, message):
    job = _job()
    change(job)
    with pytest.raises(ManifestError, match=message):
        validate(job)


def test_core_kinds_are_strict_and_unknown_kinds_are_named():
    account, _ = I.s3_credentials("minio:9000", "AKID", "SECRET")
    account["metadata"]["bogus"] = "x"
    assert any("bogus" in problem for problem in problems(account))
    account = I.s3_credentials("minio:9000", "AKID", "SECRET")[0]
    account["automountToken"] = False  # the real field is automountServiceAccountToken
    assert any("automountToken" in problem for problem in problems(account))
    assert problems({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}) == [
        "no schema for example.com/v1/Widget (neither core Kubernetes 1.33 nor a CRD in platform/crds)"
    ]


def test_shipped_crds_cover_the_rendered_kinds():
    assert {
        ("kubeflow.org/v1", "PyTorchJob"),
        ("kubeflow.org/v1", "TFJob"),
        ("serving.kserve.io/v1beta1", "InferenceService"),
        ("serving.kserve.io/v1alpha1", "ClusterServingRuntime"),
        ("monitoring.coreos.com/v1", "PodMonitor"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"),
    } <= set(crd_schemas())


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="gpus=2: PyTorchJob pods run one training process each; use workers=6"):
        M.JobSettings("fc", "torch", "s3://d", "s3://o", IMAGE, workers=3, gpus=2)
    assert M.JobSettings("fc", "keras", "s3://d", "s3://o", IMAGE, gpus=4).gpus == 4  # one process, all GPUs
    with pytest.raises(ConfigError, match="arch='cnn'"):
        M.JobSettings("cnn", "torch", "s3://d", "s3://o", IMAGE)
    with pytest.raises(ConfigError, match="job name 'x_y'"):
        M.JobSettings("fc", "torch", "s3://d", "s3://o", IMAGE, name="x_y")
    with pytest.raises(ConfigError, match="must be s3://"):
        I.inference_service("yt8m-fc", "/mnt/models")


def test_render_writes_no_yaml_anchors(capsys):
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--workers", "3"]) == 0
    out = capsys.readouterr().out
    assert "&id" not in out and "*id" not in out  # PyYAML's anchors where the replicas share the command list
    replicas = yaml.safe_load(out)["spec"]["pytorchReplicaSpecs"]
    master, worker = (replicas[role]["template"]["spec"]["containers"][0]["command"] for role in ("Master", "Worker"))
    assert master == worker and master[:4] == ["ytlabel", "train", "--arch", "fc"]


def test_render_cli_prints_validated_yaml(capsys):
    assert (
        main(
            [
                "platform",
                "render",
                "--arch",
                "bilstm",
                "--framework",
                "keras",
                "--workers",
                "2",
                "--gpus",
                "1",
                "epochs=3",
            ]
        )
        == 0
    )
    [job] = list(yaml.safe_load_all(capsys.readouterr().out))
    assert job["kind"] == "TFJob" and problems(job) == []
    assert job["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]["containers"][0]["command"][-1] == "epochs=3"
    assert main(["platform", "render", "--serve", "yt8m-fc:3", "--registry", "s3://models/ytlabel"]) == 0
    kinds = [obj["kind"] for obj in yaml.safe_load_all(capsys.readouterr().out)]
    assert kinds == ["ServiceAccount", "InferenceService"]  # the Secret only when asked for
    assert main(["platform", "render", "--serve", "yt8m-fc@champion", "--registry", "file:///tmp/x"]) == 2
    assert "--serve needs an s3:// --registry" in one_error_line(capsys)


def test_training_pods_get_a_memory_backed_dev_shm_and_the_standard_labels():
    job = _job(workers=2)
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        pod = replica["template"]
        assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}} in pod["spec"]["volumes"]
        assert {"name": "dshm", "mountPath": "/dev/shm"} in pod["spec"]["containers"][0]["volumeMounts"]
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "ytlabel-trainer"
        assert labels["app.kubernetes.io/instance"] == job["metadata"]["name"] == "ytlabel-fc-torch"
        assert labels["app.kubernetes.io/managed-by"] == "ytlabel" and labels["app.kubernetes.io/version"] == "0.1.0"
    runtime = I.cluster_serving_runtime(IMAGE)
    assert runtime["spec"]["containers"][0]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_gpu_pods_tolerate_the_gpu_taint_and_placement_is_settable(capsys):
    [gpu] = [r["template"]["spec"] for r in _job(gpus=1)["spec"]["pytorchReplicaSpecs"].values()]
    assert gpu["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert "nodeSelector" not in gpu
    [cpu] = [r["template"]["spec"] for r in _job()["spec"]["pytorchReplicaSpecs"].values()]
    assert "tolerations" not in cpu
    assert (
        main(
            [
                "platform",
                "render",
                "--arch",
                "fc",
                "--framework",
                "keras",
                "--gpus",
                "1",
                "--node-selector",
                "pool=a100",
                "--toleration",
                "dedicated=ml:NoExecute",
                "--toleration",
                "spot:NoSchedule",
            ]
        )
        == 0
    )
    pod = yaml.safe_load(capsys.readouterr().out)["spec"]["tfReplicaSpecs"]["Chief"]["template"]["spec"]
    assert pod["nodeSelector"] == {"pool": "a100"}
    assert pod["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoExecute"},
        {"key": "spot", "operator": "Exists", "effect": "NoSchedule"},
    ]
    assert (
        main(
            [
                "platform",
                "render",
                "--arch",
                "fc",
                "--framework",
                "torch",
                "--trainer",
                "v2",
                "--node-selector",
                "pool=a100",
            ]
        )
        == 0
    )
    patch = yaml.safe_load(capsys.readouterr().out)["spec"]["runtimePatches"][0]["trainingRuntimeSpec"]
    assert patch["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["nodeSelector"] == {
        "pool": "a100"
    }
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--toleration", "x:Sometimes"]) == 2
    assert "--toleration 'x:Sometimes': expected KEY[=VALUE]:EFFECT" in one_error_line(capsys)
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--node-selector", "pool"]) == 2
    assert "--node-selector 'pool': expected KEY=VALUE" in one_error_line(capsys)


def test_render_serve_writes_a_secret_only_when_asked_and_never_placeholders(capsys, monkeypatch):
    base = ["platform", "render", "--serve", "yt8m-fc:3", "--registry", "s3://models/ytlabel"]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
    assert main([*base, "--s3-secret-from-env", "--s3-endpoint", "https://minio.example:9000"]) == 2
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set in the environment" in one_error_line(capsys)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRET")
    assert main([*base, "--s3-secret-from-env"]) == 2
    assert "--s3-secret-from-env needs --s3-endpoint" in one_error_line(capsys)
    assert main([*base, "--s3-endpoint", "http://minio:9000"]) == 2
    assert "add --s3-secret-from-env" in one_error_line(capsys)
    assert main([*base, "--s3-secret-from-env", "--s3-endpoint", "https://minio.example:9000"]) == 0
    account, secret, service = yaml.safe_load_all(capsys.readouterr().out)
    assert secret["stringData"]["AWS_ACCESS_KEY_ID"] == "AKID" and secret["stringData"]["S3_USE_HTTPS"] == "1"
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.example:9000"
    assert account["secrets"] == [{"name": "ytlabel-s3"}] and service["kind"] == "InferenceService"


@pytest.mark.parametrize("config, expected", [([], "fc"), (["--config", "none"], "none"), (["--config", "moe"], "moe")])
def test_render_takes_the_preset_train_uses(config, expected, capsys):
    """Without --config the pods use the architecture's own preset, as `ytlabel train` does by default."""
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", *config]) == 0
    job = yaml.safe_load(capsys.readouterr().out)
    command = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--config") + 1] == expected


def test_render_refuses_a_preset_the_pod_cannot_read(tmp_path, capsys):
    preset = tmp_path / "mine.yaml"
    preset.write_text("epochs: 2\n")
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--config", str(preset)]) == 2
    assert "a pod reads only the presets the image ships" in one_error_line(capsys)
