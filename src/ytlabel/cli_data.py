"""`ytlabel data synth|download|inspect|request|peek`: the verbs that make, fetch and look at TFRecords (see cli.py
for the rest).

Argument parsing and calls into the library only, like cli.py.
"""

import json
import time

from ytlabel.errors import ConfigError
from ytlabel.kinds import FRAMEWORKS, TORCH


def add_stage(stages) -> None:
    """Adds the data stage and its verbs to `ytlabel`'s subparsers."""
    data = stages.add_parser("data", help="generate, inspect and load YT8M TFRecords")
    verbs = data.add_subparsers(dest="verb", required=True, metavar="VERB")

    synth = verbs.add_parser("synth", help="write synthetic v2 data (video, frame and oracle shards)")
    synth.add_argument("--out", required=True, help="output directory (must not hold a dataset yet)")
    synth.add_argument("--videos", type=int, required=True, help="number of videos")
    synth.add_argument("--shards", type=int, default=4, help="shards per level (default 4)")
    synth.add_argument("--seed", type=int, default=0, help="the dataset is a function of the seed")
    synth.add_argument("--frames", type=int, default=300, help="longest video in frames, <= 300")
    synth.add_argument(
        "--frame-jitter",
        type=float,
        default=0.5,
        help="lengths uniform in [frames*(1-jitter), frames]; 0 = all equal (default 0.5)",
    )
    synth.add_argument("--noise", type=float, default=1.0, help="scale of style and frame noise (default 1)")
    synth.set_defaults(run=_synth)

    fetch = verbs.add_parser(
        "download", help="the official YouTube-8M download: plan, shard=i,N, mirror, md5; to a directory or s3://"
    )
    fetch.add_argument("--partition", required=True, help="VERSION/LEVEL/SPLIT, e.g. 2/video/train or 2/frame/validate")
    fetch.add_argument("--out", required=True, help="directory or s3://bucket/prefix; a rerun resumes")
    fetch.add_argument(
        "--shard", default="1,1", help="i,N: the i-th of N deterministic parts of the files (1,100: 1%%)"
    )
    fetch.add_argument("--mirror", default="us", help="us, eu or asia (default us)")
    fetch.add_argument("--jobs", type=int, default=4, help="parallel downloads (default 4)")
    fetch.add_argument("--retries", type=int, default=5, help="retries per file after a failure (default 5)")
    fetch.add_argument("--base-url", help="plans and files from this mirror (same layout) instead of data.yt8m.org")
    fetch.set_defaults(run=_download)

    inspect = verbs.add_parser("inspect", help="count videos, labels, frames and genres")
    inspect.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, globs or s3://bucket/prefix")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--skip-corrupt", action="store_true", help="count corrupt records instead of failing")
    inspect.set_defaults(run=_inspect)

    request = verbs.add_parser(
        "request", help='a V1 request body ({"instances": [...]}) from the first videos of shards'
    )
    request.add_argument("paths", nargs="+", metavar="PATH", help="shards: files, dirs, globs or s3://")
    request.add_argument("--videos", type=int, default=1, help="how many videos (the first ones read)")
    request.set_defaults(run=_request)
    peek = verbs.add_parser(
        "peek", help="the first training batch through the PyTorch DataLoader or the Keras tf.data feed"
    )
    peek.add_argument("paths", nargs="+", metavar="PATH")
    peek.add_argument("--framework", choices=FRAMEWORKS, default="torch")
    peek.add_argument("--batch-size", type=int, default=8)
    peek.add_argument("--max-frames", type=int, default=300)
    peek.add_argument("--stride", type=int, default=1)
    peek.add_argument("--min-frames", type=int, default=0)
    peek.add_argument("--l2-normalize", action="store_true")
    peek.set_defaults(run=_peek)


