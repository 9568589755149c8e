"""`ytlabel <stage> ...`: maps verbs to library functions. No logic lives here."""

import argparse
import json
import logging
import os
import sys
import tempfile

from ytlabel import cli_data, cli_deploy, cli_platform, runs, storage
from ytlabel.errors import ConfigError, YtlabelError
from ytlabel.kinds import FRAMEWORKS


def run() -> None:
    """The `ytlabel` command: `main` with TensorFlow's start-up chatter kept off the terminal unless --verbose."""
    from ytlabel.chatter import quiet_native_stderr

    if "--verbose" in sys.argv[1:]:
        sys.exit(main())
    with quiet_native_stderr():
        sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.run(args) or 0
    except YtlabelError as error:
        # Expected mistakes in input or flags: one line, no traceback.
        return _fail(str(error))
    except ModuleNotFoundError as error:
        extra = EXTRAS.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        return _fail(
            f"`ytlabel {args.stage}` needs the '{extra}' extra (no module named {error.name!r}): "
            f"pip install 'ytlabel[{extra}]'"
        )
    except OSError as error:
        # The file system refused: an --out that is a file, a read-only or full disk, a missing directory.
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"{where}{error.strerror or error}")
    except KeyboardInterrupt:
        return 130


# Optional dependencies by the extra that installs them (pyproject.toml), for a one-line hint.
EXTRAS = {
    "torch": "torch",
    "tensorflow": "keras",
    "keras": "keras",
    "matplotlib": "report",
    "kserve": "serve",
    "minio": "s3",
    "kfp": "pipeline",
    "kubernetes": "pipeline",
    "kubernetes_validate": "pipeline",
    "jsonschema": "pipeline",
}


def _fail(message: str) -> int:
    print(f"ytlabel: error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ytlabel", description="Label YouTube-8M videos: data, models, pipeline.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up lines too")
    stages = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")

    cli_data.add_stage(stages)

    expand = stages.add_parser("expand", help="train the autoencoder expansion and write an encoder artifact")
    expand.add_argument(
        "--data", required=True, nargs="+", help="video- or frame-level shards (files, dirs, globs, s3://)"
    )
    expand.add_argument("--out", required=True, help="artifact directory (encoder.npz + encoder.json)")
    expand.add_argument("--rgb-dim", type=int, default=2048, help="RGB code width (1024 in; default 2048)")
    expand.add_argument("--audio-dim", type=int, default=256, help="audio code width (128 in; default 256)")
    expand.add_argument("--noise", type=float, default=0.1, help="std of the training input corruption")
    expand.add_argument("--epochs", type=int, default=5)
    expand.add_argument("--batch-size", type=int, default=256)
    expand.add_argument("--learning-rate", type=float, default=1e-3)
    expand.add_argument("--seed", type=int, default=0)
    expand.add_argument(
        "--l2-normalize",
        action="store_true",
        help="train on unit-length [rgb, audio] (for models trained with l2_normalize=true)",
    )
    expand.set_defaults(run=_expand)

    train = stages.add_parser("train", help="train one architecture in one framework (distributed when asked)")
    train.add_argument("--arch", required=True, help="architecture (see `ytlabel models list`)")
    train.add_argument("--framework", required=True, help="torch or keras")
    train.add_argument("--data", required=True, help="training shards: file, dir, glob or s3://bucket/prefix")
    train.add_argument("--out", required=True, help="run directory, local or s3://; rerunning continues that run")
    train.add_argument(
        "--config",
        help="YAML preset: a path or a shipped name; default: the architecture's own "
        "(e.g. fc), 'none' for the bare defaults",
    )
    train.add_argument("--force", action="store_true", help="empty --out (a run directory) and train from scratch")
    train.add_argument("--workers", type=int, default=1, help="local processes with the PyTorchJob/TFJob env contract")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="settings, e.g. epochs=2 model.hidden=128")
    train.set_defaults(run=_train)

    evaluate = stages.add_parser("evaluate", help="YT8M metrics of a trained run on a dataset (writes metrics.json)")
    evaluate.add_argument(
        "--model",
        required=True,
        help="run directory of `ytlabel train` (local or s3://), or a "
        "registry reference NAME[:VERSION|@ALIAS] with --registry",
    )
    evaluate.add_argument(
        "--registry",
        default=os.environ.get("YTLABEL_REGISTRY"),
        help="for a registry reference: file://DIR or s3://bucket/prefix (default: $YTLABEL_REGISTRY)",
    )
    evaluate.add_argument("--data", required=True, nargs="+", help="shards: files, dirs, globs or s3://")
    evaluate.add_argument("--out", help="where metrics.json goes (default: the run directory)")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    evaluate.set_defaults(run=_evaluate)

    report = stages.add_parser("report", help="compare runs: report.md, report.html and PNG plots")
    report.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories of `ytlabel train`")
    report.add_argument("--out", required=True, help="report directory")
    report.add_argument("--benchmark", help="JSON of benchmarks/training.py, for the scaling plots")
    report.add_argument("--learning-curves", help="JSON of benchmarks/learning_curves.py: GAP@20 against data size")
    report.set_defaults(run=_report)

    models = stages.add_parser("models", help="list architectures and check PyTorch/Keras parity")
    model_verbs = models.add_subparsers(dest="verb", required=True, metavar="VERB")
    listing = model_verbs.add_parser("list", help="architectures with level, frameworks and parameter counts")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_models_list)
    check = model_verbs.add_parser(
        "check", help="build each architecture in both frameworks, transfer weights, compare logits"
    )
    check.add_argument("--json", action="store_true")
    check.add_argument("--arch", action="append", help="only these architectures (repeatable)")
    check.set_defaults(run=_models_check)

    for module in (cli_deploy, cli_platform):  # ensemble, registry, serve; platform
        module.add_stages(stages)
    return parser


