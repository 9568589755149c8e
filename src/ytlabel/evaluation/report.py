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

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ytlabel import runs, storage  # noqa: E402
from ytlabel.errors import YtlabelError  # noqa: E402

COLUMNS = [("run", "run"), ("arch", "arch"), ("framework", "framework"), ("expansion", "expansion"),
           ("optimizer", "optimizer"), ("learning_rate", "lr"), ("epochs", "epochs"), ("batch_size", "batch"),
           ("train_loss", "train loss"), ("gap_at_20", "GAP@20"), ("hit_at_1", "Hit@1"), ("perr", "PERR"),
           ("map", "mAP"), ("genre_hit_at_1", "genre Hit@1"), ("videos_per_s", "videos/s"), ("train_s", "train s"),
           ("cpu_percent_mean", "CPU % mean"), ("cpu_percent_max", "CPU % max"), ("rss_mb_max", "peak RSS MB"),
           ("gpu_util_mean", "GPU %"), ("gpu_mem_mb_max", "GPU MB")]


def load_run(path: str) -> dict:
    """One report row from a run directory (local or s3://)."""
    result = runs.read_result(path)
    config = runs.read_config(path)
    metrics = runs.read_metrics(path) or {}
    quality = metrics or {"gap_at_20": result["val_metrics"]["gap_at_20"], "hit_at_1": result["val_metrics"]["hit_at_1"]}
    row = {"run": storage.basename(os.path.normpath(path) if not storage.is_remote(path) else path),
           "arch": result["arch"], "framework": result["framework"],
           "expansion": bool(config.get("encoder")), "optimizer": result.get("optimizer"),
           "learning_rate": result.get("learning_rate"), "epochs": result["epochs"], "batch_size": result.get("batch_size"),
           "train_loss": result["train_loss"], "videos_per_s": result["videos_per_s"], "train_s": result.get("train_s"),
           **{key: result["usage"].get(key) for key in ("cpu_percent_mean", "cpu_percent_max", "rss_mb_max",
                                                         "gpu_util_mean", "gpu_mem_mb_max")},
           **{key: quality.get(key) for key in ("gap_at_20", "hit_at_1", "perr", "map", "genre_hit_at_1")}}
    row["_curves"] = runs.read_curves(path)
    row["_videos"] = metrics.get("videos")
    row["_genres"] = metrics.get("per_genre_ap", {})
    row["_kinds"] = metrics.get("by_kind", {})
    row["_oracle"] = metrics.get("oracle")
    return row


def build_report(run_dirs: list[str], out_dir: str, benchmark: str | None = None,
                 learning_curves: str | None = None) -> dict:
    """Writes report.md, report.html and plots to `out_dir`; returns {"rows", "findings", "plots"}.

    `benchmark`: benchmarks/training.py's JSON (scaling plots); `learning_curves`: benchmarks/
    learning_curves.py's JSON (GAP@20 against training videos, and each model's gain per doubling).
    """
    if not run_dirs and not learning_curves:
        raise YtlabelError("report needs run directories or --learning-curves")
    rows = sorted((load_run(path) for path in run_dirs), key=lambda r: (r["arch"], r["framework"], r["expansion"]))
    os.makedirs(out_dir, exist_ok=True)
    plots = [_loss_curves(rows, out_dir), _gap_bars(rows, out_dir), _speed_vs_gap(rows, out_dir)] if rows else []
    if any(row["_genres"] for row in rows):
        plots.append(_genre_heatmap(rows, out_dir))
    if benchmark:
        plots.extend(_scaling(_read_json(benchmark), out_dir))
    findings = strengths_and_weaknesses(rows)
    if learning_curves:
        curves = _read_json(learning_curves)
        plots.append(_learning_curves(curves, out_dir))
        findings += [_curve_finding(curves, fit) for fit in curves.get("fits", [])]
    _write_markdown(rows, findings, plots, os.path.join(out_dir, "report.md"))
    _write_html(rows, findings, plots, os.path.join(out_dir, "report.html"))
    return {"rows": [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows],
            "findings": findings, "plots": plots}


