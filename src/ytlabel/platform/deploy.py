"""Deploying a registry version to a cluster: the InferenceService applied through the Kubernetes API (created,
or its spec replaced) and waited for until KServe says it is Ready. `pipeline/deploy.py` calls it for the
pipeline's deploy step with backend=kubernetes; the manifests themselves are rendered in inference.py.
"""

import time

from ytlabel.errors import YtlabelError
from ytlabel.platform.cluster import clients
from ytlabel.platform.inference import inference_service
from ytlabel.platform.validate import validate


class DeployFailed(YtlabelError):
    """The InferenceService could not be created, or did not become Ready before its deadline."""


def service_ready(status: dict | None) -> bool:
    """An InferenceService is ready when its `Ready` condition is "True"."""
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in (status or {}).get("conditions") or [])


def apply_inference_service(
    name: str, storage_uri: str, namespace: str, timeout_s: float = 900.0, poll_s: float = 5.0, api_client=None
) -> str:
    """Creates the InferenceService (or replaces its spec) and waits until Ready; returns its URL."""
    from kubernetes.client.exceptions import ApiException

    service = inference_service(name, storage_uri, namespace=namespace)
    validate(service)
    _, custom, _ = clients(api_client)
    group, version, plural = "serving.kserve.io", "v1beta1", "inferenceservices"
    try:
        custom.create_namespaced_custom_object(group, version, namespace, plural, service)
    except ApiException as error:
        if error.status != 409:
            raise DeployFailed(
                f"cannot create InferenceService {namespace}/{name}: {error.status} {error.reason}"
            ) from error
        current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        service["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        custom.replace_namespaced_custom_object(group, version, namespace, plural, name, service)
    deadline = time.monotonic() + timeout_s
    while True:
        current = custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        if service_ready(current.get("status")):
            return current["status"].get("url", "")
        if time.monotonic() > deadline:
            raise DeployFailed(f"InferenceService {namespace}/{name} not Ready after {timeout_s:.0f} s")
        time.sleep(poll_s)
