"""The storage layer: URIs, keys kept inside their root, atomic local writes, listings, and the same
operations on a real S3 server (SeaweedFS), including a read that resumes after the connection breaks."""

import math
import os
import tempfile

import pytest

from ytlabel import runs, storage
from ytlabel.storage import NotFound, StorageError


def test_parse_names_bucket_key_and_path():
    assert storage.parse("s3://bucket/a/b.tfrecord") == storage.Location(
        "s3://bucket/a/b.tfrecord", "bucket", "a/b.tfrecord"
    )
    assert storage.parse("file:///tmp/x").path == "/tmp/x" and not storage.parse("file:///tmp/x").remote
    assert storage.parse("relative/dir").path == "relative/dir"
    with pytest.raises(StorageError, match="an S3 URI needs a bucket"):
        storage.parse("s3:///key")
    with pytest.raises(StorageError, match="only local paths, file:// and s3:// are supported"):
        storage.parse("gs://bucket/key")
    with pytest.raises(StorageError, match="empty location"):
        storage.parse("")


@pytest.mark.parametrize("key", ["../payload.txt", "a/../../b", "/etc/passwd", "a\\b", "a//b", "a/./b", ".", ""])
def test_keys_that_could_leave_their_root_are_refused(key):
    with pytest.raises(StorageError, match="key"):
        storage.check_key(key)
    if key:  # join skips empty parts ("" names the root itself)
        with pytest.raises(StorageError):
            storage.join("s3://bucket/registry", "yt8m", key)


def test_join_keeps_keys_under_the_root():
    assert (
        storage.join("s3://bucket/registry/", "yt8m", "1/model/model.pt")
        == "s3://bucket/registry/yt8m/1/model/model.pt"
    )
    assert storage.join("/srv/models", "yt8m/aliases/champion.json") == "/srv/models/yt8m/aliases/champion.json"


def test_local_writes_are_atomic_and_listings_skip_partials_and_links(tmp_path):
    root = tmp_path / "root"
    storage.write_bytes(str(root / "a" / "one.bin"), b"1")
    storage.write_json(str(root / "b.json"), {"x": 1})
    (root / f"{storage.PARTIAL_PREFIX}leftover").write_bytes(b"half")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    os.symlink(outside, root / "linked-dir")
    assert storage.listdir(str(root)) == [f"{root}/a/one.bin", f"{root}/b.json"]
    assert storage.read_json(str(root / "b.json")) == {"x": 1}
    assert sorted(os.listdir(root / "a")) == ["one.bin"]  # no temporary file left beside it
    with pytest.raises(StorageError, match="non-finite"):
        storage.write_json(str(root / "nan.json"), {"loss": math.nan})
    assert not (root / "nan.json").exists()


