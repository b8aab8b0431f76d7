"""Metrics against scikit-learn as the oracle; bootstrap and paired test behaviour."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from crimeclass.models import (
    INTERVAL_METRICS,
    ModelOptionError,
    TrainingDataError,
    average_precision,
    bootstrap_metrics,
    choose_threshold,
    expected_calibration_error,
    paired_bootstrap,
    point_metrics,
    roc_auc,
)


def _data(n=4000, seed=0, ties=False):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.4
    p = np.clip(0.4 + 0.25 * (y - 0.4) + rng.normal(0, 0.2, n), 0, 1)
    if ties:
        p = np.round(p, 1)
    return y.astype(int), p


def _ece_oracle(y, p):
    """ECE from scikit-learn's reliability curve: its 10 uniform bins, weighted by rows."""
    observed, predicted = calibration_curve(y, p, n_bins=10, strategy="uniform")
    edges = np.linspace(0, 1, 11)
    counts = np.bincount(np.searchsorted(edges[1:-1], p, side="right"), minlength=10)
    return float(np.sum(counts[counts > 0] * np.abs(observed - predicted)) / len(y))


def test_ece_is_the_row_weighted_gap_of_the_reliability_curve():
    y, p = _data(n=20_000, seed=4)  # no probability on a bin edge
    assert expected_calibration_error(y, p) == pytest.approx(_ece_oracle(y, p), abs=1e-12)
    honest = np.random.default_rng(2).random(200_000)
    drawn = (np.random.default_rng(3).random(len(honest)) < honest).astype(int)
    assert expected_calibration_error(drawn, honest) < 0.01  # calibrated by construction
    assert expected_calibration_error(drawn, honest ** 2) > 0.1  # squashed: off by far


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_point_metrics_equal_scikit_learns(ties):
    y, p = _data(ties=ties)
    ours = point_metrics(y, p, threshold=0.45)
    pred = p >= 0.45
    oracle = {
        "roc_auc": skm.roc_auc_score(y, p),
        "average_precision": skm.average_precision_score(y, p),
        "log_loss": skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)),
        "brier": skm.brier_score_loss(y, p),
        "f1": skm.f1_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
    }
    if not ties:  # scikit-learn's bins put a probability on an edge in the bin below
        oracle["ece"] = _ece_oracle(y, p)
    assert set(ours) == set(INTERVAL_METRICS)
    for m, v in oracle.items():
        assert ours[m] == pytest.approx(v, abs=1e-10), m


def test_weighted_auc_equals_scikit_learn_with_sample_weights():
    y, p = _data(ties=True)
    w = np.random.default_rng(1).integers(0, 4, len(y)).astype(float)
    assert roc_auc(y, p, w) == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w))
    assert average_precision(y, p, w) == pytest.approx(
        skm.average_precision_score(y, p, sample_weight=w))


def test_bootstrap_interval_covers_the_value_and_shrinks_with_rows():
    y, p = _data(n=1000)
    small = bootstrap_metrics(y, p, n_boot=300)
    y, p = _data(n=16000)
    large = bootstrap_metrics(y, p, n_boot=300)
    for m in INTERVAL_METRICS:
        assert small[m].low <= small[m].value <= small[m].high, m
    width = lambda iv: iv.high - iv.low  # noqa: E731
    assert width(large["roc_auc"]) < width(small["roc_auc"]) / 2


def test_bootstrap_is_seeded():
    y, p = _data(n=500)
    assert bootstrap_metrics(y, p, n_boot=50, random_state=3) == bootstrap_metrics(
        y, p, n_boot=50, random_state=3)


def test_paired_test_tells_a_better_model_from_noise():
    y, p = _data(n=5000)
    rng = np.random.default_rng(5)
    worse = np.clip(p + rng.normal(0, 0.3, len(p)), 0, 1)
    strong = paired_bootstrap(y, p, worse, n_boot=400)
    assert strong.difference.value > 0 and strong.difference.low > 0 and strong.p_value < 0.01
    same = paired_bootstrap(y, p, np.clip(p + rng.normal(0, 1e-4, len(p)), 0, 1), n_boot=400)
    assert same.p_value > 0.05


def test_threshold_rules():
    y, p = _data(n=600)
    t = choose_threshold(y, p)
    grid = np.unique(p)
    best = max(grid, key=lambda s: skm.f1_score(y, p >= s))
    assert skm.f1_score(y, p >= t) == pytest.approx(skm.f1_score(y, p >= best))
    t80 = choose_threshold(y, p, rule="precision", target_precision=0.8)
    assert skm.precision_score(y, p >= t80) >= 0.8
    with pytest.raises(ModelOptionError, match="target_precision"):
        choose_threshold(y, p, rule="precision")


@pytest.mark.parametrize(
    "y,p,match",
    [
        pytest.param([0, 1], [0.5], "one length", id="length"),
        pytest.param([], [], "no rows", id="empty"),
        pytest.param([0, 2], [0.1, 0.2], "0 or 1", id="labels"),
        pytest.param([0, 1], [0.1, np.nan], "without NaN", id="nan"),
    ],
)
def test_bad_input_is_refused(y, p, match):
    with pytest.raises(TrainingDataError, match=match):
        point_metrics(np.array(y), np.array(p))


def test_one_class_gives_nan_auc_not_a_number_made_up():
    assert np.isnan(point_metrics(np.zeros(10, int), np.linspace(0, 1, 10))["roc_auc"])
