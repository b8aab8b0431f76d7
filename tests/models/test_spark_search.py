"""The search of a Spark run on the driver's sample (no Spark needed to check it)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from crimeclass.models import TrainConfig
from crimeclass.models._spark_search import (
    SampleSearch,
    mllib_lr_params,
    record_search,
    search_on_sample,
)
from tests.models.conftest import SPEC


@pytest.fixture
def data(sample_frame):
    names = [c for c in sample_frame.columns if c not in ("key", "date", "is_index")]
    rows = sample_frame[(sample_frame["date"] >= "2014-01-01")
                        & (sample_frame["date"] < "2017-01-01")].reset_index(drop=True)
    return SimpleNamespace(sample=rows, names=names, validation_since=dt.datetime(2016, 9, 1))


def _config(**kw):
    return TrainConfig(models=("lr", "svm", "xgb"), trials=3, folds=2, features=SPEC, **kw)


def test_the_search_runs_the_single_machine_search_on_the_sample(data):
    events = []
    found = search_on_sample("lr", data, _config(search_sample=None),
                             lambda kind, info: events.append((kind, info)))
    assert found is not None and found.counts["run"] == 3 and found.rows == len(data.sample)
    assert found.param("model__C") == pytest.approx(found.trial_params["C"])
    assert len(found.fold_scores) == 2 and 0.5 < found.score < 1
    assert [i["done"] for k, i in events if k == "trial"] == [1, 2, 3]
    assert events[0] == ("model", {"name": "lr", "title": "Logistic regression", "trials": 3})


def test_the_search_sees_at_most_search_sample_rows_in_time_order(data):
    found = search_on_sample("xgb", data, _config(search_sample=2_000), lambda k, i: None)
    assert found is not None and found.rows == 2_000
    # the same rows again: the draw is seeded
    again = search_on_sample("xgb", data, _config(search_sample=2_000), lambda k, i: None)
    assert again is not None and again.trial_params == found.trial_params


def test_the_spark_svm_searches_the_linear_half_of_the_space(data):
    found = search_on_sample("svm", data, _config(search_sample=3_000), lambda k, i: None)
    assert found is not None and found.param("model__estimator__kernel") == "passthrough"
    assert set(found.trial_params) == {"alpha"}
    assert all(p["model__estimator__kernel"] == "passthrough"
               for p in found.cv_results["params"])


def test_a_baseline_has_nothing_to_search(data):
    events = []
    assert search_on_sample("location_rate", data, _config(),
                            lambda kind, info: events.append(info)) is None
    assert events[0]["trials"] == 1


def test_the_search_is_written_into_the_models_entry(data):
    found = search_on_sample("lr", data, _config(search_sample=3_000), lambda k, i: None)
    fitted = SimpleNamespace(entry={"params": {"regParam": 1e-5}, "seconds": {"refit": 1.0}},
                             trials={})
    record_search(fitted, found, _config())
    entry = fitted.entry
    assert entry["params"]["regParam"] == 1e-5 and entry["params"]["C"] == found.trial_params["C"]
    assert entry["trials"] == found.counts and entry["seconds"]["search"] >= 0
    assert entry["search"]["cv"]["fold_scores"] == found.fold_scores
    assert entry["search"]["where"].startswith("the driver, 3,000 rows")
    assert fitted.trials["spark_params"] == entry["params"]
    assert np.isfinite(entry["search"]["cv"]["mean"])


@pytest.mark.slow
def test_mllibs_regularization_is_scikit_learns_c_per_row(spark):
    """MLlib's mean loss + regParam * penalty has the optimum of scikit-learn's
    C * summed loss + penalty where regParam = 1 / (C * n): the searched C carries over."""
    from pyspark.ml.classification import LogisticRegression as MLlibLR
    from pyspark.ml.linalg import Vectors
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(2_000, 4))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0]) + rng.normal(size=2_000) > 0).astype(int)
    c = 0.002  # strong enough that a wrong mapping moves the coefficients a lot
    ours = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(X, y)
    search = SampleSearch(params={"model__C": c, "model__l1_ratio": 0.0}, trial_params={},
                          rows=len(y), seconds=0.0, score=0.0, fold_scores=[], counts={},
                          cv_results={})
    params = mllib_lr_params(search, len(y))
    frame = spark.createDataFrame([(Vectors.dense(x), float(t)) for x, t in zip(X, y, strict=True)],
                                  ["v", "label"])
    theirs = MLlibLR(featuresCol="v", labelCol="label", standardization=False,
                     regParam=params["regParam"], elasticNetParam=params["elasticNetParam"],
                     maxIter=1_000, tol=1e-12).fit(frame)
    np.testing.assert_allclose(theirs.coefficients.toArray(), ours.coef_[0], atol=1e-4)
    assert theirs.intercept == pytest.approx(ours.intercept_[0], abs=1e-4)
    # and the mapping matters: C per sum taken as regParam itself would be far off
    assert np.abs(ours.coef_[0]).max() > 0.1


def test_xgbs_final_round_runs_on_the_drivers_whole_sample(data):
    from crimeclass.models import MODELS

    config = TrainConfig(models=("xgb",), trials=8, folds=2, features=SPEC, search_sample=1_000)
    found = search_on_sample("xgb", data, config, lambda k, i: None)
    final = found.final_round
    # on 1,000 rows the search prefers other parameters than XGBoost's defaults
    assert final is not None and final["rows"] == len(data.sample)
    assert final["fit_rows"] + final["scored_rows"] == len(data.sample)
    assert (found.trial_params == MODELS["xgb"].start) == (final["kept"] == "defaults")
    fitted = SimpleNamespace(entry={"params": {}, "seconds": {}}, trials={})
    record_search(fitted, found, _config())
    assert fitted.entry["final_round"] == final
    off = search_on_sample("xgb", data, replace(config, final_sample=None), lambda k, i: None)
    assert off.final_round is None
    assert off.cv_results["trial_params"] == found.cv_results["trial_params"]
