import html
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.helpers.cli_rule import one_error_line
from ytlabel.cli import main
from ytlabel.errors import YtlabelError
from ytlabel.evaluation.report import build_report, strengths_and_weaknesses


@pytest.fixture(scope="module")
def evaluated_runs(synth_dir, tmp_path_factory) -> list[str]:
    from ytlabel.config import load_config
    from ytlabel.evaluation.evaluate import evaluate_run
    from ytlabel.training.run import train

    runs = []
    for framework in ("torch", "keras"):
        directory = str(tmp_path_factory.mktemp(f"fc-{framework}"))
        train(
            load_config(
                "fc",
                framework,
                os.path.join(synth_dir, "video"),
                directory,
                None,
                ["epochs=2", "batch_size=4", "model.rgb_hidden=8", "model.head_hidden=8", "validation_fraction=0"],
            )
        )
        json.dump(
            evaluate_run(directory, os.path.join(synth_dir, "video")),
            open(os.path.join(directory, "metrics.json"), "w"),
        )
        runs.append(directory)
    return runs


def test_report_table_plots_and_findings(evaluated_runs, tmp_path):
    benchmark = tmp_path / "bench.json"
    benchmark.write_text(
        json.dumps(
            {
                "frames": [
                    {"arch": "bilstm", "framework": "torch", "max_frames": 75, "videos_per_s": 300.0},
                    {"arch": "bilstm", "framework": "torch", "max_frames": 150, "videos_per_s": 150.0},
                ],
                "workers": [],
            }
        )
    )
    report = build_report(evaluated_runs, str(tmp_path / "report"), str(benchmark))
    assert sorted(os.listdir(tmp_path / "report")) == sorted(
        [
            "report.md",
            "report.html",
            "loss_curves.png",
            "gap_by_model.png",
            "throughput_vs_gap.png",
            "genre_ap_heatmap.png",
            "scaling_frames.png",
        ]
    )
    rows = report["rows"]
    assert [(row["arch"], row["framework"], row["epochs"]) for row in rows] == [("fc", "keras", 2), ("fc", "torch", 2)]
    metrics = json.load(open(os.path.join(evaluated_runs[0], "metrics.json")))
    assert rows[1]["gap_at_20"] == metrics["gap_at_20"] and rows[1]["perr"] == metrics["perr"]
    markdown = open(tmp_path / "report" / "report.md").read()
    assert "| GAP@20 |" in markdown and "accuracy" not in markdown.lower()
    assert "GAP@20, Hit@1, PERR and mAP measured by `ytlabel evaluate` on 24 held-out videos." in markdown
    table_row = markdown.splitlines()[4].split(" | ")  # fc/keras: lr as given, seconds to 0.1 s
    assert table_row[5] == "0.001" and re.fullmatch(r"\d+\.\d", table_row[15]), table_row
    gap = rows[1]["gap_at_20"] - rows[0]["gap_at_20"]
    assert f"fc: PyTorch minus Keras GAP@20 = {gap:+.4f}." in report["findings"]
    assert any(finding.startswith("Best on temporal classes: fc/") for finding in report["findings"])
    with open(tmp_path / "report" / "scaling_frames.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_findings_state_only_what_rows_show():
    rows = [
        {"arch": "fc", "framework": "torch", "expansion": False, "gap_at_20": 0.6, "videos_per_s": 100.0, "_kinds": {}},
        {"arch": "fc", "framework": "torch", "expansion": True, "gap_at_20": 0.62, "videos_per_s": 90.0, "_kinds": {}},
    ]
    assert strengths_and_weaknesses(rows) == [
        "Highest GAP@20: fc/torch + expansion with 0.6200.",
        "Fastest training: fc/torch at 100 videos/s.",
        "Autoencoder expansion helps for fc/torch (+0.0200 GAP@20).",
    ]


def test_report_refuses_unfinished_runs(tmp_path, capsys):
    with pytest.raises(YtlabelError, match="no result.json"):
        build_report([str(tmp_path)], str(tmp_path / "out"))
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no result.json (not a finished `ytlabel train` run)" in one_error_line(capsys)


def test_learning_curves_plot_and_fit(tmp_path, capsys):
    """benchmarks/learning_curves.py's fit, and `ytlabel report --learning-curves` on its JSON alone."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from learning_curves import fit_per_doubling

    rows = [
        {"arch": "fc", "framework": framework, "expansion": False, "videos": videos, "gap_at_20": gap}
        for framework, points in (
            ("torch", ((1000, 0.50), (2000, 0.55), (4000, 0.60))),
            ("keras", ((1000, 0.50), (2000, 0.56), (4000, 0.60))),
        )
        for videos, gap in points
    ]
    torch_fit = fit_per_doubling([(1000, 0.50), (2000, 0.55), (4000, 0.60)])
    assert torch_fit["per_doubling"] == pytest.approx(0.05) and torch_fit["max_residual"] == pytest.approx(
        0.0, abs=1e-9
    )
    keras_fit = fit_per_doubling([(1000, 0.50), (2000, 0.56), (4000, 0.60)])
    assert keras_fit["per_doubling"] == pytest.approx(0.05) and keras_fit["max_residual"] == pytest.approx(
        0.0067, abs=1e-4
    )
    fits = [
        {"arch": "fc", "framework": "torch", "expansion": False, **torch_fit},
        {"arch": "fc", "framework": "keras", "expansion": False, **keras_fit},
    ]
    path = tmp_path / "curves.json"
    path.write_text(json.dumps({"rows": rows, "fits": fits}))
    assert main(["report", "--learning-curves", str(path), "--out", str(tmp_path / "report")]) == 0
    out = capsys.readouterr().out
    assert (
        "- fc/torch: +0.0500 GAP@20 per doubling of the training videos (fit over 3 sizes, largest residual 0.0000)"
        in out
    )
    assert "- fc/keras: +0.0500 GAP@20 per doubling" in out
    assert (tmp_path / "report" / "learning_curves.png").stat().st_size > 10_000
    assert "![learning_curves](learning_curves.png)" in (tmp_path / "report" / "report.md").read_text()


def test_saturating_fit_recovers_a_known_curve():
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
    from learning_curves import fit_saturating

    points = [(videos, 0.8 - 2.0 * videos**-0.3) for videos in (1500, 3000, 6000, 12000, 24000, 48000)]
    fit = fit_saturating(points)
    assert fit["ceiling"] == pytest.approx(0.8, abs=0.002) and fit["alpha"] == pytest.approx(0.3, abs=0.01)
    assert fit["backtest_predicted_largest"] == pytest.approx(points[-1][1], abs=0.001)
    assert fit["at_3_9m_videos"] == pytest.approx(0.8 - 2.0 * 3_888_919**-0.3, abs=0.002)


def _chromium(*args: str) -> subprocess.CompletedProcess:
    browser = shutil.which("chromium")
    assert browser, "Debian's chromium is required (`make test-deps` installs it)"
    return subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--virtual-time-budget=5000",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_report_page_shows_its_table_and_every_plot_in_a_browser(evaluated_runs, tmp_path):
    """What the Kubeflow UI shows (select's HTML artifact, plots inline): Chromium lays the page out, a probe
    reads back where the table and each image landed, and the screenshot holds each plot pixel for pixel."""
    import numpy as np
    from PIL import Image

    out = tmp_path / "report"
    report = build_report(evaluated_runs, str(out))
    page = (out / "report.html").read_text()
    assert 'src="data:image/png;base64,' in page and '.png"' not in page  # nothing fetched from beside it
    plots = {os.path.splitext(name)[0]: np.asarray(Image.open(out / name).convert("RGB")) for name in report["plots"]}

    # A copy of the page with a probe that writes the layout into the DOM Chromium dumps.
    probe = (
        "<script>addEventListener('load', () => { const box = e => e.getBoundingClientRect(); "
        "document.body.dataset.layout = JSON.stringify({table: [box(document.querySelector('table')).height, "
        "document.querySelectorAll('table tr').length], images: [...document.images].map(i => [i.alt, "
        "i.complete, i.naturalWidth, i.naturalHeight, i.width, i.height, box(i).x, box(i).y + scrollY])}); "
        "});</script></body>"
    )
    probed = tmp_path / "probed.html"
    probed.write_text(page.replace("</body>", probe))
    height = 800 + sum(plot.shape[0] + 40 for plot in plots.values())
    dumped = _chromium(f"--window-size=1400,{height}", "--dump-dom", probed.as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    layout = json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', dumped.stdout).group(1)))
    table_height, table_rows = layout["table"]
    assert table_rows == 1 + len(evaluated_runs) and table_height > 40
    assert [image[0] for image in layout["images"]] == list(plots)
    for name, complete, natural_w, natural_h, width, height_px, x, y in layout["images"]:
        assert complete and (natural_h, natural_w) == plots[name].shape[:2] == (height_px, width), name

    shot = tmp_path / "shot.png"
    done = _chromium(f"--window-size=1400,{height}", f"--screenshot={shot}", (out / "report.html").as_uri())
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    screen = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    for name, _, _, _, width, height_px, x, y in layout["images"]:
        shown = screen[round(y) : round(y) + height_px, round(x) : round(x) + width]
        assert shown.shape == plots[name].shape, name
        assert np.abs(shown - plots[name]).mean() < 1.0, name  # the plot itself, not a blank or broken image
        assert plots[name].std() > 10, name  # and the plot is not blank either


def test_each_run_has_its_own_colour_in_the_plots(evaluated_runs, tmp_path):
    """Read off the PNGs: both runs' colours (tab10's first two) are drawn in the loss curves, the bars and
    the scatter, and the heatmap's colourbar spans viridis from end to end."""
    import numpy as np
    from PIL import Image

    build_report(evaluated_runs, str(tmp_path))
    colours = {(31, 119, 180), (255, 127, 14)}  # tab:blue, tab:orange

    def drawn(name: str) -> set:
        pixels = np.asarray(Image.open(tmp_path / name).convert("RGB")).reshape(-1, 3)
        return {tuple(int(c) for c in pixel) for pixel in np.unique(pixels, axis=0)}

    for name in ("loss_curves.png", "gap_by_model.png", "throughput_vs_gap.png"):
        assert colours <= drawn(name), name
    heatmap = np.array(sorted(drawn("genre_ap_heatmap.png")))
    for end in ((68, 1, 84), (253, 231, 37)):  # viridis at 0 and at 1: the colourbar is drawn end to end
        assert np.abs(heatmap - end).max(axis=1).min() <= 2, end
