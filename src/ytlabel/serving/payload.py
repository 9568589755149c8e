"""Request payloads -> model batches, and model scores -> answers. Numpy only; no server here.

Video-level models take per video `mean_rgb` (1024 floats) and `mean_audio` (128 floats).
Frame-level models take `rgb` (frames, 1024) and `audio` (frames, 128), 1 <= frames <= 300, either as
floats or in the YT8M quantized form: V1 frames as {"b64": base64 of the frame's 1024 (128) uint8 bytes}
exactly as the TFRecords store them, V2 tensors with datatype UINT8. Inputs are then prepared as the model
was trained (stride, max_frames, L2 normalisation; see `ytlabel.data.examples`).

Every rejection is a `PayloadError` naming the instance, the field and the expected shape.
"""

import base64
import binascii
import dataclasses

import numpy as np

from ytlabel.data import schema
from ytlabel.data.examples import VIDEO, InputOptions, l2_normalize_pair
from ytlabel.data.vocabulary import Vocabulary
from ytlabel.kinds import FRAME
from ytlabel.models import spec
from ytlabel.models.genre import genre_scores

MAX_INSTANCES = 256  # per request; a bigger batch is the client's job to split
FIELDS = {
    VIDEO: (("mean_rgb", schema.RGB_DIM), ("mean_audio", schema.AUDIO_DIM)),
    FRAME: (("rgb", schema.RGB_DIM), ("audio", schema.AUDIO_DIM)),
}


class PayloadError(ValueError):
    """The request does not fit the model; the message says where and what was expected."""


@dataclasses.dataclass(frozen=True)
class Batch:
    inputs: dict[str, np.ndarray]  # model inputs, as `ytlabel.data.stream` batches them
    frames: list[int]  # frames per instance as sent (empty for video level)


# --- V1: {"instances": [{...}, ...]} ---------------------------------------------------------------
def from_instances(instances, options: InputOptions) -> Batch:
    if not isinstance(instances, list) or not instances:
        raise PayloadError('"instances" must be a non-empty list of objects')
    _check_count(len(instances))
    names = FIELDS[options.level]
    columns: dict[str, list[np.ndarray]] = {name: [] for name, _ in names}
    for index, instance in enumerate(instances):
        where = f"instance {index}"
        if not isinstance(instance, dict):
            raise PayloadError(f"{where}: must be an object with {_expected(options)}")
        _check_level(instance, options, where)
        for name, width in names:
            if name not in instance:
                raise PayloadError(f"{where}: missing {name!r}; expected {_expected(options)}")
            value = instance[name]
            if options.level == VIDEO:
                columns[name].append(_floats(value, (width,), f"{where}: {name}"))
            else:
                columns[name].append(_frames(value, width, f"{where}: {name}", options))
    if options.level == VIDEO:
        return _video_batch(np.stack(columns["mean_rgb"]), np.stack(columns["mean_audio"]), options)
    return _frame_batch(columns["rgb"], columns["audio"], options)


def instance(record) -> dict:
    """The V1 instance of a TFRecord's video, as a client sends it: `mean_rgb`/`mean_audio` floats for a
    video-level record, `rgb`/`audio` quantized frames ({"b64": ...} per frame) for a frame-level one."""
    if hasattr(record, "num_frames"):
        return {
            name: [{"b64": base64.b64encode(row.tobytes()).decode()} for row in codes]
            for name, codes in (("rgb", record.rgb), ("audio", record.audio))
        }
    return {"mean_rgb": record.rgb.tolist(), "mean_audio": record.audio.tolist()}


