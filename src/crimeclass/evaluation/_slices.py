"""Metrics per slice (district, year, community area), with the slices much worse flagged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from crimeclass.models import bootstrap_metrics, point_metrics

__all__ = ["slice_metrics"]


def slice_metrics(
    y: np.ndarray,
    p: np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    threshold: float = 0.5,
    metric: str = "roc_auc",
    margin: float = 0.05,
    min_rows: int = 200,
    n_boot: int = 200,
    random_state: int = 0,
) -> list[dict[str, Any]]:
    """Every metric for each value of ``groups``, and whether that slice is much worse.

    A slice is flagged ``worse`` when the upper end of its bootstrap interval of
    ``metric`` lies more than ``margin`` below the metric on all rows (for the
    lower-is-better metrics log loss and Brier: the lower end more than ``margin``
    above). Slices with fewer than ``min_rows`` rows or a single class get no
    metrics, and say so (``note``); a missing group value is its own slice.
    """
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    g = np.asarray(groups, dtype=object)
    overall = point_metrics(y, p, threshold)[metric]
    lower_is_better = metric in ("log_loss", "brier")
    keys = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in g]
    g = np.asarray(keys, dtype=object)
    values = sorted({k for k in keys if k is not None}, key=str) + (
        [None] if any(k is None for k in keys) else [])
    out = []
    for value in values:
        mask = np.array([k is None for k in keys]) if value is None else g == value
        n = int(mask.sum())
        row: dict[str, Any] = {"slice": value, "rows": n, "positives": int(y[mask].sum())}
        if n < min_rows or len(np.unique(y[mask])) < 2:
            row["note"] = f"too few rows ({n})" if n < min_rows else "one class only"
            row["worse"] = False
            out.append(row)
            continue
        intervals = bootstrap_metrics(y[mask], p[mask], threshold, n_boot=n_boot,
                                      random_state=random_state)
        row.update({m: iv.to_dict() for m, iv in intervals.items()})
        iv = intervals[metric]
        row["worse"] = bool(iv.low - margin > overall if lower_is_better
                            else iv.high + margin < overall)
        out.append(row)
    return out
