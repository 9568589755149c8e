import json
import os

import numpy as np
import pytest

from ytlabel.cli import main
from ytlabel.config import load_config
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import DataError, YtlabelError
from ytlabel.evaluation.evaluate import Evaluation, evaluate_run
from ytlabel.training.run import train


@pytest.fixture(scope="module")
def runs(synth_dir, tmp_path_factory) -> dict:
    out = {}
    for framework in ("torch", "keras"):
        directory = str(tmp_path_factory.mktemp(f"run-{framework}"))
        train(
            load_config(
                "fc",
                framework,
                os.path.join(synth_dir, "video"),
                directory,
                None,
                ["epochs=1", "batch_size=4", "model.rgb_hidden=8", "model.head_hidden=8", "validation_fraction=0"],
            )
        )
        out[framework] = directory
    return out


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_evaluate_a_run_with_oracle_and_kinds(runs, synth_dir, framework):
    result = evaluate_run(runs[framework], os.path.join(synth_dir, "video"), batch_size=5)
    assert (result["arch"], result["framework"], result["videos"]) == ("fc", framework, 24)
    for key in ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1", "genre_gap"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["loss"] > 0 and result["videos_per_s"] > 0
    # The generator's oracle ranks every true label first at the default noise (see test_synth).
    assert result["oracle"]["hit_at_1"] == 1.0 and result["oracle"]["gap_at_20"] > 0.99
    present = len(result["per_class_ap"])
    assert sum(row["classes"] for row in result["by_kind"].values()) == present
    assert all(row["oracle_map"] > 0.99 for row in result["by_kind"].values() if row["classes"])


def test_torch_and_keras_runs_agree_on_what_a_random_start_can_do(runs, synth_dir):
    results = [evaluate_run(runs[fw], os.path.join(synth_dir, "video")) for fw in ("torch", "keras")]
    assert results[0]["oracle"] == results[1]["oracle"]  # same videos, same ceiling


def test_genre_metrics_follow_the_vocabulary():
    vocabulary = load_vocabulary()
    evaluation = Evaluation(vocabulary)
    labels = np.zeros((2, 3862), np.float32)
    labels[0, 0] = 1.0  # "Game" -> Games
    labels[1, 0] = 1.0
    probabilities = np.full((2, 3862), 0.01)
    probabilities[0, 1] = 0.9  # "Video game", also Games: right genre, wrong class
    probabilities[1, np.flatnonzero(vocabulary.genre_ids != vocabulary.genre_ids[0])[0]] = 0.9  # another genre
    evaluation.accumulate(labels, probabilities=probabilities)
    result = evaluation.result()
    assert result["hit_at_1"] == 0.0 and result["genre_hit_at_1"] == 0.5


def test_wrong_inputs_are_named(runs, synth_dir, tmp_path):
    with pytest.raises(DataError, match="the model reads video-level data but .* is frame-level"):
        evaluate_run(runs["torch"], os.path.join(synth_dir, "frame"))
    with pytest.raises(YtlabelError, match="not a training run \\(no spec.json\\)"):
        evaluate_run(str(tmp_path), os.path.join(synth_dir, "video"))


def test_evaluate_cli_writes_metrics_json(runs, synth_dir, tmp_path, capsys):
    assert (
        main(
            [
                "evaluate",
                "--model",
                runs["torch"],
                "--data",
                os.path.join(synth_dir, "video"),
                "--out",
                str(tmp_path),
                "--json",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    assert json.load(open(tmp_path / "metrics.json")) == printed
    assert set(printed["by_kind"]) == {"both", "rgb", "audio", "temporal"}
