"""`ytlabel serve`: KServe's ModelServer running one YT8MModel, from a directory or a registry reference.

In a pod the model arrives at /mnt/models through KServe's storage initializer and the server binds
0.0.0.0 (the ServingRuntime passes `--host 0.0.0.0`); locally the default is 127.0.0.1. Only the
REST server runs (V1 and V2 over HTTP); gRPC stays off. Where KServe 0.21 departs from the Open
Inference Protocol it is mended in `serving/protocol.py`, and nowhere else.
"""

import contextlib
import logging
import os
import sys
import tempfile
import time

from ytlabel import compat, storage
from ytlabel.errors import YtlabelError

log = logging.getLogger("ytlabel.serve")


def resolve_model_dir(model: str, registry: str | None, cache_dir: str) -> str:
    """A directory to serve: `model` itself if it is one, a copy of an s3:// version directory (as KServe's
    storage initializer makes one), else a registry reference pulled (and verified); copies go under
    `cache_dir`, which the caller removes when the server stops."""
    if os.path.isdir(model):
        return model
    if storage.is_remote(model):
        try:
            return storage.local_mirror(model, into=os.path.join(cache_dir, "model"))
        except storage.NotFound:
            raise YtlabelError(f"--model {model}: nothing stored there (pass a registry version's directory)") from None
    if not registry:
        raise YtlabelError(
            f"--model {model!r} is not a directory; to serve a registry reference "
            f"(NAME[:VERSION|@ALIAS]) pass --registry or set YTLABEL_REGISTRY"
        )
    from ytlabel.registry import Registry

    target = os.path.join(cache_dir, "model")
    manifest = Registry(registry).pull(model, target)
    log.info("pulled %s:%s from %s into %s", manifest["name"], manifest["version"], registry, target)
    return target


def build_model(model_dir: str, name: str | None = None, top_k: int = 20, batching=None):
    """A loaded, ready YT8MModel; its name defaults to the registry name in the manifest."""
    with compat.kserve_import():
        from ytlabel.serving.batching import BatchingOptions
        from ytlabel.serving.model import YT8MModel

    model = YT8MModel(name or "ytlabel", model_dir, top_k=top_k, batching=batching or BatchingOptions())
    model.load()  # verifies the manifest; the registry name then names the model unless --name did
    if not name and model.manifest.get("name"):
        model.name = model.manifest["name"]
    return model


def serve(
    model_dir: str,
    name: str | None,
    http_port: int,
    host: str,
    top_k: int = 20,
    batching=None,
    listen_fd: int | None = None,
) -> None:
    """Blocks serving until SIGTERM/SIGINT. `batching`: a `serving.batching.BatchingOptions` (default: its defaults).
    `listen_fd`: accept on this inherited listening socket (one of `serve_processes`' workers) instead of binding."""
    if listen_fd is None:
        _check_port_free(host, http_port)  # before loading the model: a clash is found in a second, not a minute
    else:  # a worker of `serve_processes`: it goes with its supervisor, even one killed before it could stop it
        from ytlabel.processes import exit_with_parent

        exit_with_parent(os.getppid())
    share_cores(1)
    model = build_model(model_dir, name, top_k, batching)
    with compat.kserve_import():
        from kserve import ModelServer

    from ytlabel.serving.protocol import conform

    log.info(
        "serving %s (%s/%s) on http://%s:%d",
        model.name,
        model.manifest["arch"],
        model.manifest["framework"],
        host,
        http_port,
    )
    server = ModelServer(http_port=http_port, enable_grpc=False, workers=1)
    conform(server, host, listen_fd)
    server.start([model])


THREAD_SETTINGS = ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")