# --- V2: named tensors ---------------------------------------------------------------------------
def from_tensors(tensors: dict[str, tuple[str, np.ndarray]], options: InputOptions) -> Batch:
    """`tensors`: input name -> (datatype, array) of a V2 (Open Inference Protocol) request."""
    names = FIELDS[options.level]
    _check_level(tensors, options, "request")
    arrays = {}
    for name, width in names:
        if name not in tensors:
            raise PayloadError(f"missing input {name!r}; expected {_expected(options, v2=True)}")
        datatype, array = tensors[name]
        rank = 2 if options.level == VIDEO else 3
        if array.ndim != rank or array.shape[-1] != width:
            shape = f"[n, {width}]" if rank == 2 else f"[n, frames, {width}]"
            raise PayloadError(f"input {name!r}: shape {list(array.shape)}, expected {shape}")
        if datatype == "UINT8":
            if options.level == VIDEO:
                raise PayloadError(f"input {name!r}: UINT8 (quantized) is for frames; send FP32 means")
            array = schema.dequantize(array)
        elif datatype not in ("FP32", "FP64"):
            raise PayloadError(f"input {name!r}: datatype {datatype}, expected FP32 (or UINT8 quantized frames)")
        arrays[name] = np.asarray(array, dtype=np.float32)
        _check_finite(arrays[name], f"input {name!r}")
    _check_count(len(arrays[names[0][0]]))
    if len(arrays[names[0][0]]) != len(arrays[names[1][0]]):
        raise PayloadError(f"inputs {names[0][0]!r} and {names[1][0]!r} must have the same batch size n")
    if options.level == VIDEO:
        return _video_batch(arrays["mean_rgb"], arrays["mean_audio"], options)
    rgb, audio = arrays["rgb"], arrays["audio"]
    if rgb.shape[1] != audio.shape[1]:
        raise PayloadError(
            f"inputs 'rgb' and 'audio' must have the same number of frames ({rgb.shape[1]} vs {audio.shape[1]})"
        )
    counts = np.full(len(rgb), rgb.shape[1], dtype=np.int64)
    if "num_frames" in tensors:
        counts = np.asarray(tensors["num_frames"][1], dtype=np.int64).reshape(-1)
        if counts.shape != (len(rgb),) or counts.min() < 1 or counts.max() > rgb.shape[1]:
            raise PayloadError(f"input 'num_frames': one count in [1, {rgb.shape[1]}] per video, got {counts.tolist()}")
    for index, count in enumerate(counts):
        _check_frames(int(count), f"video {index}")
    return _frame_batch(
        [rgb[i, :count] for i, count in enumerate(counts)],
        [audio[i, :count] for i, count in enumerate(counts)],
        options,
    )


# --- answers -------------------------------------------------------------------------------------
def answers(logits: np.ndarray, vocabulary: Vocabulary, top_k: int, top_genres: int) -> list[dict]:
    """Per video: the top-k classes (id, name, genre, score) and the ranked genres."""
    probabilities = spec.probabilities(logits)
    full = _full_width(probabilities, len(vocabulary.names))
    genres = genre_scores(full, vocabulary)
    results = []
    for row, genre_row in zip(probabilities, genres):
        classes = top_indices(row, top_k)
        ranked = top_indices(genre_row, top_genres)
        results.append(
            {
                "labels": [
                    {
                        "id": int(c),
                        "name": vocabulary.name(int(c)),
                        "genre": vocabulary.genre(int(c)),
                        "score": float(row[c]),
                    }
                    for c in classes
                ],
                "genres": [{"genre": vocabulary.genres[g], "score": float(genre_row[g])} for g in ranked],
            }
        )
    return results


