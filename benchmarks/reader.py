"""Reader throughput: ytlabel's TFRecord + protobuf decoder vs tf.data, on the same frame-level shards.

Both sides read every record, parse it, and dequantize rgb and audio to float32, single process.
The anchor is tf.data with TFRecordDataset -> parse_single_sequence_example -> decode_raw; it runs
with a sequential map (one parse at a time, like ours) and, for reference, with AUTOTUNE parallel
maps (tf.data's thread pool on both cores). Ours runs first, before TensorFlow is imported, and its
resident memory is sampled every 50 videos to show it stays flat in the number of videos.

Prints one JSON line: {"videos_per_s", "tfdata_videos_per_s", "ratio_vs_tfdata", ...}.
Usage: python benchmarks/reader.py [--videos 600] [--repeats 3] [--work DIR]
"""

import argparse
import glob
import json
import os
import resource
import tempfile
import time

import numpy as np

from ytlabel.data import schema, synth
from ytlabel.data.reader import read_shard


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def read_ours(shards: list[str], samples: list[float] | None = None) -> int:
    videos = 0
    for shard in shards:
        for record in read_shard(shard, "frame"):
            rgb, audio = schema.dequantize(record.rgb), schema.dequantize(record.audio)
            videos += 1
            if samples is not None and videos % 50 == 0:
                samples.append(rss_mb())
    assert rgb.dtype == audio.dtype == np.float32
    return videos


def tfdata_dataset(shards: list[str], parallel: bool):
    import tensorflow as tf

    def parse(serialized):
        _, lists = tf.io.parse_single_sequence_example(
            serialized,
            context_features={"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)},
            sequence_features={
                "rgb": tf.io.FixedLenSequenceFeature([], tf.string),
                "audio": tf.io.FixedLenSequenceFeature([], tf.string),
            },
        )
        rgb = tf.reshape(tf.io.decode_raw(lists["rgb"], tf.uint8), [-1, schema.RGB_DIM])
        audio = tf.reshape(tf.io.decode_raw(lists["audio"], tf.uint8), [-1, schema.AUDIO_DIM])
        scale, bias = float(schema.DEQUANT_SCALE), float(schema.DEQUANT_BIAS)
        return tf.cast(rgb, tf.float32) * scale + bias, tf.cast(audio, tf.float32) * scale + bias

    calls = tf.data.AUTOTUNE if parallel else None
    return tf.data.TFRecordDataset(shards).map(parse, num_parallel_calls=calls)


def read_tfdata(dataset) -> int:
    videos = 0
    for _rgb, _audio in dataset:
        videos += 1
    return videos


def best_rate(run, repeats: int) -> tuple[float, int]:
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        videos = run()
        rates.append(videos / (time.perf_counter() - started))
    return max(rates), videos


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=600)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", default=None, help="reuse or create the synthetic data here")
    args = parser.parse_args()

    work = args.work or tempfile.mkdtemp(prefix="ytlabel-bench-")
    frame_dir = os.path.join(work, "frame")
    if not glob.glob(os.path.join(frame_dir, "*.tfrecord")):
        synth.generate(
            synth.SynthConfig(videos=args.videos, shards=args.shards, seed=0, frames=300, frame_jitter=0.0), work
        )
    shards = sorted(glob.glob(os.path.join(frame_dir, "*.tfrecord")))
    megabytes = sum(os.path.getsize(s) for s in shards) / 2**20

    samples: list[float] = []
    read_ours(shards, samples)  # warm the page cache and sample memory
    ours, videos = best_rate(lambda: read_ours(shards), args.repeats)
    peak_ours = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    import tensorflow as tf  # only now: its import would dominate our memory samples

    tf.config.threading.set_inter_op_parallelism_threads(2)
    sequential, _ = best_rate(lambda: read_tfdata(tfdata_dataset(shards, parallel=False)), args.repeats)
    parallel, _ = best_rate(lambda: read_tfdata(tfdata_dataset(shards, parallel=True)), args.repeats)
    print(
        json.dumps(
            {
                "videos_per_s": round(ours, 1),
                "tfdata_videos_per_s": round(sequential, 1),
                "ratio_vs_tfdata": round(ours / sequential, 3),
                "tfdata_autotune_videos_per_s": round(parallel, 1),
                "ratio_vs_tfdata_autotune": round(ours / parallel, 3),
                "videos": videos,
                "frames_per_video": 300,
                "dataset_mb": round(megabytes, 1),
                "ours_mb_per_s": round(ours * megabytes / videos, 1),
                "ours_rss_mb_first_sample": round(samples[0], 1),
                "ours_rss_mb_last_sample": round(samples[-1], 1),
                "ours_rss_mb_peak_before_tf_import": round(peak_ours, 1),
                "cores": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
