"""Kubeflow Trainer v2 manifests: TrainJobs and the ClusterTrainingRuntimes they run on (pure functions).

Trainer v2 (trainer.kubeflow.org/v1alpha1) replaces PyTorchJob/TFJob with one `TrainJob` that names a
runtime; the runtime holds a JobSet template whose replicated job `node` runs the training container
(also named `node`) once per node, as an Indexed Job. We ship two runtimes (Helm chart, optional):

    ytlabel-torch  mlPolicy.torch: Trainer injects PET_NNODES, PET_NPROC_PER_NODE, PET_NODE_RANK,
                   PET_MASTER_ADDR, PET_MASTER_PORT into `node`; `ytlabel train` reads them as torchrun
                   would (one process per node). Kubeflow's own `torch-distributed` runtime works too.
    ytlabel-keras  no TensorFlow policy exists in Trainer v2, so no TF_CONFIG is written. The runtime
                   gives each pod what JobSet knows (its JobSet name and completion index, through the
                   downward API) and the TrainJob adds the node count; `ytlabel train` builds TF_CONFIG
                   from them (training/distributed.py): workers are the JobSet's stable host names
                   <jobset>-node-0-<index>.<jobset>, port 2222, worker 0 writes the run.

Everything the v1 jobs set is kept: image, command, resources and GPUs per node, the S3 secret (as
secretKeyRef env: runtime patches carry env, not envFrom), the non-root security context, the
ServiceAccount, the /tmp volume, labels and the Prometheus annotations.
"""

from ytlabel.kinds import KERAS, TORCH
from ytlabel.platform.manifests import (
    LABELS,
    METRICS_PORT,
    JobSettings,
    container_security,
    placement,
    pod_security,
    resources,
    train_command,
    trainer_mounts,
    trainer_pod_metadata,
    trainer_volumes,
)
from ytlabel.training.distributed import JOBSET_ENV, NODE, NODE_INDEX_ENV, NUM_NODES_ENV, TF_PORT

API_VERSION = "trainer.kubeflow.org/v1alpha1"
RUNTIMES = {TORCH: "ytlabel-torch", KERAS: "ytlabel-keras"}  # the ClusterTrainingRuntimes the chart ships
PATCH_MANAGER = "ytlabel.io/platform"
S3_KEYS = (
    ("AWS_ACCESS_KEY_ID", False),
    ("AWS_SECRET_ACCESS_KEY", False),
    ("AWS_ENDPOINT_URL", True),
    ("AWS_DEFAULT_REGION", True),
    ("S3_USE_HTTPS", True),
    ("S3_VERIFY_SSL", True),
)


def train_job(settings: JobSettings, runtime: str | None = None) -> dict:
    """A TrainJob running `ytlabel train` on `workers` nodes of the framework's runtime (or `runtime`)."""
    labels = {
        **LABELS,
        "app.kubernetes.io/component": "trainer",
        "ytlabel.io/arch": settings.arch,
        "ytlabel.io/framework": settings.framework,
        **(settings.labels or {}),
    }
    env = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": settings.s3_secret, "key": key, "optional": optional}}}
        for key, optional in S3_KEYS
    ]
    if settings.framework == KERAS:
        env.append({"name": NUM_NODES_ENV, "value": str(settings.workers)})
    pod_patch = {
        "metadata": trainer_pod_metadata(settings),
        "spec": {
            "serviceAccountName": settings.service_account,
            "securityContext": pod_security(),
            **placement(settings),
            "volumes": trainer_volumes(),
            "containers": [{"name": NODE, "securityContext": container_security(), "volumeMounts": trainer_mounts()}],
        },
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "TrainJob",
        "metadata": {"name": settings.job_name, "namespace": settings.namespace, "labels": labels},
        "spec": {
            "runtimeRef": {
                "apiGroup": "trainer.kubeflow.org",
                "kind": "ClusterTrainingRuntime",
                "name": runtime or RUNTIMES[settings.framework],
            },
            "trainer": {
                "image": settings.image,
                "command": train_command(settings),
                "env": env,
                "numNodes": settings.workers,
                "numProcPerNode": 1,
                "resourcesPerNode": resources(settings),
            },
            "runtimePatches": [
                {
                    "manager": PATCH_MANAGER,
                    "trainingRuntimeSpec": {
                        "template": {
                            "spec": {"replicatedJobs": [{"name": NODE, "template": {"spec": {"template": pod_patch}}}]}
                        }
                    },
                }
            ],
        },
    }


def cluster_training_runtime(framework: str, image: str) -> dict:
    """Our ClusterTrainingRuntime for `framework`; `image` is the default the TrainJob's own replaces."""
    container = {
        "name": NODE,
        "image": image,
        "command": ["ytlabel", "train"],
        "securityContext": container_security(),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
    }
    if framework == KERAS:
        container["ports"].append({"name": "tf-worker", "containerPort": TF_PORT})
        container["env"] = [
            {
                "name": JOBSET_ENV,
                "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['jobset.sigs.k8s.io/jobset-name']"}},
            },
            {
                "name": NODE_INDEX_ENV,
                "valueFrom": {
                    "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
                },
            },
        ]
        policy = {"numNodes": 1}
    else:
        policy = {"numNodes": 1, "torch": {}}
    job = {
        "name": NODE,
        "replicas": 1,
        "template": {
            "metadata": {"labels": {"trainer.kubeflow.org/trainjob-ancestor-step": "trainer"}},
            "spec": {
                "backoffLimit": 3,
                "template": {
                    # The pods' own labels: the chart's NetworkPolicy selects training pods (and their peers) by them.
                    "metadata": {"labels": {**LABELS, "app.kubernetes.io/component": "trainer"}},
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "securityContext": pod_security(),
                        "containers": [container],
                    },
                },
            },
        },
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "ClusterTrainingRuntime",
        "metadata": {
            "name": RUNTIMES[framework],
            "labels": {
                **LABELS,
                "app.kubernetes.io/component": "training-runtime",
                "trainer.kubeflow.org/framework": "torch" if framework == "torch" else "tensorflow",
            },
        },
        "spec": {
            "mlPolicy": policy,
            "template": {
                "spec": {
                    "network": {"enableDNSHostnames": True, "publishNotReadyAddresses": True},
                    "replicatedJobs": [job],
                }
            },
        },
    }
