"""Offline validation of rendered manifests, as strict as an API server with the operators installed.

    core kinds     the Kubernetes OpenAPI schemas of `kubernetes-validate`, strict (unknown fields fail)
    custom kinds   the operators' CRD schemas in platform/crds/ (copied from kubeflow/trainer v1.9.4 and master,
                   kserve 0.20+, prometheus-operator v0.93.0; see crds/ATTRIBUTION.md), made strict:
                   every object schema that lists properties refuses others unless it says
                   x-kubernetes-preserve-unknown-fields
    webhook rules  what the schemas cannot say: PyTorchJob containers are named `pytorch` and it has
                   exactly one Master; TFJob containers are named `tensorflow`; a Trainer v2 runtime
                   has a `node` job with a `node` container; job names are DNS-1035
CEL rules (x-kubernetes-validations) are not evaluated.
"""

import copy
import functools
import glob
import os
import re

import jsonschema
import yaml

from ytlabel.errors import YtlabelError

KUBERNETES_VERSION = "1.33"
CRD_DIR = os.path.join(os.path.dirname(__file__), "crds")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
METADATA_KEYS = {"name", "namespace", "labels", "annotations", "generateName"}
CONTAINER_NAMES = {"PyTorchJob": ("pytorchReplicaSpecs", "pytorch"), "TFJob": ("tfReplicaSpecs", "tensorflow")}


class ManifestError(YtlabelError):
    """A rendered manifest that an API server (or an operator's webhook) would reject."""


def validate(manifest: dict) -> None:
    """Raises ManifestError listing every problem of `manifest`, or returns None."""
    found = problems(manifest)
    if found:
        where = f"{manifest.get('kind', '?')}/{(manifest.get('metadata') or {}).get('name', '?')}"
        raise ManifestError(f"{where}: " + "; ".join(found))


def problems(manifest: dict) -> list[str]:
    api_version, kind = manifest.get("apiVersion", ""), manifest.get("kind", "")
    schema = crd_schemas().get((api_version, kind))
    if schema is None:
        return _core_problems(manifest)
    found = [
        f"{_path(error)}: {error.message}"
        for error in sorted(jsonschema.Draft7Validator(schema).iter_errors(manifest), key=lambda e: list(e.path))
    ]
    return found + _metadata_problems(manifest.get("metadata")) + _webhook_problems(manifest)


def _core_problems(manifest: dict) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{_path(error)}: {error.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [
            (
                f"no schema for {manifest.get('apiVersion')}/{manifest.get('kind')} (neither core Kubernetes "
                f"{KUBERNETES_VERSION} nor a CRD in platform/crds)"
            )
        ]
    return _metadata_problems(manifest.get("metadata"))


def _metadata_problems(metadata) -> list[str]:
    if not isinstance(metadata, dict):
        return ["metadata: required object"]
    found = [f"metadata.{key}: unknown field" for key in sorted(set(metadata) - METADATA_KEYS)]
    name = metadata.get("name", "")
    if not isinstance(name, str) or len(name) > 253 or not DNS_1123.match(name):
        found.append(f"metadata.name: {name!r} is not a DNS-1123 name")
    for field in ("labels", "annotations"):
        values = metadata.get(field, {})
        if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
            found.append(f"metadata.{field}: must map strings to strings")
    return found


def _webhook_problems(manifest: dict) -> list[str]:
    kind = manifest.get("kind")
    found = []
    if kind in ("PyTorchJob", "TFJob", "TrainJob", "InferenceService"):
        name = manifest["metadata"].get("name", "")
        if len(name) > 63 or not DNS_1035.match(name):
            found.append(f"metadata.name: {name!r} must be a DNS-1035 label")
    if kind in CONTAINER_NAMES:
        field, container = CONTAINER_NAMES[kind]
        replicas = manifest.get("spec", {}).get(field, {})
        for role, replica in replicas.items():
            names = [c.get("name") for c in replica.get("template", {}).get("spec", {}).get("containers", [])]
            if container not in names:
                found.append(f"spec.{field}.{role}: needs a container named {container!r} (has {names})")
        if kind == "PyTorchJob" and replicas.get("Master", {}).get("replicas") != 1:
            found.append("spec.pytorchReplicaSpecs.Master: exactly one replica is required")
    if kind == "ClusterTrainingRuntime":  # Trainer v2 fills the `node` container of the `node` job from the TrainJob
        jobs = {
            job.get("name"): job
            for job in manifest.get("spec", {}).get("template", {}).get("spec", {}).get("replicatedJobs", [])
        }
        containers = [
            c.get("name")
            for c in jobs.get("node", {})
            .get("template", {})
            .get("spec", {})
            .get("template", {})
            .get("spec", {})
            .get("containers", [])
        ]
        if "node" not in containers:
            found.append(
                f"spec.template.spec.replicatedJobs: needs a job 'node' with a container 'node' (has {containers})"
            )
    return found


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> strict JSON schema of every served version of every shipped CRD."""
    schemas = {}
    for path in sorted(glob.glob(os.path.join(CRD_DIR, "*.yaml"))):
        with open(path) as handle:
            crd = yaml.safe_load(handle)
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: dict) -> dict:
    """A copy where object schemas with listed properties refuse unknown ones (like kubectl --validate=strict)."""
    schema = copy.deepcopy(schema)

    def visit(node):
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    # metadata is checked by _metadata_problems; the CRDs only say "type: object" for it
    schema.get("properties", {}).get("metadata", {}).pop("additionalProperties", None)
    return schema


def _path(error) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(root)"
