"""`ytlabel data download` against a local mirror with the official layout: plan, shard=i,N, a dropped
connection resumed by a ranged GET, a wrong md5, a 404, a rerun that resumes, s3:// output, a hostile plan."""

import hashlib
import json
import os

import pytest
from yt8m_mirror import Mirror, serving

from tests.helpers.cli_rule import one_error_line
from ytlabel import storage
from ytlabel.cli import main
from ytlabel.data import download, reader
from ytlabel.pipeline import dataset

PARTITION = "2/video/validate"


@pytest.fixture
def mirror(sample_shards) -> Mirror:
    """Two real sample shards under their remote names (validateaa = 0000, validateab = 0001), and two
    small files for the faults."""
    files = {
        "validateaa.tfrecord": open(sample_shards[0], "rb").read(),
        "validateab.tfrecord": open(sample_shards[1], "rb").read(),
        "validateac.tfrecord": b"x" * 1000,
        "validate99.tfrecord": b"y" * 10,
    }
    return Mirror(PARTITION, files)


def test_names_and_shards_follow_the_official_rules():
    assert download.local_name("trainaa.tfrecord") == "train0000.tfrecord"
    assert download.local_name("trainKH.tfrecord") == "train2265.tfrecord"  # K=36, H=33: 36*62+33
    assert download.local_name("validate99.tfrecord") == "validate3843.tfrecord"
    names = [f"train{a}{b}.tfrecord" for a in "aZ9" for b in "abc"]
    parts = [{name for name in names if download.in_shard(name, (i, 3))} for i in (1, 2, 3)]
    assert set().union(*parts) == set(names) and sum(map(len, parts)) == len(names)  # a partition of the files
    # md5("trainaa.tfrecord") = 3a5ccfae5c12da9122e841a68c1739c9 is 2 modulo 3, so it is in shard 3 of 3.
    assert hashlib.md5(b"trainaa.tfrecord").hexdigest() == "3a5ccfae5c12da9122e841a68c1739c9"
    assert download.in_shard("trainaa.tfrecord", (3, 3)) and not download.in_shard("trainaa.tfrecord", (1, 3))
    assert (
        download.Partition.parse("2/video/train").plan_url() == "http://data.yt8m.org/2/download_plans/video_train.json"
    )
    assert (
        download.Partition.parse("2/frame/test").file_url(download.mirror_host("eu"), "testaa.tfrecord")
        == "http://eu.data.yt8m.org/2/frame/test/testaa.tfrecord"
    )


def test_faults_are_named_the_rest_is_kept_and_a_rerun_resumes(mirror, sample_shards, tmp_path, capsys):
    out = tmp_path / "yt8m"
    mirror.faults = {"validateab.tfrecord": "drop", "validate99.tfrecord": "missing"}
    mirror.plan["validateac.tfrecord"] = "0" * 32  # the mirror's bytes do not match the plan
    with serving(mirror) as url:
        assert (
            main(
                [
                    "data",
                    "download",
                    "--partition",
                    PARTITION,
                    "--out",
                    str(out),
                    "--base-url",
                    url,
                    "--retries",
                    "1",
                    "--jobs",
                    "2",
                ]
            )
            == 2
        )
        error = one_error_line(capsys)
        assert "2 of 4 files failed" in error
        assert f"validate0002.tfrecord: {url}/{PARTITION}/validateac.tfrecord: md5 " in error
        assert f"the plan says {'0' * 32} after 2 attempts" in error
        assert f"validate3843.tfrecord: {url}/{PARTITION}/validate99.tfrecord: HTTP 404" in error
        # The dropped file was resumed where its bytes ended, and both good shards are whole and readable.
        ranges = [value for path, value in mirror.requests if path.endswith("validateab.tfrecord")]
        assert ranges[0] is None and ranges[1].startswith("bytes=")
        assert ranges[1] == f"bytes={len(mirror.files['validateab.tfrecord']) // 2}-"  # every byte received kept
        for local, shard in (("validate0000.tfrecord", sample_shards[0]), ("validate0001.tfrecord", sample_shards[1])):
            assert (out / local).read_bytes() == open(shard, "rb").read()
        assert len(list(reader.read_shard(str(out / "validate0001.tfrecord")))) == len(
            list(reader.read_shard(sample_shards[1]))
        )
        # Nothing unverified under a final name; the 404 left nothing, the wrong md5 no partial.
        assert sorted(os.listdir(out)) == ["download.json", "validate0000.tfrecord", "validate0001.tfrecord"]
        assert json.loads((out / "download.json").read_text())["verified"] == {
            "validate0000.tfrecord": mirror.plan["validateaa.tfrecord"],
            "validate0001.tfrecord": mirror.plan["validateab.tfrecord"],
        }

        # The mirror is mended; a rerun fetches only the two missing files.
        mirror.faults.clear()
        mirror.plan["validateac.tfrecord"] = hashlib.md5(mirror.files["validateac.tfrecord"]).hexdigest()
        before = len(mirror.requests)
        assert main(["data", "download", "--partition", PARTITION, "--out", str(out), "--base-url", url]) == 0
        assert "2 downloaded (0.0 MB), 2 already verified, of 4 files" in capsys.readouterr().out
        fetched = sorted(path.rsplit("/", 1)[1] for path, _ in mirror.requests[before:] if "plans" not in path)
        assert fetched == ["validate99.tfrecord", "validateac.tfrecord"]
        assert (out / "validate3843.tfrecord").read_bytes() == b"y" * 10


