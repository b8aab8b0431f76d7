from __future__ import annotations

import pandas as pd
import pytest

from crimeclass.features import (
    DEFINE_LABEL,
    NOT_FEATURES,
    Feature,
    FeatureSpec,
    LeakageError,
    LeakageGuard,
    check_features,
    feature_catalog,
)


@pytest.mark.parametrize("name", sorted(DEFINE_LABEL))
def test_columns_that_define_the_label_raise(name):
    with pytest.raises(LeakageError, match=f"'{name}' cannot be a feature: it defines the label"):
        check_features(["hour", name])


@pytest.mark.parametrize("name", [
    pytest.param("primary_type_THEFT", id="one-hot"),
    pytest.param("onehot__iucr_0486", id="sklearn-prefixed"),
    pytest.param("fbi_code_te", id="target-encoded"),
    pytest.param("IS_INDEX", id="upper-case"),
    pytest.param("description_len", id="derived"),
])
def test_anything_derived_from_them_raises(name):
    with pytest.raises(LeakageError, match="defines the label"):
        check_features([name])


@pytest.mark.parametrize("name", sorted(NOT_FEATURES))
def test_identifiers_and_later_edits_raise(name):
    with pytest.raises(LeakageError, match="identifier, lineage or a later edit"):
        check_features([name])


def test_arrest_needs_the_explicit_option():
    with pytest.raises(LeakageError, match="arrest is recorded after the report"):
        check_features(["arrest"])
    check_features(["arrest"], allow_arrest=True)


def test_location_description_is_not_mistaken_for_description():
    check_features(["location_description", "index_share_beat_28d", "n_block_365d"])


def test_a_feature_computed_from_the_label_raises():
    leaky = Feature("type_rate", "primary_type", "category", "place", ("primary_type",), "x")
    with pytest.raises(LeakageError, match="computed from 'primary_type'"):
        check_features([leaky])
    own_label = Feature("label_copy", "is_index", "binary", "time", ("is_index",), "x")
    with pytest.raises(LeakageError, match="computed from 'is_index'"):
        check_features([own_label])


def test_history_features_may_read_earlier_labels_only():
    earlier = Feature("index_beat_7d", "_k", "count", "history", ("beat", "is_index"), "x",
                      history=True)
    check_features([earlier])
    leaky = Feature("iucr_beat_7d", "_k", "count", "history", ("beat", "iucr"), "x",
                    history=True)
    with pytest.raises(LeakageError):
        check_features([leaky])


@pytest.mark.parametrize("allow_arrest", [False, True])
def test_the_catalog_passes_its_own_guard(allow_arrest):
    check_features(feature_catalog(FeatureSpec(allow_arrest=allow_arrest)),
                   allow_arrest=allow_arrest)


def test_guard_refuses_a_frame_with_a_label_column():
    X = pd.DataFrame({"hour": [1.0, 2.0], "fbi_code": ["06", "08B"]})
    with pytest.raises(LeakageError, match="'fbi_code' cannot be a feature"):
        LeakageGuard().fit(X)
    ok = LeakageGuard().fit(X[["hour"]])
    with pytest.raises(LeakageError):
        ok.transform(X)


def test_guard_passes_a_clean_frame_through_unchanged():
    X = pd.DataFrame({"hour": [1.0, 2.0], "arrest": [0.0, 1.0]})
    guard = LeakageGuard(allow_arrest=True).fit(X)
    assert guard.transform(X) is X
    assert list(guard.get_feature_names_out()) == ["hour", "arrest"]
    with pytest.raises(LeakageError, match="arrest"):
        LeakageGuard().fit(X)


def test_guard_needs_column_names():
    with pytest.raises(TypeError, match="needs a DataFrame"):
        LeakageGuard().fit([[1.0, 2.0]])


# ------------------------------------------------------------ the guard follows the target


@pytest.mark.parametrize("name", ["primary_type", "description", "iucr", "fbi_code", "is_index",
                                  "onehot__primary_type_NARCOTICS", "fbi_code_18"])
def test_for_the_arrest_target_the_offense_type_may_be_a_feature(name):
    check_features(["hour", name], target="arrest")
    with pytest.raises(LeakageError, match="defines the label"):
        check_features(["hour", name], target="index")


@pytest.mark.parametrize("name", ["arrest", "onehot__arrest_True", "arrest_1.0"])
def test_for_the_arrest_target_arrest_is_never_a_feature(name):
    with pytest.raises(LeakageError, match="it is the label"):
        check_features(["hour", name], target="arrest")
    with pytest.raises(LeakageError, match="it is the label"):
        check_features(["hour"], target="arrest", allow_arrest=True)


@pytest.mark.parametrize("name", ["id", "case_number", "updated_on", "label_source"])
def test_identifiers_and_lineage_stay_out_whatever_the_target(name):
    for target in ("index", "arrest"):
        with pytest.raises(LeakageError):
            check_features([name], target=target)


def test_only_the_report_group_reads_the_order_of_the_case_numbers():
    (delay,) = [f for f in feature_catalog(FeatureSpec()) if f.group == "report"]
    assert "case_number" in delay.uses
    check_features([delay])  # the order of the reports: known at report time
    for group in ("time", "history", "place"):
        with pytest.raises(LeakageError, match="computed from 'case_number'"):
            check_features([Feature("case_seq", "case_seq", "numeric", group,
                                    ("case_number",), "the number itself")])
    with pytest.raises(LeakageError):  # nor is the number a feature by its own name
        check_features(["case_number"])


def test_the_arrest_catalog_holds_the_offense_and_passes_its_own_guard():
    spec = FeatureSpec(target="arrest")
    feats = feature_catalog(spec)
    names = [f.name for f in feats]
    assert {"primary_type", "description", "iucr", "fbi_code", "is_index"} <= set(names)
    assert "arrest" not in names and spec.label_column == "arrest"
    check_features(feats, target="arrest")
    with pytest.raises(LeakageError, match="defines the label"):
        check_features(feats, target="index")
    with pytest.raises(ValueError, match="arrest is the target"):
        FeatureSpec(target="arrest", allow_arrest=True)
    with pytest.raises(ValueError, match="unknown target"):
        FeatureSpec(target="robbery")  # type: ignore[arg-type]


def test_the_guard_in_a_pipeline_follows_its_target():
    X = pd.DataFrame({"hour": [1.0, 2.0], "primary_type": ["THEFT", "NARCOTICS"]})
    LeakageGuard(target="arrest").fit(X)
    with pytest.raises(LeakageError, match="defines the label"):
        LeakageGuard().fit(X)
    with pytest.raises(LeakageError, match="it is the label"):
        LeakageGuard(target="arrest").fit(X.assign(arrest=[True, False]))
