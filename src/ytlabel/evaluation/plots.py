"""The comparison report's PNG plots (matplotlib, files only): one colour per run, the evaluation data named
in the titles. `ytlabel.evaluation.report` builds the report around them."""

import os

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np

from ytlabel.kinds import TORCH


def label(row: dict) -> str:
    return f"{row['arch']}/{row['framework']}{' + expansion' if row['expansion'] else ''}"


ARCH_COLORS = {
    "logistic": "tab:gray",
    "moe": "tab:brown",
    "fc": "tab:blue",
    "bilstm": "tab:green",
    "stream_lstm": "tab:red",
    "fc_stream_lstm": "tab:purple",
}


def style(arch: str, framework: str) -> dict:
    """One colour per architecture; solid lines for PyTorch, dashed for Keras."""
    return {"color": ARCH_COLORS.get(arch, "black"), "linestyle": "-" if framework == TORCH else "--"}


def save(figure, out_dir: str, name: str) -> str:
    figure.tight_layout()
    figure.savefig(os.path.join(out_dir, name), dpi=100)
    plt.close(figure)
    return name


def run_colors(rows) -> list:
    """One distinct colour per run (tab10, then tab20), so that no two curves or bars share one."""
    palette = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20")
    return [palette(index % palette.N) for index in range(len(rows))]


def evaluated_on(rows) -> str:
    """The evaluation data in words for plot titles, e.g. "on 853 held-out videos"."""
    counts = sorted({row["_videos"] for row in rows if row.get("_videos")})
    return f" on {counts[0]:,} held-out videos" if len(counts) == 1 else ""


def loss_curves(rows, out_dir) -> str:
    """Train loss (solid) and, where the run validated, validation loss (dashed) per epoch, a colour per run."""
    from matplotlib.ticker import MaxNLocator

    figure, axis = plt.subplots(figsize=(10, 4.5))
    for row, color in zip(rows, run_colors(rows)):
        for column, style, suffix in (("train_loss", "-", "train"), ("val_loss", "--", "validation")):
            points = [(int(c["epoch"]), float(c[column])) for c in row["_curves"] if c.get(column)]
            if points:
                axis.plot(*zip(*points), style, marker="o", color=color, label=f"{label(row)} {suffix}")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set(
        xlabel="epoch",
        ylabel="loss (BCE summed over classes)",
        title="Loss per epoch (mean of the epoch's steps; dashed: validation)",
    )
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(figure, out_dir, "loss_curves.png")


def gap_bars(rows, out_dir) -> str:
    """Horizontal bars, one per run with its value written on it, labels in full."""
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.45 * len(rows)))
    values = [row["gap_at_20"] or 0.0 for row in rows]
    bars = axis.barh(range(len(rows)), values, color=run_colors(rows))
    axis.bar_label(bars, labels=[f"{value:.4f}" for value in values], padding=3, fontsize=9)
    axis.set_yticks(range(len(rows)), [label(row) for row in rows], fontsize=9)
    axis.invert_yaxis()
    axis.set_xlim(0, max(values + [0.01]) * 1.18)
    axis.set(xlabel="GAP@20", title=f"GAP@20 by model and framework{evaluated_on(rows)}")
    return save(figure, out_dir, "gap_by_model.png")


def speed_vs_gap(rows, out_dir) -> str:
    figure, axis = plt.subplots(figsize=(8, 4.5))
    for row, color in zip(rows, run_colors(rows)):
        point = (row["videos_per_s"] or 0, row["gap_at_20"] or 0)
        axis.scatter(*point, color=color, marker="o" if row["framework"] == TORCH else "s", label=label(row))
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0, top=max([row["gap_at_20"] or 0 for row in rows] + [0.01]) * 1.15)
    axis.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    axis.set(
        xlabel="training videos/s",
        ylabel="GAP@20",
        title=f"Throughput vs GAP@20{evaluated_on(rows)} (circle: PyTorch, square: Keras)",
    )
    return save(figure, out_dir, "throughput_vs_gap.png")


def genre_heatmap(rows, out_dir) -> str:
    genres = sorted({genre for row in rows for genre in row["_genres"]})
    matrix = np.array([[row["_genres"].get(genre, np.nan) for genre in genres] for row in rows])
    figure, axis = plt.subplots(figsize=(11, max(3.5, 2.2 + 0.4 * len(rows))))  # room for the colourbar
    image = axis.imshow(matrix, aspect="auto", cmap="viridis", vmin=0, vmax=1)
    axis.set_xticks(range(len(genres)), genres, rotation=50, ha="right", fontsize=8)
    axis.set_yticks(range(len(rows)), [label(row) for row in rows], fontsize=7)
    axis.set_title(f"Average precision per genre{evaluated_on(rows)}")
    figure.colorbar(image, label="AP")
    return save(figure, out_dir, "genre_ap_heatmap.png")


def curve(curves: dict, series: dict) -> list[tuple[int, float]]:
    key = (series["arch"], series["framework"], series["expansion"])
    return sorted(
        (row["videos"], row["gap_at_20"])
        for row in curves.get("rows", [])
        if (row["arch"], row["framework"], row["expansion"]) == key
    )


def learning_curves(curves: dict, out_dir: str) -> str:
    """GAP@20 against training videos (log scale), one line per model x framework (x expansion)."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    series = sorted({(row["arch"], row["framework"], row["expansion"]) for row in curves.get("rows", [])})
    for arch, framework, expansion in series:
        points = curve(curves, {"arch": arch, "framework": framework, "expansion": expansion})
        axis.plot(
            *zip(*points),
            marker="s" if expansion else "o",
            label=label({"arch": arch, "framework": framework, "expansion": expansion}),
            **style(arch, framework),
        )
    axis.set_xscale("log", base=2)
    axis.set(
        xlabel="training videos (log scale)",
        ylabel="GAP@20",
        title="Learning curves: GAP@20 on held-out real videos against training-set size",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return save(figure, out_dir, "learning_curves.png")


def scaling(benchmark: dict, out_dir: str) -> list[str]:
    """videos/s against frames and against local workers, from benchmarks/training.py's JSON."""
    plots = []
    for section, key, name in (
        ("frames", "max_frames", "scaling_frames.png"),
        ("workers", "workers", "scaling_workers.png"),
    ):
        entries = benchmark.get(section) or []
        if not entries:
            continue
        figure, axis = plt.subplots(figsize=(8, 4))
        for series in sorted({(e["arch"], e["framework"]) for e in entries}):
            points = sorted((e[key], e["videos_per_s"]) for e in entries if (e["arch"], e["framework"]) == series)
            axis.plot(*zip(*points), marker="o", label="/".join(series), **style(*series))
        axis.set(
            xlabel=key.replace("_", " "), ylabel="videos/s", title=f"Training throughput vs {key.replace('_', ' ')}"
        )
        axis.set_xticks(sorted({e[key] for e in entries}))
        axis.set_yscale("log")
        axis.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
        plots.append(save(figure, out_dir, name))
    return plots
