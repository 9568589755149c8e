"""`make images`: the project's container images, built here from Debian packages and a local wheelhouse.

    python tools/images.py [--flavour cpu|cuda] [--only NAME ...]

1. The base (`ytlabel-base`): Debian bookworm (variant essential) plus Debian's python3.11, made by
   mmdebstrap from Debian's archive and imported into the engine: no registry is involved, so no image
   depends on one. Rebuilt only when its recipe (packages, options) changes; the recipe's digest is a label.
2. A wheelhouse on the host (`build/wheelhouse/<flavour>`): this repository's wheel and every dependency of
   every image's extras, with requirements/dev.lock as constraints, fetched by the host's pip with the host's
   pip settings (CA bundle, index, find-links: what a build behind a proxy needs). It is each image's build
   context, so the builds themselves run with no network and no CA bundle inside.
3. Each images/Dockerfile.* FROM the base, tagged exactly as `ytlabel.platform.images` names it, labelled with
   its provenance (OCI labels: version, revision, base image ID, flavour).
4. Provenance and figures: images/provenance/<name>.txt (image ID, base ID, Debian packages, pip freeze) and
   docs/results/images.json (build seconds and size per image).
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "src"))
sys.path.insert(0, ROOT)

import ytlabel
from tools.engine import INSTALL_HINT, Engine, EngineError, running_engine
from ytlabel.platform import images

# What the base holds: the interpreter the lock is made for (bookworm's 3.11), CA certificates for S3 over
# TLS, and the C++ runtime that numpy's, torch's and TensorFlow's wheels link against. The essential variant has no apt, and python3-venv is left out (it ships pip and setuptools as wheels):
# the build stages make pip-less venvs and run pip from its wheel in the wheelhouse, so no image holds pip.
BASE_PACKAGES = ("python3", "ca-certificates", "libstdc++6")
BASE_EXCLUDES = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")
# The user every image runs as (the pod specs' runAsUser), created in the base so HOME exists.
USER_HOOK = (
    'echo "ytlabel:x:10001:10001::/home/ytlabel:/usr/sbin/nologin" >> "$1/etc/passwd" && '
    'echo "ytlabel:x:10001:" >> "$1/etc/group" && mkdir -p "$1/home/ytlabel" && '
    'chown 10001:10001 "$1/home/ytlabel"'
)
BASE_CONFIG = ("ENV PATH=/usr/local/bin:/usr/bin:/bin", "ENV LANG=C.UTF-8")  # image settings `import` adds
CLEAN_HOOK = 'rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/* "$1"/usr/share/doc/*/changelog*'
# Every extra some image installs, so one wheelhouse serves them all.
EXTRAS = {"cpu": "s3,torch,keras,report,serve,pipeline", "cuda": "s3,torch,keras-cuda,report,serve,pipeline"}
WHEELHOUSE = os.path.join(ROOT, "build", "wheelhouse")
PROVENANCE = os.path.join(ROOT, "images", "provenance")
FIGURES = os.path.join(ROOT, "docs", "results", "images.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--flavour",
        choices=("cpu", "cuda"),
        default="cpu",
        help="trainer images' framework builds: cpu (runs here) or cuda (GPU nodes)",
    )
    parser.add_argument("--only", nargs="*", choices=sorted(images.DOCKERFILES), help="build only these images")
    args = parser.parse_args(argv)
    try:
        with running_engine() as engine:
            build_all(engine, args.flavour, args.only or sorted(images.DOCKERFILES))
    except EngineError as error:
        print(f"make images: {error}", file=sys.stderr)
        return 2
    return 0


def build_all(engine: Engine, flavour: str, names: list[str]) -> dict:
    figures = {
        "date": datetime.date.today().isoformat(),
        "engine": engine.kind,
        "flavour": flavour,
        "cores": os.cpu_count(),
        "images": {},
    }
    started = time.monotonic()
    remove_dangling(engine)  # before building too: the space a failed run left behind is needed now
    base_id, seconds = build_base(engine)
    figures["images"]["ytlabel-base"] = {"seconds": seconds, "bytes": _size(engine, images.BASE), "id": base_id}
    started_wheels = time.monotonic()
    context = wheelhouse(flavour)
    figures["wheelhouse"] = {"seconds": round(time.monotonic() - started_wheels, 1), "bytes": _tree_bytes(context)}
    for name in names:
        began = time.monotonic()
        image_id = build_image(engine, name, context, base_id, flavour)
        figures["images"][name] = {
            "seconds": round(time.monotonic() - began, 1),
            "bytes": _size(engine, images.image(name)),
            "id": image_id,
        }
        write_provenance(engine, name, image_id, base_id, flavour)
    figures["total_seconds"] = round(time.monotonic() - started, 1)
    remove_dangling(engine)
    previous = {}
    if os.path.exists(FIGURES):
        with open(FIGURES) as handle:
            previous = json.load(handle)
    if set(names) != set(images.DOCKERFILES) and flavour in previous:  # --only: the other images' rows stay
        figures["images"] = {**previous[flavour]["images"], **figures["images"]}
        figures["total_seconds"] = previous[flavour].get("total_seconds")
    previous[flavour] = figures
    with open(FIGURES, "w") as handle:
        json.dump(previous, handle, indent=2, sort_keys=True)
        handle.write("\n")
    for name, row in figures["images"].items():
        print(
            f"{images.image(name) if name != 'ytlabel-base' else images.BASE}  {row['bytes'] / 1e6:7.0f} MB  "
            f"{row['seconds']:6.1f} s"
        )
    return figures


def base_recipe() -> list[str]:
    """The mmdebstrap arguments that make the base's root filesystem (its digest names the recipe)."""
    return [
        "--variant=essential",
        "--mode=root",
        f"--include={','.join(BASE_PACKAGES)}",
        *(f"--dpkgopt=path-exclude={path}" for path in BASE_EXCLUDES),
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",  # licences stay
        f"--customize-hook={USER_HOOK}",
        f"--customize-hook={CLEAN_HOOK}",
        "bookworm",
    ]


