"""The whole input path against the readers users would pick instead (prints JSON).

Shards -> records -> the batch a training step consumes: dequantized features, frames sampled (every
2nd, the first 150) and zero-padded, num_frames, multi-hot labels over 3,862 classes, 256-record
shuffle buffer. Same shards, same batch shape, for every reader:

  ours      ytlabel.data.stream through the PyTorch DataLoader the trainer uses: workers that live across
            epochs send packed batches (uint8 frame codes, label ids), unpacked in the consumer as the
            trainer's read-ahead thread does (torch tensors)
  ours_float  the same with float batches crossing the process boundary (the path before packing)
  ours_keras  the same stream as Keras `fit` consumes it: the Keras feed's reader processes (packed batches
            through reused shared-memory slots), unpacked in its read-ahead thread, through
            `tf.data.Dataset.from_generator` (tf tensors)
  tfdata    tf.data: TFRecordDataset -> parse -> decode/sample/pad -> multi-hot -> batch -> prefetch,
            AUTOTUNE, on a private thread pool of `readers` threads (tf tensors, what Keras consumes)
  tfrecord  the PyPI `tfrecord` package (what PyTorch users pick to read TFRecords without TensorFlow):
            its loaders in an IterableDataset, the same numpy transform, a DataLoader (torch tensors)
  dali      NVIDIA DALI's TFRecord reader on the CPU (device_id=None), multi-hot with one_hot + max.
            Its reader parses tf.train.Example only, not SequenceExample: frame level is not possible.

Each (reader, level, readers) runs in its own process, so thread settings and memory do not mix, and
**is pinned to `readers` cores** (CPU affinity, inherited by its worker processes and threads): readers=1
is one core, readers=2 two, for every reader alike. Every run reads `--passes` passes over the shards after
a one-batch warm-up; resident memory is sampled after the first pass and at the end (flat = it does not grow
with videos). `cold_first_batch_s` is the reader's set-up to its first batch (worker processes started, the
framework already imported); `first_batch_s` the first batch of a later epoch. The whole grid is repeated
`--repeats` times, interleaved, and each figure is the median with its min and max; `spread` is
(max - min) / median. A run during which other processes took more than 10 % of the machine's CPU time is
marked `busy` (from /proc/stat, less this run's own processes).
Ratios are ours against each peer on the medians of the same run. The last stdout line is the JSON.

Needs the peers: `make bench-deps` (requirements/bench.txt: tfrecord; requirements/bench-dali.txt: DALI).
Usage: python benchmarks/input_path.py [--video-data DIR] [--passes 3] [--repeats 3] [--work DIR]
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from ytlabel.data import schema

BATCH, MAX_FRAMES, STRIDE, SHUFFLE = 32, 150, 2, 256
CLASSES, RGB, AUDIO = 3862, 1024, 128
SCALE, BIAS = schema.DEQUANT_SCALE, schema.DEQUANT_BIAS  # the starter's dequantization, for every reader


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- the readers: each is set up once (untimed) and returns `passes(epoch)`, an iterable of batches ------
def _plan(shards: list[str], level: str, readers: int):
    from ytlabel.data import stream
    from ytlabel.data.examples import InputOptions

    options = (
        InputOptions(level=level, max_frames=MAX_FRAMES, stride=STRIDE)
        if level == "frame"
        else InputOptions(level=level)
    )
    return stream.StreamPlan(
        tuple(shards), tuple(stream.count_records(shards)), options, BATCH, readers=readers, shuffle_buffer=SHUFFLE
    )


def ours(shards: list[str], level: str, readers: int, packed: bool = True):
    from ytlabel.data.readahead import ReadAhead
    from ytlabel.training.torch_feed import batches, data_loader

    plan = _plan(shards, level, readers)
    loader = data_loader(plan, workers=readers if readers > 1 else 0, packed=packed)

    def passes(epoch: int):  # as the trainer reads: workers keep their own epoch count; unpacked read-ahead
        return ReadAhead(batches(loader, plan.options) if packed else loader, 4)

    return passes


def ours_keras(shards: list[str], level: str, readers: int):
    from ytlabel.training import keras_feed

    plan = _plan(shards, level, readers)
    feed = keras_feed.Feed(plan, 0, read_ahead=4, workers=readers if readers > 1 else 0)
    batches = iter(keras_feed.dataset(feed, CLASSES))  # one stream over all epochs, as `fit` reads it

    def passes(epoch: int):
        for _ in range(plan.steps_per_epoch):
            inputs, labels = next(batches)
            yield {**inputs, "labels": labels}

    return passes


def ours_float(shards: list[str], level: str, readers: int):
    return ours(shards, level, readers, packed=False)


def _numpy_example(context: dict, frames: dict | None) -> dict:
    """The peers' per-video transform in numpy (tfrecord package)."""
    hot = np.zeros(CLASSES, np.float32)
    hot[context["labels"]] = 1.0
    if frames is None:
        return {"rgb": context["mean_rgb"], "audio": context["mean_audio"], "labels": hot}
    out = {"labels": hot}
    for key, width in (("rgb", RGB), ("audio", AUDIO)):
        codes = np.frombuffer(b"".join(frames[key]), np.uint8).reshape(-1, width)[::STRIDE][:MAX_FRAMES]
        padded = np.zeros((MAX_FRAMES, width), np.float32)
        padded[: len(codes)] = codes.astype(np.float32) * SCALE + BIAS
        out[key], out["num_frames"] = padded, np.int64(len(codes))
    return out


