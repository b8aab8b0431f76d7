"""``crimeclass explore`` in process."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from crimeclass.cli import app

runner = CliRunner()


def test_explore_writes_the_report(sample_store, tmp_path):
    out = tmp_path / "rep"
    result = runner.invoke(app, ["explore", "--store", str(sample_store), "--out", str(out),
                                 "--since", "2012", "--until", "2017", "--type", "theft",
                                 "--no-plots", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["filters"]["types"] == ["THEFT"]
    assert (out / "report.html").exists() and (out / "tables" / "hour_by_weekday.parquet").exists()
    assert summary["findings"][0].startswith(f"{summary['rows']:,} incidents from")


def test_unknown_district_is_an_error_listing_the_valid_ones(sample_store, tmp_path):
    result = runner.invoke(app, ["explore", "--store", str(sample_store), "--out",
                                 str(tmp_path), "--district", "31"])
    assert result.exit_code == 1
    assert "unknown district 31; valid district values are: 1, 2, 3" in " ".join(
        result.output.split())


def test_missing_store_names_the_ingest_command(tmp_path):
    result = runner.invoke(app, ["explore", "--store", str(tmp_path / "none.duckdb"),
                                 "--out", str(tmp_path / "rep")])
    assert result.exit_code == 1
    assert "crimeclass ingest" in " ".join(result.output.split())


def test_unknown_engine_is_an_error(sample_store, tmp_path):
    result = runner.invoke(app, ["explore", "--store", str(sample_store), "--out",
                                 str(tmp_path), "--engine", "polars"])
    assert result.exit_code == 1 and "engines are: duckdb, spark" in result.output
