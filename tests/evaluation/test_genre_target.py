"""A model trained on the 25 genres instead of the 3,862 classes: targets, training in both frameworks,
evaluation on its own outputs (genre GAP over every genre, genre Hit@1), and what refuses it."""

import glob
import os

import numpy as np
import pytest

from ytlabel.config import load_config
from ytlabel.data import reader
from ytlabel.data.examples import InputOptions, prepare, targets
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import ConfigError, YtlabelError
from ytlabel.evaluation.evaluate import evaluate_run
from ytlabel.evaluation.metrics import MetricAccumulator
from ytlabel.models.predictor import load_predictor
from ytlabel.registry import Registry
from ytlabel.serving.model import YT8MModel
from ytlabel.training.run import train


def test_genre_targets_mark_every_genre_of_the_classes():
    vocabulary = load_vocabulary()
    labels = np.array([0, 1, 2])  # Game, Video game (Games), Vehicle (Autos & Vehicles)
    assert [vocabulary.genre(int(label)) for label in labels] == ["Games", "Games", "Autos & Vehicles"]
    target = targets(labels, "genres")
    assert target.shape == (25,) and target.dtype == np.float32
    assert [vocabulary.genres[g] for g in np.flatnonzero(target)] == ["Autos & Vehicles", "Games"]
    assert targets(labels).shape == (3862,) and targets(labels).sum() == 3
    with pytest.raises(ConfigError, match="target='moods'"):
        InputOptions(level="video", target="moods")


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_a_genre_model_trains_and_is_scored_on_genres(framework, synth_dir, tmp_path):
    data = os.path.join(synth_dir, "video")
    out = str(tmp_path / framework)
    train(
        load_config(
            "fc",
            framework,
            data,
            out,
            None,
            ["target=genres", "model.head_hidden=8", "epochs=2", "batch_size=8", "validation_fraction=0"],
        )
    )
    predictor = load_predictor(out)
    assert predictor.options.target == "genres"
    result = evaluate_run(out, data, batch_size=8)
    assert "gap_at_20" not in result and result["target"] == "genres" and result["videos"] == 24
    # The same figures by hand: the model's genre probabilities against each video's genres.
    expected = MetricAccumulator(25)
    for shard in sorted(glob.glob(os.path.join(data, "*.tfrecord"))):
        examples = [prepare(record, predictor.options) for record in reader.read_shard(shard)]
        batch = {key: np.stack([example[key] for example in examples]) for key in ("rgb", "audio")}
        logits = predictor.predict(batch)
        assert logits.shape == (len(examples), 25)
        expected.accumulate(1 / (1 + np.exp(-logits.astype(np.float64))), np.stack([e["labels"] for e in examples]))
    assert result["genre_gap"] == pytest.approx(expected.result()["gap_at_25"], abs=1e-9)
    assert result["genre_hit_at_1"] == pytest.approx(expected.result()["hit_at_1"], abs=1e-9)
    registry = Registry(str(tmp_path / "registry"))
    registry.push(out, "genres")
    registry.pull("genres:1", str(tmp_path / "mnt-models"))
    with pytest.raises(YtlabelError, match="a model trained on genres only"):
        YT8MModel("genres", str(tmp_path / "mnt-models")).load()


def test_a_wrong_target_is_refused_by_name(synth_dir, tmp_path):
    with pytest.raises(YtlabelError, match="target"):
        load_config("fc", "torch", os.path.join(synth_dir, "video"), str(tmp_path), None, ["target=moods"])
