"""The kubernetes backend's logic through the official client, against a loopback FAKE of the API
(tests/platform/fake_kube_api.py): what it sends (every body checked against the CRD schemas), how it reads
job and InferenceService conditions, its deadline, log tail and clean-up. A real cluster is not exercised."""

import pytest
from fake_kube_api import fake_kube_api

from ytlabel.platform import cluster, deploy, jobs
from ytlabel.platform import manifests as M


def _job(framework: str, name: str = "ytlabel-fc-run", labels: dict | None = None) -> dict:
    return M.training_job(
        M.JobSettings("fc", framework, "s3://data/video", "s3://runs/fc", "img:1", workers=2, name=name, labels=labels)
    )


def _paths(api, method: str) -> list[str]:
    return [path.split("?")[0] for verb, path in api.requests if verb == method]


@pytest.mark.parametrize(
    "framework, plural, leader", [("torch", "pytorchjobs", "master"), ("keras", "tfjobs", "chief")]
)
def test_a_job_is_created_followed_to_success_and_deleted(framework, plural, leader):
    with fake_kube_api(polls_until_done=3) as (api, client):
        outcome = cluster.KubernetesBackend(poll_s=0.01, api_client=client).run(_job(framework))
    assert outcome.name == "ytlabel-fc-run" and outcome.state == "Succeeded"
    assert outcome.log_tail.splitlines()[0] == f"ytlabel-fc-run-{leader}-0 line 10"  # the last 50 of 60 lines
    base = f"/apis/kubeflow.org/v1/namespaces/kubeflow/{plural}"
    assert _paths(api, "POST") == [base]
    assert _paths(api, "GET").count(f"{base}/ytlabel-fc-run") == 3  # polled until the Succeeded condition
    assert f"/api/v1/namespaces/kubeflow/pods/ytlabel-fc-run-{leader}-0/log" in _paths(api, "GET")
    assert _paths(api, "DELETE") == [f"{base}/ytlabel-fc-run"]
    assert api.invalid == [] and api.objects == {}


def test_a_failed_job_raises_with_its_log_tail_and_is_still_deleted():
    with (
        fake_kube_api(outcome="Failed", polls_until_done=2) as (api, client),
        pytest.raises(
            jobs.JobFailed,
            match="PyTorchJob kubeflow/ytlabel-fc-run failed; last log lines:\nytlabel-fc-run-master-0 line 10",
        ),
    ):
        cluster.KubernetesBackend(poll_s=0.01, api_client=client).run(_job("torch"))
    assert api.objects == {}


def test_the_deadline_is_real():
    with fake_kube_api(polls_until_done=10_000) as (api, client):  # noqa: SIM117 - nested: the inner block needs the outer one running
        with pytest.raises(jobs.JobFailed, match="did not finish within 0 s \\(last state Running\\)"):
            cluster.KubernetesBackend(timeout_s=0.05, poll_s=0.01, api_client=client).run(_job("torch"))
    assert api.objects == {}  # deleted on the way out


def test_an_invalid_body_is_what_the_fake_refuses():
    job = _job("torch")
    job["spec"]["runPolicyy"] = {}  # a typo the strict CRD schema catches
    with fake_kube_api() as (api, client):  # noqa: SIM117 - nested: the inner block needs the outer one running
        with pytest.raises(jobs.JobFailed, match="cannot create PyTorchJob kubeflow/ytlabel-fc-run: 422"):
            cluster.KubernetesBackend(poll_s=0.01, api_client=client).run(job)
    assert api.invalid == ["spec: Additional properties are not allowed ('runPolicyy' was unexpected)"]


def test_cleanup_deletes_only_the_jobs_of_its_pipeline_run():
    with fake_kube_api(polls_until_done=10_000) as (api, client):
        backend = cluster.KubernetesBackend(timeout_s=0.02, poll_s=0.01, keep=True, api_client=client)
        for name, run in (("ytlabel-a", "run-1"), ("ytlabel-b", "run-2")):
            with pytest.raises(jobs.JobFailed):  # left running (keep=True) when its step is cut short
                backend.run(_job("keras", name, {"ytlabel.io/pipeline-run": run}))
        assert cluster.delete_run_jobs("kubeflow", "run-1", api_client=client) == 1
        assert [key[2] for key in api.objects] == ["ytlabel-b"]
        assert any("labelSelector=ytlabel.io%2Fpipeline-run%3Drun-1" in path for _, path in api.requests)


