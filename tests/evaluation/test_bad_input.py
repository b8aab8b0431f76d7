"""Bad input: a clear error, and nothing written."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.data import HeaderError
from crimeclass.evaluation import EvaluationDataError, evaluate_run
from crimeclass.models import ModelFileError, RunError

from .conftest import FAST


def _nothing_written(run: Path, out: Path) -> None:
    assert not out.exists()
    assert not (run / "evaluation").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("missing", ["metrics.json", "predictions.parquet",
                                     "models/lr/manifest.json"])
def test_an_incomplete_run_folder(run_copy, tmp_path, missing):
    (run_copy / missing).unlink()
    with pytest.raises(RunError, match="incomplete run folder"):
        evaluate_run(run_copy, config=FAST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--out", str(out), "--json"])
    assert result.exit_code == 1
    assert "incomplete run folder" in json.loads(result.stdout)["error"]
    _nothing_written(run_copy, out)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(RunError, match="not a run folder"):
        evaluate_run(tmp_path / "nothing", config=FAST)


def test_a_model_file_that_does_not_match_its_sha256(run_copy, tmp_path):
    with open(run_copy / "models" / "xgb" / "booster.ubj", "ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelFileError, match="does not match the sha256"):
        evaluate_run(run_copy, config=FAST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", str(run_copy), "--out", str(out)])
    assert result.exit_code == 1 and "sha256" in result.output
    _nothing_written(run_copy, out)


def _csv(tmp_path: Path, sample_lines: tuple[str, list[str]], *, drop: str | None = None,
         extra: str | None = None) -> Path:
    import csv
    import io

    header, lines = sample_lines
    rows = list(csv.reader(io.StringIO(header + "".join(lines[:3000]))))
    if drop is not None:
        i = rows[0].index(drop)
        rows = [r[:i] + r[i + 1:] for r in rows]
    if extra is not None:
        rows = [r + ([extra] if k == 0 else ["x"]) for k, r in enumerate(rows)]
    path = tmp_path / "input.csv.gz"
    with gzip.open(path, "wt", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_input_with_a_missing_column(small_run, sample_lines, tmp_path):
    data = _csv(tmp_path, sample_lines, drop="Location Description")
    with pytest.raises(EvaluationDataError, match="missing column.*location_description"):
        evaluate_run(small_run, data=data, config=FAST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", str(small_run), "--data", str(data),
                                      "--out", str(out)])
    assert result.exit_code == 1 and "location_description" in result.output
    assert not out.exists()


def test_input_with_an_extra_column(small_run, sample_lines, tmp_path):
    data = _csv(tmp_path, sample_lines, extra="Suspect Name")
    with pytest.raises(HeaderError, match="unknown column.*Suspect Name"):
        evaluate_run(small_run, data=data, config=FAST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", str(small_run), "--data", str(data),
                                      "--out", str(out)])
    assert result.exit_code == 1 and "Suspect Name" in result.output
    assert not out.exists()


def test_a_window_without_rows(small_run, sample_store, tmp_path):
    with pytest.raises(EvaluationDataError, match="no labeled incidents"):
        evaluate_run(small_run, data=sample_store, since="1990-01-01", until="1991-01-01",
                     config=FAST)
    with pytest.raises(EvaluationDataError, match="no held-out rows"):
        evaluate_run(small_run, since="2030-01-01", config=FAST)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", str(small_run), "--since", "2030-01-01",
                                      "--out", str(out)])
    assert result.exit_code == 1 and "no held-out rows" in result.output
    assert not out.exists()


def test_an_out_folder_that_is_not_an_evaluation_is_not_replaced(small_run, tmp_path):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = CliRunner().invoke(app, ["evaluate", str(small_run), "--out", str(out),
                                      "--n-boot", "20", "--explain-rows", "0"])
    assert result.exit_code == 1 and "not an evaluation folder" in result.output
    assert (out / "notes.txt").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]
