"""Job backends: the state logic of the Kubernetes backend, and the local backend running a rendered job."""

import json
import os

import pytest

from ytlabel.errors import YtlabelError
from ytlabel.pipeline import stages
from ytlabel.platform import deploy, jobs, local
from ytlabel.platform import manifests as M


@pytest.mark.parametrize(
    "conditions, state",
    [
        (None, "Pending"),
        ([{"type": "Created", "status": "True"}], "Created"),
        ([{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}], "Running"),
        (
            [
                {"type": "Created", "status": "True"},
                {"type": "Running", "status": "False"},
                {"type": "Succeeded", "status": "True"},
            ],
            "Succeeded",
        ),
        ([{"type": "Running", "status": "True"}, {"type": "Restarting", "status": "True"}], "Restarting"),
        ([{"type": "Running", "status": "False"}, {"type": "Failed", "status": "True"}], "Failed"),
    ],
)
def test_job_state_follows_the_operator_conditions(conditions, state):
    assert jobs.job_state({"conditions": conditions} if conditions is not None else None) == state


def test_service_ready():
    assert deploy.service_ready(
        {"conditions": [{"type": "PredictorReady", "status": "True"}, {"type": "Ready", "status": "True"}]}
    )
    assert not deploy.service_ready({"conditions": [{"type": "Ready", "status": "False"}]})
    assert not deploy.service_ready(None)


def _two_workers(synth_dir: str, out: str, framework: str) -> M.JobSettings:
    """A one-epoch fc job of two workers on the synthetic video shards (4 videos a batch)."""
    return M.JobSettings(
        "fc",
        framework,
        os.path.join(synth_dir, "video"),
        out,
        "unused:0",
        workers=2,
        overrides=("epochs=1", "batch_size=4", "validation_fraction=0", "model.head_hidden=8"),
    )


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_local_backend_runs_the_rendered_job_with_two_workers(synth_dir, tmp_path, framework):
    """The pods' own command, 2 replicas, the operator's env contract on 127.0.0.1."""
    out = str(tmp_path / "run")
    job = M.training_job(_two_workers(synth_dir, out, framework))
    assert jobs.replicas(job) == 2
    outcome = local.LocalBackend().run(job)
    assert outcome.state == "Succeeded" and outcome.name == f"ytlabel-fc-{framework}"
    result = json.load(open(os.path.join(out, "result.json")))
    assert result["world_size"] == 2 and result["framework"] == framework
    assert result["steps_per_epoch"] == 2  # per rank: 3 whole shards of 8 dealt to 2 ranks, batches of 4
    assert result["videos"] == 2 * 2 * 4  # steps x ranks x batch


def test_local_backend_reports_a_failed_job(synth_dir, tmp_path):
    job = M.training_job(
        M.JobSettings(
            "fc", "torch", os.path.join(synth_dir, "video"), str(tmp_path / "run"), "unused:0", overrides=("epochs=0",)
        )
    )
    with pytest.raises(jobs.JobFailed, match="ytlabel-fc-torch: a training process exited with 2"):
        local.LocalBackend().run(job)


@pytest.mark.parametrize(
    "conditions, state",
    [
        (None, "Pending"),
        ([{"type": "Created", "status": "True"}], "Created"),
        ([{"type": "Created", "status": "True"}, {"type": "Complete", "status": "True"}], "Succeeded"),
        ([{"type": "Created", "status": "True"}, {"type": "Failed", "status": "True"}], "Failed"),
        ([{"type": "Suspended", "status": "True"}], "Suspended"),
    ],
)
def test_a_train_jobs_state_follows_trainer_v2s_conditions(conditions, state):
    assert jobs.job_state({"conditions": conditions} if conditions is not None else None, "TrainJob") == state


def test_the_trainer_is_resolved_by_setting_or_for_the_local_backend():
    assert [stages.resolve_trainer(t, "local") for t in ("v1", "v2", "auto")] == ["v1", "v2", "v1"]
    with pytest.raises(YtlabelError, match="trainer 'v3': choose auto, v1"):
        stages.resolve_trainer("v3", "local")


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_local_backend_runs_a_two_node_train_job_whose_ranks_agree(synth_dir, tmp_path, capfd, framework):
    """Trainer v2's contract on 127.0.0.1: PET_* (torch) or the ytlabel-keras JobSet variables, from which
    `ytlabel train` builds TF_CONFIG itself; both ranks end with the same weights."""
    import re

    from ytlabel.platform import trainer_v2

    out = str(tmp_path / "run")
    job = trainer_v2.train_job(_two_workers(synth_dir, out, framework))
    assert (jobs.replicas(job), jobs.framework(job)) == (2, framework)
    outcome = local.LocalBackend().run(job)
    assert outcome.state == "Succeeded" and outcome.name == f"ytlabel-fc-{framework}"
    digests = dict(re.findall(r"rank (\d+) final weights sha256 (\w+)", capfd.readouterr().out))
    assert set(digests) == {"0", "1"} and digests["0"] == digests["1"]
    result = json.load(open(os.path.join(out, "result.json")))
    assert result["world_size"] == 2 and result["videos"] == 2 * 2 * 4  # steps x ranks x batch
