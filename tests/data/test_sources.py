import os
import shutil

import pytest

from ytlabel.data import reader, sources
from ytlabel.errors import DataError


def test_files_directories_and_globs(synth_dir, tmp_path):
    frame_dir = os.path.join(synth_dir, "frame")
    names = sorted(os.listdir(frame_dir))
    expected = [os.path.join(frame_dir, name) for name in names]
    assert sources.resolve_shards(frame_dir) == expected
    assert sources.resolve_shards(os.path.join(frame_dir, "*-0000[12]-*")) == expected[1:]
    assert sources.resolve_shards([expected[2], expected[0], expected[2]]) == [expected[0], expected[2]]
    tree = tmp_path / "tree"
    shutil.copytree(os.path.join(synth_dir, "video"), tree / "a" / "video")
    shutil.copytree(frame_dir, tree / "b")
    assert len(sources.resolve_shards(str(tree))) == 6  # both folders, recursively
    # The generator's root mixes video, frame and oracle shards: say which folder to pass instead.
    with pytest.raises(
        DataError,
        match=f"{synth_dir}: this is the root of `ytlabel data synth` output; pass "
        f"{synth_dir}/video \\(video-level models\\) or {synth_dir}/frame",
    ):
        sources.resolve_shards(synth_dir)


def test_file_uris_resolve_like_paths_and_stay_file_uris(synth_dir):
    frame_dir = os.path.join(synth_dir, "frame")
    paths = sources.resolve_shards(frame_dir)
    assert sources.resolve_shards(f"file://{frame_dir}") == [f"file://{path}" for path in paths]
    assert sources.resolve_shards(f"file://{frame_dir}/*-00001-*") == [f"file://{paths[1]}"]
    first = reader.read_shard(f"file://{paths[0]}", "frame")
    assert [record.id for record in first] == [record.id for record in reader.read_shard(paths[0], "frame")]


def test_missing_or_empty_sources_are_named(tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path}/nope: no such file or directory"):
        sources.resolve_shards(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="no .tfrecord shards found"):
        sources.resolve_shards(str(tmp_path))


def test_every_nth_keeps_a_fraction_like_the_downloader():
    shards = [f"s{i}" for i in range(10)]
    assert sources.every_nth(shards, 4) == ["s0", "s4", "s8"]
    assert sources.every_nth(shards, 4, offset=3) == ["s3", "s7"]
    with pytest.raises(ValueError, match="denominator must be >= 1"):
        sources.every_nth(shards, 0)


def test_split_is_exact_deterministic_and_keyed_on_names():
    shards = [f"/data/train{i:04d}.tfrecord" for i in range(200)]
    train, validation = sources.split_shards(shards, 0.2)
    assert len(validation) == 40 and sorted(train + validation) == sorted(shards)
    assert validation[:3] == sources.split_shards(shards, 0.2)[1][:3]
    # Same names elsewhere and in another order: the same split.
    moved = [path.replace("/data/", "s3://bucket/v2/") for path in reversed(shards)]
    assert sources.split_shards(moved, 0.2)[1] == [p.replace("/data/", "s3://bucket/v2/") for p in reversed(validation)]
    assert [len(part) for part in sources.split_shards(shards[:4], 0.1)] == [3, 1]  # never empty from few shards
    assert sources.split_shards(shards[:4], 0.0) == (shards[:4], [])
    with pytest.raises(ValueError, match="validation_fraction must be in \\[0, 1\\), got 1.0"):
        sources.split_shards(shards, 1.0)


@pytest.mark.slow
def test_s3_prefix_reads_the_same_records_as_local(s3_env, sample_shards):
    client = s3_env
    client.make_bucket("yt8m")
    for path in sample_shards:
        client.fput_object("yt8m", f"v2/video/{os.path.basename(path)}", path)
    client.put_object("yt8m", "v2/video/README.txt", __import__("io").BytesIO(b"not a shard"), 11)
    shards = sources.resolve_shards("s3://yt8m/v2/video/")
    assert shards == ["s3://yt8m/v2/video/validate0000.tfrecord", "s3://yt8m/v2/video/validate0001.tfrecord"]
    remote = [r.id for r in reader.read_shard(shards[1])]
    local = [r.id for r in reader.read_shard(sample_shards[1])]
    assert remote == local and len(remote) == 305


@pytest.mark.slow
def test_s3_errors_are_clear_and_never_show_the_secret(s3_env, monkeypatch):
    with pytest.raises(DataError, match="s3://no-such-bucket/x: cannot list S3 objects \\(NoSuchBucket"):
        sources.resolve_shards("s3://no-such-bucket/x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value")
    with pytest.raises(DataError) as caught:
        sources.resolve_shards("s3://yt8m/v2/")
    assert "SignatureDoesNotMatch" in str(caught.value) or "AccessDenied" in str(caught.value)
    assert "wrong-secret-value" not in str(caught.value)
