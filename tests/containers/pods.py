"""Pods from our manifests, run as containers the way a kubelet would run them.

`docker_run_args(pod_spec, ...)` turns a Kubernetes PodSpec (one container, as every pod we render has) into
`docker run` arguments: the image, command and args, env (values, Secret keys, downward-API fields), envFrom
Secrets, the pod's and the container's securityContext (user, read-only root, dropped capabilities, no
privilege escalation), emptyDir volumes (tmpfs; `medium: Memory` at /dev/shm as the shm size) and the CPU and
memory limits. What an operator adds (env contract, host names) comes from the caller. A field this module
does not know is refused, so a new field in a manifest is never silently dropped.

What a container cannot reproduce: GPU limits (no GPU here), the ServiceAccount (no API server), probes (the
caller polls them), and CPU limits above this machine's cores (clamped; the pod would get more).
"""

import dataclasses
import os
import re
import time

from tools.engine import LABEL, Engine

POD_KEYS = {
    "containers",
    "securityContext",
    "volumes",
    "serviceAccountName",
    "restartPolicy",
    "nodeSelector",
    "tolerations",
    "terminationGracePeriodSeconds",
    "subdomain",
    "hostname",
    "automountServiceAccountToken",
}
CONTAINER_KEYS = {
    "name",
    "image",
    "command",
    "args",
    "env",
    "envFrom",
    "ports",
    "resources",
    "securityContext",
    "volumeMounts",
    "readinessProbe",
    "livenessProbe",
    "startupProbe",
    "imagePullPolicy",
    "workingDir",
}


class PodSpecError(ValueError):
    """The pod uses something these containers cannot honour."""


@dataclasses.dataclass
class Pod:
    """A pod's container: its name (= host name on the pod network) and the engine that runs it."""

    engine: Engine
    name: str

    def state(self) -> dict:
        import json

        done = self.engine.run("inspect", "--format", "{{json .State}}", self.name)
        return json.loads(done.stdout)

    def wait(self, timeout_s: float) -> int:
        """The container's exit code once it stops (AssertionError with its log tail if it runs past timeout_s)."""
        deadline = time.monotonic() + timeout_s
        while self.state()["Running"]:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} still running after {timeout_s:.0f}s:\n{self.logs(40)}")
            time.sleep(1)
        return int(self.state()["ExitCode"])

    def logs(self, lines: int = 30) -> str:
        done = self.engine.run("logs", "--tail", str(lines), self.name, check=False)
        return (done.stdout + done.stderr).strip()

    def host_port(self, container_port: int) -> int:
        done = self.engine.run("port", self.name, f"{container_port}/tcp")
        return int(done.stdout.strip().splitlines()[0].rsplit(":", 1)[1])


def docker_run_args(
    spec: dict,
    *,
    name: str,
    network: str,
    env: dict | None = None,
    secrets: dict | None = None,
    fields: dict | None = None,
    mounts: dict | None = None,
    publish: tuple[int, ...] = (),
    aliases: tuple[str, ...] = (),
    cores: int | None = None,
) -> list[str]:
    """`docker run -d` arguments for the pod `spec` (a PodSpec dict) as container `name` on `network`.

    Args:
        env: what the operator injects (MASTER_ADDR, TF_CONFIG, PET_*...), added after the pod's own env.
        secrets: Secret name -> {key: value}, for envFrom and secretKeyRef.
        fields: downward-API fieldPath -> value (e.g. metadata.annotations['...']).
        mounts: volume name -> host path, for volumes that are not emptyDir (read-only bind mounts).
        publish: container ports to publish on 127.0.0.1 (the test reaches the pod through them).
        aliases: more names the pod resolves as (e.g. `<pod>.<subdomain>`, a JobSet pod's stable host name).
    """
    unknown = set(spec) - POD_KEYS
    if unknown:
        raise PodSpecError(f"pod {name}: fields {sorted(unknown)} are not handled by this runner")
    if len(spec["containers"]) != 1:
        raise PodSpecError(f"pod {name}: {len(spec['containers'])} containers; our pods have one")
    [container] = spec["containers"]
    unknown = set(container) - CONTAINER_KEYS
    if unknown:
        raise PodSpecError(f"pod {name}: container fields {sorted(unknown)} are not handled by this runner")
    args = ["run", "-d", "--name", name, "--hostname", name[:63], "--network", network, "--label", f"{LABEL}=1"]
    if network not in ("none", "host", "bridge"):  # a pod network: the pod's name resolves to it
        for alias in (name, *aliases):
            args += ["--network-alias", alias]
    args += _security(spec.get("securityContext", {}), container.get("securityContext", {}), name)
    args += _volumes(spec.get("volumes", []), container.get("volumeMounts", []), mounts or {}, name)
    args += _resources(container.get("resources", {}), cores or os.cpu_count() or 1)
    for key, value in {**_env(container, secrets or {}, fields or {}, name), **(env or {})}.items():
        args += ["--env", f"{key}={value}"]
    for port in publish:
        args += ["--publish", f"127.0.0.1::{port}"]
    if container.get("workingDir"):
        args += ["--workdir", container["workingDir"]]
    command, rest = container.get("command"), list(container.get("args", []))
    if command:
        args += ["--entrypoint", command[0], container["image"], *command[1:], *rest]
    else:
        args += [container["image"], *rest]
    return args


