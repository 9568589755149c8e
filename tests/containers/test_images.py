"""Every image, run as a pod runs it: uid 10001, read-only root with an emptyDir /tmp, every capability
dropped, no privilege escalation, no network. Its entry verb does real work there, and the image carries
its provenance and nothing a build leaves behind (compilers, wheels, pip and its caches)."""

import json

import pytest
from pods import Pod, docker_run_args

import ytlabel
from ytlabel.platform import images, manifests

SAMPLE = "/opt/ytlabel/lib/python3.11/site-packages/ytlabel/data/assets/sample"
TINY = [
    "epochs=1",
    "batch_size=32",
    "model.rgb_hidden=16",
    "model.audio_hidden=8",
    "model.head_hidden=16",
    "validation_fraction=0",
]
# image -> a command that exercises what the image is for, offline
ENTRY = {
    "ytlabel-trainer-torch": [
        "train",
        "--arch",
        "fc",
        "--framework",
        "torch",
        "--data",
        SAMPLE,
        "--out",
        "/tmp/run",
        *TINY,
    ],
    "ytlabel-trainer-keras": [
        "train",
        "--arch",
        "fc",
        "--framework",
        "keras",
        "--data",
        SAMPLE,
        "--out",
        "/tmp/run",
        *TINY,
    ],
    "ytlabel-serving": ["models", "check"],  # both frameworks load, build every architecture, agree on logits
    # no ENTRYPOINT in the pipeline image (a KFP base image): the command names ytlabel
    "ytlabel-pipeline": ["ytlabel", "platform", "render", "--arch", "fc", "--framework", "torch"],
}


def _pod(image: str, args: list[str]) -> dict:
    """A PodSpec with the restricted security settings every pod we render has."""
    return {
        "securityContext": manifests.pod_security(),
        "containers": [
            {
                "name": "main",
                "image": image,
                **({"command": args} if args[:1] == ["ytlabel"] else {"args": args}),
                "securityContext": manifests.container_security(),
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }


def _run(engine, name: str, spec: dict, timeout_s: float = 300) -> tuple[int, str]:
    engine.run(*docker_run_args(spec, name=name, network="none"))
    pod = Pod(engine, name)
    try:
        code = pod.wait(timeout_s)
        return code, pod.logs(400)
    finally:
        engine.run("rm", "-f", name, check=False)


@pytest.mark.parametrize("name", sorted(images.DOCKERFILES))
def test_entry_verb_works_under_a_restricted_pod(engine, name):
    code, log = _run(engine, f"entry-{name}", _pod(images.image(name), ENTRY[name]))
    assert code == 0, log
    if name.startswith("ytlabel-trainer"):
        assert "rank 0 final weights sha256" in log, log
    elif name == "ytlabel-serving":
        assert "keras" in log and "torch" in log, log
    else:
        assert "kind: PyTorchJob" in log, log


@pytest.mark.parametrize("name", sorted(images.DOCKERFILES))
def test_image_config_and_provenance(engine, name):
    config = json.loads(engine.run("image", "inspect", images.image(name)).stdout)[0]["Config"]
    entry = (config["Entrypoint"] or []) + config["Cmd"]
    assert config["User"] == "10001" and entry[0] == "ytlabel"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == ytlabel.__version__
    assert labels["io.ytlabel.base-id"] == engine.image_id(images.BASE)
    assert labels["org.opencontainers.image.base.name"] == images.BASE
    assert len(labels["org.opencontainers.image.revision"].removesuffix("-dirty")) == 40


@pytest.mark.parametrize("name", sorted(images.DOCKERFILES))
def test_no_build_leftovers(engine, name):
    # sh, find and the interpreter are there; a compiler, pip, a wheel or a pip cache is not.
    probe = (
        "for tool in cc gcc g++ pip pip3 apt-get; do command -v $tool && exit 1; done; "
        "/opt/ytlabel/bin/python -c 'import pip' 2>/dev/null && exit 2; "
        "find / -xdev \\( -name '*.whl' -o -path '*/.cache/pip' -o -name include -path '*site-packages/torch/*' "
        "\\) -print -quit | grep . && exit 3; exit 0"
    )
    spec = _pod(images.image(name), [])
    spec["containers"][0]["command"] = ["sh", "-c", probe]
    code, log = _run(engine, f"leftovers-{name}", spec, timeout_s=120)
    assert code == 0, f"exit {code}: {log}"


def test_base_image_runs_python_as_the_pod_user(engine):
    spec = _pod(images.BASE, [])
    spec["containers"][0]["command"] = [
        "python3",
        "-c",
        (
            "import os, ssl, sys; print(os.getuid(), sys.version_info[:2], "
            "os.path.isdir(os.path.expanduser('~')), ssl.get_default_verify_paths().cafile)"
        ),
    ]
    code, log = _run(engine, "base-python", spec, timeout_s=60)
    assert code == 0, log
    assert log.splitlines()[-1] == "10001 (3, 11) True /usr/lib/ssl/cert.pem"
