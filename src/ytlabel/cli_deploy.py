"""`ytlabel ensemble|registry|serve`: the verbs that package, publish and serve models (see cli.py for the rest,
cli_platform.py for the Kubernetes manifests).

Argument parsing and calls into the library only, like cli.py.
"""

import argparse
import json
import os
import sys
import tempfile

from ytlabel.errors import ConfigError, YtlabelError


def add_stages(stages) -> None:
    """Adds the ensemble, registry and serve stages to `ytlabel`'s subparsers."""
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
