import glob
import itertools
import json
import os

import numpy as np
import pytest

from ytlabel.data import reader, schema, synth
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.errors import DataError


def _read_dir(path):
    return [
        record for shard in sorted(glob.glob(os.path.join(path, "*.tfrecord"))) for record in reader.read_shard(shard)
    ]


def _oracle(path):
    from ytlabel.data.tfrecord import read_records

    out = []
    for shard in sorted(glob.glob(os.path.join(path, "oracle", "*.tfrecord"))):
        with open(shard, "rb") as stream:
            out += [synth.decode_oracle(payload) for _, payload in read_records(stream, source=shard)]
    return out


def test_layout_ids_and_means(synth_dir):
    names = sorted(os.listdir(os.path.join(synth_dir, "frame")))
    assert names == [f"synth-0000{i}-of-00003.tfrecord" for i in range(3)]
    frames, videos = _read_dir(os.path.join(synth_dir, "frame")), _read_dir(os.path.join(synth_dir, "video"))
    oracle = _oracle(synth_dir)
    assert [f.id for f in frames] == [v.id for v in videos] == [o[0] for o in oracle]
    assert frames[0].id == "s3v0000000" and len(frames) == 24
    for f, v in zip(frames, videos):
        assert f.labels.tolist() == v.labels.tolist()
        assert 10 <= f.num_frames <= 20
        np.testing.assert_allclose(v.rgb, schema.dequantize(f.rgb).mean(0), atol=1e-6)
        np.testing.assert_allclose(v.audio, schema.dequantize(f.audio).mean(0), atol=1e-6)
    manifest = json.load(open(os.path.join(synth_dir, "synth.json")))
    assert manifest["config"]["videos"] == 24
    assert sum(len(c) for c in manifest["kinds"].values()) == 3862


def test_same_seed_same_bytes_whatever_the_shard_count(tmp_path):
    config = synth.SynthConfig(videos=6, shards=2, seed=9, frames=8)
    synth.generate(config, tmp_path / "a")
    synth.generate(config, tmp_path / "b")
    for level in ("video", "frame", "oracle"):
        for name in os.listdir(tmp_path / "a" / level):
            assert (tmp_path / "a" / level / name).read_bytes() == (tmp_path / "b" / level / name).read_bytes()
    synth.generate(synth.SynthConfig(videos=6, shards=3, seed=9, frames=8), tmp_path / "c")
    by_id = {r.id: r for r in _read_dir(tmp_path / "c" / "frame")}
    for record in _read_dir(tmp_path / "a" / "frame"):
        np.testing.assert_array_equal(by_id[record.id].rgb, record.rgb)


def test_structure_temporal_classes_cancel_in_the_mean():
    world = synth.World(
        synth.SynthConfig(videos=1, shards=1, seed=0, noise=0.0, frames=40, frame_jitter=0.0), load_vocabulary()
    )
    temporal = np.flatnonzero(world.kinds == synth.KINDS.index("temporal"))
    video = next(v for v in map(world.video, range(2000)) if set(v.frames.labels) <= set(temporal))
    label = video.frames.labels[0]
    rgb = schema.dequantize(video.frames.rgb)
    signature = world.rgb_signatures[label]
    # Only quantization remains at noise 0: the mean hides the class, the halves show it.
    assert abs(float(rgb.mean(0) @ signature)) < 0.05
    assert float((rgb[:20].mean(0) - rgb[20:].mean(0)) @ signature) == pytest.approx(2 * synth.SIGNAL, abs=0.1)


def test_structure_audio_classes_leave_rgb_untouched():
    world = synth.World(
        synth.SynthConfig(videos=1, shards=1, seed=0, noise=0.0, frames=10, frame_jitter=0.0), load_vocabulary()
    )
    audio_kind = synth.KINDS.index("audio")
    video = next(
        v for v in map(world.video, range(500)) if all(world.kinds[label] == audio_kind for label in v.frames.labels)
    )
    assert np.abs(video.mean_rgb).max() < 0.01  # only the quantization offset of zeros
    label = video.frames.labels[0]
    assert float(video.mean_audio @ world.audio_signatures[label]) == pytest.approx(synth.SIGNAL, abs=0.15)


def test_label_statistics_follow_the_vocabulary():
    vocabulary = load_vocabulary()
    world = synth.World(synth.SynthConfig(videos=1, shards=1, seed=1), vocabulary)
    rng = np.random.default_rng(0)
    draws = [world._labels(rng) for _ in range(3000)]
    assert np.mean([len(d) for d in draws]) == pytest.approx(3.0, abs=0.1)
    firsts = np.bincount(np.concatenate(draws), minlength=3862)
    # "Game" leads the vocabulary with 6.7% of first draws; genre co-occurrence (Games is large) adds more.
    assert firsts.argmax() == 0 and firsts[0] / 3000 == pytest.approx(0.151, abs=0.01)
    head, tail = np.argsort(-vocabulary.train_counts)[:100], np.argsort(-vocabulary.train_counts)[-1000:]
    assert firsts[head].sum() > 20 * firsts[tail].sum()  # Zipf-like: the head dominates
    pairs = [(a, b) for d in draws for a, b in itertools.combinations(d, 2)]
    same = np.mean([vocabulary.genre_ids[a] == vocabulary.genre_ids[b] for a, b in pairs])
    prior = vocabulary.train_counts / vocabulary.train_counts.sum()
    independent = sum(prior[vocabulary.genre_ids == g].sum() ** 2 for g in range(len(vocabulary.genres)))
    assert same == pytest.approx(0.66, abs=0.02) and same > 2 * independent  # labels co-occur within genres


def test_oracle_ranks_the_true_labels_first(synth_dir):
    frames = _read_dir(os.path.join(synth_dir, "frame"))
    oracle = _oracle(synth_dir)
    hits = [int(np.argmax(scores)) in set(f.labels.tolist()) for f, (_, scores) in zip(frames, oracle)]
    assert np.mean(hits) == 1.0
    at_noise_8 = synth.World(synth.SynthConfig(videos=1, shards=1, seed=3, noise=8.0), load_vocabulary())
    noisy = [at_noise_8.video(i) for i in range(40)]
    assert np.mean([int(np.argmax(v.oracle)) in set(v.frames.labels.tolist()) for v in noisy]) < 0.9


def test_refuses_to_overwrite(synth_dir):
    with pytest.raises(DataError, match="already holds a generated dataset"):
        synth.generate(synth.SynthConfig(videos=2, shards=1), synth_dir)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("videos", 0, "videos=0: must be >= 1"),
        ("frames", 301, "frames=301: must be in \\[2, 300\\]"),
        ("noise", -1.0, "noise=-1.0: must be >= 0"),
    ],
)
def test_config_errors_name_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        synth.SynthConfig(**{"videos": 4, field: value})
