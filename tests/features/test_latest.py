"""The hours since the latest earlier incident, or index offense, in a place.

Checked against a pandas oracle that builds the place from the store's columns; the
kernel, the window SQL and the online index give the same values (the parity tests of the
default spec cover them, which holds :data:`DEFAULT_LATEST`); here, the two paths of the
DuckDB feature query and the errors.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeclass.engines import DuckDBEngine
from crimeclass.features import (
    DEFAULT_LATEST,
    FeaturesError,
    FeatureSpec,
    HistoryWindow,
    Latest,
    feature_catalog,
    read_features,
)

from .test_more_places import _incidents

#: place -> the oracle's columns for it
ORACLE_KEYS = {"block": ["block"], "block_location": ["block", "location_description"],
               "beat_location": ["beat", "location_description"], "grid_cell": ["grid_cell"]}
DAYS = 365
SPEC = FeatureSpec(history=(HistoryWindow("beat", DAYS),), latest=DEFAULT_LATEST)


def _oracle(inc: pd.DataFrame, row: pd.Series, latest: Latest) -> float:
    keys = ORACLE_KEYS[latest.place]
    if any(pd.isna(row[k]) for k in keys):
        return np.nan
    same = np.ones(len(inc), dtype=bool)
    for k in keys:
        same &= (inc[k] == row[k]).to_numpy()
    t = row["date"]
    inside = same & (inc["date"] >= t - pd.Timedelta(days=DAYS)).to_numpy() \
        & (inc["date"] < t).to_numpy()
    if latest.index:
        inside &= inc["is_index"].fillna(False).to_numpy().astype(bool)
    if not inside.any():
        return np.nan
    return (t - inc["date"][inside].max()) / pd.Timedelta(hours=1)


def test_the_default_latest_are_features_of_the_catalog():
    names = {f.name for f in feature_catalog(FeatureSpec())}
    assert {x.name for x in DEFAULT_LATEST} <= names
    assert "hours_since_index_block" in names and "hours_since_block" in names
    by_name = {f.name: f for f in feature_catalog(FeatureSpec())}
    assert "is_index" in by_name["hours_since_index_grid_cell"].uses
    assert "is_index" not in by_name["hours_since_grid_cell"].uses


@pytest.mark.parametrize("kernel", [True, False], ids=["kernel", "window SQL"])
def test_latest_hours_are_what_a_pandas_oracle_finds(incidents_con, kernel):
    # the window SQL is the definition (what Spark runs); the kernel is the DuckDB path
    frame = read_features(DuckDBEngine(incidents_con), SPEC, since="2016-06-01",
                          until="2017-01-01", history="kernel" if kernel else "sql")
    inc = _incidents(incidents_con)
    rows = inc.set_index("key").loc[frame["key"]].reset_index()
    check = np.random.default_rng(2).choice(len(frame), size=150, replace=False)
    found = dict.fromkeys(DEFAULT_LATEST, 0)
    for i in check:
        row = rows.iloc[i]
        for x in DEFAULT_LATEST:
            want, got = _oracle(inc, row, x), frame[x.name].iloc[i]
            assert got == pytest.approx(want) if not np.isnan(want) else np.isnan(got), \
                f"{x.name} of incident {row['key']}"
            found[x] += not np.isnan(want)
    assert all(v > 0 for v in found.values()), found  # each found some latest incident
    index = frame["hours_since_index_block"].dropna()
    assert (index.to_numpy() >= frame.loc[index.index, "hours_since_block"].to_numpy()).all()


def test_a_spec_round_trips_and_an_old_one_has_no_latest():
    spec = FeatureSpec()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    old = {k: v for k, v in spec.to_dict().items() if k != "latest"}
    assert FeatureSpec.from_dict(old).latest == ()


@pytest.mark.parametrize("latest", [Latest("nowhere"), Latest("block")])
def test_an_unknown_place_or_the_blocks_own_is_refused(latest):
    with pytest.raises(FeaturesError, match="the hours since the latest incident") as err:
        FeatureSpec(latest=(latest,))
    assert err.value.option == "latest"
