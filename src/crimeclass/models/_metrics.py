"""The metrics of crimeclass: one registry, one name per metric, one threshold rule.

:data:`METRICS` names every metric once, with its title and direction.
:func:`binary_metrics` gives the held-out metrics of a training run
(:data:`HELD_OUT_METRICS`, in ``metrics.json``); :func:`bootstrap_metrics` gives
those of an evaluation (:data:`INTERVAL_METRICS`) with bootstrap intervals, and
:func:`paired_bootstrap` compares two models on the same rows.

Every weighted metric makes the bootstrap cheap: a bootstrap replicate is the
same data with multinomial weights (how often each row was drawn), so the
scores are sorted once and each replicate costs O(n). The weighted ROC AUC and
average precision handle tied scores exactly as scikit-learn does
(``roc_auc_score``, ``average_precision_score``); the tests check that the
unweighted values equal scikit-learn's.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.6, 0.4, 0.9])
>>> m = binary_metrics(y, p, threshold=0.5)
>>> m["roc_auc"], m["confusion"]
(0.75, {'tn': 1, 'fp': 1, 'fn': 1, 'tp': 1})
>>> round(roc_auc(y, p), 4)
0.75
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

from crimeclass.models._errors import ModelOptionError, TrainingDataError

__all__ = [
    "ECE_BINS",
    "HELD_OUT_METRICS",
    "INTERVAL_METRICS",
    "METRICS",
    "Interval",
    "Metric",
    "PairedTest",
    "average_precision",
    "binary_metrics",
    "bootstrap_metrics",
    "choose_threshold",
    "expected_calibration_error",
    "paired_bootstrap",
    "point_metrics",
    "roc_auc",
]


@dataclass(frozen=True)
class Metric:
    """A metric's one name, its title for people, and whether higher is better."""

    name: str
    title: str
    higher_is_better: bool


#: Every metric crimeclass reports, by its one name.
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("roc_auc", "ROC AUC", True),
    Metric("average_precision", "average precision", True),
    Metric("log_loss", "log loss", False),
    Metric("brier", "Brier", False),
    Metric("ece", "ECE", False),
    Metric("accuracy", "accuracy", True),
    Metric("balanced_accuracy", "balanced accuracy", True),
    Metric("precision", "precision", True),
    Metric("recall", "recall", True),
    Metric("f1", "F1", True),
)}

#: The held-out metrics of a training run (``metrics.json``), in its order.
HELD_OUT_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "accuracy",
                    "precision", "recall", "f1")
#: The metrics of an evaluation, with bootstrap intervals, in report order.
INTERVAL_METRICS = ("roc_auc", "average_precision", "log_loss", "brier", "ece", "f1",
                    "precision", "recall", "balanced_accuracy")
#: Equal-width probability bins of the expected calibration error.
ECE_BINS = 10
#: The metrics a paired bootstrap compares.
PairedMetric = Literal["roc_auc", "average_precision", "brier"]

#: Names that older outputs used for a metric of :data:`METRICS`.
OLD_NAMES = {"pr_auc": "average_precision"}

_EPS = 1e-15

def _best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability cut-off that maximizes F1 on (validation) labels ``y``.

    >>> _best_f1_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.35, 0.8]))
    0.35
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if len(np.unique(y)) < 2:
        return 0.5
    precision, recall, thresholds = precision_recall_curve(y, p)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0)
    best = int(np.nanargmax(f1[:-1]))  # the last point has no threshold
    return float(thresholds[best])


def binary_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Ranking, probability and decision metrics of probabilities ``p`` for labels ``y``.

    ROC AUC and average precision are None (not a made-up number) when ``y``
    holds one class only.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if len(y) == 0:
        raise TrainingDataError("no rows to evaluate", rows=0)
    if np.isnan(p).any():
        raise TrainingDataError(f"{int(np.isnan(p).sum())} predicted probabilities are NaN",
                                rows=len(y))
    both = len(np.unique(y)) == 2
    pred = (p >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    return {
        "rows": int(len(y)),
        "index_share": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "average_precision": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "threshold": float(threshold),
        "accuracy": float((pred == y).mean()),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "predicted_positive_share": float(pred.mean()),
        "confusion": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    }


def _bins(p: np.ndarray) -> np.ndarray:
    return np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)


def _ece(bins: np.ndarray, y: np.ndarray, p: np.ndarray, w: np.ndarray) -> float:
    gap = np.bincount(bins, weights=w * (y - p), minlength=ECE_BINS)
    return float(np.abs(gap).sum() / w.sum())