def test_an_inference_service_is_created_then_replaced_and_waited_for():
    with fake_kube_api() as (api, client):
        url = deploy.apply_inference_service(
            "yt8m", "s3://ytlabel/registry/yt8m/3", "kubeflow", poll_s=0.01, api_client=client
        )
        assert url == "http://yt8m.kubeflow.example.com"
        deploy.apply_inference_service(
            "yt8m", "s3://ytlabel/registry/yt8m/4", "kubeflow", poll_s=0.01, api_client=client
        )
    base = "/apis/serving.kserve.io/v1beta1/namespaces/kubeflow/inferenceservices"
    assert _paths(api, "POST") == [base, base]  # the second answers 409 AlreadyExists ...
    assert _paths(api, "PUT") == [f"{base}/yt8m"]  # ... and the spec is replaced at its resourceVersion
    stored = api.objects[("inferenceservices", "kubeflow", "yt8m")]
    assert stored["spec"]["predictor"]["model"]["storageUri"] == "s3://ytlabel/registry/yt8m/4"
    assert api.invalid == []


def _train_job(framework: str, name: str = "ytlabel-fc-run", labels: dict | None = None) -> dict:
    from ytlabel.platform import trainer_v2

    return trainer_v2.train_job(
        M.JobSettings("fc", framework, "s3://data/video", "s3://runs/fc", "img:1", workers=2, name=name, labels=labels)
    )


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_train_job_is_created_followed_by_its_conditions_and_node_0_log_and_deleted(framework):
    with fake_kube_api(polls_until_done=3) as (api, client):
        outcome = cluster.KubernetesBackend(poll_s=0.01, api_client=client).run(_train_job(framework))
    assert outcome.state == "Succeeded"  # the TrainJob's Complete condition
    pod = "ytlabel-fc-run-node-0-0-x7k2p"  # found by its JobSet labels, not guessed
    assert outcome.log_tail.splitlines()[0] == f"{pod} line 10"
    base = "/apis/trainer.kubeflow.org/v1alpha1/namespaces/kubeflow/trainjobs"
    assert _paths(api, "POST") == [base] and _paths(api, "DELETE") == [f"{base}/ytlabel-fc-run"]
    assert _paths(api, "GET").count(f"{base}/ytlabel-fc-run") == 3
    assert f"/api/v1/namespaces/kubeflow/pods/{pod}/log" in _paths(api, "GET")
    assert any("jobset.sigs.k8s.io%2Fjobset-name%3Dytlabel-fc-run" in path for _, path in api.requests)
    assert api.invalid == [] and api.objects == {}


def test_a_failed_train_job_raises_with_node_0s_log():
    with (
        fake_kube_api(outcome="Failed") as (api, client),
        pytest.raises(
            jobs.JobFailed,
            match="TrainJob kubeflow/ytlabel-fc-run failed; last log lines:\nytlabel-fc-run-node-0-0-x7k2p line 10",
        ),
    ):
        cluster.KubernetesBackend(poll_s=0.01, api_client=client).run(_train_job("keras"))
    assert api.objects == {}


@pytest.mark.parametrize(
    "served, trainer",
    [
        (("kubeflow.org/v1",), "v1"),
        (("trainer.kubeflow.org/v1alpha1", "jobset.x-k8s.io/v1alpha2"), "v2"),
        (("kubeflow.org/v1", "trainer.kubeflow.org/v1alpha1"), "v2"),  # both installed: the current API
    ],
)
def test_api_discovery_picks_the_trainer(served, trainer):
    with fake_kube_api(served=served) as (_, client):
        assert cluster.trainer_api(client) == trainer
    with fake_kube_api(served=("serving.kserve.io/v1beta1",)) as (_, client):  # noqa: SIM117 - nested: the inner block needs the outer one running
        with pytest.raises(jobs.JobFailed, match="serves neither Kubeflow Trainer"):
            cluster.trainer_api(client)


def test_cleanup_deletes_the_train_jobs_of_its_run_too():
    with fake_kube_api(polls_until_done=10_000) as (api, client):
        backend = cluster.KubernetesBackend(timeout_s=0.02, poll_s=0.01, keep=True, api_client=client)
        with pytest.raises(jobs.JobFailed):
            backend.run(_train_job("torch", "ytlabel-v2", {"ytlabel.io/pipeline-run": "run-1"}))
        with pytest.raises(jobs.JobFailed):
            backend.run(_job("torch", "ytlabel-v1", {"ytlabel.io/pipeline-run": "run-1"}))
        assert cluster.delete_run_jobs("kubeflow", "run-1", api_client=client) == 2
        assert api.objects == {}
