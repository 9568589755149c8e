"""`ytlabel report`: the models x frameworks comparison (report.md, report.html, PNG plots).

One row per run directory (model x framework x expansion), with the columns of the original research's
tables, measured: optimizer, learning rate, epochs, batch size, train loss, GAP@20, Hit@1, PERR, mAP,
genre Hit@1, videos/s, train wall time, CPU mean/max, peak RSS, GPU utilisation and memory. Quality
comes from the run's `metrics.json` (`ytlabel evaluate`) when present, else from its validation.
"""

import base64
import html
import json
import os

from ytlabel import runs, storage
from ytlabel.errors import YtlabelError
from ytlabel.evaluation import plots
from ytlabel.kinds import FRAMEWORKS, KERAS, TORCH

COLUMNS = [
    ("run", "run"),
    ("arch", "arch"),
    ("framework", "framework"),
    ("expansion", "expansion"),
    ("optimizer", "optimizer"),
    ("learning_rate", "lr"),
    ("epochs", "epochs"),
    ("batch_size", "batch"),
    ("train_loss", "train loss"),
    ("gap_at_20", "GAP@20"),
    ("hit_at_1", "Hit@1"),
    ("perr", "PERR"),
    ("map", "mAP"),
    ("genre_hit_at_1", "genre Hit@1"),
    ("videos_per_s", "videos/s"),
    ("train_s", "train s"),
    ("cpu_percent_mean", "CPU % mean"),
    ("cpu_percent_max", "CPU % max"),
    ("rss_mb_max", "peak RSS MB"),
    ("gpu_util_mean", "GPU %"),
    ("gpu_mem_mb_max", "GPU MB"),
]


