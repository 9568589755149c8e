"""Payload rules without a server: V1 instances, V2 tensors, quantized frames, errors, answers."""

import base64

import numpy as np
import pytest

from ytlabel.data import schema
from ytlabel.data.examples import InputOptions
from ytlabel.data.vocabulary import load_vocabulary
from ytlabel.serving.payload import PayloadError, answers, from_instances, from_tensors

VIDEO = InputOptions(level="video", l2_normalize=True)
FRAMES = InputOptions(level="frame", max_frames=4, stride=2)


def _video(rgb=0.5, audio=-0.25):
    return {"mean_rgb": [rgb] * 1024, "mean_audio": [audio] * 128}


def test_v1_video_instances_are_normalised_like_training():
    batch = from_instances([_video(), _video(1.0, 0.0)], VIDEO)
    assert batch.inputs["rgb"].shape == (2, 1024) and batch.inputs["audio"].shape == (2, 128)
    norm = np.sqrt(1024 * 0.25 + 128 * 0.0625)
    assert batch.inputs["rgb"][0, 0] == pytest.approx(0.5 / norm) and batch.inputs["audio"][0, 0] == pytest.approx(
        -0.25 / norm
    )
    assert batch.inputs["rgb"][1, 0] == pytest.approx(1 / 32) and batch.inputs["audio"][1, 0] == 0.0
    assert batch.frames == []


def test_v1_quantized_frames_equal_their_dequantized_floats():
    rng = np.random.default_rng(0)
    rgb_codes = rng.integers(0, 256, size=(7, 1024), dtype=np.uint8)
    audio_codes = rng.integers(0, 256, size=(7, 128), dtype=np.uint8)
    quantized = {
        "rgb": [{"b64": base64.b64encode(row.tobytes()).decode()} for row in rgb_codes],
        "audio": [{"b64": base64.b64encode(row.tobytes()).decode()} for row in audio_codes],
    }
    floats = {"rgb": schema.dequantize(rgb_codes).tolist(), "audio": schema.dequantize(audio_codes).tolist()}
    a, b = from_instances([quantized], FRAMES), from_instances([floats], FRAMES)
    for key in ("rgb", "audio", "num_frames"):
        np.testing.assert_array_equal(a.inputs[key], b.inputs[key])
    # 7 frames, stride 2 -> frames 0, 2, 4, 6 -> max_frames 4 keeps all four
    assert a.inputs["rgb"].shape == (1, 4, 1024) and a.inputs["num_frames"].tolist() == [4] and a.frames == [7]
    np.testing.assert_array_equal(a.inputs["rgb"][0, 1], schema.dequantize(rgb_codes[2]))


def test_v1_frame_batches_pad_shorter_videos():
    short = {"rgb": [[1.0] * 1024] * 2, "audio": [[0.0] * 128] * 2}
    long = {"rgb": [[2.0] * 1024] * 5, "audio": [[0.0] * 128] * 5}
    batch = from_instances([short, long], FRAMES)
    assert batch.inputs["num_frames"].tolist() == [1, 3] and batch.inputs["rgb"].shape == (2, 3, 1024)
    assert batch.inputs["rgb"][0, 1:].sum() == 0.0 and batch.frames == [2, 5]


