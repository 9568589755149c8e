"""Every place ytlabel reaches into a library's private API, in one module.

Each function below names the library version it was written against (`VERIFIED`) and why the public API
does not do. tests/test_compat.py fails when an installed version differs from `VERIFIED`, and checks
that every private name used here still exists, so an upgrade is a deliberate re-check of this file, not
a silent break. Nothing here imports the libraries: callers pass their objects in (the import contracts
keep TensorFlow on the Keras side, and this module sits in the bottom layer).
"""

import asyncio
import contextlib
import sys
from collections.abc import Callable, Iterator

# The versions each workaround was checked against (requirements/dev.lock pins them).
VERIFIED = {"keras": "3.15.1", "kserve": "0.21.0"}

# The private names used below, per library: what tests/test_compat.py checks still exists.
PRIVATE_NAMES = {
    "keras": {"keras.Model": ("_symbolic_build", "_maybe_symbolic_build")},
    "kserve": {
        "kserve.ModelServer": ("setup_event_loop",),
        "kserve.protocol.rest.server.RESTServer": ("_add_exception_handlers",),
    },
}


# --- Keras ----------------------------------------------------------------------------------------------


def keras_build_before_fit(model, strategy, batch: tuple) -> None:
    """Builds `model`'s loss and optimizer state from one plain `(inputs, labels)` batch inside `strategy`'s
    scope, and turns off the build `fit` would do itself (Keras 3.15, keras-team/keras#20329).

    Under MultiWorkerMirroredStrategy with dict inputs, `fit` first pulls one distributed batch and calls
    `strategy.reduce` on the whole (inputs, labels) structure, which TensorFlow refuses for nested
    structures. That step only builds state symbolically, so it is done here from a batch of our own.
    """
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


# --- KServe ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def kserve_import() -> Iterator[None]:
    """Hides our command line while kserve is first imported: kserve 0.21 parses sys.argv at import time
    (its model_server module builds and runs an argument parser), so our own flags (--model) would leak
    into it or be refused."""
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def kserve_before_serving(server, host: str, listen_fd: int | None, add_handlers: Callable[[object], None]) -> None:
    """Adjusts a `kserve.ModelServer` that has not started: its REST server binds `host` (kserve 0.21 hard-codes
    0.0.0.0), or accepts on the inherited socket `listen_fd`; and `add_handlers(app)` runs after KServe adds
    its own exception handlers to the FastAPI app. KServe builds the REST server inside `start()`, so this
    hooks `setup_event_loop`, which runs between building it and binding it. And a SIGTERM/SIGINT stops the
    server whenever it lands once kserve handles signals (see `stop` below)."""
    setup = server.setup_event_loop

    def setup_event_loop():
        rest = server._rest_server
        rest.config.host = host
        rest.config.fd = listen_fd
        kserve_handlers = rest._add_exception_handlers

        def handlers(app):
            kserve_handlers(app)
            add_handlers(app)

        rest._add_exception_handlers = handlers
        setup()

    server.setup_event_loop = setup_event_loop

    # kserve's SIGTERM/SIGINT handler calls `server.stop`, which stops only a multi-process REST server: a
    # single-process one relies on uvicorn catching the signal, and uvicorn installs its handler only when it
    # starts serving. A signal in between (while kserve builds the app) was consumed and the server then served
    # on until SIGKILL. So `stop` also asks uvicorn to exit; uvicorn checks the flag before and while serving.
    kserve_stop = server.stop

    def stop(signum: int) -> None:
        rest = server._rest_server
        if rest is not None:
            rest._server.should_exit = True
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # before the event loop runs: kserve's stop would fail to schedule its shutdown
            return
        kserve_stop(signum)

    server.stop = stop