def share_cores(processes: int, env=None) -> str:
    """Thread pools sized to this process's share of the cores it may use (`cores.usable_cores`: in a pod its CPU
    limit, where PyTorch and TensorFlow would otherwise size them to the node), unless already set. Before the
    frameworks are imported: they read these when they start."""
    from ytlabel.cores import usable_cores

    env = os.environ if env is None else env
    threads = str(max(1, usable_cores() // processes))
    for name in THREAD_SETTINGS:
        env.setdefault(name, threads)
    return env.get(THREAD_SETTINGS[0], threads)


# How long `serve_processes` waits for its workers to stop before killing them: under the 30 s a pod (and
# `running` below) gives the whole server, so the supervisor always outlives its workers.
WORKER_GRACE_S = 20.0


def serve_processes(worker_argv: list[str], workers: int, host: str, port: int) -> int:
    """Runs `workers` server processes that accept on one listening socket, as a pre-forking server does, until
    SIGTERM/SIGINT or until one of them exits (then the others are stopped too); returns the exit code.

    Each worker is `worker_argv --listen-fd FD`: a whole `ytlabel serve` with its own model, event loop and
    forward thread, so requests are parsed and answered on as many cores as there are workers. KServe's
    own `--workers` would pickle the loaded model into each process; here each loads it from the directory.
    The cores (`cores.usable_cores`: the pod's CPU limit) are shared out as threads per worker, and
    `/metrics` adds every worker's counts up (prometheus_client's multiprocess mode, one directory for all).
    """
    import shutil
    import signal
    import socket
    import subprocess

    from ytlabel.processes import stop_processes

    _check_port_free(host, port)
    listener = socket.create_server(
        (host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET, backlog=2048
    )
    # Accepted connections inherit TCP_NODELAY from the listener. Set here, because a worker's event loop sees
    # the inherited socket as a Unix one (uvicorn wraps the fd so) and would not set it: each small answer
    # then waits for the client's delayed ACK (docs/serving.md has the measurement).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.set_inheritable(True)
    metrics_dir = tempfile.mkdtemp(prefix="ytlabel-serve-metrics-")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    threads = share_cores(workers, env)
    processes: list[subprocess.Popen] = []
    stopping = []

    def stop(signum, _frame):
        stopping.append(signum)

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    [*worker_argv, "--listen-fd", str(listener.fileno())], pass_fds=(listener.fileno(),), env=env
                )
            )
        log.info("serving from %d processes (%s threads each) on http://%s:%d", workers, threads, host, port)
        while not stopping:
            exited = [process for process in processes if process.poll() is not None]
            if exited:
                log.error(
                    "serving worker %d exited with code %d; stopping the others", exited[0].pid, exited[0].returncode
                )
                return exited[0].returncode or 1
            time.sleep(0.2)
        return 0
    finally:
        stop_processes(processes, grace_s=WORKER_GRACE_S)
        listener.close()
        shutil.rmtree(metrics_dir, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _check_port_free(host: str, port: int) -> None:
    """A port already taken is one line here, not uvicorn's multi-line [Errno 98] after the model loaded."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: TIME_WAIT is no clash
        try:
            probe.bind((host, port))
        except OSError as error:
            raise YtlabelError(
                f"--http-port {port}: cannot listen on {host}:{port} ({error.strerror}); "
                f"another server holds it, pick another port"
            ) from None


@contextlib.contextmanager
def running(*serve_args: str, timeout_s: float = 120.0, log_path: str | None = None):
    """Runs `ytlabel serve SERVE_ARGS --http-port <free port>` in a subprocess on 127.0.0.1 and yields its
    base URL once KServe reports ready; stops it on exit. For the demo, tests and benchmarks.

    The server's output goes to `log_path` (or a temporary file), never to a pipe: KServe logs every
    request, and an unread pipe fills up and stalls the server.
    """
    import subprocess
    import time
    import urllib.request

    from ytlabel.processes import free_port, stop_processes

    port = free_port()
    log = open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+")  # noqa: SIM115 - the handle outlives this statement; closed by its owner
    process = subprocess.Popen(
        [sys.executable, "-m", "ytlabel", "serve", *serve_args, "--http-port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise YtlabelError(f"ytlabel serve exited with {process.returncode}: {log.read()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise YtlabelError(f"ytlabel serve did not become ready within {timeout_s:.0f} s")
            time.sleep(0.3)
        yield url
    finally:
        stop_processes([process], grace_s=30)
        log.close()