def strengths_and_weaknesses(rows: list[dict]) -> list[str]:
    """Plain statements read off the numbers: nothing is claimed that a row does not show."""
    findings = []
    scored = [r for r in rows if r["gap_at_20"] is not None]
    if scored:
        best = max(scored, key=lambda r: r["gap_at_20"])
        findings.append(f"Highest GAP@20: {_label(best)} with {best['gap_at_20']:.4f}.")
        fastest = max(rows, key=lambda r: r["videos_per_s"] or 0)
        findings.append(f"Fastest training: {_label(fastest)} at {fastest['videos_per_s']:.0f} videos/s.")
    pairs = {}
    for r in scored:
        pairs.setdefault((r["arch"], r["expansion"]), {})[r["framework"]] = r
    for (arch, expansion), by in sorted(pairs.items()):
        if {"torch", "keras"} <= set(by):
            gap = by["torch"]["gap_at_20"] - by["keras"]["gap_at_20"]
            findings.append(f"{arch}{' + expansion' if expansion else ''}: PyTorch minus Keras GAP@20 = {gap:+.4f}.")
    for arch in sorted({r["arch"] for r in scored}):
        for framework in ("torch", "keras"):
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
            findings.append(f"Best on {kind} classes: {_label(best)} (mAP {value:.4f}; oracle {oracle:.4f}).")
    return findings


def _label(row: dict) -> str:
    return f"{row['arch']}/{row['framework']}{' + expansion' if row['expansion'] else ''}"


# Columns that are not a metric in [0, 1] get the digits their unit deserves (metrics keep 4 decimals).
FORMATS = {"learning_rate": "{:g}", "train_loss": "{:.3f}", "videos_per_s": "{:,.0f}", "train_s": "{:,.1f}",
           "cpu_percent_mean": "{:.0f}", "cpu_percent_max": "{:.0f}", "rss_mb_max": "{:,.0f}",
           "gpu_util_mean": "{:.0f}", "gpu_mem_mb_max": "{:,.0f}"}


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
    unevaluated = [_label(row) for row in rows if not row.get("_videos")]
    said = (f"GAP@20, Hit@1, PERR and mAP measured by `ytlabel evaluate` on {counts[0]:,} held-out videos"
            if len(counts) == 1 else "GAP@20, Hit@1, PERR and mAP measured by `ytlabel evaluate` on "
            f"{' / '.join(f'{count:,}' for count in counts)} held-out videos (not one set: compare with care)"
            if counts else "GAP@20 and Hit@1 from each run's own validation shards")
    if counts and unevaluated:
        said += f"; from their own validation for {', '.join(unevaluated)}"
    return said + "."


def _write_markdown(rows, findings, plots, path) -> None:
    lines = ["# ytlabel: models × frameworks", "",
             "| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_format(row.get(key), key) for key, _ in COLUMNS) + " |" for row in rows]
    lines += ["", _measured_on(rows)]
    lines += ["", "## Strengths and weaknesses", "", *[f"- {finding}" for finding in findings], "", "## Plots", ""]
    lines += [f"![{os.path.splitext(plot)[0]}]({plot})" for plot in plots]
    with open(path, "w") as handle:
        handle.write("\n".join(lines) + "\n")


def _write_html(rows, findings, plots, path) -> None:
    head = "".join(f"<th>{html.escape(title)}</th>" for _, title in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format(row.get(key), key))}</td>" for key, _ in COLUMNS) + "</tr>"
                   for row in rows)
    items = "".join(f"<li>{html.escape(finding)}</li>" for finding in findings)
    # The plots travel inside the page (data: URIs): the Kubeflow UI shows an HTML artifact as one file, and
    # a report copied anywhere keeps its plots. Shown at their own size, pixel for pixel.
    images = "".join(f'<figure><img src="{_data_uri(os.path.join(os.path.dirname(path), plot))}" '
                     f'alt="{html.escape(os.path.splitext(plot)[0])}"></figure>' for plot in plots)
    with open(path, "w") as handle:
        handle.write(f"""<!doctype html><html><head><meta charset="utf-8"><title>ytlabel report</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}figure{{margin:1em 0}}</style></head><body>
<h1>ytlabel: models × frameworks</h1><table><tr>{head}</tr>{body}</table><p>{html.escape(_measured_on(rows))}</p>
<h2>Strengths and weaknesses</h2><ul>{items}</ul><h2>Plots</h2>{images}</body></html>
""")


