"""Predict on Spark equals the single-machine predict of the same Parquet (1e-6 apart)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimeclass.data import Store
from crimeclass.engines import EngineError, sql_literal
from crimeclass.models import (
    OUTPUT_COLUMNS,
    ModelFileError,
    PredictError,
    open_run,
    predict,
)
from crimeclass.models._score import OUTPUT_SCHEMA
from crimeclass.models._spark_predict import (
    cover_sql,
    load_payload,
    model_payload,
    spark_predict,
    spark_schema,
)


def _copy(store: Path, sql: str, out: Path) -> Path:
    with Store(store, read_only=True) as st:
        st.con.execute(f"COPY ({sql}) TO {sql_literal(out)} (FORMAT parquet)")
    return out


@pytest.fixture(scope="module")
def inputs(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Incidents of late 2016 and 2017 with an ID (the 22 canonical columns: no key, no
    label), and the whole sample as a history (with key and label)."""
    folder = tmp_path_factory.mktemp("spark-predict")
    with Store(sample_store, read_only=True) as st:
        canonical, full = st.canonical_sql(extra=()), st.canonical_sql(extra=("key", "is_index"))
    return {
        "input": _copy(sample_store, f"{canonical} WHERE id IS NOT NULL AND date >= "
                       "TIMESTAMP '2016-10-01' AND date < TIMESTAMP '2018-01-01' ORDER BY date",
                       folder / "input.parquet"),
        "history": _copy(sample_store, full, folder / "history.parquet"),
    }


def _same(spark_out: Path, single_out: Path) -> pd.DataFrame:
    a = pd.read_parquet(spark_out).sort_values("id", ignore_index=True)
    b = pd.read_parquet(single_out).sort_values("id", ignore_index=True)
    assert list(a.columns) == list(b.columns) == list(OUTPUT_COLUMNS)
    assert len(a) == len(b) > 4000
    for col in OUTPUT_COLUMNS:
        if col in ("probability", "history_days"):
            np.testing.assert_allclose(a[col], b[col], rtol=0, atol=1e-6, err_msg=col)
        else:
            np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)
    return a


@pytest.mark.slow
def test_spark_predict_equals_the_single_machine_predict(spark, run, inputs, tmp_path):
    single = predict(run.run_dir, [inputs["input"]], tmp_path / "single.parquet")
    result = spark_predict(run.run_dir, inputs["input"], tmp_path / "spark", session=spark)
    out = _same(tmp_path / "spark", tmp_path / "single.parquet")
    assert (result.scored, result.positives, result.history_incomplete) == (
        single.scored, single.positives, single.history_incomplete)
    assert result.history == "input" and not out["history_complete"].all()
    assert result.model_id == single.model_id


@pytest.mark.slow
def test_a_history_counts_as_the_store_does_on_one_machine(spark, run, inputs, sample_store,
                                                           tmp_path):
    name = "location_rate"  # another kind of saved model, the same way to the executors
    single = predict(run.run_dir, [inputs["input"]], tmp_path / "single.parquet",
                     history_store=sample_store, model_name=name)
    result = spark_predict(run.run_dir, inputs["input"], tmp_path / "spark", model_name=name,
                           history=inputs["history"], session=spark)
    _same(tmp_path / "spark", tmp_path / "single.parquet")
    assert result.history_incomplete == single.history_incomplete
    assert result.history == "history" and result.model_id.endswith("/location_rate")
    with pytest.raises(PredictError, match="exists"):
        spark_predict(run.run_dir, inputs["input"], tmp_path / "spark", session=spark)


@pytest.mark.slow
def test_an_input_without_a_needed_column_is_refused_by_name(spark, run, sample_store,
                                                             tmp_path):
    path = _copy(sample_store, "SELECT id, date, iucr FROM incidents WHERE id IS NOT NULL",
                 tmp_path / "thin.parquet")
    with pytest.raises(EngineError, match=r"missing column\(s\) case_number, block"):
        spark_predict(run.run_dir, path, tmp_path / "out", session=spark)
    assert not (tmp_path / "out").exists()


def test_the_output_schema_reads_as_spark_ddl():
    assert spark_schema(OUTPUT_SCHEMA).startswith("id BIGINT, key BIGINT, date TIMESTAMP_NTZ, "
                                                  "probability DOUBLE, label BOOLEAN")


def test_the_history_days_compile_to_a_day_count():
    assert "date_diff('day', lag(day)" in cover_sql()


def test_the_executors_load_the_checked_files_only(run):
    model = open_run(run.run_dir).load_model("lr")
    payload = model_payload(run.run_dir, model)
    loaded = load_payload(payload)
    assert loaded.model_id == model.model_id and loaded.threshold == model.threshold
    tampered = dataclasses.replace(payload, files={**payload.files,
                                                   "manifest.json": b'{"format_version": 1}'})
    with pytest.raises(ModelFileError, match="sha256"):
        load_payload(tampered)
