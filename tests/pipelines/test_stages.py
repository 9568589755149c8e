"""Stage rules that need no training: which data sources combine, and which run becomes the champion."""

import os

import pytest

from ytlabel.errors import YtlabelError
from ytlabel.pipeline import dataset
from ytlabel.pipeline.stages import pick_winner


def test_the_champion_is_chosen_among_runs_on_real_videos():
    runs = [
        {"run_dir": "bilstm-torch", "gap_at_20": 0.91, "synthetic": True},
        {"run_dir": "fc-torch", "gap_at_20": 0.52, "synthetic": False},
        {"run_dir": "fc-keras", "gap_at_20": 0.55, "synthetic": False},
    ]
    assert pick_winner(runs)["run_dir"] == "fc-keras"  # 0.91 was scored on generated videos: not comparable
    assert pick_winner(runs[:1])["run_dir"] == "bilstm-torch"  # all synthetic: the best of them
    assert pick_winner([{"run_dir": "a", "gap_at_20": 0.5}, {"run_dir": "b", "gap_at_20": 0.5}])["run_dir"] == "a"
    with pytest.raises(YtlabelError, match="no evaluated runs"):
        pick_winner([])


def test_a_real_source_and_synthetic_cover_one_level_each(sample_shards, tmp_path):
    sample = os.path.dirname(sample_shards[0])
    split = dataset.ingest(f"{sample},synthetic", str(tmp_path / "data"), 1.0, 0.5, synthetic_videos=24)
    assert split.synthetic == ["frame"]
    assert sorted(split.train["video"] + split.eval["video"]) == sorted(sample_shards)
    assert all(shard.startswith(str(tmp_path / "data" / "frame")) for shard in split.train["frame"])
    assert split.videos == {"train": 284, "eval": 305} or split.videos == {"train": 305, "eval": 284}
    with pytest.raises(YtlabelError, match="two parts hold video-level data; list one source per level"):
        dataset.ingest(
            f"{sample_shards[0]},yt8m://2/video/validate?base_url=http://127.0.0.1:9", str(tmp_path / "x"), 1.0, 0.5
        )
    with pytest.raises(YtlabelError, match="unknown parameters \\['mirrors'\\]"):
        dataset.ingest("yt8m://2/video/validate?mirrors=us", str(tmp_path / "y"), 1.0, 0.5)
