"""The stacked ensemble: out-of-fold predictions in time order (no fold sees a later
period's labels), scikit-learn's common checks, saving and loading, and ``train()``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from crimeclass.models import (
    STACK_BASES,
    EarlyStoppingLGBMClassifier,
    TimeStackClassifier,
    TrainConfig,
    TrainingDataError,
    load_model,
    make_model,
    train,
)

from .conftest import SPEC


def _stack(features, n_splits=3):
    bases = [(name, make_model(name, features, n_jobs=1)) for name in ("lr", "lgbm")]
    for _, pipe in bases:
        if "n_estimators" in pipe[-1].get_params():
            pipe.set_params(model__n_estimators=30)
    return TimeStackClassifier(bases, n_splits=n_splits)


_WHY = ("the check's rows are sorted by class, and an array's rows are taken in time order: "
        "the earlier periods hold one class only, so no fold can predict a later one and "
        "there is nothing to learn the weights from (by design: a fold never trains on a "
        "later period)")
_SORTED_BY_CLASS = {"check_positive_only_tag_during_fit": _WHY,
                    "check_estimators_nan_inf": _WHY}


@parametrize_with_checks([TimeStackClassifier(
    [("lr", LogisticRegression()),
     ("lgbm", EarlyStoppingLGBMClassifier(n_estimators=10, n_jobs=1, min_child_samples=2))],
    n_splits=2, time_column=None)], expected_failed_checks=lambda est: _SORTED_BY_CLASS)
def test_sklearn_common_checks(estimator, check):
    check(estimator)


def test_each_fold_trains_on_earlier_periods_only(xy, features):
    X, y = xy
    stack = _stack(features).fit(X, y)
    dates = X["date"].to_numpy()
    fold = stack.oof_fold_
    assert len(stack.folds_) == 3 and set(fold) == {-1, 0, 1, 2}
    for k, info in enumerate(stack.folds_):
        earlier = fold < k  # the first period (-1) and the periods of earlier folds
        assert info["train_rows"] == earlier.sum()
        assert info["predicted_rows"] == (fold == k).sum()
        assert dates[earlier].max() < dates[fold == k].min()
        assert info["train_last"] < info["predicted_first"] <= info["predicted_last"]
    # the first period has no earlier one: no out-of-fold prediction, left out of the meta fit
    assert np.isnan(stack.oof_proba_[fold < 0]).all()
    assert not np.isnan(stack.oof_proba_[fold >= 0]).any()


def test_no_fold_sees_a_later_period_s_labels(xy, features):
    """Flip the labels of every period after fold k's: the out-of-fold predictions of
    folds 0 .. k stay exactly as they were, those of the next but one move; flip the
    first period's: every fold's move."""
    X, y = xy
    base = _stack(features).fit(X, y)
    fold = base.oof_fold_
    for k in range(len(base.folds_) - 1):
        flipped = np.where(fold > k, 1 - y, y)
        later = _stack(features).fit(X, flipped)
        kept = (fold >= 0) & (fold <= k)
        np.testing.assert_array_equal(later.oof_proba_[kept], base.oof_proba_[kept])
        if k + 2 < len(base.folds_):
            rows = fold == k + 2
            assert not np.allclose(later.oof_proba_[rows], base.oof_proba_[rows])
    moved = _stack(features).fit(X, np.where(fold < 0, 1 - y, y))
    for k in range(len(base.folds_)):
        rows = fold == k
        assert not np.allclose(moved.oof_proba_[rows], base.oof_proba_[rows])


def test_the_meta_learner_weighs_the_bases_log_odds(xy, holdout_xy, features):
    X, y = xy
    stack = _stack(features).fit(X, y)
    assert set(stack.weights_) == {"lr", "lgbm"}
    Xh = holdout_xy[0]
    bases = np.column_stack([est.predict_proba(Xh)[:, 1] for _, est in stack.estimators_])
    logit = np.log(bases / (1 - bases)) @ stack.meta_.coef_[0] + stack.meta_.intercept_[0]
    np.testing.assert_allclose(stack.predict_proba(Xh)[:, 1], 1 / (1 + np.exp(-logit)),
                               rtol=1e-6)


def test_a_frame_without_its_time_column_is_refused(xy, features):
    X, y = xy
    with pytest.raises(TrainingDataError, match="needs a DataFrame with a 'date' column"):
        _stack(features).fit(X.drop(columns="date"), y)


def test_train_runs_the_stack_saves_its_bases_and_predicts_what_was_reported(
        sample_store, sample_frame, tmp_path):
    config = TrainConfig(models=("stack",), trials=1, folds=2, since="2015-01-01",
                         until="2017-01-01", sample=4000, search_sample=2000, features=SPEC,
                         n_jobs=1, baselines=False)
    result = train(sample_store, config, runs_dir=tmp_path)
    entry = result.metrics["models"][0]
    assert entry["name"] == "stack" and 0.5 < entry["metrics"]["roc_auc"] < 1
    model, manifest = load_model(result.run_dir / "models" / "stack")
    assert set(manifest["files"]) == {"pipeline.skops", "base-xgb.ubj", "base-lgbm.txt"}
    assert [name for name, _ in model[-1].estimators_] == list(STACK_BASES)
    preds = pd.read_parquet(result.run_dir / "predictions.parquet")
    hold = sample_frame[(sample_frame["date"] >= "2016-01-01")
                        & (sample_frame["date"] < "2017-01-01")]
    p = model.predict_proba(hold[["date", *manifest["features"]]])[:, 1]
    np.testing.assert_allclose(p, preds["p_stack"], rtol=1e-6)


def test_the_bases_are_made_with_the_stack_s_options():
    from crimeclass.features import FeatureSpec, feature_catalog

    with_arrest = feature_catalog(FeatureSpec(allow_arrest=True))
    stack = make_model("stack", with_arrest, allow_arrest=True, min_frequency=7)[-1]
    assert [name for name, _ in stack.bases] == list(STACK_BASES)
    for _, base in stack.bases:  # the frame holds arrest: every base's guard lets it pass
        assert base.get_params()["guard__allow_arrest"] is True
    lr = dict(stack.bases)["lr"]
    assert lr.get_params()["prep__onehot__onehotencoder__min_frequency"] == 7
