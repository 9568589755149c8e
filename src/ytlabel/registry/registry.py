"""The model registry: versioned, checksummed copies of finished training runs, with aliases.

Layout under the registry root (a directory or s3://bucket/prefix):
    <name>/<version>/manifest.json     written last: a version without it does not exist for readers
    <name>/<version>/model/...         model.pt or model.keras
    <name>/<version>/spec.json         enough to rebuild the model (encoder path made relative: "encoder")
    <name>/<version>/encoder/...       the expansion encoder, when the model has one
    <name>/<version>/config.yaml, result.json, metrics.json, curves.csv
    <name>/<version>/.claims/<token>   who claimed the version number (see `_claim`)
    <name>/aliases/<alias>.json        {"version": N}: champion, candidate, ...

A version directory is exactly what KServe's storage initializer copies to /mnt/models, so
`storageUri: s3://bucket/prefix/<name>/<version>` serves it as is. What a version holds (the run's
files, the manifest's fields) is collected in contents.py.
"""

import datetime
import json
import os
import random
import re
import shutil
import tempfile
import time
import uuid

from ytlabel import runs
from ytlabel.registry.contents import code_version, collected_run, digest_bytes, file_digest, headline
from ytlabel.registry.store import RegistryError, Store, open_store

MANIFEST = runs.VERSION_MANIFEST
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")  # a DNS label: it also names the InferenceService
ALIAS = NAME
CLAIM_ATTEMPTS = 20


def parse_ref(ref: str) -> tuple[str, int | None, str | None]:
    """NAME (latest version), NAME:VERSION or NAME@ALIAS -> (name, version, alias)."""
    name, version, alias = ref, None, None
    if "@" in ref:
        name, alias = ref.split("@", 1)
    elif ":" in ref:
        name, text = ref.split(":", 1)
        if not text.isdigit() or int(text) < 1:
            raise RegistryError(f"model reference {ref!r}: the version after ':' must be a positive integer")
        version = int(text)
    check_name(name, "model name")
    if alias is not None:
        check_name(alias, "alias")
    return name, version, alias


def check_name(name: str, what: str) -> str:
    if not NAME.match(name or ""):
        raise RegistryError(
            f"{what} {name!r}: use lowercase letters, digits and '-' (at most 63, like a "
            f"Kubernetes name), e.g. 'yt8m-fc'"
        )
    return name


