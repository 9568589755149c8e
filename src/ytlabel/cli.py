"""`ytlabel <stage> ...`: maps verbs to library functions. No logic lives here."""

import argparse
import json
import logging
import sys
import time

from ytlabel.errors import YtlabelError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args) or 0
    except (YtlabelError, ValueError) as error:
        # Expected mistakes in input or flags: one line, no traceback.
        print(f"ytlabel: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ytlabel", description="Label YouTube-8M videos: data, models, pipeline.")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    data = stages.add_parser("data", help="generate, inspect and load YT8M TFRecords")
    verbs = data.add_subparsers(dest="verb", required=True, metavar="VERB")

    synth = verbs.add_parser("synth", help="write synthetic v2 data (video, frame and oracle shards)")
    synth.add_argument("--out", required=True, help="output directory (must not hold a dataset yet)")
    synth.add_argument("--videos", type=int, required=True, help="number of videos")
    synth.add_argument("--shards", type=int, default=4, help="shards per level (default 4)")
    synth.add_argument("--seed", type=int, default=0, help="the dataset is a function of the seed")
    synth.add_argument("--frames", type=int, default=300, help="longest video in frames, <= 300")
    synth.add_argument("--frame-jitter", type=float, default=0.5,
                       help="lengths uniform in [frames*(1-jitter), frames]; 0 = all equal (default 0.5)")
    synth.add_argument("--noise", type=float, default=1.0, help="scale of style and frame noise (default 1)")
    synth.set_defaults(run=_synth)

    inspect = verbs.add_parser("inspect", help="count videos, labels, frames and genres")
    inspect.add_argument("paths", nargs="+", metavar="PATH", help="files, directories, globs or s3://bucket/prefix")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--skip-corrupt", action="store_true", help="count corrupt records instead of failing")
    inspect.set_defaults(run=_inspect)

    peek = verbs.add_parser("peek", help="load one batch through the torch or tf.data loader and describe it")
    peek.add_argument("paths", nargs="+", metavar="PATH")
    peek.add_argument("--framework", choices=("torch", "keras"), default="torch")
    peek.add_argument("--batch-size", type=int, default=8)
    peek.add_argument("--max-frames", type=int, default=300)
    peek.add_argument("--stride", type=int, default=1)
    peek.add_argument("--min-frames", type=int, default=0)
    peek.add_argument("--l2-normalize", action="store_true")
    peek.set_defaults(run=_peek)
    return parser


def _synth(args) -> None:
    from ytlabel.data import synth

    config = synth.SynthConfig(
        videos=args.videos, shards=args.shards, seed=args.seed, frames=args.frames,
        frame_jitter=args.frame_jitter, noise=args.noise,
    )
    started = time.perf_counter()
    manifest = synth.generate(config, args.out)
    seconds = time.perf_counter() - started
    kinds = ", ".join(f"{kind} {len(classes)}" for kind, classes in manifest["kinds"].items())
    print(f"wrote {config.videos} videos in {config.shards} shards per level to {args.out} in {seconds:.1f}s")
    print(f"labels/video {manifest['labels_per_video_observed']:.2f}; class kinds: {kinds}")


def _inspect(args) -> None:
    from ytlabel.data import inspect, sources

    summary = inspect.summarize(sources.resolve_shards(args.paths), skip_corrupt=args.skip_corrupt)
    print(json.dumps(summary) if args.json else inspect.format_summary(summary))


def _peek(args) -> None:
    import numpy as np

    from ytlabel.data import reader, sources
    from ytlabel.data.batching import LoaderOptions

    shards = sources.resolve_shards(args.paths)
    options = LoaderOptions(
        level=reader.detect_dataset_level(shards), max_frames=args.max_frames, stride=args.stride,
        min_frames=args.min_frames, l2_normalize=args.l2_normalize,
    )
    if args.framework == "torch":
        from ytlabel.loaders.torch_loader import make_loader

        loader = make_loader(shards, options, args.batch_size)
        batch = next(iter(loader))
        dropped = loader.dataset.dropped_short
        ids = batch["id"]
    else:
        from ytlabel.loaders.keras_loader import DropCounter, make_dataset

        counter = DropCounter()  # counts what tf.data has read so far, including its read-ahead
        batch = {key: value.numpy() for key, value in next(iter(make_dataset(shards, options, args.batch_size, counter=counter))).items()}
        dropped = counter.value
        ids = [value.decode() for value in batch["id"]]
    shapes = {key: tuple(value.shape) for key, value in batch.items() if key != "id"}
    print(f"{args.framework} batch from {len(shards)} shard(s), {options.level} level: "
          + ", ".join(f"{key} {shape}" for key, shape in sorted(shapes.items())))
    labels_per_video = float(np.asarray(batch["labels"]).sum(axis=1).mean())
    print(f"first ids: {', '.join(ids[:4])}; labels/video {labels_per_video:.2f}; "
          f"videos dropped so far by min_frames={options.min_frames}: {dropped}")
