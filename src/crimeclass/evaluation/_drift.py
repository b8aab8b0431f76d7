"""Drift: how each feature's distribution on new data differs from training.

Numeric features are binned at the training deciles; categorical ones by value
(the training's 30 most common, the rest together). For each feature the
population stability index (PSI) says how far the two distributions are apart:
below 0.1 stable, 0.1 to 0.25 a moderate shift, above 0.25 a major one. Numeric
features also get the two-sample Kolmogorov-Smirnov statistic; categorical ones
the share of new rows whose value was never seen in training.

A column that the training period never published (every value missing: the
records of 2001 to 2011 hold no district or community area) has no
distribution to compare with: its level is ``unpublished``, its PSI None, and
it is worded :data:`UNPUBLISHED`, never a "major" shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["UNPUBLISHED", "drift_summary", "psi"]

_EPS = 1e-6

#: How a column without any value in the training period is worded.
UNPUBLISHED = "not published in the training years"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    e = np.clip(np.asarray(expected, dtype=float), _EPS, None)
    a = np.clip(np.asarray(actual, dtype=float), _EPS, None)
    e, a = e / e.sum(), a / a.sum()
    return float(((a - e) * np.log(a / e)).sum())


def _level(value: float) -> str:
    return "stable" if value < 0.1 else "moderate" if value < 0.25 else "major"


def drift_summary(train: pd.DataFrame, new: pd.DataFrame, *, top: int = 30
                  ) -> list[dict[str, Any]]:
    """One row per column present in both frames: kind, PSI, level, and KS or unseen share.

    Sorted by PSI, largest first; the columns the training period never published last.
    """
    out = []
    for col in train.columns:
        if col not in new.columns:
            continue
        a, b = train[col], new[col]
        row: dict[str, Any] = {"feature": col,
                               "missing_train": float(a.isna().mean()),
                               "missing_new": float(b.isna().mean())}
        if a.notna().sum() == 0:
            if b.notna().any():
                out.append({**row, "kind": "unpublished", "psi": None, "level": "unpublished",
                            "note": UNPUBLISHED})
            continue
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            from scipy.stats import ks_2samp

            x, z = a.dropna().to_numpy(float), b.dropna().to_numpy(float)
            if len(x) == 0 or len(z) == 0:
                continue
            edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
            edges[0], edges[-1] = -np.inf, np.inf
            e = np.histogram(x, edges)[0]
            n = np.histogram(z, edges)[0]
            row.update(kind="numeric", psi=psi(e, n),
                       ks=float(ks_2samp(x, z, method="asymp").statistic))
        else:
            sa, sb = a.astype("string").fillna("<missing>"), b.astype("string").fillna("<missing>")
            keep = sa.value_counts().index[:top]
            ca = sa.where(sa.isin(keep), "<other>").value_counts()
            cb = sb.where(sb.isin(keep), "<other>").value_counts()
            cats = ca.index.union(cb.index)
            row.update(kind="categorical",
                       psi=psi(ca.reindex(cats, fill_value=0).to_numpy(),
                               cb.reindex(cats, fill_value=0).to_numpy()),
                       unseen=float((~sb.isin(set(sa.unique()))).mean()))
        row["level"] = _level(row["psi"])
        out.append(row)
    return sorted(out, key=lambda r: (r["psi"] is None, -(r["psi"] or 0.0)))
