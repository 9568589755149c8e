"""The registry on a real S3 server (SeaweedFS on 127.0.0.1): the same protocol, credentials kept secret."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ytlabel.cli import main
from ytlabel.models.predictor import load_predictor
from ytlabel.registry import Registry, RegistryError

pytestmark = pytest.mark.slow


@pytest.fixture
def bucket(s3_env):
    name = "ytlabel-registry"
    if not s3_env.bucket_exists(name):
        s3_env.make_bucket(name)
    yield name
    for obj in s3_env.list_objects(name, recursive=True):
        s3_env.remove_object(name, obj.object_name)


def test_push_promote_pull_on_s3(fc_run, bucket, s3_env, tmp_path, capsys):
    uri = f"s3://{bucket}/models"
    assert main(["registry", "push", fc_run, "--name", "yt8m-fc", "--registry", uri]) == 0
    assert capsys.readouterr().out.strip() == "yt8m-fc:1"
    assert main(["registry", "promote", "yt8m-fc", "1", "--alias", "champion", "--registry", uri]) == 0
    keys = sorted(obj.object_name for obj in s3_env.list_objects(bucket, prefix="models/", recursive=True))
    assert "models/yt8m-fc/1/manifest.json" in keys and "models/yt8m-fc/aliases/champion.json" in keys
    assert "models/yt8m-fc/1/model/model.pt" in keys
    capsys.readouterr()
    assert main(["registry", "list", "--registry", uri, "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert (row["name"], row["version"], row["aliases"], row["arch"]) == ("yt8m-fc", 1, ["champion"], "fc")
    out = str(tmp_path / "mnt-models")
    assert main(["registry", "pull", "yt8m-fc@champion", "--registry", uri, "--out", out]) == 0
    rng = np.random.default_rng(0)
    batch = {
        "rgb": rng.normal(size=(2, 1024)).astype(np.float32),
        "audio": rng.normal(size=(2, 128)).astype(np.float32),
    }
    np.testing.assert_array_equal(load_predictor(out).predict(batch), load_predictor(fc_run).predict(batch))


def test_concurrent_pushes_on_s3_get_distinct_versions(fc_run, bucket, s3_endpoint):
    from tests.helpers import seaweed

    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": seaweed.ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": seaweed.SECRET_KEY,
    }
    uri = f"s3://{bucket}/race"
    pushes = [
        subprocess.Popen(
            [sys.executable, "-m", "ytlabel", "registry", "push", fc_run, "--name", "yt8m-fc", "--registry", uri],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(5)
    ]
    versions = []
    for push in pushes:
        out, err = push.communicate(timeout=180)
        assert push.returncode == 0, err
        versions.append(int(out.strip().rsplit(":", 1)[1]))
    assert len(set(versions)) == 5
    os.environ.update({key: env[key] for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    try:
        assert Registry(uri).versions("yt8m-fc") == sorted(versions)
    finally:
        for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.pop(key, None)


def test_wrong_credentials_are_named_but_never_printed(fc_run, bucket, s3_env, monkeypatch, capsys):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-value-1234")
    code = main(["registry", "push", fc_run, "--name", "yt8m-fc", "--registry", f"s3://{bucket}/models"])
    error = capsys.readouterr().err
    assert code == 2 and "cannot reach registry s3://ytlabel-registry/models" in error
    assert "SignatureDoesNotMatch" in error or "AccessDenied" in error or "InvalidAccessKeyId" in error
    assert "wrong-secret-value-1234" not in error and "ytlabel-test-secret" not in error


def test_a_missing_bucket_is_a_clear_error(s3_env):
    with pytest.raises(RegistryError, match="bucket 'no-such-bucket' does not exist; create it first"):
        Registry("s3://no-such-bucket/models")