def build_base(engine: Engine) -> tuple[str, float]:
    """The base image's ID, made with mmdebstrap unless an image of the same recipe exists."""
    recipe = hashlib.sha256(json.dumps([base_recipe(), BASE_CONFIG]).encode()).hexdigest()[:16]
    existing = engine.image_id(images.BASE)
    if (
        existing
        and engine.run(
            "image", "inspect", "--format", '{{index .Config.Labels "io.ytlabel.recipe"}}', images.BASE
        ).stdout.strip()
        == recipe
    ):
        print(f"{images.BASE}: recipe {recipe} already built ({existing[:19]})")
        return existing, 0.0
    if not shutil.which("mmdebstrap"):
        raise EngineError("the base image needs mmdebstrap: apt-get install mmdebstrap")
    began = time.monotonic()
    print(f"{images.BASE}: mmdebstrap {' '.join(BASE_PACKAGES)} (Debian bookworm)", flush=True)
    with tempfile.TemporaryDirectory(prefix="ytlabel-base-") as scratch:
        tarball = os.path.join(scratch, "rootfs.tar")
        made = subprocess.run(["mmdebstrap", *base_recipe(), tarball], capture_output=True, text=True)
        if made.returncode != 0:
            tail = "\n".join((made.stdout + made.stderr).strip().splitlines()[-10:])
            raise EngineError(f"building ytlabel-base failed in mmdebstrap:\n{tail}")
        changes = [
            *BASE_CONFIG,
            *_label_changes(
                {
                    "io.ytlabel.recipe": recipe,
                    "org.opencontainers.image.title": "ytlabel-base",
                    "org.opencontainers.image.version": ytlabel.__version__,
                    "org.opencontainers.image.description": f"Debian bookworm (essential) + {', '.join(BASE_PACKAGES)}",
                }
            ),
        ]
        engine.run(
            "import", *(arg for change in changes for arg in ("--change", change)), tarball, images.BASE, timeout=900
        )
    return engine.image_id(images.BASE), round(time.monotonic() - began, 1)


def _label_changes(labels: dict) -> list[str]:
    return [f"LABEL {key}={json.dumps(value)}" for key, value in labels.items()]


def wheelhouse(flavour: str) -> str:
    """build/wheelhouse/<flavour>: the wheels every image installs, the lock as constraints.txt, prune-venv.sh.

    The host's pip fetches them (its own configuration applies); a cuda wheelhouse asks PyPI alone, since the
    host's find-links may hold a CPU torch that pip would prefer (2.13.0+cpu sorts above 2.13.0).
    """
    out = os.path.join(WHEELHOUSE, flavour)
    os.makedirs(out, exist_ok=True)
    shutil.copyfile(os.path.join(ROOT, "requirements", "dev.lock"), os.path.join(out, "constraints.txt"))
    shutil.copyfile(os.path.join(ROOT, "images", "prune-venv.sh"), os.path.join(out, "prune-venv.sh"))
    for old in os.listdir(out):
        if old.startswith(("ytlabel-", "pip-")) and old.endswith(".whl"):  # remade below: one of each
            os.remove(os.path.join(out, old))
    with tempfile.TemporaryDirectory(prefix="ytlabel-src-") as source:
        # A clean copy, so no build/lib of an older tree leaks stale modules into the wheel.
        for part in ("pyproject.toml", "README.md"):
            shutil.copy(os.path.join(ROOT, part), source)
        shutil.copytree(
            os.path.join(ROOT, "src"),
            os.path.join(source, "src"),
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
        pip = [sys.executable, "-m", "pip"]
        if flavour == "cuda":
            pip += ["--isolated", "--index-url", "https://pypi.org/simple"]
            if os.environ.get("PIP_CERT"):
                pip += ["--cert", os.environ["PIP_CERT"]]
        command = [
            *pip,
            "wheel",
            "--quiet",
            "--wheel-dir",
            out,
            "-c",
            os.path.join(out, "constraints.txt"),
            f"{source}[{EXTRAS[flavour]}]",
            f"pip=={_host_pip()}",
        ]
        print(f"wheelhouse {out}: pip wheel .[{EXTRAS[flavour]}] -c requirements/dev.lock", flush=True)
        done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if "is ignored: it is neither" not in line]
        raise EngineError("the wheelhouse could not be made (pip wheel):\n" + "\n".join(errors[-10:]))
    return out