def test_an_atomic_target_appears_whole_or_not_at_all_under_the_one_partial_name(tmp_path):
    target = tmp_path / "run" / "model.weights.h5"
    with storage.AtomicTarget(str(target)) as partial:
        name = os.path.basename(partial)
        # The one partial-name rule: the prefix, then the target's own name (Keras picks a format by suffix).
        assert name.startswith(storage.PARTIAL_PREFIX) and name.endswith("-model.weights.h5")
        assert storage.is_partial(f"run/{name}") and not storage.is_partial("run/model.weights.h5")
        assert os.stat(partial).st_mode & 0o777 == 0o666 & ~_umask()  # what open() would have made
        with open(partial, "wb") as out:
            out.write(b"weights")
        assert not target.exists() and storage.listdir(str(tmp_path)) == []
    assert target.read_bytes() == b"weights" and os.listdir(target.parent) == ["model.weights.h5"]
    with pytest.raises(RuntimeError), storage.AtomicTarget(str(target)) as partial:
        with open(partial, "wb") as out:
            out.write(b"half")
        raise RuntimeError("interrupted")
    assert target.read_bytes() == b"weights" and os.listdir(target.parent) == ["model.weights.h5"]
    folder = tmp_path / "ensemble"
    folder.mkdir()  # an empty directory is replaced; the staging one is named by the same rule
    with storage.AtomicTarget(str(folder), directory=True) as staging:
        assert os.path.basename(staging).startswith(storage.PARTIAL_PREFIX)
        (tmp_path / staging / "spec.json").write_text("{}")
    assert os.listdir(folder) == ["spec.json"] and sorted(os.listdir(tmp_path)) == ["ensemble", "run"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.slow
def test_a_run_directory_never_uploads_an_unfinished_write(bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the run's local mirror goes under tmp_path
    run = runs.RunDir(f"{bucket}/runs/partial")
    run.write_json("result.json", {"done": True})
    target = storage.AtomicTarget(run.path("model", "model.pt"))  # a save the trainer is in the middle of
    run.sync()
    assert storage.listdir(f"{bucket}/runs/partial") == [f"{bucket}/runs/partial/result.json"]
    target.commit()
    run.sync()
    assert storage.listdir(f"{bucket}/runs/partial") == [
        f"{bucket}/runs/partial/model/model.pt",
        f"{bucket}/runs/partial/result.json",
    ]


def test_file_uris_list_and_read_like_paths(tmp_path):
    storage.write_bytes(f"file://{tmp_path}/d/a.tfrecord", b"a")
    storage.write_bytes(str(tmp_path / "d" / "e" / "b.tfrecord"), b"b")
    assert storage.listdir(f"file://{tmp_path}/d") == [
        f"file://{tmp_path}/d/a.tfrecord",
        f"file://{tmp_path}/d/e/b.tfrecord",
    ]
    assert storage.is_file(f"file://{tmp_path}/d/a.tfrecord") and not storage.is_file(f"file://{tmp_path}/d")
    with pytest.raises(StorageError, match=f"file://{tmp_path}/d: not a regular file"):
        storage.read_bytes(f"file://{tmp_path}/d")


def test_sync_up_publishes_regular_files_only(tmp_path):
    folder = tmp_path / "run"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "model.pt").write_bytes(b"weights")
    (tmp_path / "host.txt").write_text("not ours")
    os.symlink(tmp_path / "host.txt", folder / "curves.csv")
    target = tmp_path / "published"
    assert storage.sync_up(str(folder), str(target)) == ["model/model.pt"]
    assert storage.listdir(str(target)) == [f"{target}/model/model.pt"]


def test_missing_things_are_named(tmp_path):
    with pytest.raises(NotFound, match="no-such.json: no such file"):
        storage.read_bytes(str(tmp_path / "no-such.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StorageError, match="bad.json: not valid JSON"):
        storage.read_json(str(tmp_path / "bad.json"))
    assert not storage.exists(str(tmp_path / "no-such.json"))


def test_run_readers_name_what_is_missing(tmp_path):
    with pytest.raises(runs.RunError, match=f"{tmp_path}: not a training run \\(no spec.json\\)"):
        runs.read_spec(str(tmp_path))
    with pytest.raises(runs.RunError, match="no result.json"):
        runs.read_result(str(tmp_path))
    assert runs.read_metrics(str(tmp_path)) is None and runs.read_config(str(tmp_path)) == {}
    with pytest.raises(runs.RunError, match="refusing to write .*metrics.json: .*non-finite"):
        runs.write_metrics(str(tmp_path), {"gap_at_20": math.inf})
    assert runs.write_metrics(str(tmp_path), {"gap_at_20": 0.5}).endswith("metrics.json")
    assert runs.read_metrics(str(tmp_path)) == {"gap_at_20": 0.5}


def test_run_names_labels_and_headline():
    assert runs.run_name("fc_stream_lstm", "keras", True) == "fc-stream-lstm-keras-expanded"
    assert runs.run_label("fc", "torch", True) == "fc/torch + expansion"
    metrics = {"loss": 3.5, "gap_at_20": 0.7, "hit_at_1": None, "videos": 10, "per_class_ap": {}}
    assert runs.headline(metrics) == {"gap_at_20": 0.7, "loss": 3.5}
    assert list(runs.headline(metrics, extra=("videos",))) == ["gap_at_20", "loss", "videos"]
    assert runs.format_headline(metrics) == "gap_at_20 0.7000, loss 3.5000"


def test_the_encoder_travels_with_a_version_but_not_with_a_run(tmp_path):
    (tmp_path / "encoder").mkdir()
    assert runs.encoder_location(str(tmp_path), "encoder") == str(tmp_path / "encoder")
    assert runs.encoder_location(str(tmp_path), "s3://b/enc") == "s3://b/enc"
    assert runs.encoder_location(str(tmp_path), "/abs/enc") == "/abs/enc"


# --- the same operations on a real S3 server ------------------------------------------------------------


@pytest.fixture
def bucket(s3_env):
    if not s3_env.bucket_exists("ytlabel-storage"):
        s3_env.make_bucket("ytlabel-storage")
    return "s3://ytlabel-storage"


@pytest.mark.slow
def test_s3_round_trip(bucket, tmp_path):
    storage.write_bytes(f"{bucket}/t/a.bin", b"abc")
    storage.write_json(f"{bucket}/t/b/c.json", {"k": [1, 2]})
    assert storage.read_bytes(f"{bucket}/t/a.bin") == b"abc" and storage.size(f"{bucket}/t/a.bin") == 3
    assert storage.listdir(f"{bucket}/t") == [f"{bucket}/t/a.bin", f"{bucket}/t/b/c.json"]
    assert storage.listdir(f"{bucket}/t", suffix=".json") == [f"{bucket}/t/b/c.json"]
    assert storage.exists(f"{bucket}/t/a.bin") and not storage.exists(f"{bucket}/t/zzz")
    storage.copy(f"{bucket}/t/a.bin", f"{bucket}/u/a.bin")
    storage.copy(f"{bucket}/u/a.bin", str(tmp_path / "a.bin"))
    assert (tmp_path / "a.bin").read_bytes() == b"abc"
    mirror = storage.local_mirror(f"{bucket}/t", into=str(tmp_path / "mirror"))
    assert sorted(os.path.relpath(os.path.join(d, f), mirror) for d, _, fs in os.walk(mirror) for f in fs) == [
        "a.bin",
        "b/c.json",
    ]
    with storage.local_copy(f"{bucket}/t", keep=lambda key: key.endswith(".json")) as copied:
        assert sorted(os.path.relpath(os.path.join(d, f), copied) for d, _, fs in os.walk(copied) for f in fs) == [
            "b/c.json"
        ]
    assert not os.path.exists(copied)  # a temporary copy does not outlive its block
    storage.delete(f"{bucket}/t/a.bin")
    storage.delete(f"{bucket}/t/a.bin")  # already gone: not an error
    with pytest.raises(NotFound, match=f"cannot read {bucket}/t/a.bin: NoSuchKey"):
        storage.read_bytes(f"{bucket}/t/a.bin")
    with pytest.raises(NotFound, match="nothing stored under this prefix"):
        storage.local_mirror(f"{bucket}/empty", into=str(tmp_path / "empty"))


@pytest.mark.slow
def test_s3_read_resumes_at_the_byte_reached_when_the_connection_breaks(bucket, monkeypatch):
    import urllib3

    payload = os.urandom(3 * (1 << 20) + 17)
    storage.write_bytes(f"{bucket}/big.bin", payload)
    real_client = storage.s3_client()
    offsets = []

    class Breaking:
        """The first response dies after 1 MiB, as a dropped connection would."""

        def __init__(self, response, fail_after):
            self.response, self.left = response, fail_after

        def read(self, amount):
            if self.left is not None and self.left <= 0:
                raise urllib3.exceptions.ProtocolError("connection broken")
            data = self.response.read(min(amount, self.left) if self.left is not None else amount)
            if self.left is not None:
                self.left -= len(data)
            return data

        def close(self):
            self.response.close()

        def release_conn(self):
            self.response.release_conn()

    class Client:
        def get_object(self, bucket_name, key, offset=0):
            offsets.append(offset)
            response = real_client.get_object(bucket_name, key, offset=offset)
            return Breaking(response, 1 << 20 if len(offsets) == 1 else None)

    monkeypatch.setattr(storage.s3, "s3_client", lambda: Client())  # the S3 backend's client
    with storage.open_read(f"{bucket}/big.bin", buffering=1 << 16) as stream:
        assert stream.read() == payload
    assert offsets == [0, 1 << 20]


@pytest.mark.slow
def test_s3_errors_name_the_uri_and_never_the_secret(bucket, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(StorageError) as caught:
        storage.write_bytes(f"{bucket}/x.bin", b"1")
    assert f"cannot write {bucket}/x.bin" in str(caught.value) and "wrong-secret-value" not in str(caught.value)
