"""The command line, in-process with Typer's runner."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app

runner = CliRunner()

COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("command", [[]] + [[c] for c in COMMANDS], ids=["app", *COMMANDS])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_ingest_json_account_and_info_json(tmp_path, sample):
    store = str(tmp_path / "s.duckdb")
    result = runner.invoke(app, ["ingest", str(sample[1]), str(sample[-1]), "--store", store,
                                 "--json"])
    assert result.exit_code == 0, result.output
    account = json.loads(result.stdout)
    for key in ("read", "inserted", "updated", "unchanged", "quarantined", "files"):
        assert key in account
    assert account["read"] == 1_500 == account["inserted"] + account["updated"] + account[
        "unchanged"] + account["quarantined"]
    result = runner.invoke(app, ["info", "--store", store, "--json"])
    info = json.loads(result.stdout)
    assert {"rows", "min_date", "max_date", "index_share", "quarantined"} <= set(info)
    assert info["rows"] == 1_500 and 0 < info["index_share"] < 1


def test_the_ingest_account_reads_on_an_80_column_terminal(tmp_path, sample):
    store = str(tmp_path / "s.duckdb")
    result = runner.invoke(app, ["ingest", str(sample[1]), str(sample[-1]), "--store", store],
                           env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    for f in (sample[1], sample[-1]):  # a name may fold, but keeps 20 characters a line
        row = next(line for line in lines if f.name[:20] in line)
        read, *parts = (int(n.replace(",", "")) for n in row.split()[1:])
        assert len(parts) == 4 and read == sum(parts) > 0
        note = next(line for line in lines if line.startswith(f"{f.name}: "))
        assert "rows/s" in note
    assert "Ingest account: read = inserted + updated + unchanged + quarantined" in result.output


def test_store_from_the_environment(tmp_path, sample, monkeypatch):
    monkeypatch.setenv("CRIMECLASS_STORE", str(tmp_path / "env.duckdb"))
    assert runner.invoke(app, ["ingest", str(sample[-1])]).exit_code == 0
    assert (tmp_path / "env.duckdb").exists()


def test_quarantine_lists_and_exports(tmp_path, sample_lines):
    header, lines = sample_lines
    bad = tmp_path / "bad.csv"
    bad.write_text(header + lines[0] + "1,2,3\n" + lines[1])
    store = str(tmp_path / "s.duckdb")
    assert runner.invoke(app, ["ingest", str(bad), "--store", store]).exit_code == 0
    listed = runner.invoke(app, ["quarantine", "--store", store, "--json"])
    assert [(r["line"], r["reason"]) for r in json.loads(listed.stdout)["rows"]] == [
        (3, "wrong_field_count")]
    out = tmp_path / "q.csv"
    assert runner.invoke(app, ["quarantine", "--store", store, "--out", str(out)]).exit_code == 0
    assert "wrong_field_count" in out.read_text()
    wrong = runner.invoke(app, ["quarantine", "--store", store, "--reason", "nope"])
    assert wrong.exit_code == 1 and "wrong_field_count" in wrong.output


def test_export_command(tmp_path, sample):
    store = str(tmp_path / "s.duckdb")
    runner.invoke(app, ["ingest", str(sample[1]), "--store", store])
    result = runner.invoke(app, ["export", "--store", store, "--out", str(tmp_path / "pq"),
                                 "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["rows"] == 1_000
    assert (tmp_path / "pq" / "year=2022").is_dir()


@pytest.mark.parametrize(
    "args,message",
    [
        pytest.param(["info", "--store", "{tmp}/none.duckdb"], "crimeclass ingest", id="no-store"),
        pytest.param(["ingest", "{tmp}/missing.csv", "--store", "{tmp}/s.duckdb"], "no such file",
                     id="missing-file"),
        pytest.param(["ingest", "--store", "{tmp}/s.duckdb"], "--sample", id="nothing-to-load"),
        pytest.param(["export", "--store", "{tmp}/e.duckdb", "--format", "xlsx"],
                     "unknown format", id="format"),
    ],
)
def test_errors_exit_non_zero_with_a_clear_message(tmp_path, args, message):
    if "e.duckdb" in " ".join(args):
        from crimeclass.data import Store

        Store(tmp_path / "e.duckdb").close()
    result = runner.invoke(app, [a.format(tmp=tmp_path) for a in args])
    assert result.exit_code == 1
    assert message in result.output


def test_json_errors_are_json(tmp_path):
    result = runner.invoke(app, ["ingest", str(tmp_path / "x.csv"), "--store",
                                 str(tmp_path / "s.duckdb"), "--json"])
    assert result.exit_code == 1
    error = json.loads(result.stdout)
    assert error["type"] == "SourceError" and "no such file" in error["error"]


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and "crimeclass" in result.output


def test_train_trains_every_family_by_default_the_ensemble_too():
    """The default run holds the best model there is: the stack (the best on 2017,
    docs/results.md) and LightGBM as well as the five families; for the arrest target,
    which the stack does not serve, every other family."""
    from crimeclass.models import MODELS, TrainConfig, default_models

    assert TrainConfig().models == default_models() == (
        "lr", "rf", "svm", "xgb", "nn", "lgbm", "stack")
    assert TrainConfig(target="arrest").models == default_models("arrest")
    assert "stack" not in default_models("arrest")
    assert set(default_models()) == {m.name for m in MODELS.values() if not m.baseline}