@pytest.mark.parametrize(
    "instances, options, message",
    [
        (
            [{"mean_rgb": [0.0] * 1000, "mean_audio": [0.0] * 128}],
            VIDEO,
            r"instance 0: mean_rgb: shape \[1000\], expected \[1024\]",
        ),
        ([{"mean_rgb": [0.0] * 1024}], VIDEO, r"instance 0: missing 'mean_audio'"),
        (
            [_video(), {"mean_rgb": ["a"] * 1024, "mean_audio": [0.0] * 128}],
            VIDEO,
            r"instance 1: mean_rgb: must be numbers",
        ),
        ([{"mean_rgb": [float("nan")] + [0.0] * 1023, "mean_audio": [0.0] * 128}], VIDEO, r"mean_rgb: contains NaN"),
        ([{"rgb": [[0.0] * 1024], "audio": [[0.0] * 128]}], VIDEO, r"this model reads video-level means"),
        ([_video()], FRAMES, r"this model reads frames; send 'rgb' \(frames x 1024\)"),
        ([{"rgb": [[0.0] * 1024] * 301, "audio": [[0.0] * 128] * 301}], FRAMES, r"rgb: 301 frames; at most 300"),
        ([{"rgb": [], "audio": []}], FRAMES, r"rgb: no frames"),
        ([{"rgb": [[0.0] * 1024] * 3, "audio": [[0.0] * 128] * 2}], FRAMES, r"rgb has 3 frames but audio 2"),
        (
            [{"rgb": [{"b64": "!!"}], "audio": [[0.0] * 128]}],
            FRAMES,
            r"rgb\[0\]: 2 base64 characters; 1024 quantized bytes are 1368",
        ),
        (
            [{"rgb": [{"b64": base64.b64encode(b"x" * 10).decode()}], "audio": [[0.0] * 128]}],
            FRAMES,
            r"rgb\[0\]: 16 base64 characters; 1024 quantized bytes are 1368",
        ),
        ([], VIDEO, r'"instances" must be a non-empty list'),
        ([_video()] * 257, VIDEO, r"257 videos in one request; at most 256"),
    ],
)
def test_v1_rejections_name_the_field_and_the_expected_shape(instances, options, message):
    with pytest.raises(PayloadError, match=message):
        from_instances(instances, options)


def test_v2_tensors_float_and_quantized():
    rng = np.random.default_rng(1)
    codes = rng.integers(0, 256, size=(2, 3, 1024), dtype=np.uint8)
    audio = rng.normal(size=(2, 3, 128)).astype(np.float32)
    batch = from_tensors(
        {"rgb": ("UINT8", codes), "audio": ("FP32", audio), "num_frames": ("INT64", np.array([3, 1]))},
        InputOptions(level="frame"),
    )
    assert batch.inputs["num_frames"].tolist() == [3, 1] and batch.frames == [3, 1]
    np.testing.assert_array_equal(batch.inputs["rgb"][0], schema.dequantize(codes[0]))
    assert batch.inputs["rgb"][1, 1:].sum() == 0.0
    video = from_tensors(
        {"mean_rgb": ("FP32", np.ones((1, 1024), np.float32)), "mean_audio": ("FP32", np.zeros((1, 128), np.float32))},
        VIDEO,
    )
    assert video.inputs["rgb"][0, 0] == pytest.approx(1 / 32)


@pytest.mark.parametrize(
    "tensors, message",
    [
        (
            {"mean_rgb": ("FP32", np.zeros((1, 1000)))},
            r"missing input 'mean_audio'|shape \[1, 1000\], expected \[n, 1024\]",
        ),
        ({"mean_rgb": ("FP32", np.zeros((1, 1024))), "mean_audio": ("FP32", np.zeros((2, 128)))}, r"same batch size"),
        ({"mean_rgb": ("INT32", np.zeros((1, 1024))), "mean_audio": ("FP32", np.zeros((1, 128)))}, r"datatype INT32"),
        ({"mean_rgb": ("FP32", np.full((1, 1024), np.inf)), "mean_audio": ("FP32", np.zeros((1, 128)))}, r"infinity"),
    ],
)
def test_v2_rejections(tensors, message):
    with pytest.raises(PayloadError, match=message):
        from_tensors(tensors, VIDEO)