def _data_uri(png: str) -> str:
    with open(png, "rb") as handle:
        return "data:image/png;base64," + base64.b64encode(handle.read()).decode("ascii")


ARCH_COLORS = {"logistic": "tab:gray", "moe": "tab:brown", "fc": "tab:blue", "bilstm": "tab:green",
               "stream_lstm": "tab:red", "fc_stream_lstm": "tab:purple"}


def _style(arch: str, framework: str) -> dict:
    """One colour per architecture; solid lines for PyTorch, dashed for Keras."""
    return {"color": ARCH_COLORS.get(arch, "black"), "linestyle": "-" if framework == "torch" else "--"}


def _save(figure, out_dir: str, name: str) -> str:
    figure.tight_layout()
    figure.savefig(os.path.join(out_dir, name), dpi=100)
    plt.close(figure)
    return name


def _run_colors(rows) -> list:
    """One distinct colour per run (tab10, then tab20), so that no two curves or bars share one."""
    palette = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    return [palette(index % palette.N) for index in range(len(rows))]


def _evaluated_on(rows) -> str:
    """The evaluation data in words for plot titles, e.g. "on 853 held-out videos"."""
    counts = sorted({row["_videos"] for row in rows if row.get("_videos")})
    return f" on {counts[0]:,} held-out videos" if len(counts) == 1 else ""


def _loss_curves(rows, out_dir) -> str:
    """Train loss (solid) and, where the run validated, validation loss (dashed) per epoch, a colour per run."""
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(10, 4.5))
    for row, color in zip(rows, _run_colors(rows)):
        for column, style, suffix in (("train_loss", "-", "train"), ("val_loss", "--", "validation")):
            points = [(int(c["epoch"]), float(c[column])) for c in row["_curves"] if c.get(column)]
            if points:
                axis.plot(*zip(*points), style, marker="o", color=color, label=f"{_label(row)} {suffix}")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set(xlabel="epoch", ylabel="loss (BCE summed over classes)",
             title="Loss per epoch (mean of the epoch's steps; dashed: validation)")
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(figure, out_dir, "loss_curves.png")


def _gap_bars(rows, out_dir) -> str:
    """Horizontal bars, one per run with its value written on it, labels in full."""
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.45 * len(rows)))
    values = [row["gap_at_20"] or 0.0 for row in rows]
    bars = axis.barh(range(len(rows)), values, color=_run_colors(rows))
    axis.bar_label(bars, labels=[f"{value:.4f}" for value in values], padding=3, fontsize=9)
    axis.set_yticks(range(len(rows)), [_label(row) for row in rows], fontsize=9)
    axis.invert_yaxis()
    axis.set_xlim(0, max(values + [0.01]) * 1.18)
    axis.set(xlabel="GAP@20", title=f"GAP@20 by model and framework{_evaluated_on(rows)}")
    return _save(figure, out_dir, "gap_by_model.png")


def _speed_vs_gap(rows, out_dir) -> str:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for row, color in zip(rows, _run_colors(rows)):
        point = (row["videos_per_s"] or 0, row["gap_at_20"] or 0)
        axis.scatter(*point, color=color, marker="o" if row["framework"] == "torch" else "s", label=_label(row))
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0, top=max([row["gap_at_20"] or 0 for row in rows] + [0.01]) * 1.15)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axis.set(xlabel="training videos/s", ylabel="GAP@20",
             title=f"Throughput vs GAP@20{_evaluated_on(rows)} (circle: PyTorch, square: Keras)")
    return _save(figure, out_dir, "throughput_vs_gap.png")


