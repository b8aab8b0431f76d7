"""Batch prediction: the saved models of a tiny run on the sample, scoring files and stores."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.data import HeaderError
from crimeclass.models import (
    OUTPUT_COLUMNS,
    ModelFileError,
    PredictError,
    PredictOptions,
    RunError,
    predict,
    quarantine_path,
)


@pytest.fixture(scope="module")
def rows_2016(sample_lines, tmp_path_factory) -> Path:
    """The real 2016 rows of the main sample as a CSV export (about 2,000 rows)."""
    header, lines = sample_lines
    path = tmp_path_factory.mktemp("input") / "crimes_2016.csv"
    path.write_text(header + "".join(x for x in lines if "/2016 " in x.split(",", 3)[2]))
    return path


def _held_out(run) -> pd.DataFrame:
    return pd.read_parquet(run.run_dir / "predictions.parquet")


def test_the_held_out_period_scored_from_the_store_equals_the_run(run, sample_store, tmp_path):
    out = tmp_path / "p.parquet"
    res = predict(run.run_dir, sample_store, out, options=PredictOptions(
        since="2016-01-01", until="2017-01-01"))
    got = pd.read_parquet(out)
    want = _held_out(run)
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    assert res.scored == len(got) >= len(want)  # unlabeled rows are scored too
    m = want.merge(got, on="key", validate="one_to_one")
    assert len(m) == len(want)
    # the same features, the same model: equal up to the last bit of a dot product
    # (BLAS sums a batch of another size in another order)
    np.testing.assert_allclose(m["probability"], m["p_lr"], rtol=1e-12, atol=0)
    assert (m["label"] == (m["probability"] >= res.threshold)).all()
    assert set(got["model_id"]) == {f"{run.metrics['run_id']}/lr"} and res.history == "store"
    assert got["history_complete"].all()


def test_a_file_with_the_history_store_gives_the_run_s_probabilities(run, sample_store,
                                                                     rows_2016, tmp_path):
    out = tmp_path / "p.csv"
    res = predict(run.run_dir, rows_2016, out, history_store=sample_store)
    got = pd.read_csv(out)
    n_rows = len(rows_2016.read_text().splitlines()) - 1
    assert res.read == res.scored == len(got) == n_rows and res.quarantined == 0
    m = _held_out(run).merge(got, on="key")
    assert len(m) == n_rows  # every row of the file is a held-out incident of the run
    np.testing.assert_allclose(m["probability"], m["p_lr"], rtol=1e-12)
    assert not quarantine_path(out).exists()
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]  # no scratch, no temp file


def test_without_a_history_store_the_short_history_is_marked(run, rows_2016, tmp_path):
    out = tmp_path / "p.parquet"
    res = predict(run.run_dir, rows_2016, out)
    got = pd.read_parquet(out)
    short = got["history_days"] < 365  # the longest window of SPEC: 365 days
    assert res.history == "input" and res.history_incomplete == short.sum() > 0.99 * len(got)
    assert (got["history_complete"] == ~short).all()
    meta = json.loads(__import__("pyarrow.parquet", fromlist=["x"]).read_schema(out)
                      .metadata[b"crimeclass"])
    assert meta["history"] == "input" and meta["target"] == "index"


def test_scoring_goes_chunk_by_chunk(run, sample_store, rows_2016, tmp_path):
    events: list[dict] = []
    out = tmp_path / "p.parquet"
    predict(run.run_dir, rows_2016, out, history_store=sample_store,
            options=PredictOptions(chunk_rows=300),
            on_event=lambda kind, info: events.append(info) if kind == "score" else None)
    done = [e["done"] for e in events]
    steps = np.diff(done)
    assert len(steps) >= 5 and steps.max() <= 300  # never more than one chunk in Python
    whole = tmp_path / "whole.parquet"
    predict(run.run_dir, rows_2016, whole, history_store=sample_store)
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(whole))


def test_a_bad_row_is_quarantined_and_the_rest_scored(run, sample_store, rows_2016, tmp_path):
    lines = rows_2016.read_text().splitlines(keepends=True)
    rows = list(csv.reader(io.StringIO("".join(lines[1:4]))))
    rows[1][2] = "31/13/2016 25:00:00 PM"  # synthetic bad date, on line 3
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    bad = tmp_path / "bad.csv"
    bad.write_text(lines[0] + buf.getvalue() + "".join(lines[4:]) + "only,three,fields\n")
    out = tmp_path / "p.csv"
    res = predict(run.run_dir, bad, out, history_store=sample_store)
    assert res.quarantined == 2 and res.scored == len(lines) - 1 - 1
    q = pd.read_csv(quarantine_path(out))
    assert list(q.columns) == ["file", "line", "field", "reason", "problems", "raw"]
    assert q["line"].tolist() == [3, len(lines) + 1]
    assert q["field"].iloc[0] == "Date" and q["file"].iloc[0] == str(bad)
    assert len(pd.read_csv(out)) == res.scored


def test_the_cli_scores_and_reports(run, sample_store, rows_2016, tmp_path):
    out = tmp_path / "p.parquet"
    r = CliRunner().invoke(app, ["predict", "--run", str(run.run_dir), str(rows_2016),
                                 "--out", str(out), "--store", str(sample_store),
                                 "--model", "location_rate", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["model_id"].endswith("/location_rate") and res["history"] == "store"
    r = CliRunner().invoke(app, ["predict", "--run", str(run.run_dir), str(rows_2016),
                                 "--out", str(tmp_path / "q.csv")])
    assert r.exit_code == 0, r.output
    assert "no history store" in r.output and "scored by" in r.output


# ------------------------------------------------------------------ bad input


def _nothing_written(folder: Path, before: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == before


def test_bad_runs_and_models_raise_before_anything_is_written(run, rows_2016, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(run.run_dir, broken)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "p.csv"
    with pytest.raises(RunError, match="has no model 'gbm'; its models are: majority"):
        predict(run.run_dir, rows_2016, out, model_name="gbm")
    pipeline = broken / "models" / "lr" / "pipeline.skops"
    pipeline.write_bytes(pipeline.read_bytes() + b"\0")
    with pytest.raises(ModelFileError, match="sha256"):
        predict(broken, rows_2016, out, model_name="lr")
    (broken / "metrics.json").unlink()
    with pytest.raises(RunError, match="incomplete run folder: metrics.json missing"):
        predict(broken, rows_2016, out)
    with pytest.raises(PredictError, match="use .csv or .parquet"):
        predict(run.run_dir, rows_2016, out_dir / "p.xlsx")
    _nothing_written(out_dir, set())


def test_input_with_missing_or_extra_columns_is_refused(run, rows_2016, tmp_path):
    df = pd.read_csv(rows_2016, dtype=str, keep_default_na=False)
    missing, extra = tmp_path / "missing.csv", tmp_path / "extra.csv"
    df.drop(columns=["Beat", "Domestic"]).to_csv(missing, index=False)
    df.assign(Weather="sunny").to_csv(extra, index=False)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(PredictError, match="missing column\\(s\\) Domestic, Beat"):
        predict(run.run_dir, missing, out_dir / "p.csv")
    with pytest.raises(HeaderError, match="unknown column\\(s\\) 'Weather'"):
        predict(run.run_dir, extra, out_dir / "p.csv")
    _nothing_written(out_dir, set())


def test_a_window_without_rows_is_refused(run, sample_store, tmp_path):
    with pytest.raises(PredictError, match="no incidents to score"):
        predict(run.run_dir, sample_store, tmp_path / "p.csv",
                options=PredictOptions(since="2030-01-01"))
    assert list(tmp_path.iterdir()) == []


def test_a_store_input_with_another_history_store_counts_each_incident_once(
        run, sample_store, sample_store_copy, tmp_path):
    window = PredictOptions(since="2016-01-01", until="2017-01-01")
    alone, both = tmp_path / "alone.parquet", tmp_path / "both.parquet"
    predict(run.run_dir, sample_store, alone, options=window)
    predict(run.run_dir, sample_store, both, history_store=sample_store_copy, options=window)
    pd.testing.assert_frame_equal(pd.read_parquet(alone), pd.read_parquet(both))
