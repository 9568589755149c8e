"""Running rendered training jobs: on a cluster (`kubernetes`) or on this machine (`local`).

Both backends take the manifest from `manifests.training_job` and return a `JobOutcome`, so the
pipeline's train step does not care where the job ran.

    local       the pods' container command, run as local processes by `launch_local` with the same
                env contract the operator injects (MASTER_ADDR/RANK/WORLD_SIZE or TF_CONFIG); the
                exporter binds 127.0.0.1 on a free port instead of the pods' 0.0.0.0:9100
    kubernetes  creates the PyTorchJob/TFJob through the Kubernetes API, polls its conditions until
                Succeeded or Failed (with a real deadline), streams the master/chief log once it runs,
                keeps its tail for the failure message, and deletes the job on exit unless told to keep it
"""

import dataclasses
import sys
import threading
import time

from ytlabel.errors import YtlabelError
from ytlabel.training import distributed

TERMINAL = ("Succeeded", "Failed")
PLURALS = {"PyTorchJob": "pytorchjobs", "TFJob": "tfjobs"}
LEADER = {"PyTorchJob": ("pytorchReplicaSpecs", "Master", "master"), "TFJob": ("tfReplicaSpecs", "Chief", "chief")}


class JobFailed(YtlabelError):
    """The training job ended in Failed, or did not finish before its deadline."""


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    name: str
    state: str  # Succeeded (a failed job raises JobFailed)
    seconds: float
    log_tail: str = ""


def job_state(status: dict | None) -> str:
    """The operator's job state from `status.conditions`: the latest condition whose status is "True".

    Conditions are Created, Running, Restarting, Succeeded, Failed (kubeflow.org/v1 JobStatus).
    """
    current = "Pending"
    for condition in (status or {}).get("conditions") or []:
        if condition.get("status") == "True":
            current = condition.get("type", current)
    return current


def replicas(job: dict) -> int:
    field = LEADER[job["kind"]][0]
    return sum(spec["replicas"] for spec in job["spec"][field].values())


def leader_command(job: dict) -> list[str]:
    field, role, _ = LEADER[job["kind"]]
    return list(job["spec"][field][role]["template"]["spec"]["containers"][0]["command"])


class LocalBackend:
    """Runs a job's container command on 127.0.0.1 with the operator's env contract."""

    def run(self, job: dict) -> JobOutcome:
        command = leader_command(job)
        if command[0] != "ytlabel":
            raise YtlabelError(f"{job['metadata']['name']}: the local backend runs `ytlabel` commands, got {command[0]!r}")
        argv = [sys.executable, "-m", "ytlabel", *[_loopback(arg, replicas(job)) for arg in command[1:]]]
        framework = "torch" if job["kind"] == "PyTorchJob" else "keras"
        started = time.monotonic()
        code = distributed.launch_local(argv, replicas(job), framework) if replicas(job) > 1 else _single(argv)
        if code:
            raise JobFailed(f"{job['metadata']['name']}: a training process exited with {code}")
        return JobOutcome(job["metadata"]["name"], "Succeeded", round(time.monotonic() - started, 1))


def _loopback(arg: str, processes: int) -> str:
    """Pods expose their exporter on 0.0.0.0:9100; local processes bind loopback, one free port each."""
    if arg.startswith("metrics_host="):
        return "metrics_host=127.0.0.1"
    if arg.startswith("metrics_port="):
        return f"metrics_port={distributed.free_port(span=processes)}"
    return arg


def _single(argv: list[str]) -> int:
    import subprocess

    return subprocess.run(argv).returncode


