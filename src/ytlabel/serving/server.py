"""`ytlabel serve`: KServe's ModelServer running one YT8MModel, from a directory or a registry reference.

In a pod the model arrives at /mnt/models through KServe's storage initializer and the server binds
0.0.0.0 (the ServingRuntime passes `--host 0.0.0.0`); locally the default is 127.0.0.1. Only the
REST server runs (V1 and V2 over HTTP); gRPC stays off.
"""

import contextlib
import logging
import os
import sys
import tempfile

from ytlabel import storage
from ytlabel.errors import YtlabelError

log = logging.getLogger("ytlabel.serve")


@contextlib.contextmanager
def _kserve_import():
    """kserve parses sys.argv when first imported; our own flags (e.g. --model) must not leak into it."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def resolve_model_dir(model: str, registry: str | None, cache_dir: str | None = None) -> str:
    """A directory to serve: `model` itself if it is one, a copy of an s3:// version directory (as KServe's
    storage initializer makes one), else a registry reference pulled (and verified)."""
    if os.path.isdir(model):
        return model
    if storage.is_remote(model):
        try:
            return storage.local_mirror(model, into=os.path.join(cache_dir, "model") if cache_dir else None)
        except storage.NotFound:
            raise YtlabelError(f"--model {model}: nothing stored there (pass a registry version's directory)") from None
    if not registry:
        raise YtlabelError(f"--model {model!r} is not a directory; to serve a registry reference "
                           f"(NAME[:VERSION|@ALIAS]) pass --registry or set YTLABEL_REGISTRY")
    from ytlabel.registry import Registry

    target = os.path.join(cache_dir or tempfile.mkdtemp(prefix="ytlabel-serve-"), "model")
    manifest = Registry(registry).pull(model, target)
    log.info("pulled %s:%s from %s into %s", manifest["name"], manifest["version"], registry, target)
    return target


def build_model(model_dir: str, name: str | None = None, top_k: int = 20, batching=None):
    """A loaded, ready YT8MModel; its name defaults to the registry name in the manifest."""
    with _kserve_import():
        from ytlabel.serving.batching import BatchingOptions
        from ytlabel.serving.model import YT8MModel

    model = YT8MModel(name or "ytlabel", model_dir, top_k=top_k, batching=batching or BatchingOptions())
    model.load()  # verifies the manifest; the registry name then names the model unless --name did
    if not name and model.manifest.get("name"):
        model.name = model.manifest["name"]
    return model


def serve(model_dir: str, name: str | None, http_port: int, host: str, top_k: int = 20, batching=None) -> None:
    """Blocks serving until SIGTERM/SIGINT. `batching`: a `serving.batching.BatchingOptions` (default: its defaults)."""
    model = build_model(model_dir, name, top_k, batching)
    with _kserve_import():
        from kserve import ModelServer

    class _Server(ModelServer):
        def __init__(self, **settings):
            super().__init__(**settings)
            _refuse_malformed_binary_bodies(self.dataplane)

        def setup_event_loop(self):
            # KServe 0.21 hard-codes host 0.0.0.0 in its uvicorn config; this hook runs after the REST
            # server is built and before it binds, so the bind address can be set here.
            self._rest_server.config.host = host
            super().setup_event_loop()

    log.info("serving %s (%s/%s) on http://%s:%d", model.name, model.manifest["arch"], model.manifest["framework"],
             host, http_port)
    _Server(http_port=http_port, enable_grpc=False, workers=1).start([model])


def _refuse_malformed_binary_bodies(dataplane) -> None:
    """A V2 binary-extension body whose tensors do not fit its JSON header (truncated, too short for the
    shape) fails inside KServe 0.21's decoding with a plain error, which it answers 500. It is the client's
    mistake: answer 400, naming it. Any other failure keeps KServe's own handling."""
    from kserve.errors import InvalidInput

    decode = dataplane.decode_inference_request

    def checked(body, headers, model_name):
        try:
            return decode(body, headers, model_name)
        except (ValueError, TypeError, KeyError, IndexError) as error:
            if isinstance(error, InvalidInput) or not isinstance(body, bytes):
                raise
            raise InvalidInput(f"the binary request body ({len(body)} bytes) does not match its JSON header: "
                               f"{error}") from error

    dataplane.decode_inference_request = checked


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
    log = open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", "ytlabel", "serve", *serve_args, "--http-port", str(port)],
                               stdout=log, stderr=subprocess.STDOUT, text=True)
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
