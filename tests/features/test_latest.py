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

from crimeclass.features import (
    DEFAULT_LATEST,
    FeaturesError,
    FeatureSpec,
    HistoryWindow,
    Latest,
    feature_catalog,
)

from .test_more_places import _checked_rows
from .test_sql import _earlier

#: place -> the oracle's columns for it
ORACLE_KEYS = {"block": ["block"], "block_location": ["block", "location_description"],
               "beat_location": ["beat", "location_description"], "grid_cell": ["grid_cell"]}
DAYS = 365
SPEC = FeatureSpec(history=(HistoryWindow("beat", DAYS),), latest=DEFAULT_LATEST)


def _oracle(inc: pd.DataFrame, row: pd.Series, latest: Latest) -> float:
    inside = _earlier(inc, row, ORACLE_KEYS[latest.place], DAYS)
    if inside is None:
        return np.nan
    if latest.index:
        inside &= inc["is_index"].fillna(False).to_numpy().astype(bool)
    if not inside.any():
        return np.nan
    return (row["date"] - inc["date"][inside].max()) / pd.Timedelta(hours=1)


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
    frame, inc, checked = _checked_rows(incidents_con, SPEC, seed=2,
                                        history="kernel" if kernel else "sql")
    found = dict.fromkeys(DEFAULT_LATEST, 0)
    for i, row in checked:
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
