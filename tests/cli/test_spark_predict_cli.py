"""`crimeclass predict --engine spark`: its options, its errors, one run on local[2]."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimeclass.cli import app
from crimeclass.data import Store
from crimeclass.engines import sql_literal
from crimeclass.models import OUTPUT_COLUMNS
from tests.cli.conftest import train_small_run

runner = CliRunner()


@pytest.fixture(scope="module")
def place(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("spark-cli")
    run = train_small_run(sample_store, folder / "runs")
    data = folder / "incidents.parquet"
    with Store(sample_store, read_only=True) as st:
        st.con.execute(f"COPY ({st.canonical_sql(extra=('key', 'is_index'))} WHERE date >= "
                       "TIMESTAMP '2017-01-01' AND date < TIMESTAMP '2018-01-01') TO "
                       f"{sql_literal(data)} (FORMAT parquet)")
    return {"run": str(run), "input": str(data), "dir": str(folder)}


def _one_error(result: object, code: int, words: str) -> None:
    __tracebackhide__ = True
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code == code, out  # type: ignore[attr-defined]
    errors = [line for line in result.stderr.splitlines()  # type: ignore[attr-defined]
              if line.startswith("error:")]
    assert len(errors) == 1 and words in " ".join(result.stderr.split()), out  # type: ignore[attr-defined]
    assert "Traceback" not in out and "unexpected" not in out, out


@pytest.mark.parametrize("args, words", [
    (["--engine", "spark"], "'--input'"),
    (["--engine", "spark", "--input", "{input}", "{input}"], "'--input'"),
    (["--engine", "spark", "--input", "{input}", "--store", "{input}"], "'--store'"),
    (["--engine", "spark", "--input", "{input}", "--since", "2017-01-01"], "'--since/--until'"),
    (["--input", "{input}"], "'--input'"),
    (["--history", "{input}", "{input}"], "'--history'"),
], ids=["no-input", "positional", "store", "since", "input-on-duckdb", "history-on-duckdb"])
def test_options_of_the_other_engine_are_refused_by_name(place, args, words):
    result = runner.invoke(app, ["predict", "--run", place["run"], "--out",
                                 place["dir"] + "/out", *[a.format(**place) for a in args]])
    _one_error(result, 2, words)


@pytest.mark.slow
def test_predict_on_spark_writes_the_columns_of_predict(place):
    out = Path(place["dir"]) / "scored"
    result = runner.invoke(app, ["predict", "--engine", "spark", "--master", "local[2]",
                                 "--run", place["run"], "--input", place["input"],
                                 "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    frame = pd.read_parquet(out)
    assert list(frame.columns) == list(OUTPUT_COLUMNS)
    assert doc["scored"] == len(frame) > 3000 and doc["history"] == "input"
    assert doc["master"] == "local[2]"
    again = runner.invoke(app, ["predict", "--engine", "spark", "--master", "local[2]",
                                "--run", place["run"], "--input", place["input"],
                                "--out", str(out)])
    _one_error(again, 1, "exists")
