"""Fixtures of the model tests: feature frames of the bundled sample (real rows)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from crimeclass.engines import DuckDBEngine
from crimeclass.features import FeatureSpec, HistoryWindow, feature_catalog, read_features
from crimeclass.models import TrainConfig, TrainResult, train

#: A smaller feature set keeps the model tests fast; the catalog is the same code.
SPEC = FeatureSpec(history=(HistoryWindow("beat", 28), HistoryWindow("block_location", 365)))


@pytest.fixture(scope="session")
def features() -> list:
    return feature_catalog(SPEC)


@pytest.fixture(scope="session")
def sample_frame(sample_store: Path) -> pd.DataFrame:
    """Labeled incidents of 2012-2017 from the sample, with their features (24,000 rows)."""
    con = duckdb.connect(str(sample_store), read_only=True)
    try:
        return read_features(DuckDBEngine(con), SPEC, since="2012-01-01", until="2018-01-01")
    finally:
        con.close()


@pytest.fixture(scope="session")
def xy(sample_frame: pd.DataFrame, features: list) -> tuple[pd.DataFrame, np.ndarray]:
    """Training frame (2014-2016, in time order) and labels."""
    rows = sample_frame[(sample_frame["date"] >= "2014-01-01")
                        & (sample_frame["date"] < "2017-01-01")]
    X = rows[["date", *[f.name for f in features]]].reset_index(drop=True)
    return X, rows["is_index"].to_numpy().astype(int)


@pytest.fixture(scope="session")
def holdout_xy(sample_frame: pd.DataFrame, features: list) -> tuple[pd.DataFrame, np.ndarray]:
    rows = sample_frame[sample_frame["date"] >= "2017-01-01"]
    X = rows[["date", *[f.name for f in features]]].reset_index(drop=True)
    return X, rows["is_index"].to_numpy().astype(int)


#: A tiny run: lr and the baselines, trained on 2014-2015, held out: 2016.
RUN_CONFIG = TrainConfig(models=("lr",), trials=1, folds=2, since="2014-01-01",
                         until="2017-01-01", search_sample=None, features=SPEC, n_jobs=1)


@pytest.fixture(scope="session")
def run(sample_store: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A tiny run on the sample (read it; do not change it)."""
    return train(sample_store, RUN_CONFIG, runs_dir=tmp_path_factory.mktemp("runs"))
