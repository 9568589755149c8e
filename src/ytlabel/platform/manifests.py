"""Kubernetes manifests as pure functions: training jobs (serving objects are in platform/inference.py).

Nothing here talks to a cluster. Every function returns plain dicts that `platform/validate.py` checks
against the Kubernetes schemas (core kinds) and the operators' CRDs (custom kinds) in strict mode.

Training (the Kubeflow training operator, kubeflow.org/v1):
    torch -> PyTorchJob: 1 Master + (workers - 1) Worker pods, container `pytorch`; the operator
             injects MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK, which `ytlabel train` reads.
    keras -> TFJob: 1 Chief + (workers - 1) Worker pods, container `tensorflow`; the operator
             injects TF_CONFIG. The chief writes the run directory.
    Each pod runs one `ytlabel train` process (nprocPerNode "1"). The run directory is on S3, so a
    restarted pod (restartPolicy OnFailure) resumes from the last checkpoint there.
"""

import dataclasses
import re

from ytlabel.config import default_preset
from ytlabel.errors import ConfigError
from ytlabel.kinds import FRAMEWORKS, TORCH
from ytlabel.models.spec import ARCHITECTURES

DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
METRICS_PORT = 9100  # the trainers' Prometheus exporter (one process per pod, so one port)
LABELS = {"app.kubernetes.io/part-of": "ytlabel"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
SHM_SIZE = "2Gi"  # trainers' /dev/shm (counted against the pod's memory limit as it fills)


@dataclasses.dataclass(frozen=True)
class JobSettings:
    """One training job. Every field is validated.

    Attributes:
        arch: architecture (see `ytlabel models list`).
        framework: "torch" (PyTorchJob) or "keras" (TFJob).
        data: training shards, normally s3://bucket/prefix.
        out: run directory; s3:// so pods can restart and resume (empty: s3://ytlabel/runs/<job name>).
        image: trainer image (`platform.images.trainer(framework)`, images/Dockerfile.trainer-*).
        workers: pods in total (master/chief included).
        gpus: GPUs per pod; torch pods run one process each, so at most 1 there.
        overrides: `key=value` training settings passed through to `ytlabel train`.
        preset: `--config` of `ytlabel train`: a shipped preset's name, or `none` (default: the architecture's
            own preset, as `ytlabel train` uses by default).
        name: job name (DNS-1035); default ytlabel-<arch>-<framework>.
        namespace: where the job runs.
        s3_secret: Secret with AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (+ endpoint variables).
        service_account: pods' ServiceAccount.
        cpu, memory: requests and limits per pod.
        labels: extra labels for the job and its pods (the pipeline's cleanup step selects on them).
        node_selector: the pods' nodeSelector (e.g. a GPU node pool's label).
        tolerations: the pods' tolerations; with gpus > 0 and none given, the usual GPU taint
            `nvidia.com/gpu:NoSchedule` is tolerated.
    """

    arch: str
    framework: str
    data: str
    out: str
    image: str
    workers: int = 1
    gpus: int = 0
    overrides: tuple[str, ...] = ()
    preset: str | None = None
    name: str | None = None
    namespace: str = "kubeflow"
    s3_secret: str = "ytlabel-s3"
    service_account: str = "ytlabel-trainer"
    cpu: str = "4"
    memory: str = "16Gi"
    labels: dict | None = None  # extra labels on the job and its pods, e.g. the pipeline run that owns it
    node_selector: dict | None = None  # where the pods may run, e.g. {"cloud.google.com/gke-accelerator": "..."}
    tolerations: tuple[dict, ...] | None = None  # taints the pods tolerate (None: the GPU taint when gpus > 0)

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"arch={self.arch!r}: choose one of {sorted(ARCHITECTURES)}")
        if self.framework not in FRAMEWORKS:
            raise ConfigError(f"framework={self.framework!r}: must be 'torch' or 'keras'")
        if self.workers < 1:
            raise ConfigError(f"workers={self.workers}: must be >= 1")
        if self.gpus < 0:
            raise ConfigError(f"gpus={self.gpus}: must be >= 0")
        if self.framework == TORCH and self.gpus > 1:
            raise ConfigError(
                f"gpus={self.gpus}: PyTorchJob pods run one training process each; "
                f"use workers={self.workers * self.gpus} with gpus=1"
            )
        check_name(self.job_name, "job name")
        if self.preset not in (None, "none") and (
            self.preset not in ARCHITECTURES or default_preset(self.preset, None) != self.preset
        ):
            raise ConfigError(
                f"--config {self.preset!r}: a pod reads only the presets the image ships "
                f"({', '.join(sorted(ARCHITECTURES))}) or 'none'; pass other settings as key=value"
            )
        for override in self.overrides:
            if "=" not in override:
                raise ConfigError(f"override {override!r}: expected key=value")

    @property
    def pod_tolerations(self) -> list[dict]:
        if self.tolerations is not None:
            return [dict(toleration) for toleration in self.tolerations]
        return [dict(GPU_TOLERATION)] if self.gpus else []

    @property
    def job_name(self) -> str:
        return self.name or f"ytlabel-{self.arch.replace('_', '-')}-{self.framework}"

    @property
    def run_dir(self) -> str:
        return self.out or f"s3://ytlabel/runs/{self.job_name}"


