"""The scoring core: a few validated rows in memory, a store as history, no files."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from crimeclass.data import Store
from crimeclass.models import (
    OUTPUT_COLUMNS,
    PredictError,
    PredictOptions,
    open_run,
    predict,
    score,
)


def _rows(store: Path, where: str, limit: int = 7) -> pa.Table:
    """Validated incidents as the store holds them (the canonical columns)."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.sql(f"SELECT * EXCLUDE (location) FROM incidents WHERE {where} "
                       f"ORDER BY hash(key) LIMIT {limit}").to_arrow_table()
    finally:
        con.close()


@pytest.fixture(scope="module")
def predicted_2016(run, sample_store, tmp_path_factory) -> pd.DataFrame:
    """predict's output for the held-out year, the store as input and history."""
    out = tmp_path_factory.mktemp("predict") / "p.parquet"
    predict(run.run_dir, sample_store, out, options=PredictOptions(since="2016-01-01",
                                                                  until="2017-01-01"))
    return pd.read_parquet(out)


def test_a_few_rows_with_the_store_as_history_score_as_predict_does(run, sample_store,
                                                                    predicted_2016):
    rows = _rows(sample_store, "date >= '2016-01-01' AND date < '2017-01-01'")
    model = open_run(run.run_dir).load_model()
    with Store(sample_store, read_only=True) as history:
        scores = score(rows, model, history=history)
    got = scores.to_arrow().to_pandas()
    assert list(got.columns) == list(OUTPUT_COLUMNS)
    assert got["key"].tolist() == rows.column("key").to_pylist()  # the input's order
    want = got[["key"]].merge(predicted_2016, on="key", how="left", validate="one_to_one")
    # the same features and model as predict: equal up to the last bit of a dot product
    np.testing.assert_allclose(got["probability"], want["probability"], rtol=1e-12, atol=0)
    for col in ("id", "date", "label", "model_id", "target", "history_days",
                "history_complete"):
        assert got[col].tolist() == want[col].tolist(), col
    assert scores.calibrated is None and scores.threshold == model.threshold
    # and as training scored its held-out period (a path without the scoring core)
    held = pd.read_parquet(run.run_dir / "predictions.parquet")
    m = got.merge(held, on="key")
    assert len(m) == len(got)
    np.testing.assert_allclose(m["probability"], m[f"p_{model.name}"], rtol=1e-12, atol=0)


def test_a_dataframe_without_history_counts_its_own_rows_only(run, sample_store,
                                                             predicted_2016):
    rows = _rows(sample_store, "date >= '2016-06-01' AND date < '2016-07-01'", 5).to_pandas()
    model = open_run(run.run_dir).load_model("lr")
    scores = score(rows, model)
    assert len(scores.probability) == 5 and not scores.features.history_complete.any()
    assert (scores.decision == (scores.probability >= model.threshold)).all()
    full = predicted_2016.set_index("key").loc[rows["key"], "probability"].to_numpy()
    assert not np.allclose(scores.probability, full)  # the missing history shows


class _Halve:
    def transform(self, p: np.ndarray) -> np.ndarray:
        return p / 2


def test_a_calibration_gives_calibrated_probabilities(run, sample_store):
    rows = _rows(sample_store, "date >= '2016-03-01'", 3)
    model = open_run(run.run_dir).load_model()
    scores = score(rows, model, calibration=_Halve())
    assert scores.calibrated is not None
    np.testing.assert_array_equal(scores.calibrated, scores.probability / 2)


def test_rows_without_the_canonical_columns_are_refused(run, sample_store):
    rows = _rows(sample_store, "true", 3).drop_columns(["beat"])
    with pytest.raises(PredictError, match="lack the column\\(s\\) beat"):
        score(rows, open_run(run.run_dir).load_model())
