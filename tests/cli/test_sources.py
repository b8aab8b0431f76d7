"""`crimeclass ingest portal`, `crimeclass sync` and `crimeclass ingest bigquery`, in-process."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from tests.data.loopback import (
    BigQueryReadServer,
    SodaServer,
    bigquery_table,
    portal_sample_files,
    raw_rows,
    soda_records,
)

runner = CliRunner()
ACCOUNT = {"read", "inserted", "updated", "unchanged", "quarantined"}


@pytest.fixture(scope="module")
def raw():
    return raw_rows(portal_sample_files())


def test_ingest_portal_then_sync(raw, tmp_path):
    store = str(tmp_path / "s.duckdb")
    with SodaServer(soda_records(raw), app_tokens={"tok"}) as srv:
        env = {"SODA_APP_TOKEN": "tok"}
        r = runner.invoke(app, ["ingest", "portal", "--url", srv.url, "--page-rows", "1000",
                                "--store", store, "--json"], env=env)
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert ACCOUNT <= out.keys()
        assert (out["read"], out["inserted"], out["pages"]) == (2000, 2000, 2)
        r = runner.invoke(app, ["sync", "--url", srv.url, "--store", store], env=env)
        assert r.exit_code == 0, r.output
        assert "nothing new" in r.output and "next sync asks for updated_on >" in r.output
        r = runner.invoke(app, ["sync", "--url", srv.url, "--store", store, "--json"],
                          env={"SODA_APP_TOKEN": "revoked"})
        assert r.exit_code == 1
        error = json.loads(r.output)
        assert error["type"] == "SourceError" and error["source"].startswith(srv.url)
        assert "check the app token in $SODA_APP_TOKEN" in error["error"]


def test_ingest_bigquery(raw, tmp_path):
    store = str(tmp_path / "s.duckdb")
    with BigQueryReadServer(bigquery_table(raw)) as srv:
        r = runner.invoke(app, ["ingest", "bigquery", "--endpoint", srv.endpoint, "--plaintext",
                                "--project", "billing", "--from-year", "2025", "--streams", "2",
                                "--store", store, "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.output)
        assert ACCOUNT <= out.keys()
        assert (out["read"], out["inserted"], out["streams"]) == (1500, 1500, 2)
        assert srv.sessions[0].read_session.read_options.row_restriction == "year >= 2025"
        args = ["ingest", "bigquery", "--endpoint", srv.endpoint, "--plaintext", "--project",
                "billing", "--from-year", "2025", "--store", store]
        r = runner.invoke(app, [*args, "--json"])  # again: only rows updated since
        again = json.loads(r.output)
        assert (again["read"], again["cursor"]) == (0, out["cursor"])
        restriction = srv.sessions[1].read_session.read_options.row_restriction
        assert restriction.startswith("year >= 2025 AND updated_on > TIMESTAMP '")
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        assert f"next run asks for updated_on > {out['cursor']}" in r.output
        r = runner.invoke(app, [*args, "--restart", "--json"])  # every row again
        assert (json.loads(r.output)["read"], json.loads(r.output)["unchanged"]) == (1500, 1500)


def test_ingest_of_files_is_as_before(tmp_path):
    store = str(tmp_path / "s.duckdb")
    f = str(portal_sample_files()[0])
    r = runner.invoke(app, ["ingest", f, "--store", store, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["read"] == 500
    r = runner.invoke(app, ["ingest", "--help"])
    assert "crimeclass ingest portal" in r.output and "crimeclass sync" in r.output
    r = runner.invoke(app, ["ingest", "portal", "--help"])
    assert r.exit_code == 0 and "Usage: crimeclass ingest portal" in r.output