def tfrecord_package(shards: list[str], level: str, readers: int):
    import torch
    from tfrecord.reader import example_loader, sequence_loader

    class Shards(torch.utils.data.IterableDataset):
        def __iter__(self):
            info = torch.utils.data.get_worker_info()
            mine = shards[info.id :: info.num_workers] if info else shards
            rng, buffer = np.random.default_rng(), []
            for shard in mine:
                if level == "video":
                    records = (
                        (example, None) for example in example_loader(shard, None, ["labels", "mean_rgb", "mean_audio"])
                    )
                else:
                    records = sequence_loader(shard, None, ["labels"], ["rgb", "audio"])
                for context, frames in records:
                    buffer.append(_numpy_example(context, frames))
                    if len(buffer) > SHUFFLE:
                        yield buffer.pop(int(rng.integers(len(buffer))))
            while buffer:
                yield buffer.pop(int(rng.integers(len(buffer))))

    loader = torch.utils.data.DataLoader(
        Shards(), batch_size=BATCH, drop_last=True, num_workers=readers if readers > 1 else 0
    )
    return lambda epoch: loader


def tfdata(shards: list[str], level: str, readers: int):
    import tensorflow as tf

    def dequantize(codes, width):
        frames = tf.reshape(tf.io.decode_raw(codes, tf.uint8), [-1, width])[::STRIDE][:MAX_FRAMES]
        return tf.cast(frames, tf.float32) * SCALE + BIAS

    def parse(serialized):
        if level == "video":
            example = tf.io.parse_single_example(
                serialized,
                {
                    "labels": tf.io.VarLenFeature(tf.int64),
                    "mean_rgb": tf.io.FixedLenFeature([RGB], tf.float32),
                    "mean_audio": tf.io.FixedLenFeature([AUDIO], tf.float32),
                },
            )
            labels, out = example["labels"].values, {"rgb": example["mean_rgb"], "audio": example["mean_audio"]}
        else:
            context, lists = tf.io.parse_single_sequence_example(
                serialized,
                context_features={"labels": tf.io.VarLenFeature(tf.int64)},
                sequence_features={key: tf.io.FixedLenSequenceFeature([], tf.string) for key in ("rgb", "audio")},
            )
            rgb, audio = dequantize(lists["rgb"], RGB), dequantize(lists["audio"], AUDIO)
            labels = context["labels"].values
            count = tf.shape(rgb)[0]
            out = {
                "rgb": tf.pad(rgb, [[0, MAX_FRAMES - count], [0, 0]]),
                "audio": tf.pad(audio, [[0, MAX_FRAMES - count], [0, 0]]),
                "num_frames": tf.cast(count, tf.int64),
            }
        out["labels"] = tf.reduce_max(tf.one_hot(labels, CLASSES), axis=0)
        return out

    options = tf.data.Options()
    options.threading.private_threadpool_size = readers
    options.threading.max_intra_op_parallelism = 1
    dataset = tf.data.TFRecordDataset(shards, num_parallel_reads=readers if readers > 1 else None)
    dataset = dataset.shuffle(SHUFFLE).map(parse, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE).with_options(options)
    return lambda epoch: dataset


