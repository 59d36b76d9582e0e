"""The figures of a results file: every one written as PNG and SVG, and the heat map marks
exactly the grid points whose mean over seeds is at least 99% of float32."""

from collections import defaultdict

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from simulator.sweep.__main__ import main  # noqa: E402
from simulator.sweep.results import read_rows  # noqa: E402

GRID = ["--model", "tests.sweep_model:tiny", "--n", "8,16", "--gain", "1,8", "--bits", "6,6,8",
        "8,8,8", "--noise", "uniform:1", "--seeds", "2", "--scheduler", "none", "--quiet"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    assert main(["run", *GRID, "--out", str(out)]) == 0
    return out


def test_plot_writes_every_figure_and_marks_the_99_percent_cells(results, tmp_path, capsys):
    assert main(["plot", str(results / "results.jsonl"), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    stems = {"heatmap", "curves", "layers"}
    for stem in stems:
        png = tmp_path / f"{stem}_tests.sweep_model_tiny_top1_noise-uniform_1.png"
        svg = png.with_suffix(".svg")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert svg.read_text().lstrip().startswith("<?xml") and "</svg>" in svg.read_text()
    # the marks, derived from the rows here: mean over the seeds against 0.99 x float32
    _, rows = read_rows(results)
    by_point = defaultdict(list)
    for row in rows:
        by_point[tuple(row["axes"].values())].append(row["metrics"]["top1"])
    reference = rows[0]["float32_metrics"]["top1"]
    marked = sum(np.mean(v) >= 0.99 * reference for v in by_point.values())
    assert len(by_point) == 8
    assert f"{marked} cell(s) >= 99% of float32" in printed


def test_another_metric_and_a_missing_one(results, tmp_path, capsys):
    assert main(["plot", str(results), "--out", str(tmp_path), "--metric", "sqnr_db"]) == 0
    assert "0 cell(s) >= 99% of float32" in capsys.readouterr().out  # float32 SQNR is inf
    assert main(["plot", str(results), "--out", str(tmp_path), "--metric", "nosuch"]) == 2
    assert "metric 'nosuch' is not in the results" in capsys.readouterr().err