def run_pod(engine: Engine, spec: dict, **kwargs) -> Pod:
    """Starts the pod's container (detached) and returns it."""
    engine.run(*docker_run_args(spec, **kwargs))
    return Pod(engine, kwargs["name"])


def _security(pod: dict, container: dict, name: str) -> list[str]:
    merged = {**pod, **container}
    user, group = merged.get("runAsUser"), merged.get("runAsGroup", merged.get("runAsUser"))
    if merged.get("runAsNonRoot") and not user:
        raise PodSpecError(f"pod {name}: runAsNonRoot without a numeric runAsUser cannot be checked here")
    args = [] if user is None else ["--user", f"{user}:{group}"]
    if pod.get("fsGroup") is not None:
        args += ["--group-add", str(pod["fsGroup"])]
    if merged.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    if merged.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    for capability in merged.get("capabilities", {}).get("drop", []):
        args += ["--cap-drop", capability]
    for capability in merged.get("capabilities", {}).get("add", []):
        args += ["--cap-add", capability]
    profile = merged.get("seccompProfile", {}).get("type", "RuntimeDefault")
    if profile != "RuntimeDefault":
        raise PodSpecError(f"pod {name}: seccompProfile {profile} (only RuntimeDefault, Docker's default, is run)")
    return args


def _volumes(volumes: list[dict], mounts: list[dict], host_paths: dict, name: str) -> list[str]:
    args, by_name = [], {volume["name"]: volume for volume in volumes}
    for mount in mounts:
        volume = by_name.get(mount["name"])
        if volume is None:
            raise PodSpecError(f"pod {name}: volumeMount {mount['name']!r} names no volume")
        path = mount["mountPath"]
        if volume["name"] in host_paths:  # filled by someone else first (e.g. KServe's storage initializer)
            args += ["--volume", f"{host_paths[volume['name']]}:{path}:{'ro' if mount.get('readOnly') else 'rw'}"]
        elif "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            if path == "/dev/shm":
                args += ["--shm-size", _bytes(size or "64Mi")]
            else:  # an empty directory the pod's user can write, gone with the pod
                args += ["--tmpfs", f"{path}:rw,exec,mode=1777" + (f",size={_bytes(size)}" if size else "")]
        else:
            raise PodSpecError(f"pod {name}: volume {volume['name']!r} ({sorted(volume)}) needs a host path")
    return args


def _resources(resources: dict, cores: int) -> list[str]:
    limits, args = resources.get("limits", {}), []
    if "cpu" in limits:
        args += ["--cpus", str(min(_cores(limits["cpu"]), cores))]
    if "memory" in limits:
        args += ["--memory", _bytes(limits["memory"])]
    return args


def _env(container: dict, secrets: dict, fields: dict, name: str) -> dict:
    out = {}
    for source in container.get("envFrom", []):
        if set(source) != {"secretRef"}:
            raise PodSpecError(f"pod {name}: envFrom {source} (only secretRef is run)")
        secret = source["secretRef"]["name"]
        if secret not in secrets:
            raise PodSpecError(f"pod {name}: envFrom Secret {secret!r} was not given")
        out.update(secrets[secret])
    for variable in container.get("env", []):
        if "value" in variable:
            out[variable["name"]] = variable["value"]
            continue
        source = variable.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            value = secrets.get(ref["name"], {}).get(ref["key"])
            if value is None and not ref.get("optional"):
                raise PodSpecError(f"pod {name}: {variable['name']} needs Secret {ref['name']}/{ref['key']}")
            if value is not None:
                out[variable["name"]] = value
        elif "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            if path not in fields:
                raise PodSpecError(f"pod {name}: {variable['name']} reads {path}, which was not given")
            out[variable["name"]] = fields[path]
        else:
            raise PodSpecError(f"pod {name}: {variable['name']} has valueFrom {sorted(source)}")
    return out


def _cores(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _bytes(quantity: str) -> str:
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", str(quantity))
    if not match:
        raise PodSpecError(f"quantity {quantity!r} not understood")
    scale = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 10**3, "M": 10**6, "G": 10**9, None: 1}[match.group(2)]
    return str(int(match.group(1)) * scale)
