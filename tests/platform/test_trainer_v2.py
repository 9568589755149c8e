"""Kubeflow Trainer v2: TrainJobs and our ClusterTrainingRuntimes validate strictly against the shipped CRDs,
carry what the v1 jobs carry, and the env each runtime gives a pod is the one `ytlabel train` reads."""

import json

import pytest

from ytlabel.errors import YtlabelError
from ytlabel.models.spec import ARCHITECTURES
from ytlabel.platform import manifests as M
from ytlabel.platform import trainer_v2 as V2
from ytlabel.platform.validate import crd_schemas, problems
from ytlabel.training.distributed import keras_place, torch_place

IMAGE = "ghcr.io/ytlabel/ytlabel-trainer:0.1.0"


def _settings(arch="fc", framework="torch", **fields) -> M.JobSettings:
    return M.JobSettings(arch, framework, "s3://data/train", "s3://runs/x", IMAGE, **fields)


def _pod_patch(job: dict) -> dict:
    [patch] = job["spec"]["runtimePatches"]
    [node] = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    return node["template"]["spec"]["template"]


@pytest.mark.parametrize("framework", ["torch", "keras"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("workers, gpus", [(1, 0), (4, 1)])
def test_every_train_job_validates_and_matches_the_v1_job(arch, framework, workers, gpus):
    settings = _settings(arch, framework, workers=workers, gpus=gpus, labels={"ytlabel.io/pipeline-run": "r1"})
    job, v1 = V2.train_job(settings), M.training_job(settings)
    assert problems(job) == []
    v1_pod = next(iter(v1["spec"]["pytorchReplicaSpecs" if framework == "torch" else "tfReplicaSpecs"].values()))[
        "template"
    ]
    v1_container = v1_pod["spec"]["containers"][0]
    trainer = job["spec"]["trainer"]
    assert job["metadata"]["name"] == v1["metadata"]["name"] and job["metadata"]["labels"] == v1["metadata"]["labels"]
    assert job["spec"]["runtimeRef"]["name"] == {"torch": "ytlabel-torch", "keras": "ytlabel-keras"}[framework]
    assert (trainer["image"], trainer["command"], trainer["resourcesPerNode"]) == (
        v1_container["image"],
        v1_container["command"],
        v1_container["resources"],
    )
    assert (trainer["numNodes"], trainer["numProcPerNode"]) == (workers, 1)
    pod = _pod_patch(job)
    assert pod["metadata"] == v1_pod["metadata"]  # labels and the Prometheus annotations
    assert pod["spec"]["securityContext"] == v1_pod["spec"]["securityContext"]
    assert pod["spec"]["serviceAccountName"] == v1_pod["spec"]["serviceAccountName"]
    assert pod["spec"]["volumes"] == v1_pod["spec"]["volumes"]
    [node] = pod["spec"]["containers"]
    assert node["name"] == "node" and node["securityContext"] == v1_container["securityContext"]
    # The S3 secret: the keys the v1 pods get with envFrom, as secretKeyRef (runtime patches carry env only).
    secret_keys = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in trainer["env"] if "valueFrom" in e}
    assert {ref["name"] for ref in secret_keys.values()} == {"ytlabel-s3"}
    assert [k for k, ref in secret_keys.items() if not ref["optional"]] == [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    assert {e["name"]: e["value"] for e in trainer["env"] if "value" in e} == (
        {"YTLABEL_NUM_NODES": str(workers)} if framework == "keras" else {}
    )


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_our_runtimes_validate(framework):
    runtime = V2.cluster_training_runtime(framework, IMAGE)
    assert problems(runtime) == []
    [job] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    assert job["name"] == "node" and job["template"]["metadata"]["labels"] == {
        "trainer.kubeflow.org/trainjob-ancestor-step": "trainer"
    }
    assert ("torch" in runtime["spec"]["mlPolicy"]) == (framework == "torch")
    broken = json.loads(json.dumps(runtime))
    broken["spec"]["template"]["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]["spec"]["containers"][0][
        "name"
    ] = "trainer"
    assert any("needs a job 'node' with a container 'node'" in problem for problem in problems(broken))


def test_the_validator_is_strict_inside_the_jobset_and_pod_templates():
    job = V2.train_job(_settings(framework="keras"))
    _pod_patch(job)["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "ytlabel-s3"}}]
    job["spec"]["trainer"]["numWorkers"] = 2
    job["metadata"]["name"] = "ytlabel.fc"
    found = problems(job)
    assert any("'envFrom' was unexpected" in problem for problem in found)
    assert any("'numWorkers' was unexpected" in problem for problem in found)
    assert any("must be a DNS-1035 label" in problem for problem in found)
    assert ("trainer.kubeflow.org/v1alpha1", "TrainJob") in crd_schemas()


def test_the_torch_runtime_env_reaches_our_place():
    """Trainer v2's torch plugin gives each `node` container the PET_* variables torchrun reads."""
    for rank in range(3):
        place = torch_place(
            {
                "PET_NNODES": "3",
                "PET_NPROC_PER_NODE": "1",
                "PET_NODE_RANK": str(rank),
                "PET_MASTER_ADDR": "ytlabel-fc-torch-node-0-0.ytlabel-fc-torch",
                "PET_MASTER_PORT": "29400",
            }
        )
        assert (place.rank, place.world_size, place.writer) == (rank, 3, rank == 0)


def test_the_keras_runtime_env_builds_tf_config():
    """What ytlabel-keras gives a pod (JobSet name and completion index, the TrainJob's node count)."""
    places, configs = [], []
    for index in range(3):
        env = {"YTLABEL_JOBSET_NAME": "ytlabel-fc-keras", "YTLABEL_NODE_INDEX": str(index), "YTLABEL_NUM_NODES": "3"}
        places.append(keras_place(env))
        from ytlabel.training.distributed import trainer_v2_tf_config

        configs.append(json.loads(trainer_v2_tf_config(env)))
    assert [(p.rank, p.world_size, p.writer) for p in places] == [(0, 3, True), (1, 3, False), (2, 3, False)]
    assert configs[2] == {
        "cluster": {"worker": [f"ytlabel-fc-keras-node-0-{i}.ytlabel-fc-keras:2222" for i in range(3)]},
        "task": {"type": "worker", "index": 2},
    }
    assert keras_place({}).world_size == 1  # neither TF_CONFIG nor the v2 contract: one process


@pytest.mark.parametrize(
    "env, message",
    [
        ({"YTLABEL_NUM_NODES": "2", "YTLABEL_NODE_INDEX": "0"}, "neither YTLABEL_JOBSET_NAME nor"),
        ({"YTLABEL_NUM_NODES": "two", "YTLABEL_NODE_INDEX": "0", "YTLABEL_JOBSET_NAME": "j"}, "must be integers"),
        ({"YTLABEL_NUM_NODES": "2", "YTLABEL_NODE_INDEX": "2", "YTLABEL_JOBSET_NAME": "j"}, "node 2 of 2"),
        (
            {"YTLABEL_NUM_NODES": "2", "YTLABEL_NODE_INDEX": "0", "YTLABEL_WORKER_ADDRESSES": "a:1"},
            "1 worker addresses",
        ),
    ],
)
def test_a_broken_keras_contract_is_named(env, message):
    with pytest.raises(YtlabelError, match=message):
        keras_place(env)


def test_render_cli_prints_a_validated_train_job(capsys):
    import yaml

    from tests.helpers.cli_rule import one_error_line
    from ytlabel.cli import main

    assert (
        main(
            [
                "platform",
                "render",
                "--arch",
                "bilstm",
                "--framework",
                "keras",
                "--trainer",
                "v2",
                "--workers",
                "3",
                "epochs=3",
            ]
        )
        == 0
    )
    [job] = list(yaml.safe_load_all(capsys.readouterr().out))
    assert job["kind"] == "TrainJob" and problems(job) == []
    assert job["spec"]["runtimeRef"]["name"] == "ytlabel-keras" and job["spec"]["trainer"]["command"][-1] == "epochs=3"
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
                "--runtime",
                "torch-distributed",
            ]
        )
        == 0
    )
    assert yaml.safe_load(capsys.readouterr().out)["spec"]["runtimeRef"]["name"] == "torch-distributed"
    assert main(["platform", "render", "--arch", "fc", "--framework", "torch", "--runtime", "torch-distributed"]) == 2
    assert "--runtime names a Trainer v2 ClusterTrainingRuntime; add --trainer v2" in one_error_line(capsys)