class Registry:
    def __init__(self, uri: str):
        self.store: Store = open_store(uri)
        self.uri = self.store.uri

    # --- write -----------------------------------------------------------------------------------
    def push(self, run_dir: str, name: str) -> dict:
        """Publishes a finished run as the next version of `name`; returns its manifest.

        Files go first, the manifest last; if anything fails the partial files are removed and the
        version never becomes visible.
        """
        check_name(name, "model name")
        with collected_run(run_dir) as (files, record):
            return self._publish(name, files, record)

    def _publish(self, name: str, files: dict[str, str | bytes], record: dict) -> dict:
        """Writes `files` (relative path -> local path or bytes) as the next version of `name`, the manifest
        last, and returns the manifest; takes back what it wrote when anything fails."""
        self.store.create()
        version = self._claim(name)  # its claim object stays: the number is never handed out again
        prefix = f"{name}/{version}/"
        written = []
        try:
            entries = {}
            for relative, source in sorted(files.items()):
                if isinstance(source, bytes):
                    self.store.put(prefix + relative, source)
                    entries[relative] = digest_bytes(source)
                else:
                    self.store.put_file(prefix + relative, source)
                    entries[relative] = file_digest(source)
                written.append(prefix + relative)
            manifest = {
                **record,
                "name": name,
                "version": version,
                "files": entries,
                "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "code_version": code_version(),
            }
            self.store.put(prefix + MANIFEST, json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False).encode())
        except BaseException:
            for key in written:
                try:
                    self.store.delete(key)
                except RegistryError:
                    pass  # best effort: without a manifest the version is invisible anyway
            raise
        return manifest

    def promote(self, name: str, version: int, alias: str) -> dict:
        """Points `alias` (champion, candidate, ...) at an existing version."""
        check_name(name, "model name")
        check_name(alias, "alias")
        manifest = self.manifest(name, version)
        pointer = {"version": version, "promoted": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        self.store.put(f"{name}/aliases/{alias}.json", json.dumps(pointer).encode())
        return manifest

    # --- read ------------------------------------------------------------------------------------
    def names(self) -> list[str]:
        keys = self.store.list("")
        return sorted({key.split("/", 1)[0] for key in keys if key.endswith("/" + MANIFEST)})

    def versions(self, name: str) -> list[int]:
        """Published versions of `name` (those with a manifest), ascending."""
        found = []
        for key in self.store.list(f"{name}/"):
            parts = key.split("/")
            if len(parts) == 3 and parts[1].isdigit() and parts[2] == MANIFEST:
                found.append(int(parts[1]))
        return sorted(found)

    def aliases(self, name: str) -> dict[str, int]:
        found = {}
        for key in self.store.list(f"{name}/aliases/"):
            data = self.store.get(key)
            if data is not None:
                try:
                    found[key.rsplit("/", 1)[1].removesuffix(".json")] = int(json.loads(data)["version"])
                except (ValueError, KeyError, TypeError):
                    raise RegistryError(f'{self.uri}/{key}: not an alias (expected {{"version": N}})') from None
        return found

    def resolve(self, ref: str) -> tuple[str, int]:
        name, version, alias = parse_ref(ref)
        if alias is not None:
            aliases = self.aliases(name)
            if alias not in aliases:
                raise RegistryError(
                    f"{ref}: {name} has no alias {alias!r} in {self.uri} (aliases: {sorted(aliases) or 'none'})"
                )
            return name, aliases[alias]
        if version is None:
            versions = self.versions(name)
            if not versions:
                raise RegistryError(f"{ref}: no published versions of {name!r} in {self.uri}")
            return name, versions[-1]
        return name, version

    def manifest(self, name: str, version: int) -> dict:
        data = self.store.get(f"{name}/{version}/{MANIFEST}")
        if data is None:
            raise RegistryError(f"{name}:{version} is not in {self.uri} (published: {self.versions(name) or 'none'})")
        return json.loads(data)

    def show(self, ref: str) -> dict:
        name, version = self.resolve(ref)
        manifest = self.manifest(name, version)
        aliases = self.aliases(name)
        return {**manifest, "aliases": sorted(alias for alias, v in aliases.items() if v == version)}

    def listing(self) -> list[dict]:
        """One row per published version: name, version, arch, framework, aliases, headline metrics."""
        rows = []
        for name in self.names():
            aliases = self.aliases(name)
            for version in self.versions(name):
                manifest = self.manifest(name, version)
                rows.append(
                    {
                        "name": name,
                        "version": version,
                        "arch": manifest["arch"],
                        "framework": manifest["framework"],
                        "aliases": sorted(alias for alias, v in aliases.items() if v == version),
                        "metrics": headline(manifest.get("metrics")),
                        "created": manifest["created"],
                    }
                )
        return rows

    def pull(self, ref: str, out_dir: str) -> dict:
        """Copies a version into `out_dir` (must not exist yet), verifying every sha256; returns the manifest.

        The copy is assembled next to `out_dir` and renamed into place only when every file checked out.
        """
        name, version = self.resolve(ref)
        manifest = self.manifest(name, version)
        for relative in manifest["files"]:  # keys come from data: none may leave the version directory
            self.store._where(f"{name}/{version}/{relative}")
        out_dir = os.path.abspath(out_dir)
        if os.path.exists(out_dir) and os.listdir(out_dir):
            raise RegistryError(f"--out {out_dir} is not empty; pull into a new directory")
        parent = os.path.dirname(out_dir)
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".pull-", dir=parent)
        try:
            for relative, expected in sorted(manifest["files"].items()):
                target = os.path.join(staging, *relative.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                self.store.get_file(f"{name}/{version}/{relative}", target)
                actual = file_digest(target)
                if actual["sha256"] != expected["sha256"]:
                    raise RegistryError(
                        f"{name}:{version}/{relative}: sha256 {actual['sha256'][:12]}... does not "
                        f"match the manifest's {expected['sha256'][:12]}...; the registry copy is "
                        f"damaged, nothing was written to {out_dir}"
                    )
            with open(os.path.join(staging, MANIFEST), "w") as handle:
                json.dump(manifest, handle, indent=2, sort_keys=True)
            if os.path.exists(out_dir):
                os.rmdir(out_dir)
            os.rename(staging, out_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return manifest

    # --- version numbers -------------------------------------------------------------------------
    def _claim(self, name: str) -> int:
        """Claims the next version number; safe with concurrent pushers on any strongly consistent store.

        Each pusher writes its own claim object under the candidate number, then lists the claims there.
        It owns the number only if its claim is the only one: of two racing claims, whichever was
        written second is listed by both, so at most one pusher wins a number. Losers leave their claim
        (the number is burnt, versions stay monotonic) and retry higher after a random pause.
        """
        for attempt in range(CLAIM_ATTEMPTS):
            version = self._highest_used(name) + 1
            key = f"{name}/{version}/.claims/{uuid.uuid4().hex}"
            self.store.put(key, b"")
            if self.store.list(f"{name}/{version}/.claims/") == [key]:
                return version
            time.sleep(random.uniform(0.0, 0.02 * (attempt + 1)))
        raise RegistryError(
            f"could not claim a version of {name!r} in {self.uri} after {CLAIM_ATTEMPTS} attempts "
            f"(too many concurrent pushes?)"
        )

    def _highest_used(self, name: str) -> int:
        used = [int(key.split("/")[1]) for key in self.store.list(f"{name}/") if key.split("/")[1].isdigit()]
        return max(used, default=0)