class KubernetesBackend:
    """Creates the job through the Kubernetes API and waits for the training operator to finish it."""

    def __init__(self, timeout_s: float = 6 * 3600, poll_s: float = 10.0, keep: bool = False, api_client=None):
        self.timeout_s, self.poll_s, self.keep = timeout_s, poll_s, keep
        self._api_client = api_client

    def _clients(self):
        from kubernetes import client, config

        if self._api_client is None:
            try:
                config.load_incluster_config()  # a pipeline pod
            except config.ConfigException:
                config.load_kube_config()  # a workstation
            self._api_client = client.ApiClient()
        return client.CustomObjectsApi(self._api_client), client.CoreV1Api(self._api_client)

    def run(self, job: dict) -> JobOutcome:
        from kubernetes.client.exceptions import ApiException

        custom, core = self._clients()
        name, namespace, plural = job["metadata"]["name"], job["metadata"]["namespace"], PLURALS[job["kind"]]
        started = time.monotonic()
        try:
            custom.create_namespaced_custom_object("kubeflow.org", "v1", namespace, plural, job)
        except ApiException as error:
            raise JobFailed(f"cannot create {job['kind']} {namespace}/{name}: {error.status} {error.reason}") from error
        try:
            state, streaming = "Pending", False
            while state not in TERMINAL:
                if time.monotonic() - started > self.timeout_s:
                    raise JobFailed(f"{job['kind']} {namespace}/{name} did not finish within {self.timeout_s:.0f} s "
                                    f"(last state {state})")
                time.sleep(self.poll_s)
                current = custom.get_namespaced_custom_object("kubeflow.org", "v1", namespace, plural, name)
                state = job_state(current.get("status"))
                if state == "Running" and not streaming:
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
        try:
            custom.delete_namespaced_custom_object("kubeflow.org", "v1", job["metadata"]["namespace"],
                                                   PLURALS[job["kind"]], job["metadata"]["name"])
        except ApiException as error:
            if error.status != 404:
                raise

    def _stream_log(self, core, job: dict) -> None:
        pod = f"{job['metadata']['name']}-{LEADER[job['kind']][2]}-0"
        try:
            response = core.read_namespaced_pod_log(pod, job["metadata"]["namespace"], follow=True,
                                                    _preload_content=False)
            for line in response.stream():
                sys.stdout.write(f"[{pod}] {line.decode(errors='replace')}")
        except Exception as error:  # a log stream is best effort; the job's state decides success
            sys.stdout.write(f"[{pod}] log stream ended: {error}\n")

    def _log_tail(self, core, job: dict, lines: int = 50) -> str:
        from kubernetes.client.exceptions import ApiException

        pod = f"{job['metadata']['name']}-{LEADER[job['kind']][2]}-0"  # the operator's replica pod name
        try:
            return core.read_namespaced_pod_log(pod, job["metadata"]["namespace"], tail_lines=lines)
        except ApiException as error:
            return f"(no log from pod {pod}: {error.status} {error.reason})"


def delete_run_jobs(namespace: str, pipeline_run: str, api_client=None) -> int:
    """Deletes every PyTorchJob/TFJob labelled ytlabel.io/pipeline-run=<pipeline_run>; returns how many."""
    custom, _ = KubernetesBackend(api_client=api_client)._clients()
    deleted = 0
    for plural in PLURALS.values():
        listing = custom.list_namespaced_custom_object("kubeflow.org", "v1", namespace, plural,
                                                       label_selector=f"ytlabel.io/pipeline-run={pipeline_run[:63]}")
        for item in listing.get("items", []):
            custom.delete_namespaced_custom_object("kubeflow.org", "v1", namespace, plural, item["metadata"]["name"])
            deleted += 1
    return deleted


def service_ready(status: dict | None) -> bool:
    """An InferenceService is ready when its `Ready` condition is "True"."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (status or {}).get("conditions") or [])


def apply_inference_service(name: str, storage_uri: str, namespace: str, timeout_s: float = 900.0,
                            poll_s: float = 5.0, api_client=None) -> str:
    """Creates the InferenceService (or replaces its spec) and waits until Ready; returns its URL."""
    from kubernetes.client.exceptions import ApiException

    from ytlabel.platform.manifests import inference_service
    from ytlabel.platform.validate import validate

    service = inference_service(name, storage_uri, namespace=namespace)
    validate(service)
    custom, _ = KubernetesBackend(api_client=api_client)._clients()
    group, version, plural = "serving.kserve.io", "v1beta1", "inferenceservices"
    try:
        custom.create_namespaced_custom_object(group, version, namespace, plural, service)
    except ApiException as error:
        if error.status != 409:
            raise JobFailed(f"cannot create InferenceService {namespace}/{name}: {error.status} {error.reason}") from error
        current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        service["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        custom.replace_namespaced_custom_object(group, version, namespace, plural, name, service)
    deadline = time.monotonic() + timeout_s
    while True:
        current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        if service_ready(current.get("status")):
            return current["status"].get("url", "")
        if time.monotonic() > deadline:
            raise JobFailed(f"InferenceService {namespace}/{name} not Ready after {timeout_s:.0f} s")
        time.sleep(poll_s)


BACKENDS = {"local": LocalBackend, "kubernetes": KubernetesBackend}


def backend(name: str):
    if name not in BACKENDS:
        raise YtlabelError(f"backend {name!r}: choose one of {sorted(BACKENDS)}")
    return BACKENDS[name]()