def expected_calibration_error(y: np.ndarray, p: np.ndarray) -> float:
    """The mean gap between the share of positives and the mean probability, over
    :data:`ECE_BINS` equal-width bins of ``p``, each weighted by its rows.

    >>> expected_calibration_error(np.array([0, 0, 0, 1]), np.array([0.25, 0.25, 0.75, 0.75]))
    0.25
    """
    y, p = _check(y, p)
    return _ece(_bins(p), y, p, np.ones(len(y)))


class _Sorted:
    """Scores sorted once (descending), with the boundaries of groups of tied scores."""

    def __init__(self, y: np.ndarray, p: np.ndarray) -> None:
        order = np.argsort(-p, kind="mergesort")
        self.order = order
        self.y = y[order].astype(bool)
        sp = p[order]
        self.starts = np.flatnonzero(np.r_[True, sp[1:] != sp[:-1]])
        self.bins = _bins(p)

    def groups(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Weights of positives and of negatives per group of tied scores (descending)."""
        ws = w[self.order]
        pos = np.add.reduceat(np.where(self.y, ws, 0.0), self.starts)
        neg = np.add.reduceat(np.where(self.y, 0.0, ws), self.starts)
        return pos, neg


def _auc_from_groups(pos: np.ndarray, neg: np.ndarray) -> float:
    P, N = pos.sum(), neg.sum()
    if P <= 0 or N <= 0:
        return float("nan")
    neg_above = np.cumsum(neg) - neg  # negatives with a strictly higher score
    # a positive beats the negatives below it; ties count half (as the trapezoid does)
    wins = (pos * (N - neg_above - neg)).sum() + 0.5 * (pos * neg).sum()
    return float(wins / (P * N))


def _ap_from_groups(pos: np.ndarray, neg: np.ndarray) -> float:
    P = pos.sum()
    if P <= 0:
        return float("nan")
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    precision = tp / np.maximum(tp + fp, _EPS)
    recall_step = pos / P
    return float((recall_step * precision).sum())


def roc_auc(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Area under the ROC curve (weighted), ties as in scikit-learn."""
    s = _Sorted(np.asarray(y), np.asarray(p, dtype=float))
    return _auc_from_groups(*s.groups(np.ones(len(y)) if w is None else w))


def average_precision(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None) -> float:
    """Area under the precision-recall curve as average precision (scikit-learn's definition)."""
    s = _Sorted(np.asarray(y), np.asarray(p, dtype=float))
    return _ap_from_groups(*s.groups(np.ones(len(y)) if w is None else w))


def _threshold_metrics(y: np.ndarray, p: np.ndarray, w: np.ndarray, t: float) -> dict[str, float]:
    pred = p >= t
    yb = y.astype(bool)
    tp = w[pred & yb].sum()
    fp = w[pred & ~yb].sum()
    fn = w[~pred & yb].sum()
    tn = w[~pred & ~yb].sum()
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else float("nan")
    specificity = tn / (tn + fp) if tn + fp > 0 else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"f1": float(f1), "precision": float(precision), "recall": float(recall),
            "balanced_accuracy": float((recall + specificity) / 2)}


def _all(s: _Sorted, y: np.ndarray, p: np.ndarray, w: np.ndarray, t: float
         ) -> dict[str, float]:
    pos, neg = s.groups(w)
    pc = np.clip(p, _EPS, 1 - _EPS)
    total = w.sum()
    out = {
        "roc_auc": _auc_from_groups(pos, neg),
        "average_precision": _ap_from_groups(pos, neg),
        "log_loss": float(-(w * (y * np.log(pc) + (1 - y) * np.log(1 - pc))).sum() / total),
        "brier": float((w * (p - y) ** 2).sum() / total),
        "ece": _ece(s.bins, y, p, w),
    }
    out.update(_threshold_metrics(y, p, w, t))
    return out


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Every metric of :data:`INTERVAL_METRICS` on the data as it is."""
    y, p = _check(y, p)
    return _all(_Sorted(y, p), y, p, np.ones(len(y)), threshold)


@dataclass(frozen=True)
class Interval:
    """A metric's value on the data and its bootstrap percentile interval."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return {"value": self.value, "low": self.low, "high": self.high}


