"""The container engine that `make images` and the container tests use.

Docker Engine first: kfp.local.DockerRunner speaks the Docker API, and podman's Docker API hides a failed
step (../shared/containers.md). A daemon that already answers (DOCKER_HOST, /var/run/docker.sock) is used as
it is; otherwise Debian's `dockerd` is started as root on a socket of our own and stopped again when the
`running_engine()` block ends, with everything it ran. Where only podman is installed, it builds and runs the
images (no daemon to start) but the pipeline-in-containers test needs Docker.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator

INSTALL_HINT = "apt-get install docker.io (or podman)"
STATE = "/run/ytlabel-docker"  # our dockerd's socket, pid file and log; its images persist under DATA_ROOT
DATA_ROOT = "/var/lib/ytlabel-docker"
LABEL = "io.ytlabel.test"  # every container and network the tests create carries it, so cleanup finds them


class EngineError(RuntimeError):
    """No usable engine, or an engine command failed; the message is one line for the user."""


@dataclasses.dataclass(frozen=True)
class Engine:
    kind: str  # "docker" or "podman"
    cli: str  # path of the command-line client
    env: dict  # the environment the client runs with (DOCKER_HOST for our own daemon)
    own: bool = False  # the daemon under DATA_ROOT: everything in it is this project's

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float | None = 600,
        capture: bool = True,
        input: str | None = None,
    ) -> subprocess.CompletedProcess:
        """`docker ARGS` (or podman); EngineError with the command and its last output lines on failure."""
        done = subprocess.run(
            [self.cli, *args], env=self.env, capture_output=capture, text=True, timeout=timeout, input=input
        )
        if check and done.returncode != 0:
            tail = "\n".join(((done.stdout or "") + (done.stderr or "")).strip().splitlines()[-15:])
            raise EngineError(f"`{self.kind} {' '.join(args[:3])} ...` exited {done.returncode}:\n{tail}")
        return done

    def image_id(self, reference: str) -> str | None:
        done = self.run("image", "inspect", "--format", "{{.Id}}", reference, check=False)
        return done.stdout.strip() if done.returncode == 0 else None

    def docker_host(self) -> str:
        """The DOCKER_HOST a Docker SDK client (kfp.local.DockerRunner) must use to reach this engine."""
        return self.env.get("DOCKER_HOST", "unix:///var/run/docker.sock")


@contextlib.contextmanager
def running_engine() -> Iterator[Engine]:
    """An engine that answers, for the duration of the block; a daemon started here is stopped after it."""
    docker = shutil.which("docker")
    if docker:
        env = dict(os.environ)
        for host in (
            [env["DOCKER_HOST"]]
            if env.get("DOCKER_HOST")
            else ["unix:///var/run/docker.sock", f"unix://{STATE}/docker.sock"]
        ):
            engine = Engine(
                "docker",
                docker,
                {**env, "DOCKER_HOST": host, "DOCKER_BUILDKIT": "0"},
                own=host == f"unix://{STATE}/docker.sock",
            )
            if _answers(engine):
                yield engine
                return
        if shutil.which("dockerd"):
            with _own_dockerd(docker, env) as engine:
                yield engine
            return
    podman = shutil.which("podman")
    if podman:
        yield Engine("podman", podman, dict(os.environ))
        return
    raise EngineError(f"no container engine found: {INSTALL_HINT}")


def _answers(engine: Engine) -> bool:
    try:
        return engine.run("version", "--format", "{{.Server.Version}}", check=False, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@contextlib.contextmanager
def _own_dockerd(docker: str, env: dict) -> Iterator[Engine]:
    if os.geteuid() != 0:
        raise EngineError("no Docker daemon answers and starting dockerd needs root (run as root, or start Docker)")
    os.makedirs(STATE, exist_ok=True)
    socket = f"{STATE}/docker.sock"
    for stale in (socket, f"{STATE}/docker.pid"):  # left by a daemon that was killed (it did not answer above)
        with contextlib.suppress(FileNotFoundError):
            os.remove(stale)
    engine = Engine("docker", docker, {**env, "DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0"}, own=True)
    with open(f"{STATE}/dockerd.log", "ab") as log:
        daemon = subprocess.Popen(
            [
                "dockerd",
                "--host",
                f"unix://{socket}",
                "--data-root",
                DATA_ROOT,
                "--exec-root",
                f"{STATE}/exec",
                "--pidfile",
                f"{STATE}/docker.pid",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while not _answers(engine):
            if daemon.poll() is not None or time.monotonic() > deadline:
                with open(f"{STATE}/dockerd.log", errors="replace") as log:
                    tail = log.read().splitlines()[-5:]
                raise EngineError(f"dockerd did not start (log {STATE}/dockerd.log): {' | '.join(tail)}")
            time.sleep(0.5)
        yield engine
    finally:
        remove_test_objects(engine)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def remove_test_objects(engine: Engine) -> None:
    """Removes every container and network the tests created (they carry LABEL), running or not."""
    if not _answers(engine):
        return
    containers = engine.run("ps", "-aq", "--filter", f"label={LABEL}", check=False).stdout.split()
    if containers:
        engine.run("rm", "-f", "-v", *containers, check=False)
    networks = engine.run("network", "ls", "-q", "--filter", f"label={LABEL}", check=False).stdout.split()
    if networks:
        engine.run("network", "rm", *networks, check=False)
