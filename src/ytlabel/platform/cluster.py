"""The Kubernetes backend: training jobs (v1 operator or Trainer v2) through the Kubernetes API, and their clean-up.

KubernetesBackend creates the job, polls its conditions until it succeeds or fails (with a real
deadline), streams the leader's log once it runs (the v1 master/chief pod; a TrainJob's node 0, found
by its JobSet labels), keeps the log's tail for the failure message, and deletes the job on exit unless
told to keep it. `trainer_api` says which trainer a cluster serves, by API discovery.
"""

import sys
import threading
import time

from ytlabel.platform.jobs import KINDS, TERMINAL, JobFailed, JobOutcome, job_state

TRAINER_GROUPS = {"v2": ("trainer.kubeflow.org", "v1alpha1"), "v1": ("kubeflow.org", "v1")}


def clients(api_client=None):
    """The API client and the custom-object and core APIs: in a pod its service account, else the kubeconfig."""
    from kubernetes import client, config

    if api_client is None:
        try:
            config.load_incluster_config()  # a pipeline pod
        except config.ConfigException:
            config.load_kube_config()  # a workstation
        api_client = client.ApiClient()
    return api_client, client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)


def trainer_api(api_client=None) -> str:
    """ "v2" when the cluster serves Kubeflow Trainer (trainer.kubeflow.org/v1alpha1), else "v1" when it serves
    the training operator (kubeflow.org/v1); Trainer v2 wins where both are installed."""
    from kubernetes import client

    api_client, _, _ = clients(api_client)
    served = {
        (group.name, version.version)
        for group in client.ApisApi(api_client).get_api_versions().groups
        for version in group.versions
    }
    for trainer in ("v2", "v1"):
        if TRAINER_GROUPS[trainer] in served:
            return trainer
    raise JobFailed(
        "the cluster serves neither Kubeflow Trainer (trainer.kubeflow.org/v1alpha1) nor the training "
        "operator (kubeflow.org/v1); install one, or run with backend=local"
    )


class KubernetesBackend:
    """Creates the job through the Kubernetes API and waits for its trainer to finish it."""

    def __init__(self, timeout_s: float = 6 * 3600, poll_s: float = 10.0, keep: bool = False, api_client=None):
        self.timeout_s, self.poll_s, self.keep = timeout_s, poll_s, keep
        self._api_client = api_client

    def _clients(self):
        self._api_client, custom, core = clients(self._api_client)
        return custom, core

    def run(self, job: dict) -> JobOutcome:
        from kubernetes.client.exceptions import ApiException

        custom, core = self._clients()
        kind = KINDS[job["kind"]]
        name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
        started = time.monotonic()
        try:
            custom.create_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, job)
        except ApiException as error:
            raise JobFailed(f"cannot create {job['kind']} {namespace}/{name}: {error.status} {error.reason}") from error
        try:
            state, streaming = "Pending", False
            while state not in TERMINAL:
                if time.monotonic() - started > self.timeout_s:
                    raise JobFailed(
                        f"{job['kind']} {namespace}/{name} did not finish within {self.timeout_s:.0f} s "
                        f"(last state {state})"
                    )
                time.sleep(self.poll_s)
                current = custom.get_namespaced_custom_object(kind.group, kind.version, namespace, kind.plural, name)
                state = job_state(current.get("status"), job["kind"])
                if not streaming and state not in TERMINAL and self._leader_running(core, job, state):
                    streaming = True  # the leader's log, line by line, into this step's log
                    threading.Thread(target=self._stream_log, args=(core, job), daemon=True).start()
            tail = self._log_tail(core, job)
            if state == "Failed":
                raise JobFailed(f"{job['kind']} {namespace}/{name} failed; last log lines:\n{tail}")
            return JobOutcome(name, state, round(time.monotonic() - started, 1), tail)
        finally:
            if not self.keep:
                self.delete(job)

    def delete(self, job: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        custom, _ = self._clients()
        kind = KINDS[job["kind"]]
        try:
            custom.delete_namespaced_custom_object(
                kind.group, kind.version, job["metadata"]["namespace"], kind.plural, job["metadata"]["name"]
            )
        except ApiException as error:
            if error.status != 404:
                raise

    def leader_pod(self, core, job: dict) -> str | None:
        """The pod whose log the step shows: the master/chief replica 0, or a TrainJob's node 0 (its name has a
        random suffix, so it is found by the JobSet's labels)."""
        name, namespace = job["metadata"]["name"], job["metadata"]["namespace"]
        if KINDS[job["kind"]].leader:
            return f"{name}-{KINDS[job['kind']].leader.lower()}-0"
        selector = (
            f"jobset.sigs.k8s.io/jobset-name={name},jobset.sigs.k8s.io/replicatedjob-name=node,"
            f"jobset.sigs.k8s.io/job-index=0,batch.kubernetes.io/job-completion-index=0"
        )
        pods = core.list_namespaced_pod(namespace, label_selector=selector).items
        return pods[0].metadata.name if pods else None

    def _leader_running(self, core, job: dict, state: str) -> bool:
        if KINDS[job["kind"]].leader:
            return state == "Running"
        pod = self.leader_pod(core, job)  # a TrainJob has no Running condition: its node 0 pod tells
        return pod is not None and core.read_namespaced_pod(pod, job["metadata"]["namespace"]).status.phase in (
            "Running",
            "Succeeded",
            "Failed",
        )

    def _stream_log(self, core, job: dict) -> None:
        pod = self.leader_pod(core, job)
        try:
            response = core.read_namespaced_pod_log(
                pod, job["metadata"]["namespace"], follow=True, _preload_content=False
            )
            for line in response.stream():
                sys.stdout.write(f"[{pod}] {line.decode(errors='replace')}")
        except Exception as error:  # noqa: BLE001 - a log stream is best effort; the job's state decides success
            sys.stdout.write(f"[{pod}] log stream ended: {error}\n")

    def _log_tail(self, core, job: dict, lines: int = 50) -> str:
        from kubernetes.client.exceptions import ApiException

        pod = self.leader_pod(core, job)
        if pod is None:
            return "(no leader pod found)"
        try:
            return core.read_namespaced_pod_log(pod, job["metadata"]["namespace"], tail_lines=lines)
        except ApiException as error:
            return f"(no log from pod {pod}: {error.status} {error.reason})"


def delete_run_jobs(namespace: str, pipeline_run: str, api_client=None) -> int:
    """Deletes every PyTorchJob/TFJob/TrainJob labelled ytlabel.io/pipeline-run=<pipeline_run>; returns how many.
    A kind the cluster does not serve (404) has nothing to delete."""
    from kubernetes.client.exceptions import ApiException

    _, custom, _ = clients(api_client)
    deleted = 0
    for kind in KINDS.values():
        try:
            listing = custom.list_namespaced_custom_object(
                kind.group,
                kind.version,
                namespace,
                kind.plural,
                label_selector=f"ytlabel.io/pipeline-run={pipeline_run[:63]}",
            )
        except ApiException as error:
            if error.status == 404:
                continue
            raise
        for item in listing.get("items", []):
            custom.delete_namespaced_custom_object(
                kind.group, kind.version, namespace, kind.plural, item["metadata"]["name"]
            )
            deleted += 1
    return deleted
