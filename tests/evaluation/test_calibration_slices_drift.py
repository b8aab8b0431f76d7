from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimeclass.evaluation import drift_summary, fit_calibration, psi, reliability, slice_metrics


def _miscalibrated(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    true_p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < true_p).astype(int)
    return y, true_p ** 2  # too low: a miscalibrated but well-ranked model


def test_reliability_bins_count_every_row():
    y, p = _miscalibrated()
    r = reliability(y, p, bins=10)
    assert sum(r["count"]) == len(y) and len(r["predicted"]) == 10
    assert all(o > q for q, o in zip(r["predicted"], r["observed"], strict=True))


def test_calibration_is_kept_only_when_it_lowers_the_brier_score():
    y, p = _miscalibrated()
    cal = fit_calibration(y[:3000], p[:3000])
    assert cal.method in ("sigmoid", "isotonic")
    before = np.mean((p[3000:] - y[3000:]) ** 2)
    after = np.mean((cal.transform(p[3000:]) - y[3000:]) ** 2)
    assert after < before
    rng = np.random.default_rng(1)
    q = rng.uniform(0, 1, 4000)
    calibrated = fit_calibration((rng.random(4000) < q).astype(int), q)
    assert calibrated.validation_brier["none"] <= min(calibrated.validation_brier.values()) + 2e-3


def test_slices_flag_the_much_worse_one():
    rng = np.random.default_rng(0)
    n = 6000
    y = (rng.random(n) < 0.4).astype(int)
    good = np.clip(0.4 + 0.4 * (y - 0.4) + rng.normal(0, 0.15, n), 0, 1)
    noise = rng.uniform(0, 1, n)
    group = np.array(["A", "B", "C"])[np.arange(n) % 3]
    p = np.where(group == "C", noise, good)
    rows = {r["slice"]: r for r in slice_metrics(y, p, group, n_boot=100)}
    assert rows["C"]["worse"] and not rows["A"]["worse"] and not rows["B"]["worse"]
    assert rows["A"]["rows"] == 2000 and "roc_auc" in rows["A"]


def test_small_and_missing_slices_say_so():
    y = np.array([0, 1] * 300)
    p = np.linspace(0, 1, 600)
    groups = np.array([1.0] * 590 + [np.nan] * 10, dtype=object)
    rows = slice_metrics(y, p, groups, n_boot=20)
    assert rows[-1]["slice"] is None and rows[-1]["note"] == "too few rows (10)"


def test_drift_flags_a_shifted_feature_and_unseen_categories():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"hour": rng.integers(0, 24, 5000),
                          "place": rng.choice(["STREET", "RESIDENCE"], 5000)})
    new = pd.DataFrame({"hour": rng.integers(0, 24, 5000) // 2,
                        "place": rng.choice(["STREET", "RESIDENCE", "AIRPORT"], 5000)})
    rows = {r["feature"]: r for r in drift_summary(train, new)}
    assert rows["hour"]["level"] == "major" and rows["hour"]["ks"] > 0.2
    assert rows["place"]["unseen"] == pytest.approx(1 / 3, abs=0.03)
    same = {r["feature"]: r for r in drift_summary(train, train)}
    assert same["hour"]["psi"] == pytest.approx(0, abs=1e-9) and same["hour"]["level"] == "stable"


def test_psi_of_identical_shares_is_zero():
    assert psi([1, 2, 3], [2, 4, 6]) == pytest.approx(0)
