"""bench/growth.py runs every step at two small sizes of real resampled rows.

Its figures come from the 1M-16M runs (the benchmark); this checks that each step runs
in its own process on the files of the step before it, and that the JSON and the plot
it writes are whole.
"""

from __future__ import annotations

import json

import pytest

from crimeclass.data.sources import scaleset_sources

from .helpers import bench_module


@pytest.fixture(scope="module")
def growth():
    with bench_module("growth") as module:
        yield module


@pytest.mark.slow
def test_every_step_runs_and_is_measured_at_each_size(growth, tmp_path, shared_data):
    data = tmp_path / "data"
    data.mkdir()
    for p in scaleset_sources(shared_data):
        if "2010" in p.name or "2011" in p.name:
            (data / p.name).symlink_to(p)
    out, png, work = tmp_path / "growth.json", tmp_path / "growth.png", tmp_path / "work"
    growth.main(["--data", str(data), "--sizes", "4000,8000", "--work", str(work),
                 "--out", str(out), "--plot", str(png), "--limit", "300"])

    sizes = json.loads(out.read_text())["sizes"]
    assert sorted(sizes) == ["4000", "8000"]
    for rows, entry in sizes.items():
        for step in growth.STEPS:
            figures = entry[step]
            assert figures["status"] == "ok", figures
            assert figures["seconds"] > 0 and figures["cpu_s"] > 0 and figures["peak_mb"] > 0
        assert entry["features"]["rows"] == entry["xgb_fit"]["rows"] == int(rows)
        assert entry["xgb_fit"]["trees"] >= 1
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(work.iterdir()), "the scale sets and stores are removed after each size"