def load_run(path: str) -> dict:
    """One report row from a run directory (local or s3://)."""
    result = runs.read_result(path)
    config = runs.read_config(path)
    metrics = runs.read_metrics(path) or {}
    quality = metrics or {
        "gap_at_20": result["val_metrics"]["gap_at_20"],
        "hit_at_1": result["val_metrics"]["hit_at_1"],
    }
    row = {
        "run": storage.basename(os.path.normpath(path) if not storage.is_remote(path) else path),
        "arch": result["arch"],
        "framework": result["framework"],
        "expansion": bool(config.get("encoder")),
        "optimizer": result.get("optimizer"),
        "learning_rate": result.get("learning_rate"),
        "epochs": result["epochs"],
        "batch_size": result.get("batch_size"),
        "train_loss": result["train_loss"],
        "videos_per_s": result["videos_per_s"],
        "train_s": result.get("train_s"),
        **{
            key: result["usage"].get(key)
            for key in ("cpu_percent_mean", "cpu_percent_max", "rss_mb_max", "gpu_util_mean", "gpu_mem_mb_max")
        },
        **{key: quality.get(key) for key in ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1")},
    }
    row["_curves"] = runs.read_curves(path)
    row["_videos"] = metrics.get("videos")
    row["_genres"] = metrics.get("per_genre_ap", {})
    row["_kinds"] = metrics.get("by_kind", {})
    row["_oracle"] = metrics.get("oracle")
    return row


def build_report(
    run_dirs: list[str], out_dir: str, benchmark: str | None = None, learning_curves: str | None = None
) -> dict:
    """Writes report.md, report.html and plots to `out_dir`; returns {"rows", "findings", "plots"}.

    `benchmark`: benchmarks/training.py's JSON (scaling plots); `learning_curves`: benchmarks/
    learning_curves.py's JSON (GAP@20 against training videos, and each model's gain per doubling).
    """
    if not run_dirs and not learning_curves:
        raise YtlabelError("report needs run directories or --learning-curves")
    rows = sorted((load_run(path) for path in run_dirs), key=lambda r: (r["arch"], r["framework"], r["expansion"]))
    os.makedirs(out_dir, exist_ok=True)
    made = (
        [plots.loss_curves(rows, out_dir), plots.gap_bars(rows, out_dir), plots.speed_vs_gap(rows, out_dir)]
        if rows
        else []
    )
    if any(row["_genres"] for row in rows):
        made.append(plots.genre_heatmap(rows, out_dir))
    if benchmark:
        made.extend(plots.scaling(_read_json(benchmark), out_dir))
    findings = strengths_and_weaknesses(rows)
    if learning_curves:
        curves = _read_json(learning_curves)
        made.append(plots.learning_curves(curves, out_dir))
        findings += [_curve_finding(curves, fit) for fit in curves.get("fits", [])]
    _write_markdown(rows, findings, made, os.path.join(out_dir, "report.md"))
    _write_html(rows, findings, made, os.path.join(out_dir, "report.html"))
    return {
        "rows": [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
        "findings": findings,
        "plots": made,
    }


def strengths_and_weaknesses(rows: list[dict]) -> list[str]:
    """Plain statements read off the numbers: nothing is claimed that a row does not show."""
    findings = []
    scored = [r for r in rows if r["gap_at_20"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["gap_at_20"])
        findings.append(f"Highest GAP@20: {plots.label(best)} with {best['gap_at_20']:.4f}.")
        fastest = max(rows, key=lambda r: r["videos_per_s"] or 0)
        findings.append(f"Fastest training: {plots.label(fastest)} at {fastest['videos_per_s']:.0f} videos/s.")
    pairs: dict[tuple, dict[str, dict]] = {}
    for r in scored:
        pairs.setdefault((r["arch"], r["expansion"]), {})[r["framework"]] = r
    for (arch, expansion), by in sorted(pairs.items()):
        if set(FRAMEWORKS) <= set(by):
            gap = by[TORCH]["gap_at_20"] - by[KERAS]["gap_at_20"]
            findings.append(f"{arch}{' + expansion' if expansion else ''}: PyTorch minus Keras GAP@20 = {gap:+.4f}.")
    for arch in sorted({r["arch"] for r in scored}):
        for framework in FRAMEWORKS:
            with_expansion = [r for r in scored if r["arch"] == arch and r["framework"] == framework and r["expansion"]]
            without = [r for r in scored if r["arch"] == arch and r["framework"] == framework and not r["expansion"]]
            if with_expansion and without:
                delta = with_expansion[0]["gap_at_20"] - without[0]["gap_at_20"]
                verdict = "helps" if delta > 0.005 else "hurts" if delta < -0.005 else "makes no clear difference"
                findings.append(f"Autoencoder expansion {verdict} for {arch}/{framework} ({delta:+.4f} GAP@20).")
    kinds = [r for r in rows if r["_kinds"]]
    for kind in ("temporal", "audio", "rgb", "both"):
        ranked = [(r["_kinds"][kind]["map"], r) for r in kinds if r["_kinds"].get(kind, {}).get("map") is not None]
        if ranked:
            value, best = max(ranked, key=lambda pair: pair[0])
            oracle = best["_kinds"][kind]["oracle_map"]
            findings.append(f"Best on {kind} classes: {plots.label(best)} (mAP {value:.4f}; oracle {oracle:.4f}).")
    return findings


# Columns that are not a metric in [0, 1] get the digits their unit deserves (metrics keep 4 decimals).
FORMATS = {
    "learning_rate": "{:g}",
    "train_loss": "{:.3f}",
    "videos_per_s": "{:,.0f}",
    "train_s": "{:,.1f}",
    "cpu_percent_mean": "{:.0f}",
    "cpu_percent_max": "{:.0f}",
    "rss_mb_max": "{:,.0f}",
    "gpu_util_mean": "{:.0f}",
    "gpu_mem_mb_max": "{:,.0f}",
}


def _format(value, key: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return FORMATS.get(key, "{:.4f}" if abs(value) < 10 else "{:.1f}").format(value)
    return str(value)


def _measured_on(rows) -> str:
    """Which data the quality columns come from, in one sentence."""
    counts = sorted({row["_videos"] for row in rows if row.get("_videos")})
    unevaluated = [plots.label(row) for row in rows if not row.get("_videos")]
    said = (
        f"GAP@20, Hit@1, PERR and mAP measured by `ytlabel evaluate` on {counts[0]:,} held-out videos"
        if len(counts) == 1
        else "GAP@20, Hit@1, PERR and mAP measured by `ytlabel evaluate` on "
        f"{' / '.join(f'{count:,}' for count in counts)} held-out videos (not one set: compare with care)"
        if counts
        else "GAP@20 and Hit@1 from each run's own validation shards"
    )
    if counts and unevaluated:
        said += f"; from their own validation for {', '.join(unevaluated)}"
    return said + "."


def _write_markdown(rows, findings, images, path) -> None:
    lines = [
        "# ytlabel: models × frameworks",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(_format(row.get(key), key) for key, _ in COLUMNS) + " |" for row in rows]
    lines += ["", _measured_on(rows)]
    lines += ["", "## Strengths and weaknesses", "", *[f"- {finding}" for finding in findings], "", "## Plots", ""]
    lines += [f"![{os.path.splitext(plot)[0]}]({plot})" for plot in images]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _write_html(rows, findings, images, path) -> None:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_format(row.get(key), key))}</td>" for key, _ in COLUMNS) + "</tr>"
        for row in rows
    )
    items = "".join(f"<li>{html.escape(finding)}</li>" for finding in findings)
    # The plots travel inside the page (data: URIs): the Kubeflow UI shows an HTML artifact as one file, and
    # a report copied anywhere keeps its plots. Shown at their own size, pixel for pixel.
    figures = "".join(
        f'<figure><img src="{_data_uri(os.path.join(os.path.dirname(path), plot))}" '
        f'alt="{html.escape(os.path.splitext(plot)[0])}"></figure>'
        for plot in images
    )
    with open(path, "w") as handle:
        handle.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>ytlabel report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}figure{{margin:1em 0}}</style></head><body>
<h1>ytlabel: models × frameworks</h1><table><tr>{head}</tr>{body}</table><p>{html.escape(_measured_on(rows))}</p>
<h2>Strengths and weaknesses</h2><ul>{items}</ul><h2>Plots</h2>{figures}</body></html>
""")


def _data_uri(png: str) -> str:
    with open(png, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


def _read_json(path: str) -> dict:
    """A benchmark's JSON, from a local path or s3:// (the pipeline's select step reads it from S3)."""
    try:
        return json.loads(storage.read_bytes(path))
    except (storage.NotFound, OSError, ValueError) as error:
        raise YtlabelError(f"{path}: cannot read a benchmark's JSON ({error})") from error


def _curve_finding(curves: dict, fit: dict) -> str:
    text = (
        f"{plots.label(fit)}: {fit['per_doubling']:+.4f} GAP@20 per doubling of the training videos (fit over "
        f"{len(plots.curve(curves, fit))} sizes, largest residual {fit['max_residual']:.4f})"
    )
    if "ceiling" in fit:
        text += (
            f"; a saturating fit levels off at {fit['ceiling']:.4f} (back-test: fitted without the largest "
            f"size it predicts {fit['backtest_predicted_largest']:.4f}, measured "
            f"{fit['backtest_measured_largest']:.4f})"
        )
    return text
