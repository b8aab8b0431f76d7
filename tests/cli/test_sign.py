"""crimeclass sign, and --verify-key on predict and evaluate: a run signed with a local key."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from tests.models.test_signing import _key_pair

from .conftest import train_small_run

runner = CliRunner()


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, sample_store: Path) -> dict[str, Path]:
    """A small run on a copy of the sample store, evaluated and then signed."""
    folder = tmp_path_factory.mktemp("signed")
    store = folder / "store.duckdb"
    shutil.copy(sample_store, store)
    run = train_small_run(store, folder / "runs")
    private, public = _key_pair(folder, "deployer")
    _, other = _key_pair(folder, "stranger")
    done = runner.invoke(app, ["sign", str(run), "--key", str(private), "--json"])
    assert done.exit_code == 0, done.output
    assert Path(json.loads(done.stdout)["signature"]).is_file()
    return {"run": run, "store": store, "public": public, "other": other, "dir": folder}


def _predict(signed: dict[str, Path], key: Path, out: str) -> object:
    return runner.invoke(app, ["predict", "--run", str(signed["run"]), "--store",
                               str(signed["store"]), "--since", "2017-06-01", "--out",
                               str(signed["dir"] / out), "--verify-key", str(key)])


def test_a_signed_run_scores_with_the_matching_key(signed):
    result = _predict(signed, signed["public"], "ok.parquet")
    assert result.exit_code == 0, result.output
    assert (signed["dir"] / "ok.parquet").is_file()


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_another_key_is_refused_before_anything_is_written(signed, command):
    if command == "predict":
        result = _predict(signed, signed["other"], "refused.parquet")
        written = signed["dir"] / "refused.parquet"
    else:
        written = signed["dir"] / "evaluation-refused"
        result = runner.invoke(app, ["evaluate", str(signed["run"]), "--out", str(written),
                                     "--verify-key", str(signed["other"])])
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: ") and "Traceback" not in result.output
    assert not written.exists()


def test_a_changed_file_breaks_the_signature(signed, tmp_path):
    copy = Path(shutil.copytree(signed["run"], tmp_path / signed["run"].name))
    (copy / "report.html").write_text((copy / "report.html").read_text() + "<!-- -->")
    result = runner.invoke(app, ["evaluate", str(copy), "--out", str(tmp_path / "ev"),
                                 "--verify-key", str(signed["public"])])
    assert result.exit_code == 1 and "error: " in result.stderr, result.output