def _check(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise TrainingDataError(f"labels and scores must be 1-d arrays of one length, got "
                                f"{y.shape} and {p.shape}")
    if len(y) == 0:
        raise TrainingDataError("no rows to evaluate", rows=0)
    if not np.isin(y, (0, 1)).all():
        raise TrainingDataError("labels must be 0 or 1", rows=len(y))
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise TrainingDataError("scores must be probabilities in [0, 1] without NaN",
                                rows=len(y))
    return y, p


def _weights(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.bincount(rng.integers(0, n, n), minlength=n).astype(float)


def bootstrap_metrics(
    y: np.ndarray,
    p: np.ndarray,
    threshold: float = 0.5,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict[str, Interval]:
    """Each metric of :data:`INTERVAL_METRICS` with a bootstrap percentile interval.

    Parameters
    ----------
    y : array of {0, 1}
        True labels.
    p : array of float
        Predicted probabilities of class 1.
    threshold : float
        Decision threshold of the threshold metrics (F1, precision, recall, ...).
    n_boot : int
        Bootstrap replicates (rows drawn with replacement, as many as there are).
    confidence : float
        Coverage of the interval.
    random_state : int
        Seed: the same seed gives the same intervals.
    """
    y, p = _check(y, p)
    s = _Sorted(y, p)
    point = _all(s, y, p, np.ones(len(y)), threshold)
    rng = np.random.default_rng(random_state)
    draws = np.array([[r[m] for m in INTERVAL_METRICS] for r in (
        _all(s, y, p, _weights(rng, len(y)), threshold) for _ in range(n_boot))])
    alpha = (1 - confidence) / 2
    lo = np.nanquantile(draws, alpha, axis=0)
    hi = np.nanquantile(draws, 1 - alpha, axis=0)
    return {m: Interval(point[m], float(lo[i]), float(hi[i]))
            for i, m in enumerate(INTERVAL_METRICS)}


@dataclass(frozen=True)
class PairedTest:
    """Paired bootstrap comparison of two models scored on the same rows."""

    metric: str
    a: float
    b: float
    difference: Interval
    p_value: float
    n_boot: int = field(default=0)

    def to_dict(self) -> dict[str, object]:
        return {"metric": self.metric, "a": self.a, "b": self.b,
                "difference": self.difference.to_dict(), "p_value": self.p_value,
                "n_boot": self.n_boot}


_PAIRED: dict[str, Callable[[_Sorted, np.ndarray, np.ndarray, np.ndarray], float]] = {
    "roc_auc": lambda s, y, p, w: _auc_from_groups(*s.groups(w)),
    "average_precision": lambda s, y, p, w: _ap_from_groups(*s.groups(w)),
    "brier": lambda s, y, p, w: float((w * (p - y) ** 2).sum() / w.sum()),
}


def paired_bootstrap(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    *,
    metric: PairedMetric = "roc_auc",
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> PairedTest:
    """Is model A's metric different from model B's on the same rows?

    Both models are scored on the same bootstrap replicates; the interval is that
    of the difference A - B, and the two-sided p-value is twice the share of
    replicates on the far side of zero (at least 1 / n_boot).
    """
    if metric not in _PAIRED:
        raise ModelOptionError(f"unknown metric {metric!r}; choose from {sorted(_PAIRED)}",
                               option="metric", value=metric)
    y, p_a = _check(y, p_a)
    _, p_b = _check(y, p_b)
    sa, sb = _Sorted(y, p_a), _Sorted(y, p_b)
    f = _PAIRED[metric]
    ones = np.ones(len(y))
    a, b = f(sa, y, p_a, ones), f(sb, y, p_b, ones)
    rng = np.random.default_rng(random_state)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        w = _weights(rng, len(y))
        diffs[i] = f(sa, y, p_a, w) - f(sb, y, p_b, w)
    alpha = (1 - confidence) / 2
    share = min((diffs <= 0).mean(), (diffs >= 0).mean())
    p_value = float(min(1.0, max(2 * share, 1 / n_boot)))
    return PairedTest(metric, a, b, Interval(a - b, float(np.quantile(diffs, alpha)),
                                             float(np.quantile(diffs, 1 - alpha))),
                      p_value, n_boot)


def choose_threshold(y: np.ndarray, p: np.ndarray, *, rule: str = "f1",
                     target_precision: float | None = None) -> float:
    """A decision threshold chosen on validation data.

    ``rule="f1"``: the threshold of the best F1. ``rule="precision"``: the lowest
    threshold whose precision reaches ``target_precision`` (the most recall at that
    precision); if none does, the threshold of the highest precision.
    """
    y, p = _check(y, p)
    if rule == "f1":  # the rule training uses for each model's threshold: one definition
        return _best_f1_threshold(y, p)
    s = _Sorted(y, p)
    pos, neg = s.groups(np.ones(len(y)))
    thresholds = p[s.order][s.starts]  # distinct scores, descending
    tp, fp = np.cumsum(pos), np.cumsum(neg)
    precision = tp / np.maximum(tp + fp, _EPS)
    if rule == "precision":
        if target_precision is None or not 0 < target_precision <= 1:
            raise ModelOptionError("rule='precision' needs target_precision in (0, 1]",
                                   option="target_precision", value=target_precision)
        ok = np.flatnonzero(precision >= target_precision)
        return float(thresholds[ok[-1]] if len(ok) else thresholds[int(np.argmax(precision))])
    raise ModelOptionError(f"unknown rule {rule!r}; choose 'f1' or 'precision'",
                           option="rule", value=rule)
