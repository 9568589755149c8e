"""KServe manifests as pure functions: the InferenceService, our ClusterServingRuntime, and the predictors'
ServiceAccount and S3 Secret.

InferenceService (deploymentMode Standard) with storageUri s3://... of a registry version, run by the `ytlabel`
ClusterServingRuntime; a ServiceAccount naming the Secret whose serving.kserve.io/s3-* annotations KServe's
storage initializer reads. Validated like every other object (`manifests.validated`).
"""

import urllib.parse

from ytlabel.errors import ConfigError
from ytlabel.platform.manifests import LABELS, chart_service_account, check_name, container_security, pod_security

MODEL_FORMAT = "ytlabel"  # the model format our ServingRuntime declares and InferenceServices ask for
SERVING_PORT = 8080


def inference_service(
    name: str,
    storage_uri: str,
    *,
    namespace: str = "kubeflow",
    service_account: str = "ytlabel-serving",
    gpus: int = 0,
    min_replicas: int = 1,
) -> dict:
    """A KServe InferenceService serving one registry version (storage_uri = s3://.../<name>/<version>)."""
    check_name(name, "InferenceService name")
    if not storage_uri.startswith("s3://"):
        raise ConfigError(f"storage_uri {storage_uri!r}: must be s3://bucket/prefix/<name>/<version>")
    resources = {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    if gpus:
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**LABELS, "app.kubernetes.io/component": "predictor"},
            "annotations": {"serving.kserve.io/deploymentMode": "Standard"},
        },
        "spec": {
            "predictor": {
                "serviceAccountName": service_account,
                # The predictor pods' labels, which the chart's NetworkPolicy selects.
                "labels": {**LABELS, "app.kubernetes.io/component": "predictor"},
                "minReplicas": min_replicas,
                "securityContext": pod_security(),  # the chart's champion has the same restricted context
                "model": {
                    "modelFormat": {"name": MODEL_FORMAT},
                    "runtime": MODEL_FORMAT,
                    "storageUri": storage_uri,
                    "protocolVersion": "v2",
                    "resources": resources,
                },
            }
        },
    }


def cluster_serving_runtime(image: str) -> dict:
    """The runtime that serves `ytlabel` model-format InferenceServices with `ytlabel serve`."""
    return {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": MODEL_FORMAT, "labels": {**LABELS, "app.kubernetes.io/component": "serving-runtime"}},
        "spec": {
            "supportedModelFormats": [{"name": MODEL_FORMAT, "version": "1", "autoSelect": True}],
            "protocolVersions": ["v1", "v2"],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "args": [
                        "serve",
                        "--model",
                        "/mnt/models",
                        "--name",
                        "{{.Name}}",
                        "--host",
                        "0.0.0.0",
                        "--http-port",
                        str(SERVING_PORT),
                    ],
                    "ports": [{"containerPort": SERVING_PORT, "protocol": "TCP"}],
                    # The server is ready once every model it serves has loaded (KServe's V2 health endpoint).
                    "readinessProbe": {
                        "httpGet": {"path": "/v2/health/ready", "port": SERVING_PORT},
                        "periodSeconds": 5,
                        "failureThreshold": 3,
                    },
                    "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}},
                    "securityContext": {
                        **container_security(),
                        "runAsNonRoot": True,
                        "runAsUser": 10001,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # The root filesystem is read-only; `ytlabel serve` keeps its scratch (and TF its caches) here.
                    "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                }
            ],
            "volumes": [{"name": "tmp", "emptyDir": {}}],
        },
    }


def serving_account(
    *, service_account: str = "ytlabel-serving", secret: str = "ytlabel-s3", namespace: str = "kubeflow"
) -> dict:
    """The predictors' ServiceAccount; it names the Secret whose serving.kserve.io/s3-* annotations KServe's
    storage initializer reads (the chart's NOTES print the `kubectl annotate` that adds them)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": service_account, "namespace": namespace, "labels": dict(LABELS)},
        "secrets": [{"name": secret}],
    }


def s3_credentials(
    endpoint: str,
    access_key: str,
    secret_key: str,
    *,
    service_account: str = "ytlabel-serving",
    secret: str = "ytlabel-s3",
    namespace: str = "kubeflow",
    region: str = "us-east-1",
) -> list[dict]:
    """The ServiceAccount and the S3 Secret, with real credentials and KServe's serving.kserve.io/s3-* annotations.

    Only rendered when asked for (`render --serve ... --s3-secret-from-env`): a Secret of placeholders would
    overwrite a real one on `kubectl apply`. The endpoint has no default, so plain HTTP is always a choice.
    """
    parsed = urllib.parse.urlparse(endpoint if "://" in endpoint else f"https://{endpoint}")
    if not parsed.netloc or parsed.scheme not in ("http", "https"):
        raise ConfigError(f"S3 endpoint {endpoint!r}: expected host[:port] or http(s)://host[:port]")
    if not access_key or not secret_key:
        raise ConfigError("the S3 Secret needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (neither may be empty)")
    https = parsed.scheme == "https"
    annotations = {
        "serving.kserve.io/s3-endpoint": parsed.netloc,
        "serving.kserve.io/s3-usehttps": "1" if https else "0",
        "serving.kserve.io/s3-region": region,
        "serving.kserve.io/s3-verifyssl": "1" if https else "0",
    }
    return [
        serving_account(service_account=service_account, secret=secret, namespace=namespace),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": secret, "namespace": namespace, "labels": dict(LABELS), "annotations": annotations},
            "stringData": {
                "AWS_ACCESS_KEY_ID": access_key,
                "AWS_SECRET_ACCESS_KEY": secret_key,
                "AWS_ENDPOINT_URL": f"{parsed.scheme}://{parsed.netloc}",
                "AWS_DEFAULT_REGION": region,
                "S3_USE_HTTPS": "1" if https else "0",
                "S3_VERIFY_SSL": "1" if https else "0",
            },
        },
    ]


def serving_objects(
    ref: str,
    registry: str,
    namespace: str = "kubeflow",
    gpus: int = 0,
    credentials: tuple[str, str, str] | None = None,
    release: str = "ytlabel",
) -> list[dict]:
    """ServiceAccount (+ the S3 Secret when `credentials` = (endpoint, access key, secret key) are given) and
    InferenceService for NAME[:VERSION|@ALIAS] in an s3:// registry.

    NAME:VERSION renders offline; NAME or NAME@ALIAS asks the registry which version that is.
    """
    from ytlabel.registry import Registry, parse_ref

    if not registry.startswith("s3://"):
        raise ConfigError("--serve needs an s3:// --registry (KServe's storage initializer downloads from S3)")
    name, version, _ = parse_ref(ref)
    if version is None:
        name, version = Registry(registry).resolve(ref)
    account = chart_service_account("serving", release)
    access = (
        s3_credentials(*credentials, namespace=namespace, service_account=account)
        if credentials
        else [serving_account(namespace=namespace, service_account=account)]
    )
    return [
        *access,
        inference_service(
            name, f"{registry.rstrip('/')}/{name}/{version}", namespace=namespace, gpus=gpus, service_account=account
        ),
    ]