def _synth(args) -> None:
    from ytlabel.data import synth

    config = synth.SynthConfig(
        videos=args.videos,
        shards=args.shards,
        seed=args.seed,
        frames=args.frames,
        frame_jitter=args.frame_jitter,
        noise=args.noise,
    )
    started = time.perf_counter()
    truth = synth.generate(config, args.out)
    seconds = time.perf_counter() - started
    kinds = ", ".join(f"{kind} {len(classes)}" for kind, classes in truth["kinds"].items())
    print(f"wrote {config.videos} videos in {config.shards} shards per level to {args.out} in {seconds:.1f}s")
    print(f"labels/video {truth['labels_per_video_observed']:.2f}; class kinds: {kinds}")


def _download(args) -> None:
    from ytlabel.data import download

    summary = download.download(
        args.partition,
        args.out,
        shard=args.shard,
        mirror=args.mirror,
        base_url=args.base_url,
        jobs=args.jobs,
        retries=args.retries,
    )
    print(
        f"{summary.partition} shard {summary.shard}: {len(summary.downloaded)} downloaded "
        f"({summary.bytes / 1e6:.1f} MB), {len(summary.skipped)} already verified, of {summary.selected} files, "
        f"in {summary.seconds:.1f} s -> {args.out}"
    )


def _inspect(args) -> None:
    from ytlabel.data import inspect, sources

    summary = inspect.summarize(sources.resolve_shards(args.paths), skip_corrupt=args.skip_corrupt)
    print(json.dumps(summary) if args.json else inspect.format_summary(summary))


def _request(args) -> None:
    from ytlabel.data import reader, sources
    from ytlabel.serving.payload import instance

    if not 1 <= args.videos <= 1000:
        raise ConfigError(f"--videos={args.videos}: must be in [1, 1000]")
    instances = []
    for shard in sources.resolve_shards(args.paths):
        for record in reader.read_shard(shard):
            instances.append(instance(record))
            if len(instances) == args.videos:
                print(json.dumps({"instances": instances}))
                return
    raise ConfigError(f"{' '.join(args.paths)}: {len(instances)} videos, fewer than --videos={args.videos}")


def _peek(args) -> None:
    import numpy as np

    from ytlabel.data import reader, schema, sources, stream
    from ytlabel.data.examples import InputOptions

    shards = sources.resolve_shards(args.paths)
    options = InputOptions(
        level=reader.detect_dataset_level(shards),
        max_frames=args.max_frames,
        stride=args.stride,
        min_frames=args.min_frames,
        l2_normalize=args.l2_normalize,
    )
    # The first batch of the training stream (shard order, no shuffling), through the framework's own feed.
    plan = stream.StreamPlan(
        tuple(shards), tuple(stream.count_records(shards)), options, args.batch_size, shuffle_buffer=0
    )
    if plan.steps_per_epoch < 1:
        raise ConfigError(f"--batch-size {args.batch_size}: the data holds fewer videos than one batch")
    ids = next(stream.rank_batches(plan, epoch=0))["id"]
    if args.framework == TORCH:
        from ytlabel.training.torch_feed import data_loader

        batch = {key: value.numpy() for key, value in next(iter(data_loader(plan))).items()}
    else:
        from ytlabel.training import keras_feed

        feed = keras_feed.Feed(plan, start_epoch=0, read_ahead=0)
        inputs, labels = next(iter(keras_feed.dataset(feed, schema.NUM_CLASSES)))
        batch = {**{key: value.numpy() for key, value in inputs.items()}, "labels": labels.numpy()}
    shapes = {key: tuple(value.shape) for key, value in batch.items()}
    print(
        f"{args.framework} batch from {len(shards)} shard(s), {options.level} level: "
        + ", ".join(f"{key} {shape}" for key, shape in sorted(shapes.items()))
    )
    labels_per_video = float(np.asarray(batch["labels"]).sum(axis=1).mean())
    print(f"first ids: {', '.join(ids[:4])}; labels/video {labels_per_video:.2f}")
