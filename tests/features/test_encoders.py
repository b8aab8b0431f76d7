"""The learned encoders: CategoryCodes hands scikit-learn's encoders numbers that give
exactly the results they give on the text of the categories."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, TargetEncoder

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine
from crimeclass.features import CategoryCodes, FeatureSpec, feature_catalog, read_features


@pytest.fixture(scope="module")
def frame(sample_store) -> pd.DataFrame:
    with Store(sample_store, read_only=True) as store:
        return read_features(DuckDBEngine.from_store(store),
                             FeatureSpec(groups=("time", "place")), since="2012-01-01")


def _split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    early = frame["date"] < "2016-01-01"
    return frame[early], frame[~early]


def test_codes_are_ranks_missing_is_nan_and_unseen_is_minus_two():
    fit = pd.DataFrame({"c": pd.Categorical(["b", "a", "b", None], categories=["b", "a", "z"])})
    codes = CategoryCodes().fit(fit)
    assert list(codes.categories_[0]) == ["a", "b"]  # the unused category z is left out
    other = pd.DataFrame({"c": pd.Categorical(["a", "z", None, "b"],
                                              categories=["z", "b", "a"])})
    out = codes.transform(other)[:, 0]
    assert out[0] == 0 and out[1] == CategoryCodes.UNSEEN and np.isnan(out[2]) and out[3] == 1
    text = pd.DataFrame({"c": ["a", "q", None, "b"]}, dtype=object)
    np.testing.assert_array_equal(codes.transform(text)[:, 0],
                                  [0, CategoryCodes.UNSEEN, np.nan, 1])
    assert list(codes.get_feature_names_out()) == ["c"]


def test_the_lookup_made_by_fit_is_not_saved_but_made_again_on_loading():
    import pickle

    import skops.io as sio

    codes = CategoryCodes().fit(pd.DataFrame({"c": ["b", "a"]}, dtype=object))
    rows = pd.DataFrame({"c": ["a", "b", "q"]}, dtype=object)
    before = dict(codes.__dict__)
    first = codes.transform(rows)
    assert codes.__dict__.keys() == before.keys()  # transform changes nothing
    assert "_indexes" not in codes.__getstate__()
    skops = sio.loads(sio.dumps(codes), trusted=[CategoryCodes])
    for loaded in (pickle.loads(pickle.dumps(codes)), skops):
        assert "_indexes" in loaded.__dict__
        np.testing.assert_array_equal(loaded.transform(rows), first)
    codes.fit(pd.DataFrame({"c": ["q", "b"]}, dtype=object))  # a = unseen now, q = 1
    np.testing.assert_array_equal(codes.transform(rows)[:, 0], [CategoryCodes.UNSEEN, 0, 1])


@pytest.mark.parametrize("encoder", [
    pytest.param(lambda: OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                        encoded_missing_value=-1, min_frequency=50),
                 id="ordinal-rare-grouped"),
    pytest.param(lambda: OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50,
                                       sparse_output=False), id="onehot"),
    pytest.param(lambda: TargetEncoder(target_type="binary",
                                       cv=KFold(5, shuffle=True, random_state=0)),
                 id="target"),
])
def test_encoders_give_the_same_on_codes_as_on_text(frame, encoder):
    cats = [f.name for f in feature_catalog(FeatureSpec(groups=("time", "place")))
            if f.kind in ("category", "high_cardinality")]
    train, test = _split(frame)
    y = train["is_index"].to_numpy().astype(int)
    on_text = encoder()
    text_train = on_text.fit_transform(train[cats].astype(object), y)
    text_test = on_text.transform(test[cats].astype(object))
    on_codes = make_pipeline(CategoryCodes(), encoder())
    np.testing.assert_array_equal(on_codes.fit_transform(train[cats], y), text_train)
    np.testing.assert_array_equal(on_codes.transform(test[cats]), text_test)


@pytest.mark.parametrize("fit_values", [[None, None], ["a", "b"]], ids=["fit-empty", "fit-ab"])
def test_a_category_column_with_no_category_at_all_is_missing(fit_values):
    """The years before the police published districts: every value missing (no category)."""
    empty = pd.DataFrame({"c": pd.Categorical([None, None, None])})
    enc = CategoryCodes().fit(pd.DataFrame({"c": pd.Categorical(fit_values)}))
    assert np.isnan(enc.transform(empty)).all()