def chart_service_account(role: str, release: str = "ytlabel") -> str:
    """The ServiceAccount the Helm chart creates for `role` (trainer, serving, pipeline) in a release: its
    fullname rule (the release name if it contains "ytlabel", else <release>-ytlabel, at most 63 characters)
    plus the role, so rendered jobs name the accounts the chart installed under any release name."""
    fullname = release if "ytlabel" in release else f"{release}-ytlabel"
    return check_name(f"{fullname[:63].rstrip('-')}-{role}", "ServiceAccount name")


def check_name(name: str, what: str) -> str:
    """Job and service names must be DNS-1035 labels (the operators' webhooks reject others)."""
    if len(name) > 63 or not DNS_1035.match(name):
        raise ConfigError(
            f"{what} {name!r}: must be a DNS-1035 label (lowercase letters, digits, '-', "
            f"starting with a letter, at most 63 characters)"
        )
    return name


def train_command(settings: JobSettings) -> list[str]:
    """The `ytlabel train` command every training pod runs (v1 jobs and v2 TrainJobs alike)."""
    return [
        "ytlabel",
        "train",
        "--arch",
        settings.arch,
        "--framework",
        settings.framework,
        "--data",
        settings.data,
        "--out",
        settings.run_dir,
        "--config",
        settings.preset or settings.arch,
        f"metrics_port={METRICS_PORT}",
        "metrics_host=0.0.0.0",
        *settings.overrides,
    ]


def resources(settings: JobSettings) -> dict:
    """Requests and limits of one training pod (GPUs as limits)."""
    out = {
        "requests": {"cpu": settings.cpu, "memory": settings.memory},
        "limits": {"cpu": settings.cpu, "memory": settings.memory},
    }
    if settings.gpus:
        out["limits"]["nvidia.com/gpu"] = str(settings.gpus)
    return out


def training_job(settings: JobSettings) -> dict:
    """A PyTorchJob (torch) or TFJob (keras) running `ytlabel train` in every pod."""
    command = train_command(settings)
    if settings.framework == TORCH:
        container, kind, field, roles = "pytorch", "PyTorchJob", "pytorchReplicaSpecs", ("Master", "Worker")
    else:
        container, kind, field, roles = "tensorflow", "TFJob", "tfReplicaSpecs", ("Chief", "Worker")
    replicas = {roles[0]: _replica(settings, container, command, 1)}
    if settings.workers > 1:
        replicas[roles[1]] = _replica(settings, container, command, settings.workers - 1)
    spec = {
        field: replicas,
        "runPolicy": {"backoffLimit": 3, "cleanPodPolicy": "None", "ttlSecondsAfterFinished": 86400},
    }
    if settings.framework == TORCH:
        spec["nprocPerNode"] = "1"
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": kind,
        "metadata": {
            "name": settings.job_name,
            "namespace": settings.namespace,
            "labels": {
                **LABELS,
                "app.kubernetes.io/component": "trainer",
                "ytlabel.io/arch": settings.arch,
                "ytlabel.io/framework": settings.framework,
                **(settings.labels or {}),
            },
        },
        "spec": spec,
    }


def trainer_pod_metadata(settings: JobSettings) -> dict:
    """Labels and Prometheus scrape annotations of every training pod (v1 replicas and v2 nodes)."""
    from ytlabel import __version__

    labels = {
        **LABELS,
        "app.kubernetes.io/name": "ytlabel-trainer",
        "app.kubernetes.io/instance": settings.job_name,
        "app.kubernetes.io/version": __version__,
        "app.kubernetes.io/managed-by": "ytlabel",
        "app.kubernetes.io/component": "trainer",
        **(settings.labels or {}),
    }
    return {"labels": labels, "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)}}


def _replica(settings: JobSettings, container: str, command: list[str], count: int) -> dict:
    return {
        "replicas": count,
        "restartPolicy": "OnFailure",
        "template": {
            "metadata": trainer_pod_metadata(settings),
            "spec": {
                "serviceAccountName": settings.service_account,
                "securityContext": pod_security(),
                **placement(settings),
                "containers": [
                    {
                        "name": container,
                        "image": settings.image,
                        "command": command,
                        "envFrom": [{"secretRef": {"name": settings.s3_secret}}],
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
                        "resources": resources(settings),
                        "securityContext": container_security(),
                        "volumeMounts": trainer_mounts(),
                    }
                ],
                "volumes": trainer_volumes(),
            },
        },
    }


def placement(settings: JobSettings) -> dict:
    """The pods' nodeSelector and tolerations, where there are any."""
    out: dict[str, object] = {}
    if settings.node_selector:
        out["nodeSelector"] = dict(settings.node_selector)
    if settings.pod_tolerations:
        out["tolerations"] = settings.pod_tolerations
    return out


def trainer_volumes() -> list[dict]:
    """A writable /tmp under the read-only root, and a memory-backed /dev/shm: the runtime's default 64 MB
    is too small for NCCL's buffers and DataLoader workers' shared-memory batches."""
    return [{"name": "tmp", "emptyDir": {}}, {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}]


def trainer_mounts() -> list[dict]:
    return [{"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}]


def pod_security() -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict:
    return {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}


def to_yaml(objects: list[dict]) -> str:
    """Multi-document YAML without anchors or aliases (`&id001`), which PyYAML writes where two replicas share
    one list: kubectl accepts them, but every reader of the manifest has to resolve them by eye."""
    import yaml

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:
            return True

    return yaml.dump_all(objects, Dumper=Plain, sort_keys=False)


def validated(objects: list[dict]) -> list[dict]:
    """`objects` after strict validation of each (ManifestError names the first invalid one)."""
    from ytlabel.platform.validate import validate

    for manifest in objects:
        validate(manifest)
    return objects
