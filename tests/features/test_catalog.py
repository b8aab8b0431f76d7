from __future__ import annotations

import pytest

from crimeclass.data import CrimeclassError
from crimeclass.features import (
    FEATURE_GROUPS,
    FeaturesError,
    FeatureSpec,
    HistoryWindow,
    feature_catalog,
)


def test_every_feature_is_documented_and_named_once():
    feats = feature_catalog(FeatureSpec(allow_arrest=True))
    names = [f.name for f in feats]
    assert len(names) == len(set(names))
    for f in feats:
        assert f.doc and f.uses and f.group in (*FEATURE_GROUPS, "arrest"), f


def test_groups_select_features():
    time_only = feature_catalog(FeatureSpec(groups=("time",)))
    assert {f.group for f in time_only} == {"time"}
    assert "hour_sin" in [f.name for f in time_only]
    no_history = feature_catalog(FeatureSpec(groups=("time", "place", "location", "domestic")))
    assert not any(f.history for f in no_history)


def test_history_features_come_in_threes_per_window():
    spec = FeatureSpec(history=(HistoryWindow("beat", 7),), latest=())
    names = [f.name for f in feature_catalog(spec) if f.history]
    assert names == ["n_beat_7d", "index_beat_7d", "index_share_beat_7d", "hours_since_block"]
    assert spec.lookback_days == 7


def test_no_feature_grows_with_the_calendar_alone():
    # history_days (days of data before an incident) did: PSI 14 between training and
    # held-out years, importance 0; it is reported by batch prediction, not learned from
    assert "history_days" not in [f.name for f in feature_catalog(FeatureSpec())]


def test_arrest_is_a_feature_only_when_allowed():
    assert "arrest" not in [f.name for f in feature_catalog(FeatureSpec())]
    assert "arrest" in [f.name for f in feature_catalog(FeatureSpec(allow_arrest=True))]


@pytest.mark.parametrize("kwargs, match, option, value", [
    pytest.param({"groups": ("time", "weather")}, "unknown feature group", "groups",
                 "['weather']", id="group"),
    pytest.param({"grid_feet": 0}, "grid_feet must be positive", "grid_feet", "0", id="grid"),
    pytest.param({"history": (HistoryWindow("moon", 7),)}, "unknown history place", "history",
                 "moon", id="place"),
    pytest.param({"history": (HistoryWindow("beat", 0),)}, "days must be positive", "history",
                 "0", id="days"),
    pytest.param({"target": "speed"}, "unknown target", "target", "speed", id="target"),
])
def test_bad_specs_are_refused(kwargs, match, option, value):
    with pytest.raises(FeaturesError, match=match) as info:
        FeatureSpec(**kwargs)
    assert isinstance(info.value, ValueError) and isinstance(info.value, CrimeclassError)
    assert info.value.attrs() == {"option": option, "value": value}


def test_spec_round_trips_through_a_dict():
    spec = FeatureSpec(grid_feet=500, allow_arrest=True)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
