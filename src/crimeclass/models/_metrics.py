"""Metrics of predicted probabilities, and the decision threshold chosen on validation data.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1]); p = np.array([0.1, 0.6, 0.4, 0.9])
>>> m = binary_metrics(y, p, threshold=0.5)
>>> m["roc_auc"], m["confusion"]
(0.75, {'tn': 1, 'fp': 1, 'fn': 1, 'tp': 1})
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
)

__all__ = ["METRICS", "binary_metrics", "choose_threshold"]

#: Metrics in ``metrics.json``, and whether higher is better.
METRICS = {"roc_auc": True, "average_precision": True, "log_loss": False, "brier": False,
           "accuracy": True, "precision": True, "recall": True, "f1": True}


def choose_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """The probability cut-off that maximizes F1 on (validation) labels ``y``.

    >>> choose_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.3, 0.35, 0.8]))
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
        raise ValueError("no rows to evaluate")
    if np.isnan(p).any():
        raise ValueError(f"{int(np.isnan(p).sum())} predicted probabilities are NaN")
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