def test_answers_rank_classes_and_genres_with_vocabulary_names():
    vocabulary = load_vocabulary()
    logits = np.full((1, schema.NUM_CLASSES), -10.0)
    logits[0, 0], logits[0, 8], logits[0, 1] = 3.0, 2.0, 1.0  # Game, Dance, Video game
    [answer] = answers(logits, vocabulary, top_k=3, top_genres=2)
    assert [(label["id"], label["name"], label["genre"]) for label in answer["labels"]] == [
        (0, "Game", "Games"),
        (8, "Dance", "Arts & Entertainment"),
        (1, "Video game", "Games"),
    ]
    assert answer["labels"][0]["score"] == pytest.approx(1 / (1 + np.exp(-3.0)), abs=1e-6)
    assert [genre["genre"] for genre in answer["genres"]] == ["Games", "Arts & Entertainment"]
    assert answer["genres"][0]["score"] == pytest.approx(answer["labels"][0]["score"], abs=1e-6)  # "max" aggregation


@pytest.mark.parametrize("width", [1024, 128, 3, 4, 5])
def test_quantized_frames_decode_to_the_dequantized_bytes(width):
    from ytlabel.serving.payload import _quantized_frames

    rng = np.random.default_rng(width)
    rows = rng.integers(0, 256, size=(7, width), dtype=np.uint8)
    frames = [{"b64": base64.b64encode(row.tobytes()).decode()} for row in rows]
    every = InputOptions(level="frame")
    np.testing.assert_array_equal(_quantized_frames(frames, width, "rgb", every), schema.dequantize(rows))
    with pytest.raises(PayloadError, match=r"rgb\[1\]: not valid base64"):
        _quantized_frames(frames[:1] + [{"b64": frames[1]["b64"][:-1] + "!"}], width, "rgb", every)
    other = bytes(width + 1) if width % 3 else bytes(width - 1)  # as many base64 characters, a byte off
    with pytest.raises(PayloadError, match=rf"rgb\[1\]: {len(other)} quantized bytes, expected {width}"):
        _quantized_frames(frames[:1] + [{"b64": base64.b64encode(other).decode()}], width, "rgb", every)
    # At stride 2 with 3 frames kept, frames 1, 3, 5 and 6 are not read: checked for form, not decoded.
    sparse = InputOptions(level="frame", stride=2, max_frames=3)
    garbled = [frame if index in (0, 2, 4) else {"b64": "!" * len(frame["b64"])} for index, frame in enumerate(frames)]
    decoded = _quantized_frames(garbled, width, "rgb", sparse)
    np.testing.assert_array_equal(decoded[[0, 2, 4]], schema.dequantize(rows[[0, 2, 4]]))
    with pytest.raises(PayloadError, match=r"rgb\[5\]: 3 base64 characters"):
        _quantized_frames(frames[:5] + [{"b64": "abc"}], width, "rgb", sparse)


def test_a_bad_frame_among_quantized_frames_is_named():
    rng = np.random.default_rng(5)
    audio = [
        {"b64": base64.b64encode(row.tobytes()).decode()} for row in rng.integers(0, 256, (4, 128), dtype=np.uint8)
    ]
    audio[2] = [0.0] * 128
    with pytest.raises(PayloadError, match=r"audio\[2\]: every frame must be"):
        from_instances([{"rgb": [[0.0] * 1024] * 4, "audio": audio}], InputOptions(level="frame"))
    audio[2] = {"b64": base64.b64encode(b"x" * 127).decode()}
    with pytest.raises(PayloadError, match=r"audio\[2\]: 127 quantized bytes, expected 128"):
        from_instances([{"rgb": [[0.0] * 1024] * 4, "audio": audio}], InputOptions(level="frame"))


@pytest.mark.parametrize("k", [1, 3, 20, 25, 40])
def test_top_indices_equal_a_stable_full_sort_even_with_ties(k):
    from ytlabel.serving.payload import top_indices

    rng = np.random.default_rng(k)
    for scores in (rng.random(3862), np.round(rng.random(3862), 2), np.zeros(25), np.repeat([0.5, 0.2, 0.9], 13)):
        np.testing.assert_array_equal(top_indices(scores, k), np.argsort(-scores, kind="stable")[:k])
