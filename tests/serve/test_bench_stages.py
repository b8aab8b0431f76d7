"""bench/serve_stages.py on the sample: every stage timed, and the Arrow features equal to
the DuckDB statement's (the bench stops where they differ)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bench.helpers import bench_module


def test_the_stage_bench_times_every_stage(xgb_run: Path, history_store: Path):
    with bench_module("serve_stages") as bench:
        got = bench.measure(xgb_run, history_store, 4, 2, 2)
    assert got["requests"] == 4 and got["incidents_per_request"] == 2
    assert set(got["stages_ms"]) == {"validation", "history_rows", "history_sums",
                                     "report_times", "features_arrow", "features_duckdb",
                                     "feature_frame", "encoders", "model", "reasons"}
    assert all(v > 0 for v in got["stages_ms"].values())
    stages = got["stages_ms"]
    assert got["pass_ms_with_duckdb_statements"] == pytest.approx(
        got["pass_ms"] - stages["features_arrow"] + stages["features_duckdb"], abs=0.02)