def top_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest scores' indices, highest first, ties by lower index: `argsort(-scores, kind="stable")[:k]`
    without sorting all 3,862 (every score tied with the k-th is kept before the stable sort, so it is exact)."""
    if k >= len(scores):
        return np.argsort(-scores, kind="stable")[:k]
    kth = np.partition(scores, len(scores) - k)[len(scores) - k]
    candidates = np.flatnonzero(scores >= kth)
    return candidates[np.argsort(-scores[candidates], kind="stable")][:k]


# --- helpers -------------------------------------------------------------------------------------
def _expected(options: InputOptions, v2: bool = False) -> str:
    if options.level == VIDEO:
        return (
            "mean_rgb [n, 1024] and mean_audio [n, 128] (FP32)"
            if v2
            else "'mean_rgb' (1024 numbers) and 'mean_audio' (128 numbers)"
        )
    return (
        "rgb [n, frames, 1024] and audio [n, frames, 128] (FP32, or UINT8 quantized)"
        if v2
        else "'rgb' (frames x 1024) and 'audio' (frames x 128), numbers or {\"b64\": quantized bytes} per frame"
    )


def _check_level(fields, options: InputOptions, where: str) -> None:
    other = FIELDS[FRAME if options.level == VIDEO else VIDEO][0][0]
    if other in fields and FIELDS[options.level][0][0] not in fields:
        kind = "video-level means" if options.level == VIDEO else "frames"
        raise PayloadError(f"{where}: this model reads {kind}; send {_expected(options)}")


def _check_count(count: int) -> None:
    if count > MAX_INSTANCES:
        raise PayloadError(f"{count} videos in one request; at most {MAX_INSTANCES}, split the batch")


def _check_frames(count: int, where: str) -> None:
    if count < 1:
        raise PayloadError(f"{where}: no frames; send at least one")
    if count > schema.MAX_FRAMES:
        raise PayloadError(f"{where}: {count} frames; at most {schema.MAX_FRAMES} (YT8M keeps 1 frame/s, 300 s)")


def _check_finite(array: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(array)):
        raise PayloadError(f"{where}: contains NaN or infinity")


def _floats(value, shape: tuple[int, ...], where: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise PayloadError(f"{where}: must be numbers, shape {list(shape)}") from error
    if array.shape != shape:
        raise PayloadError(f"{where}: shape {list(array.shape)}, expected {list(shape)}")
    _check_finite(array, where)
    return array


def _frames(value, width: int, where: str, options: InputOptions) -> np.ndarray:
    if not isinstance(value, list):
        raise PayloadError(f'{where}: must be a list of frames, each {width} numbers or {{"b64": ...}}')
    _check_frames(len(value), where)
    if value and isinstance(value[0], dict):
        return _quantized_frames(value, width, where, options)
    return _floats(value, (len(value), width), where)


def _quantized_frames(value: list, width: int, where: str, options: InputOptions) -> np.ndarray:
    """{"b64": ...} per frame -> dequantized (frames, width), naming the first bad frame.

    Only the frames the model reads (every `stride`-th, the first `max_frames` of those) are decoded; the
    others are checked for form ({"b64": text} of the length `width` bytes encode to) and left as zero
    rows, which the model's striding drops. A 300-frame request at stride 2 decodes half its frames.
    A vectorised numpy decoder we tried was no faster, so frames are decoded one by one. Under KServe 0.21
    this is still the fast way to send frames: V2 raw bytes cost more in KServe's own decoding (docs/serving.md).
    """
    encoded_length = 4 * ((width + 2) // 3)
    codes = np.zeros((len(value), width), dtype=np.uint8)
    last_kept = options.stride * (options.max_frames - 1)
    for index, frame in enumerate(value):
        text = frame.get("b64") if isinstance(frame, dict) else None
        if not isinstance(text, str):
            raise PayloadError(f'{where}[{index}]: every frame must be {{"b64": ...}} once one is')
        if len(text) != encoded_length:  # the strict decoder below would refuse it too; say why
            raise PayloadError(
                f"{where}[{index}]: {len(text)} base64 characters; {width} quantized bytes are {encoded_length}"
            )
        if index % options.stride or index > last_kept:
            continue
        try:
            decoded = binascii.a2b_base64(text, strict_mode=True)
        except (binascii.Error, ValueError) as error:
            raise PayloadError(f"{where}[{index}]: not valid base64") from error
        if len(decoded) != width:
            raise PayloadError(f"{where}[{index}]: {len(decoded)} quantized bytes, expected {width}")
        codes[index] = np.frombuffer(decoded, dtype=np.uint8)
    return schema.dequantize(codes)


def _video_batch(rgb: np.ndarray, audio: np.ndarray, options: InputOptions) -> Batch:
    if options.l2_normalize:
        rgb, audio = l2_normalize_pair(rgb, audio)
    return Batch({"rgb": rgb, "audio": audio}, [])


def _frame_batch(rgb_list: list[np.ndarray], audio_list: list[np.ndarray], options: InputOptions) -> Batch:
    """Strides, truncates to max_frames and pads like `ytlabel.data.examples.prepare`."""
    sent = []
    for index, (rgb, audio) in enumerate(zip(rgb_list, audio_list)):
        if len(rgb) != len(audio):
            raise PayloadError(
                f"instance {index}: rgb has {len(rgb)} frames but audio {len(audio)}; both carry one row per second"
            )
        sent.append(len(rgb))
    kept = [rgb[:: options.stride][: options.max_frames] for rgb in rgb_list]
    time = max(len(frames) for frames in kept)
    batch = len(kept)
    rgb_out = np.zeros((batch, time, schema.RGB_DIM), dtype=np.float32)
    audio_out = np.zeros((batch, time, schema.AUDIO_DIM), dtype=np.float32)
    counts = np.zeros(batch, dtype=np.int64)
    for i, (rgb, audio) in enumerate(zip(rgb_list, audio_list)):
        rgb, audio = rgb[:: options.stride][: options.max_frames], audio[:: options.stride][: options.max_frames]
        if options.l2_normalize:
            rgb, audio = l2_normalize_pair(rgb, audio)
        rgb_out[i, : len(rgb)], audio_out[i, : len(audio)], counts[i] = rgb, audio, len(rgb)
    return Batch({"rgb": rgb_out, "audio": audio_out, "num_frames": counts}, sent)


def _full_width(probabilities: np.ndarray, classes: int) -> np.ndarray:
    """Genre scores need all vocabulary columns; a smaller (test) model's missing classes score 0."""
    if probabilities.shape[1] == classes:
        return probabilities
    full = np.zeros((len(probabilities), classes))
    full[:, : min(classes, probabilities.shape[1])] = probabilities[:, :classes]
    return full
