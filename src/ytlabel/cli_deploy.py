"""`ytlabel ensemble|registry|serve|platform`: the verbs that package, publish, serve and deploy models (see cli.py
for the rest).

Argument parsing and calls into the library only, like cli.py.
"""

import argparse
import json
import os
import sys
import tempfile

from ytlabel.errors import ConfigError, YtlabelError
from ytlabel.kinds import FRAMEWORKS


def add_stages(stages) -> None:
    """Adds the ensemble, registry, serve and platform stages to `ytlabel`'s subparsers."""
    ensemble = stages.add_parser("ensemble", help="pack finished runs as one model that averages their probabilities")
    ensemble.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished runs (local or s3://), two or more")
    ensemble.add_argument("--out", required=True, help="a new local directory: evaluate, push and serve it as a run")
    ensemble.set_defaults(run=_ensemble)
    registry = stages.add_parser("registry", help="versioned models on file:// or s3:// with aliases")
    registry_verbs = registry.add_subparsers(dest="verb", required=True, metavar="VERB")
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--registry",
        default=os.environ.get("YTLABEL_REGISTRY"),
        help="file://DIR or s3://bucket/prefix (default: $YTLABEL_REGISTRY)",
    )
    push = registry_verbs.add_parser("push", parents=[where], help="publish a finished run as the next version")
    push.add_argument("run_dir", metavar="RUN_DIR", help="the --out of `ytlabel train` (local or s3://)")
    push.add_argument("--name", required=True, help="model name, a Kubernetes-style name such as yt8m-fc")
    push.set_defaults(run=_registry_push)
    listing = registry_verbs.add_parser("list", parents=[where], help="versions with aliases and headline metrics")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_registry_list)
    show = registry_verbs.add_parser("show", parents=[where], help="the manifest of NAME[:VERSION|@ALIAS]")
    show.add_argument("ref", metavar="NAME[:VERSION|@ALIAS]")
    show.set_defaults(run=_registry_show)
    promote = registry_verbs.add_parser("promote", parents=[where], help="point an alias at a version")
    promote.add_argument("name", metavar="NAME")
    promote.add_argument("version", metavar="VERSION", type=int)
    promote.add_argument("--alias", required=True, help="e.g. champion or candidate")
    promote.set_defaults(run=_registry_promote)
    pull = registry_verbs.add_parser("pull", parents=[where], help="copy a version out, checking every sha256")
    pull.add_argument("ref", metavar="NAME[:VERSION|@ALIAS]")
    pull.add_argument("--out", required=True, help="new directory (laid out like KServe's /mnt/models)")
    pull.set_defaults(run=_registry_pull)

    serve = stages.add_parser("serve", parents=[where], help="serve a model with KServe's ModelServer (V1 and V2 REST)")
    serve.add_argument(
        "--model",
        required=True,
        help="a registry version's directory (KServe: /mnt/models) or NAME[:VERSION|@ALIAS] with --registry",
    )
    serve.add_argument("--name", help="model name in the URLs (default: the registry name)")
    serve.add_argument("--http-port", type=int, default=8080)
    serve.add_argument("--host", default="127.0.0.1", help="bind address; 0.0.0.0 inside a pod")
    serve.add_argument("--top-k", type=int, default=20, help="classes returned per video")
    serve.add_argument(
        "--max-batch",
        type=int,
        default=64,
        help="videos per forward pass when concurrent requests are batched together",
    )
    serve.add_argument(
        "--max-wait-ms",
        type=float,
        default=0.0,
        help="how long a forward waits for more requests to join it (0: it takes what is queued)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes sharing the port, each with its own copy of the model (default 1)",
    )
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)  # internal: a worker of --workers N
    serve.set_defaults(run=_serve)

    platform = stages.add_parser("platform", help="Kubernetes manifests for training jobs and serving")
    platform_verbs = platform.add_subparsers(dest="verb", required=True, metavar="VERB")
    render = platform_verbs.add_parser(
        "render",
        parents=[where],
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


def _ensemble(args) -> None:
    from ytlabel.registry.ensemble import build_ensemble

    record = build_ensemble(args.runs, args.out)
    print(
        f"wrote {args.out}: the mean probability of {len(record['spec']['members'])} runs "
        f"({record['framework']}, {record['level']} level); `ytlabel evaluate --model {args.out}` scores it"
    )


def _registry_push(args) -> None:
    from ytlabel.registry import Registry

    manifest = Registry(args.registry).push(args.run_dir, args.name)
    print(f"{manifest['name']}:{manifest['version']}")


def _registry_list(args) -> None:
    from ytlabel.registry import Registry

    rows = Registry(args.registry).listing()
    if args.json:
        print(json.dumps(rows))
        return
    width = max([len("MODEL"), *(len(row["name"]) for row in rows)])
    print(f"{'MODEL':{width}s}  VERSION  {'ARCH':15s} {'FRAMEWORK':9s}  GAP@20  {'CREATED':25s} ALIASES")
    for row in rows:
        metrics = row["metrics"] or {}
        gap = f"{metrics['gap_at_20']:.4f}" if "gap_at_20" in metrics else "-"
        print(
            f"{row['name']:{width}s}  {row['version']:>7d}  {row['arch']:15s} {row['framework']:9s}  {gap:>6s}  "
            f"{row['created']:25s} {','.join(row['aliases']) or '-'}"
        )


def _registry_show(args) -> None:
    from ytlabel.registry import Registry

    print(json.dumps(Registry(args.registry).show(args.ref), indent=2, sort_keys=True))


def _registry_promote(args) -> None:
    from ytlabel.registry import Registry

    Registry(args.registry).promote(args.name, args.version, args.alias)
    print(f"{args.name}@{args.alias} -> {args.name}:{args.version}")


def _registry_pull(args) -> None:
    from ytlabel.registry import Registry

    manifest = Registry(args.registry).pull(args.ref, args.out)
    print(f"{manifest['name']}:{manifest['version']} ({len(manifest['files'])} files, sha256 verified) -> {args.out}")


def _serve(args) -> None:
    from ytlabel.serving.batching import BatchingOptions
    from ytlabel.serving.server import resolve_model_dir, serve, serve_processes

    if args.top_k < 1:
        raise ConfigError(f"--top-k={args.top_k}: must be >= 1")
    if args.max_batch < 1:
        raise ConfigError(f"--max-batch={args.max_batch}: must be >= 1")
    if not 0 <= args.max_wait_ms <= 1000:
        raise ConfigError(f"--max-wait-ms={args.max_wait_ms}: must be in [0, 1000]")
    if not 1 <= args.workers <= 64:
        raise ConfigError(f"--workers={args.workers}: must be in [1, 64]")
    batching = BatchingOptions(max_videos=args.max_batch, max_wait_ms=args.max_wait_ms)
    # A pulled or copied model lives in a scratch directory that goes when the server stops (SIGTERM, Ctrl-C).
    with tempfile.TemporaryDirectory(prefix="ytlabel-serve-") as scratch:
        model_dir = resolve_model_dir(args.model, args.registry, cache_dir=scratch)
        if args.workers > 1:
            worker = [
                sys.executable,
                "-m",
                "ytlabel",
                "serve",
                "--model",
                model_dir,
                "--http-port",
                str(args.http_port),
                "--host",
                args.host,
                "--top-k",
                str(args.top_k),
                "--max-batch",
                str(args.max_batch),
                "--max-wait-ms",
                str(args.max_wait_ms),
                *(["--name", args.name] if args.name else []),
            ]
            code = serve_processes(worker, args.workers, args.host, args.http_port)
            if code:
                raise YtlabelError(f"a serving worker exited with code {code}; see its lines above")
            return
        serve(model_dir, args.name, args.http_port, args.host, args.top_k, batching, listen_fd=args.listen_fd)


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
