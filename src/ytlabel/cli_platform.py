"""`ytlabel platform render|images`: the Kubernetes objects ytlabel runs as (training jobs, InferenceServices)
and the images they name (see cli.py for the rest).

Argument parsing and calls into the library only, like cli.py.
"""

import os

from ytlabel.errors import ConfigError
from ytlabel.kinds import FRAMEWORKS


def add_stages(stages) -> None:
    """Adds the platform stage to `ytlabel`'s subparsers."""
    platform = stages.add_parser("platform", help="Kubernetes manifests for training jobs and serving")
    platform_verbs = platform.add_subparsers(dest="verb", required=True, metavar="VERB")
    render = platform_verbs.add_parser(
        "render",
        help="print a validated PyTorchJob/TFJob (or TrainJob: --trainer v2), or an InferenceService (--serve)",
    )
    render.add_argument("--arch", help="architecture of the training job")
    render.add_argument("--framework", choices=FRAMEWORKS, help="torch -> PyTorchJob, keras -> TFJob")
    render.add_argument(
        "--trainer",
        choices=("v1", "v2"),
        default="v1",
        help="v1: PyTorchJob/TFJob (Kubeflow training operator); v2: TrainJob (Kubeflow Trainer)",
    )
    render.add_argument(
        "--runtime", help="--trainer v2: the ClusterTrainingRuntime (default ytlabel-torch / ytlabel-keras)"
    )
    render.add_argument(
        "--config",
        help="the pods' `ytlabel train --config`: a shipped preset's name or 'none' "
        "(default: the architecture's own, as `ytlabel train` uses)",
    )
    render.add_argument("--workers", type=int, default=1, help="pods, master/chief included")
    render.add_argument("--gpus", type=int, default=0, help="GPUs per pod")
    render.add_argument("--data", default="s3://ytlabel/data/train", help="training shards")
    render.add_argument("--out", default="", help="run directory (default s3://ytlabel/runs/<job name>)")
    render.add_argument(
        "--image", help="trainer image (default: ghcr.io/ytlabel/ytlabel-trainer-<framework>:<version>)"
    )
    render.add_argument("--namespace", default="kubeflow")
    render.add_argument(
        "--release",
        default="ytlabel",
        help="the Helm release of the chart: the ServiceAccounts are named as it names them",
    )
    render.add_argument(
        "--node-selector",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="the training pods' nodeSelector (repeatable)",
    )
    render.add_argument(
        "--toleration",
        action="append",
        default=[],
        metavar="KEY[=VALUE]:EFFECT",
        help="a taint the training pods tolerate (repeatable; default with --gpus: nvidia.com/gpu:NoSchedule)",
    )
    render.add_argument(
        "--serve", metavar="NAME[:VERSION|@ALIAS]", help="render the InferenceService of a registry version"
    )
    render.add_argument(
        "--registry",
        default=os.environ.get("YTLABEL_REGISTRY"),
        help="with --serve: the registry holding the version, file://DIR or s3://bucket/prefix "
        "(default: $YTLABEL_REGISTRY)",
    )
    render.add_argument(
        "--s3-secret-from-env",
        action="store_true",
        help="--serve: also render the S3 Secret, from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (default: "
        "the Secret ytlabel-s3 exists already, as the chart expects)",
    )
    render.add_argument(
        "--s3-endpoint",
        help="with --s3-secret-from-env: the S3 endpoint for KServe's annotations, "
        "e.g. https://minio.example:9000 (no default)",
    )
    render.add_argument("overrides", nargs="*", metavar="key=value", help="training settings passed to ytlabel train")
    render.set_defaults(run=_platform_render)
    listed = platform_verbs.add_parser(
        "images", help="the image references the pods, pipeline and chart name (what `make images` builds), one a line"
    )
    listed.set_defaults(run=_platform_images)


def _secret_from_env(args) -> tuple[str, str, str] | None:
    if not args.s3_secret_from_env:
        if args.s3_endpoint:
            raise ConfigError("--s3-endpoint only goes into the Secret: add --s3-secret-from-env")
        return None
    if not args.s3_endpoint:
        raise ConfigError("--s3-secret-from-env needs --s3-endpoint (e.g. https://minio.example:9000)")
    missing = [key for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if not os.environ.get(key)]
    if missing:
        raise ConfigError(f"--s3-secret-from-env: {' and '.join(missing)} not set in the environment")
    return args.s3_endpoint, os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]


def _node_selector(pairs: list[str]) -> dict | None:
    selector = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--node-selector {pair!r}: expected KEY=VALUE")
        selector[key] = value
    return selector or None


def _tolerations(specs: list[str]) -> tuple[dict, ...] | None:
    """`key[=value]:Effect` -> a toleration (Equal with a value, Exists without)."""
    out = []
    for spec in specs:
        taint, sep, effect = spec.rpartition(":")
        if not sep or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute") or not taint:
            raise ConfigError(
                f"--toleration {spec!r}: expected KEY[=VALUE]:EFFECT with EFFECT one of "
                "NoSchedule, PreferNoSchedule, NoExecute"
            )
        key, has_value, value = taint.partition("=")
        out.append(
            {"key": key, "operator": "Equal", "value": value, "effect": effect}
            if has_value
            else {"key": key, "operator": "Exists", "effect": effect}
        )
    return tuple(out) if out else None


def _platform_images(args) -> None:
    from ytlabel.platform import images

    print("\n".join(images.references()))


def _platform_render(args) -> None:
    from ytlabel.platform import images, manifests

    if args.serve:
        from ytlabel.platform.inference import serving_objects

        objects = serving_objects(
            args.serve, args.registry or "", args.namespace, args.gpus, _secret_from_env(args), release=args.release
        )
    else:
        if not args.arch or not args.framework:
            raise ConfigError("platform render needs --arch and --framework (or --serve NAME@ALIAS)")
        image = args.image or images.trainer(args.framework)
        settings = manifests.JobSettings(
            args.arch,
            args.framework,
            args.data,
            args.out,
            image,
            workers=args.workers,
            gpus=args.gpus,
            overrides=tuple(args.overrides),
            preset=args.config,
            namespace=args.namespace,
            node_selector=_node_selector(args.node_selector),
            tolerations=_tolerations(args.toleration),
            service_account=manifests.chart_service_account("trainer", args.release),
        )
        if args.trainer == "v2":
            from ytlabel.platform import trainer_v2

            objects = [trainer_v2.train_job(settings, args.runtime)]
        elif args.runtime:
            raise ConfigError("--runtime names a Trainer v2 ClusterTrainingRuntime; add --trainer v2")
        else:
            objects = [manifests.training_job(settings)]
    print(manifests.to_yaml(manifests.validated(objects)), end="")
