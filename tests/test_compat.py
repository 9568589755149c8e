"""compat.py holds every use of a library's private API: these tests fail when a library moves from the
version its workarounds were checked against, or when a private name they use is gone."""

import importlib
import importlib.metadata
import sys

import pytest

from ytlabel import compat


@pytest.mark.parametrize("library", sorted(compat.VERIFIED))
def test_the_installed_version_is_the_one_the_workarounds_were_checked_against(library):
    installed = importlib.metadata.version(library)
    assert installed == compat.VERIFIED[library], (
        f"{library} {installed} is installed; compat.py's workarounds were checked against "
        f"{compat.VERIFIED[library]}: re-check each one for {library}, then update VERIFIED"
    )


def _resolve(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    "owner,name",
    [(owner, name) for names in compat.PRIVATE_NAMES.values() for owner, found in names.items() for name in found],
)
def test_every_private_name_compat_uses_still_exists(owner, name):
    with compat.kserve_import():
        cls = _resolve(owner)
    assert hasattr(cls, name), f"{owner}.{name} is gone: compat.py must change"


def test_kserves_rest_server_is_still_made_where_compat_expects_it():
    with compat.kserve_import():
        from kserve import ModelServer

    server = ModelServer(http_port=0, enable_grpc=False, workers=1)
    assert hasattr(server, "_rest_server") and server._rest_server is None  # built by start(), then hooked


def test_kserve_sees_only_the_program_name_while_imported(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ytlabel", "serve", "--model", "/models/yt8m"])
    with compat.kserve_import():
        assert sys.argv == ["ytlabel"]
    assert sys.argv == ["ytlabel", "serve", "--model", "/models/yt8m"]


_SIGNAL_BEFORE_UVICORN = """
import os, signal, sys

from ytlabel import compat

with compat.kserve_import():
    import kserve
    from kserve.protocol.rest.server import RESTServer


class Echo(kserve.Model):
    def __init__(self):
        super().__init__("echo")
        self.ready = True


build_app = RESTServer.create_application


def build_app_after_a_sigterm(self):
    os.kill(os.getpid(), signal.SIGTERM)  # kserve's handler is in place, uvicorn's is not yet
    build_app(self)


RESTServer.create_application = build_app_after_a_sigterm
server = kserve.ModelServer(http_port=int(sys.argv[1]), enable_grpc=False, workers=1)
compat.kserve_before_serving(server, "127.0.0.1", None, lambda app: None)
server.start([Echo()])
print("server.start returned")
"""


def test_a_sigterm_before_uvicorn_handles_signals_still_stops_the_server():
    """kserve 0.21 alone serves on after a SIGTERM that lands while it builds the app (its handler leaves a
    single-process REST server running): `ytlabel serve --workers 2` then outlived its supervisor's grace."""
    import subprocess

    from ytlabel.processes import free_port

    try:
        done = subprocess.run(
            [sys.executable, "-c", _SIGNAL_BEFORE_UVICORN, str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"the server did not stop after its SIGTERM: {error.stderr}")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1] == "server.start returned"