def test_shard_selects_the_same_files_as_the_official_script(mirror, tmp_path):
    with serving(mirror) as url:
        got = [
            sorted(os.path.basename(name) for name in os.listdir(tmp_path / f"part{i}") if name.endswith(".tfrecord"))
            for i in (1, 2)
            if download.download(PARTITION, str(tmp_path / f"part{i}"), shard=f"{i},2", base_url=url, progress=False)
        ]
    expected = [
        sorted(
            download.local_name(name)
            for name in mirror.plan
            if int(hashlib.md5(name.encode()).hexdigest(), 16) % 2 == i - 1
        )
        for i in (1, 2)
    ]
    assert got == expected and sorted(got[0] + got[1]) == sorted(download.local_name(n) for n in mirror.plan)


@pytest.mark.slow  # a real S3 server
def test_download_straight_to_s3_and_rerun_skips(mirror, s3_env, tmp_path):
    s3_env.make_bucket("yt8m-download")
    out = "s3://yt8m-download/video/validate"
    with serving(mirror) as url:
        summary = download.download(PARTITION, out, base_url=url, staging=str(tmp_path / "staging"), progress=False)
        assert summary.downloaded == [
            "validate0000.tfrecord",
            "validate0001.tfrecord",
            "validate0002.tfrecord",
            "validate3843.tfrecord",
        ]
        assert storage.read_bytes(f"{out}/validate0001.tfrecord") == mirror.files["validateab.tfrecord"]
        assert os.listdir(tmp_path / "staging") == []  # uploaded, then removed locally
        again = download.download(PARTITION, out, base_url=url, staging=str(tmp_path / "staging"), progress=False)
        assert again.downloaded == [] and len(again.skipped) == 4


def test_ingest_accepts_the_download_as_a_data_source(mirror, tmp_path):
    for fake in ("validateac.tfrecord", "validate99.tfrecord"):
        del mirror.files[fake], mirror.plan[fake]
    with serving(mirror) as url:
        source = f"yt8m://{PARTITION}?shard=1/1&base_url={url},synthetic"
        split = dataset.ingest(
            source,
            str(tmp_path / "dataset"),
            shard_fraction=1.0,
            eval_fraction=0.5,
            publish_uri=str(tmp_path / "published"),
        )
    assert split.synthetic == ["frame"] and sorted(split.train) == ["frame", "video"]  # synthetic fills the gap
    shards = split.train["video"] + split.eval["video"]
    assert sorted(os.path.basename(shard) for shard in shards) == ["validate0000.tfrecord", "validate0001.tfrecord"]
    assert all(shard.startswith(str(tmp_path / "published" / "yt8m")) for shard in shards)
    assert split.videos["train"] + split.videos["eval"] == sum(len(list(reader.read_shard(s))) for s in shards)


@pytest.mark.parametrize(
    "plan, why",
    [
        (b"<html>moved</html>", "not a download plan"),
        (json.dumps({"files": {"../../etc/evil.tfrecord": "0" * 32}}).encode(), "'../../etc/evil.tfrecord'"),
        (json.dumps({"files": {"validateaa.tfrecord": "not-an-md5"}}).encode(), "md5 of 32 hex digits"),
    ],
)
def test_a_hostile_plan_is_refused_before_any_file(mirror, tmp_path, capsys, plan, why):
    mirror.raw_plan = plan
    with serving(mirror) as url:
        assert (
            main(["data", "download", "--partition", PARTITION, "--out", str(tmp_path / "out"), "--base-url", url]) == 2
        )
    error = one_error_line(capsys)
    assert f"{url}/2/download_plans/video_validate.json" in error and why in error
    assert [path for path, _ in mirror.requests] == ["/2/download_plans/video_validate.json"]
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--partition", "2/video/bogus"], "partition '2/video/bogus': expected VERSION/LEVEL/SPLIT"),
        (["--partition", PARTITION, "--shard", "0,3"], "shard '0,3': expected i,N with integers 1 <= i <= N"),
        (["--partition", PARTITION, "--mirror", "mars"], "mirror 'mars': choose one of us, eu, asia"),
    ],
)
def test_bad_flags_get_one_line(tmp_path, capsys, flags, message):
    assert main(["data", "download", "--out", str(tmp_path / "out"), *flags]) == 2
    assert message in one_error_line(capsys)