def dali(shards: list[str], level: str, readers: int):
    if level != "video":
        raise NotImplementedError(
            "DALI's TFRecord reader parses tf.train.Example only; frame-level shards are tf.train.SequenceExample"
        )
    import nvidia.dali.tfrecord as tfrec
    from nvidia.dali import fn, pipeline_def, types

    index_dir = tempfile.mkdtemp(prefix="dali-index-")
    indexes = []
    for shard in shards:
        indexes.append(os.path.join(index_dir, os.path.basename(shard) + ".idx"))
        subprocess.run(
            [os.path.join(os.path.dirname(sys.executable), "tfrecord2idx"), shard, indexes[-1]],
            check=True,
            capture_output=True,
        )

    @pipeline_def(batch_size=BATCH, num_threads=readers, device_id=None, seed=0, prefetch_queue_depth=2)
    def pipeline():
        example = fn.readers.tfrecord(
            path=shards,
            index_path=indexes,
            random_shuffle=True,
            initial_fill=SHUFFLE,
            features={
                "labels": tfrec.VarLenFeature(tfrec.int64, -1),
                "mean_rgb": tfrec.FixedLenFeature([RGB], tfrec.float32, 0.0),
                "mean_audio": tfrec.FixedLenFeature([AUDIO], tfrec.float32, 0.0),
            },
        )
        hot = fn.reductions.max(fn.one_hot(example["labels"], num_classes=CLASSES, dtype=types.FLOAT), axes=[0])
        return example["mean_rgb"], example["mean_audio"], hot

    built = pipeline()
    built.build()
    videos = 0
    for shard in shards:
        with open(indexes[shards.index(shard)]) as index:
            videos += sum(1 for _ in index)

    def passes(epoch: int):  # the reader wraps around by itself: one pass is videos // BATCH batches
        for _ in range(videos // BATCH):
            rgb, audio, hot = built.run()
            yield {"rgb": rgb.as_array(), "audio": audio.as_array(), "labels": hot.as_array()}

    return passes


READERS = {
    "ours": ours,
    "ours_float": ours_float,
    "ours_keras": ours_keras,
    "tfdata": tfdata,
    "tfrecord": tfrecord_package,
    "dali": dali,
}


def run_one(name: str, shards: list[str], level: str, readers: int, passes: int) -> dict:
    """Runs in its own process, on `readers` cores: warm-up batch, then `passes` timed passes."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:readers]))  # workers and threads inherit it
    __import__("tensorflow" if name in ("tfdata", "ours_keras") else "torch")  # imports are not start-up
    cold = time.perf_counter()
    passes_of = READERS[name](shards, level, readers)
    warm = iter(passes_of(99))
    next(warm)  # thread pools, worker processes, page cache
    cold = time.perf_counter() - cold
    if hasattr(warm, "close"):
        warm.close()
    videos, started, after_first = 0, time.perf_counter(), None
    for epoch in range(passes):
        for batch in passes_of(epoch):
            videos += len(batch["labels"])
        after_first = after_first or rss_mb()
    first_batch = _first_batch_seconds(passes_of, passes)
    seconds = time.perf_counter() - started
    shape = tuple(batch["rgb"].shape)
    labels = np.asarray(batch["labels"])
    if labels.shape != (BATCH, CLASSES) or not (labels.max(axis=1) == 1).all():  # every video has a label
        raise SystemExit(f"{name}: the last batch's labels are not a multi-hot ({BATCH}, {CLASSES}) matrix")
    return {
        "reader": name,
        "level": level,
        "readers": readers,
        "videos": videos,
        "videos_per_s": round(videos / seconds, 1),
        "batch_rgb_shape": list(shape),
        "rss_mb_after_pass_1": round(after_first, 1),
        "rss_mb_end": round(rss_mb(), 1),
        "first_batch_s": round(first_batch, 3),
        "cold_first_batch_s": round(cold, 3),
    }


def _first_batch_seconds(passes_of, epoch: int) -> float:
    """Seconds from the start of an epoch (after the first) to its first batch: worker start-up included."""
    started = time.perf_counter()
    source = iter(passes_of(epoch))
    next(source)
    seconds = time.perf_counter() - started
    if hasattr(source, "close"):
        source.close()
    return seconds


def _cpu_busy() -> tuple[float, float]:
    """(machine busy seconds from /proc/stat, CPU seconds of finished child processes)."""
    import resource

    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--video-data",
        default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "yt8m-v2-video-validate"),
    )
    parser.add_argument("--video-shards", default="0:16")
    parser.add_argument("--frame-videos", type=int, default=384)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="times the whole grid is measured (median, spread)")
    parser.add_argument("--readers", default="ours,ours_float,ours_keras,tfdata,tfrecord,dali")
    parser.add_argument("--work", default=None)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: name,level,readers,shards-file
    args = parser.parse_args()
    if args.one:
        name, level, readers, listing = args.one.split(",")
        with open(listing) as handle:
            print(json.dumps(run_one(name, json.load(handle), level, int(readers), args.passes)), flush=True)
        # Reader processes are reaped first, so that their CPU time counts as this run's (not as "others"). Then
        # the exit is immediate: a tf.data iterator left for the interpreter's exit waits for its prefetch thread,
        # which waits in our generator for the GIL that exit holds (ours_keras).
        import multiprocessing

        for process in multiprocessing.active_children():
            process.terminate()
            process.join()
        os._exit(0)
    from common import shard_slice

    from ytlabel.data import synth

    work = args.work or tempfile.mkdtemp(prefix="ytlabel-input-path-")
    frame_dir = os.path.join(work, "synth")
    if not os.path.exists(os.path.join(frame_dir, "synth.json")):  # 300-frame videos, as YT8M's longest
        synth.generate(
            synth.SynthConfig(videos=args.frame_videos, shards=8, seed=0, frames=300, frame_jitter=0.0), frame_dir
        )
    shards = {
        "video": sorted(glob.glob(os.path.join(args.video_data, "*.tfrecord")))[shard_slice(args.video_shards)],
        "frame": sorted(glob.glob(os.path.join(frame_dir, "frame", "*.tfrecord"))),
    }
    listings = {}
    for level in ("video", "frame"):
        listings[level] = os.path.join(work, f"{level}-shards.json")
        with open(listings[level], "w") as handle:
            json.dump(shards[level], handle)
    names = args.readers.split(",")
    runs: dict[tuple, list[dict]] = {}
    for repeat in range(args.repeats):  # interleaved: a slow spell of the machine hits every reader alike
        order = names[repeat % len(names) :] + names[: repeat % len(names)]  # and none always runs first
        for level in ("video", "frame"):
            for readers in (1, 2):
                for name in order:
                    row = _measure(name, level, readers, listings[level], args.passes)
                    runs.setdefault((name, level, readers), []).append(row)
                    print(json.dumps({"repeat": repeat, **row}), file=sys.stderr, flush=True)
    rows = [_summary(name, level, readers, measured) for (name, level, readers), measured in runs.items()]
    for row in rows:
        ours_row = next(
            r for r in rows if r["reader"] == "ours" and r["level"] == row["level"] and r["readers"] == row["readers"]
        )
        if row["reader"] != "ours" and "videos_per_s" in row and "videos_per_s" in ours_row:
            row["ours_vs_this"] = round(ours_row["videos_per_s"] / row["videos_per_s"], 2)
    scaling: dict[str, dict] = {"ours": {}, "ours_keras": {}}
    for name, level in ((name, level) for name in scaling for level in ("video", "frame")):
        one, two = (
            next((r for r in rows if r["reader"] == name and r["level"] == level and r["readers"] == n), {})
            for n in (1, 2)
        )
        if "videos_per_s" in one and "videos_per_s" in two:
            scaling[name][level] = round(two["videos_per_s"] / one["videos_per_s"], 2)
    print(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d"),
                "cores": os.cpu_count(),
                "batch": BATCH,
                "max_frames": MAX_FRAMES,
                "stride": STRIDE,
                "shuffle_buffer": SHUFFLE,
                "passes": args.passes,
                "repeats": args.repeats,
                "ours_2_readers_over_1": scaling["ours"],
                "ours_keras_2_readers_over_1": scaling["ours_keras"],
                "busy_runs": sum(r.get("busy_runs", 0) for r in rows),
                "rows": rows,
            }
        )
    )


def _measure(name: str, level: str, readers: int, listing: str, passes: int) -> dict:
    """One run of one reader in its own process, with how busy the rest of the machine was meanwhile."""
    busy_before, ours_before = _cpu_busy()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--passes", str(passes), "--one", f"{name},{level},{readers},{listing}"],
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    busy_after, ours_after = _cpu_busy()
    others = max(0.0, (busy_after - busy_before) - (ours_after - ours_before))
    if done.returncode:
        reason = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        return {"reader": name, "level": level, "readers": readers, "not_run": reason[:300]}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row["others_cpu_share"] = round(others / (wall * os.cpu_count()), 3)
    return row


def _summary(name: str, level: str, readers: int, measured: list[dict]) -> dict:
    """Median and spread over the repeats (the last repeat's other fields)."""
    done = [row for row in measured if "videos_per_s" in row]
    if not done:
        return measured[-1]
    rates = sorted(row["videos_per_s"] for row in done)
    median = float(np.median(rates))
    first = sorted(row["first_batch_s"] for row in done)
    cold = sorted(row["cold_first_batch_s"] for row in done)
    return {
        **done[-1],
        "videos_per_s": round(median, 1),
        "videos_per_s_min": rates[0],
        "videos_per_s_max": rates[-1],
        "spread": round((rates[-1] - rates[0]) / median, 3),
        "runs": len(done),
        "first_batch_s": float(np.median(first)),
        "cold_first_batch_s": float(np.median(cold)),
        "busy_runs": sum(row["others_cpu_share"] > 0.10 for row in done),
        "rss_mb_end_max": max(row["rss_mb_end"] for row in done),
    }


if __name__ == "__main__":
    main()
