"""The registry on a directory: publish, versions, aliases, verified pulls, atomicity, concurrent pushes."""

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from tests.helpers.cli_rule import one_error_line
from ytlabel.cli import main
from ytlabel.models.predictor import load_predictor
from ytlabel.registry import Registry, RegistryError, parse_ref
from ytlabel.registry.store import Store as FileStore


def _sha256(path: str) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _batch(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    rgb, audio = rng.normal(size=(3, 1024)).astype(np.float32), rng.normal(size=(3, 128)).astype(np.float32)
    rgb /= np.linalg.norm(rgb, axis=1, keepdims=True)
    audio /= np.linalg.norm(audio, axis=1, keepdims=True)
    return {"rgb": rgb, "audio": audio}


def test_parse_ref():
    assert parse_ref("yt8m-fc") == ("yt8m-fc", None, None)
    assert parse_ref("yt8m-fc:12") == ("yt8m-fc", 12, None)
    assert parse_ref("yt8m-fc@champion") == ("yt8m-fc", None, "champion")
    for bad, words in (
        ("yt8m-fc:0", "positive integer"),
        ("yt8m-fc:x", "positive integer"),
        ("Yt8m_FC", "lowercase"),
        ("fc@Champ", "alias"),
        ("", "model name"),
    ):
        with pytest.raises(RegistryError, match=words):
            parse_ref(bad)


def test_push_writes_a_complete_manifest(fc_run, tmp_path):
    registry = Registry(f"file://{tmp_path}/reg")
    manifest = registry.push(fc_run, "yt8m-fc")
    assert (manifest["name"], manifest["version"], manifest["arch"], manifest["framework"], manifest["level"]) == (
        "yt8m-fc",
        1,
        "fc",
        "torch",
        "video",
    )
    assert manifest["spec"]["rgb_hidden"] == 16 and manifest["config"]["epochs"] == 1
    metrics = json.load(open(os.path.join(fc_run, "metrics.json")))
    assert manifest["metrics"]["gap_at_20"] == metrics["gap_at_20"] and manifest["metrics"]["videos"] == 24
    result = json.load(open(os.path.join(fc_run, "result.json")))
    assert manifest["dataset"] == result["dataset"] and manifest["dataset"]["videos"] == 24
    assert manifest["dataset"]["shards"] == 3 and len(manifest["dataset"]["sha256"]) == 64
    assert manifest["encoder"] is None and manifest["code_version"]["ytlabel"] == "0.1.0"
    assert sorted(manifest["files"]) == [
        "config.yaml",
        "curves.csv",
        "data.json",
        "metrics.json",
        "model/model.pt",
        "result.json",
        "spec.json",
    ]
    stored = os.path.join(tmp_path, "reg", "yt8m-fc", "1")
    for relative, entry in manifest["files"].items():
        assert _sha256(os.path.join(stored, relative)) == entry["sha256"]
        assert os.path.getsize(os.path.join(stored, relative)) == entry["bytes"]
    assert _sha256(os.path.join(stored, "model", "model.pt")) == _sha256(os.path.join(fc_run, "model", "model.pt"))
    assert json.load(open(os.path.join(stored, "manifest.json"))) == manifest


def test_versions_aliases_show_and_list(fc_run, tmp_path, capsys):
    uri = f"file://{tmp_path}/reg"
    registry = Registry(uri)
    assert [registry.push(fc_run, "yt8m-fc")["version"] for _ in range(3)] == [1, 2, 3]
    registry.push(fc_run, "other")
    registry.promote("yt8m-fc", 2, "champion")
    registry.promote("yt8m-fc", 3, "candidate")
    assert registry.resolve("yt8m-fc") == ("yt8m-fc", 3)
    assert registry.resolve("yt8m-fc@champion") == ("yt8m-fc", 2)
    assert registry.show("yt8m-fc@champion")["aliases"] == ["champion"]
    registry.promote("yt8m-fc", 3, "champion")  # re-pointing an alias moves it
    assert registry.aliases("yt8m-fc") == {"champion": 3, "candidate": 3}
    with pytest.raises(RegistryError, match="no alias 'staging'.*candidate"):
        registry.resolve("yt8m-fc@staging")
    with pytest.raises(RegistryError, match=r"yt8m-fc:9 is not in .*\[1, 2, 3\]"):
        registry.promote("yt8m-fc", 9, "champion")

    assert main(["registry", "list", "--registry", uri, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["version"], row["aliases"]) for row in rows] == [
        ("other", 1, []),
        ("yt8m-fc", 1, []),
        ("yt8m-fc", 2, []),
        ("yt8m-fc", 3, ["candidate", "champion"]),
    ]
    assert rows[0]["metrics"]["gap_at_20"] == pytest.approx(
        json.load(open(os.path.join(fc_run, "metrics.json")))["gap_at_20"]
    )
    assert main(["registry", "list", "--registry", uri]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["MODEL", "VERSION", "ARCH", "FRAMEWORK", "GAP@20", "CREATED", "ALIASES"]
    assert table[4].split()[:4] == ["yt8m-fc", "3", "fc", "torch"] and table[4].split()[-1] == "candidate,champion"
    assert len(table) == 5


def test_pull_verifies_and_the_copy_predicts_like_the_run(fc_run, tmp_path, monkeypatch):
    monkeypatch.setenv("YTLABEL_REGISTRY", f"file://{tmp_path}/reg")
    assert main(["registry", "push", fc_run, "--name", "yt8m-fc"]) == 0
    assert main(["registry", "promote", "yt8m-fc", "1", "--alias", "champion"]) == 0
    assert main(["registry", "pull", "yt8m-fc@champion", "--out", str(tmp_path / "models")]) == 0
    pulled = str(tmp_path / "models")
    assert sorted(os.listdir(pulled)) == [
        "config.yaml",
        "curves.csv",
        "data.json",
        "manifest.json",
        "metrics.json",
        "model",
        "result.json",
        "spec.json",
    ]
    batch = _batch()
    np.testing.assert_array_equal(load_predictor(pulled).predict(batch), load_predictor(fc_run).predict(batch))
    assert yaml.safe_load(open(os.path.join(pulled, "config.yaml")))["arch"] == "fc"


def test_pull_refuses_a_damaged_copy_and_writes_nothing(fc_run, tmp_path, capsys):
    registry = Registry(str(tmp_path / "reg"))
    registry.push(fc_run, "yt8m-fc")
    stored = tmp_path / "reg" / "yt8m-fc" / "1" / "model" / "model.pt"
    data = bytearray(stored.read_bytes())
    data[-10] ^= 0xFF
    stored.write_bytes(bytes(data))
    out = tmp_path / "pulled"
    code = main(["registry", "pull", "yt8m-fc:1", "--registry", str(tmp_path / "reg"), "--out", str(out)])
    assert code == 2
    error = capsys.readouterr().err
    assert "yt8m-fc:1/model/model.pt: sha256" in error and "damaged" in error and "Traceback" not in error
    assert not out.exists() and [p for p in os.listdir(tmp_path) if p.startswith(".pull-")] == []


def test_a_version_without_manifest_is_invisible_and_its_number_is_not_reused(fc_run, tmp_path):
    registry = Registry(str(tmp_path / "reg"))
    registry.push(fc_run, "yt8m-fc")
    # A push that died after some files: version 2 has files but no manifest.
    registry.store.put("yt8m-fc/2/model/model.pt", b"half")
    assert registry.versions("yt8m-fc") == [1] and registry.resolve("yt8m-fc") == ("yt8m-fc", 1)
    assert [row["version"] for row in registry.listing()] == [1]
    assert registry.push(fc_run, "yt8m-fc")["version"] == 3


def test_a_failed_push_leaves_no_files_and_no_version(fc_run, tmp_path, monkeypatch):
    registry = Registry(str(tmp_path / "reg"))
    calls = []
    real_put_file = FileStore.put_file

    def failing_put_file(self, key, source):
        calls.append(key)
        if len(calls) == 3:
            raise RegistryError(f"cannot write {key}: disk full")
        real_put_file(self, key, source)

    monkeypatch.setattr(FileStore, "put_file", failing_put_file)
    with pytest.raises(RegistryError, match="disk full"):
        registry.push(fc_run, "yt8m-fc")
    assert registry.versions("yt8m-fc") == []
    leftovers = [key for key in registry.store.list("yt8m-fc/") if "/.claims/" not in key]
    assert leftovers == []


def test_push_refuses_an_unfinished_run(fc_run, tmp_path, capsys):
    run = tmp_path / "unfinished"
    run.mkdir()
    for name in ("spec.json", "config.yaml"):
        (run / name).write_bytes(open(os.path.join(fc_run, name), "rb").read())
    assert main(["registry", "push", str(run), "--name", "yt8m-fc", "--registry", str(tmp_path / "reg")]) == 2
    assert "not a finished training run (missing result.json)" in one_error_line(capsys)
    assert not (tmp_path / "reg").exists()  # refused before anything was written: not even the registry root


def test_no_registry_named_is_a_clear_error(fc_run, monkeypatch, capsys):
    monkeypatch.delenv("YTLABEL_REGISTRY", raising=False)
    assert main(["registry", "list"]) == 2
    assert "no registry given" in one_error_line(capsys)
    assert main(["registry", "list", "--registry", "gs://bucket"]) == 2
    assert "only file:// and s3://" in one_error_line(capsys)


def test_the_encoder_travels_with_the_model(fc_encoder_run, tmp_path):
    registry = Registry(str(tmp_path / "reg"))
    manifest = registry.push(fc_encoder_run, "yt8m-fc-expanded")
    assert {"encoder/encoder.npz", "encoder/encoder.json"} <= set(manifest["files"])
    assert manifest["spec"]["encoder"]["path"] == "encoder" and len(manifest["encoder"]["sha256"]) == 64
    pulled = str(tmp_path / "pulled")
    registry.pull("yt8m-fc-expanded", pulled)
    batch = _batch(1)
    np.testing.assert_array_equal(load_predictor(pulled).predict(batch), load_predictor(fc_encoder_run).predict(batch))
    # A pulled version can be pushed again (to another registry) and still carries its encoder.
    again = Registry(str(tmp_path / "reg2")).push(pulled, "copy")
    assert again["files"]["encoder/encoder.npz"] == manifest["files"]["encoder/encoder.npz"]


def test_concurrent_pushes_get_distinct_versions(fc_run, tmp_path):
    uri = f"file://{tmp_path}/reg"
    pushes = [
        subprocess.Popen(
            [sys.executable, "-m", "ytlabel", "registry", "push", fc_run, "--name", "yt8m-fc", "--registry", uri],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    printed = []
    for push in pushes:
        out, err = push.communicate(timeout=120)
        assert push.returncode == 0, err
        printed.append(out.strip())
    versions = sorted(int(line.rsplit(":", 1)[1]) for line in printed)
    assert len(set(versions)) == 6
    registry = Registry(uri)
    assert registry.versions("yt8m-fc") == versions
    for version in versions:
        assert registry.manifest("yt8m-fc", version)["version"] == version


def test_evaluate_takes_a_registry_reference(fc_run, synth_dir, tmp_path, capsys):
    uri = f"file://{tmp_path}/reg"
    assert main(["registry", "push", fc_run, "--name", "yt8m-fc", "--registry", uri]) == 0
    assert main(["registry", "promote", "yt8m-fc", "1", "--alias", "champion", "--registry", uri]) == 0
    data = os.path.join(synth_dir, "video")
    assert (
        main(
            [
                "evaluate",
                "--model",
                "yt8m-fc@champion",
                "--registry",
                uri,
                "--data",
                data,
                "--json",
                "--out",
                str(tmp_path / "eval"),
            ]
        )
        == 0
    )
    from_registry = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert main(["evaluate", "--model", fc_run, "--data", data, "--json", "--out", str(tmp_path / "eval-run")]) == 0
    from_run = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert from_registry["gap_at_20"] == from_run["gap_at_20"] and from_registry["videos"] == 24
    assert json.load(open(tmp_path / "eval" / "metrics.json"))["gap_at_20"] == from_run["gap_at_20"]
    assert main(["evaluate", "--model", "yt8m-fc@champion", "--registry", uri, "--data", data]) == 2
    assert "is a registry version, whose manifest checksums its files: pass --out DIR" in one_error_line(capsys)