def _expand(args) -> None:
    from ytlabel.features.autoencoder import ExpandConfig, expand

    config = ExpandConfig(
        rgb_dim=args.rgb_dim,
        audio_dim=args.audio_dim,
        noise=args.noise,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        seed=args.seed,
        l2_normalize=args.l2_normalize,
    )
    expand(args.data, args.out, config)


def _models_list(args) -> None:
    from ytlabel.config import default_preset, load_config
    from ytlabel.models import spec
    from ytlabel.models.torch import build
    from ytlabel.models.torch.layers import trainable_parameters

    def preset_params(name: str) -> int:
        """The parameters of what `ytlabel train --arch NAME` trains: the spec as its preset sets it."""
        return trainable_parameters(build(name, load_config(name, "torch", "", "", default_preset(name, None)).spec()))

    rows = [
        {
            "arch": name,
            "level": entry.level,
            "frameworks": list(FRAMEWORKS),
            "params": preset_params(name),
            "preset": default_preset(name, None),
            "summary": entry.summary,
        }
        for name, entry in spec.ARCHITECTURES.items()
    ]
    if args.json:
        print(json.dumps(rows))
        return
    print(
        f"{'ARCH':15s} {'LEVEL':6s} {'FRAMEWORKS':11s} {'PARAMETERS':>11s}  SUMMARY   (parameters as its preset trains it)"
    )
    for row in rows:
        print(f"{row['arch']:15s} {row['level']:6s} torch+keras {row['params']:>11,d}  {row['summary']}")


def _models_check(args) -> int:
    from ytlabel.models import parity, spec

    names = args.arch or list(spec.ARCHITECTURES)
    unknown = sorted(set(names) - set(spec.ARCHITECTURES))
    if unknown:
        raise ConfigError(f"--arch {unknown[0]!r} is not an architecture; choose from {sorted(spec.ARCHITECTURES)}")
    results = [parity.check(name) for name in names]
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "arch": r.arch,
                        "torch_params": r.torch_params,
                        "keras_params": r.keras_params,
                        "max_abs_diff": r.max_abs_diff,
                        "max_abs_diff_back": r.max_abs_diff_back,
                    }
                    for r in results
                ]
            )
        )
    else:
        for r in results:
            verdict = "ok" if r.ok else "MISMATCH"
            print(
                f"{r.arch:15s} torch {r.torch_params:>11,d}  keras {r.keras_params:>11,d}  "
                f"max|dlogit| {r.max_abs_diff:.2e} / back {r.max_abs_diff_back:.2e}  {verdict}"
            )
    return 0 if all(r.ok for r in results) else 1


def _train(args) -> None:
    from ytlabel.config import default_preset, load_config
    from ytlabel.training.run import train

    if args.workers < 1:
        raise ConfigError(f"--workers={args.workers}: must be >= 1")
    config = load_config(
        args.arch, args.framework, args.data, args.out, default_preset(args.arch, args.config), args.overrides
    )
    result = train(config, workers=args.workers, force=args.force)
    if result:
        metrics = result["val_metrics"]
        gap = f"{metrics['gap_at_20']:.4f}" if metrics["gap_at_20"] is not None else "n/a"
        print(
            f"{config.arch}/{config.framework}: {result['epochs']} epochs, train loss {result['train_loss']:.4f}, "
            f"val GAP@20 {gap}, {result['videos_per_s']} videos/s, world size {result['world_size']}; "
            f"wrote {config.out}"
        )


def _evaluate(args) -> None:

    from ytlabel.evaluation.evaluate import evaluate_run

    reference = not storage.is_remote(args.model) and not os.path.exists(args.model) and bool(args.registry)
    if not args.out and (reference or storage.exists(storage.join(args.model, runs.VERSION_MANIFEST))):
        raise ConfigError(
            f"--model {args.model} is a registry version, whose manifest checksums its files: pass "
            f"--out DIR for the metrics (nothing in the version is changed)"
        )
    with tempfile.TemporaryDirectory(prefix="ytlabel-evaluate-") as scratch:
        model = args.model
        if reference:  # NAME[:VERSION|@ALIAS]: pulled and verified, as `serve` does
            from ytlabel.registry import Registry

            model = os.path.join(scratch, "model")
            manifest = Registry(args.registry).pull(args.model, model)
            logging.getLogger("ytlabel.evaluate").info(
                "evaluating %s:%s from %s", manifest["name"], manifest["version"], args.registry
            )
        result = evaluate_run(model, args.data, batch_size=args.batch_size)
    runs.write_metrics(args.out or args.model, result)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['arch']}/{result['framework']} on {result['videos']} videos ({result['videos_per_s']} videos/s): "
        + runs.format_headline(result)
    )
    if "oracle" in result:
        print(
            f"oracle ceiling: gap_at_20 {result['oracle']['gap_at_20']:.4f}, hit_at_1 {result['oracle']['hit_at_1']:.4f}"
        )
        for kind, row in result["by_kind"].items():
            if row["classes"]:
                print(
                    f"  {kind:9s} {row['classes']:4d} classes  mAP {row['map']:.4f}  (oracle {row['oracle_map']:.4f})"
                )


def _report(args) -> None:

    from ytlabel.evaluation.report import build_report

    report = build_report(args.runs, args.out, args.benchmark, args.learning_curves)
    for finding in report["findings"]:
        print(f"- {finding}")
    print(f"wrote {os.path.join(args.out, 'report.md')}, report.html and {len(report['plots'])} plots")
