"""An ensemble of runs is one model: its answer is the mean of the members' probabilities, and it is
evaluated, pushed, pulled and served like any run; hostile or mismatched ensembles are refused."""

import glob
import json
import os
import urllib.request

import numpy as np
import pytest

from tests.helpers.cli_rule import one_error_line
from tests.helpers.model_helpers import TINY_FC
from ytlabel.cli import main
from ytlabel.data.examples import InputOptions
from ytlabel.evaluation.evaluate import evaluate_predictions
from ytlabel.models.predictor import load_predictor
from ytlabel.registry import Registry
from ytlabel.serving.server import running


@pytest.fixture(scope="module")
def keras_run(synth_dir, tmp_path_factory) -> str:
    from ytlabel.config import load_config
    from ytlabel.training.run import train

    out = str(tmp_path_factory.mktemp("runs") / "fc-keras")
    train(load_config("fc", "keras", os.path.join(synth_dir, "video"), out, None, TINY_FC))
    return out


@pytest.fixture(scope="module")
def ensemble(fc_run, keras_run, tmp_path_factory) -> str:
    out = str(tmp_path_factory.mktemp("ensembles") / "fc-both")
    assert main(["ensemble", fc_run, keras_run, "--out", out]) == 0
    return out


def _batch(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"rgb": rng.normal(size=(5, 1024)).astype(np.float32), "audio": rng.normal(size=(5, 128)).astype(np.float32)}


def _mean_probability(runs: list[str], batch: dict) -> np.ndarray:
    return np.mean([1 / (1 + np.exp(-load_predictor(run).predict(batch).astype(np.float64))) for run in runs], axis=0)


def test_the_answer_is_the_mean_of_the_members_probabilities(ensemble, fc_run, keras_run):
    predictor = load_predictor(ensemble)
    assert (predictor.arch, predictor.framework, predictor.level) == ("ensemble", "keras+torch", "video")
    batch = _batch()
    expected = _mean_probability([fc_run, keras_run], batch)
    got = 1 / (1 + np.exp(-predictor.predict(batch).astype(np.float64)))
    np.testing.assert_allclose(got, expected, atol=1e-6)
    spec = json.load(open(os.path.join(ensemble, "spec.json")))
    assert spec["spec"] == {
        "combine": "mean_probability",
        "members": ["model/members/00-fc-torch", "model/members/01-fc-keras"],
    }


def test_evaluated_as_one_model(ensemble, fc_run, keras_run, synth_dir):
    assert main(["evaluate", "--model", ensemble, "--data", os.path.join(synth_dir, "video"), "--batch-size", "8"]) == 0
    metrics = json.load(open(os.path.join(ensemble, "metrics.json")))
    members = [load_predictor(run) for run in (fc_run, keras_run)]

    def averaged(batch: dict) -> np.ndarray:
        mean = np.mean([1 / (1 + np.exp(-m.predict(batch).astype(np.float64))) for m in members], axis=0)
        mean = np.clip(mean, 1e-7, 1 - 1e-7)
        return np.log(mean / (1 - mean))

    shards = sorted(glob.glob(os.path.join(synth_dir, "video", "*.tfrecord")))
    reference = evaluate_predictions(averaged, shards, InputOptions(level="video"), 8)
    assert metrics["gap_at_20"] == pytest.approx(reference.result()["gap_at_20"], abs=1e-9)
    assert metrics["arch"] == "ensemble" and metrics["videos"] == 24


@pytest.mark.slow
def test_pushed_pulled_and_served_like_a_run(ensemble, fc_run, keras_run, tmp_path):
    registry = Registry(str(tmp_path / "registry"))
    manifest = registry.push(ensemble, "yt8m-ensemble")
    assert manifest["arch"] == "ensemble" and "model/members/01-fc-keras/model/model.keras" in manifest["files"]
    registry.promote("yt8m-ensemble", 1, "champion")
    batch = _batch(seed=1)
    expected = _mean_probability([fc_run, keras_run], batch)[0]
    with running(
        "--model", "yt8m-ensemble@champion", "--registry", str(tmp_path / "registry"), "--top-k", "3", timeout_s=90.0
    ) as url:
        body = json.dumps(
            {"instances": [{"mean_rgb": batch["rgb"][0].tolist(), "mean_audio": batch["audio"][0].tolist()}]}
        ).encode()
        request = urllib.request.Request(
            f"{url}/v1/models/yt8m-ensemble:predict", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            labels = json.loads(response.read())["predictions"][0]["labels"]
    assert [label["id"] for label in labels] == list(np.argsort(-expected, kind="stable")[:3])
    np.testing.assert_allclose([label["score"] for label in labels], np.sort(expected)[::-1][:3], atol=1e-5)


def test_mismatched_or_hostile_ensembles_are_refused(fc_run, fc_encoder_run, ensemble, synth_dir, tmp_path, capsys):
    assert main(["ensemble", fc_run, "--out", str(tmp_path / "one")]) == 2
    assert "an ensemble needs two or more runs, got 1" in one_error_line(capsys)
    assert main(["ensemble", fc_run, fc_encoder_run, "--out", str(tmp_path / "mixed")]) == 2
    assert "the runs read their inputs differently (l2_normalize: [False, True])" in one_error_line(capsys)
    assert not os.path.exists(tmp_path / "mixed") and not os.path.exists(tmp_path / "mixed.partial")
    assert main(["ensemble", fc_run, fc_run, "--out", ensemble]) == 2
    assert "not empty; an ensemble is written into a new directory" in one_error_line(capsys)
    # A spec.json edited to reach outside the ensemble is refused before anything is loaded.
    hostile = tmp_path / "hostile"
    assert main(["ensemble", fc_run, fc_run, "--out", str(hostile)]) == 0
    spec = json.load(open(hostile / "spec.json"))
    spec["spec"]["members"][1] = "model/members/../../../fc-torch"
    (hostile / "spec.json").write_text(json.dumps(spec))
    assert main(["evaluate", "--model", str(hostile), "--data", os.path.join(synth_dir, "video")]) == 2
    assert "'..' segments are not allowed" in one_error_line(capsys)