def _host_pip() -> str:
    """The host's pip version: the builds run the same pip, from its wheel."""
    from importlib.metadata import version

    return version("pip")


def build_image(
    engine: Engine,
    name: str,
    context: str,
    base_id: str,
    flavour: str,
    dockerfile: str | None = None,
    reference: str | None = None,
) -> str:
    """Builds images/<Dockerfile of name> with no network; EngineError names the image and the failing step.
    (`dockerfile` and `reference` replace the defaults in tests.)"""
    reference = reference or images.image(name)
    labels = {
        "org.opencontainers.image.title": name,
        "org.opencontainers.image.version": ytlabel.__version__,
        "org.opencontainers.image.revision": _revision(),
        "org.opencontainers.image.base.name": images.BASE,
        "io.ytlabel.base-id": base_id,
        "io.ytlabel.flavour": flavour,
    }
    dockerfile = dockerfile or os.path.join(ROOT, "images", images.DOCKERFILES[name])
    print(f"{reference}: {os.path.basename(dockerfile)} (flavour {flavour})", flush=True)
    previous = engine.image_id(reference)
    # --force-rm: a failed step's container goes too, or it would keep that step's image from being pruned
    done = engine.run(
        "build",
        "--network",
        "none",
        "--force-rm",
        "-f",
        dockerfile,
        "-t",
        reference,
        "--build-arg",
        f"BASE={images.BASE}",
        "--build-arg",
        f"FLAVOUR={flavour}",
        *(arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")),
        context,
        check=False,
        timeout=1800,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip().splitlines()
        steps = [line for line in output if re.match(r"^(Step \d+/\d+|STEP \d+/\d+)", line)]
        where = steps[-1] if steps else "its first step"
        tail = "\n".join(output[-12:])
        raise EngineError(f"building {name} failed at {where}:\n{tail}")
    built = engine.image_id(reference)
    if previous and previous != built:
        remove_replaced(engine, previous)
    return built


def remove_replaced(engine: Engine, image_id: str) -> None:
    """Deletes the image a rebuild untagged, with its intermediate layers, so that rebuilding on every commit
    does not fill the disk (the legacy builder keeps each step as an image). One a container still uses stays."""
    done = engine.run("rmi", image_id, check=False)
    if done.returncode != 0:
        print(f"  kept the replaced image {image_id[:19]}: {(done.stdout + done.stderr).strip()[:200]}")


def remove_dangling(engine: Engine) -> None:
    """Deletes untagged images left by earlier builds of ours (they carry our flavour label), and, on the
    daemon this project starts for itself, every untagged image: a failed build leaves its steps behind."""
    engine.run("image", "prune", "--force", "--filter", "label=io.ytlabel.flavour", check=False, timeout=900)
    if engine.own:
        engine.run("image", "prune", "--force", check=False, timeout=900)


def write_provenance(engine: Engine, name: str, image_id: str, base_id: str, flavour: str) -> None:
    """images/provenance/<name>.txt: what the image is made of, read from the image itself."""
    listing = engine.run(
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "sh",
        images.image(name),
        "-c",
        "dpkg-query -W -f '${Package} ${Version}\\n' && echo '--- Python distributions' && "
        "/opt/ytlabel/bin/python -c 'import importlib.metadata as m; "
        'print(*sorted(f"{d.name}=={d.version}" for d in m.distributions()), sep=chr(10))\'',
    ).stdout
    os.makedirs(PROVENANCE, exist_ok=True)
    with open(os.path.join(PROVENANCE, f"{name}.txt"), "w") as handle:
        handle.write(
            f"# {images.image(name)} (flavour {flavour}), made by `make images` (tools/images.py)\n"
            f"# image {image_id}\n# base  {images.BASE} {base_id}\n# revision {_revision()}\n"
            f"--- Debian packages\n{listing}"
        )


def _size(engine: Engine, reference: str) -> int:
    return int(engine.run("image", "inspect", "--format", "{{.Size}}", reference).stdout.strip())


def _tree_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, name)) for name in os.listdir(path))


def _revision() -> str:
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    # what `make images` itself rewrites (provenance, figures) does not make the source dirty
    dirty = subprocess.run(
        [
            "git",
            "-C",
            ROOT,
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":!images/provenance",
            ":!docs/results/images.json",
        ],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (commit or "unknown") + ("-dirty" if dirty else "")


if __name__ == "__main__":
    if not any(shutil.which(tool) for tool in ("docker", "podman")):
        print(f"make images: no container engine found: {INSTALL_HINT}", file=sys.stderr)
        sys.exit(2)
    sys.exit(main())