def _genre_heatmap(rows, out_dir) -> str:
    genres = sorted({genre for row in rows for genre in row["_genres"]})
    matrix = np.array([[row["_genres"].get(genre, np.nan) for genre in genres] for row in rows])
    figure, axis = plt.subplots(figsize=(11, max(3.5, 2.2 + 0.4 * len(rows))))  # room for the colourbar
    image = axis.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    axis.set_xticks(range(len(genres)), genres, rotation=50, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), [_label(row) for row in rows], fontsize=7)
    axis.set_title(f"Average precision per genre{_evaluated_on(rows)}")
    figure.colorbar(image, label="AP")
    return _save(figure, out_dir, "genre_ap_heatmap.png")


def _read_json(path: str) -> dict:
    """A benchmark's JSON, from a local path or s3:// (the pipeline's select step reads it from S3)."""
    try:
        return json.loads(storage.read_bytes(path))
    except (storage.NotFound, OSError, ValueError) as error:
        raise YtlabelError(f"{path}: cannot read a benchmark's JSON ({error})") from error


def _curve(curves: dict, series: dict) -> list[tuple[int, float]]:
    key = (series["arch"], series["framework"], series["expansion"])
    return sorted((row["videos"], row["gap_at_20"]) for row in curves.get("rows", [])
                  if (row["arch"], row["framework"], row["expansion"]) == key)


def _curve_finding(curves: dict, fit: dict) -> str:
    text = (f"{_label(fit)}: {fit['per_doubling']:+.4f} GAP@20 per doubling of the training videos (fit over "
            f"{len(_curve(curves, fit))} sizes, largest residual {fit['max_residual']:.4f})")
    if "ceiling" in fit:
        text += (f"; a saturating fit levels off at {fit['ceiling']:.4f} (back-test: fitted without the largest "
                 f"size it predicts {fit['backtest_predicted_largest']:.4f}, measured "
                 f"{fit['backtest_measured_largest']:.4f})")
    return text


def _learning_curves(curves: dict, out_dir: str) -> str:
    """GAP@20 against training videos (log scale), one line per model x framework (x expansion)."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    series = sorted({(row["arch"], row["framework"], row["expansion"]) for row in curves.get("rows", [])})
    for arch, framework, expansion in series:
        points = _curve(curves, {"arch": arch, "framework": framework, "expansion": expansion})
        axis.plot(*zip(*points), marker="s" if expansion else "o", label=_label(
            {"arch": arch, "framework": framework, "expansion": expansion}), **_style(arch, framework))
    axis.set_xscale("log", base=2)
    axis.set(xlabel="training videos (log scale)", ylabel="GAP@20",
             title="Learning curves: GAP@20 on held-out real videos against training-set size")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(figure, out_dir, "learning_curves.png")


def _scaling(benchmark: dict, out_dir: str) -> list[str]:
    """videos/s against frames and against local workers, from benchmarks/training.py's JSON."""
    plots = []
    for section, key, name in (("frames", "max_frames", "scaling_frames.png"), ("workers", "workers", "scaling_workers.png")):
        entries = benchmark.get(section) or []
        if not entries:
            continue
        figure, axis = plt.subplots(figsize=(8, 4))
        for series in sorted({(e["arch"], e["framework"]) for e in entries}):
            points = sorted((e[key], e["videos_per_s"]) for e in entries if (e["arch"], e["framework"]) == series)
            axis.plot(*zip(*points), marker="o", label="/".join(series), **_style(*series))
        axis.set(xlabel=key.replace("_", " "), ylabel="videos/s", title=f"Training throughput vs {key.replace('_', ' ')}")
        axis.set_xticks(sorted({e[key] for e in entries}))
        axis.set_yscale("log")
        axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
        plots.append(_save(figure, out_dir, name))
    return plots
