"""Calibration: reliability curves, and a calibrator fit on validation data when it helps.

A model's probabilities are calibrated when, of the incidents given 0.3, about
30 % are index offenses. :func:`reliability` bins the predictions and compares
the mean prediction with the observed rate in each bin. :func:`fit_calibration`
fits sigmoid (Platt) and isotonic maps on validation data and keeps one only if
it lowers the Brier score on validation rows it was not fit on (2-fold cross-
fitting inside the validation data), so that the held-out period is never used
to decide. :func:`run_calibration` fits it from a run's own validation data, as
``crimeclass evaluate`` does, for whatever scores that run's model (the service).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Calibration", "fit_calibration", "reliability", "run_calibration"]


def reliability(y: np.ndarray, p: np.ndarray, *, bins: int = 10,
                strategy: Literal["uniform", "quantile"] = "quantile") -> dict[str, list[float]]:
    """Mean predicted probability, observed rate and count per bin of predictions."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:  # every prediction the same: one bin
            edges = np.array([edges[0], edges[0] + 1e-12])
    else:
        edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    out: dict[str, list[float]] = {"predicted": [], "observed": [], "count": []}
    for b in range(len(edges) - 1):
        m = idx == b
        if m.any():
            out["predicted"].append(float(p[m].mean()))
            out["observed"].append(float(y[m].mean()))
            out["count"].append(float(m.sum()))
    return out


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


def _fit(method: str, p: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LogisticRegression

    if method == "isotonic":
        return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1)).reshape(-1, 1)
    return LogisticRegression(C=1e6).fit(logit, y)


def _apply(method: str, model: Any, p: np.ndarray) -> np.ndarray:
    if method == "isotonic":
        return np.asarray(model.predict(p), dtype=float)
    logit = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1)).reshape(-1, 1)
    return np.asarray(model.predict_proba(logit)[:, 1], dtype=float)


@dataclass
class Calibration:
    """A chosen calibration map (or none), with the evidence for the choice.

    Attributes
    ----------
    method : {"none", "sigmoid", "isotonic"}
        What was kept.
    validation_brier : dict
        Cross-fitted Brier score on the validation data of each candidate.
    """

    method: str
    validation_brier: dict[str, float]
    model_: Any = None

    def transform(self, p: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (the input itself when ``method == 'none'``)."""
        p = np.asarray(p, dtype=float)
        return p if self.method == "none" else _apply(self.method, self.model_, p)


def fit_calibration(y_val: np.ndarray, p_val: np.ndarray, *, random_state: int = 0
                    ) -> Calibration:
    """Fit sigmoid and isotonic calibration on validation data; keep the best if it helps."""
    y = np.asarray(y_val, dtype=int)
    p = np.asarray(p_val, dtype=float)
    if len(np.unique(y)) < 2 or len(y) < 20:
        return Calibration("none", {"none": _brier(y, p)})
    rng = np.random.default_rng(random_state)
    fold = rng.permutation(len(y)) % 2
    scores = {"none": _brier(y, p)}
    for method in ("sigmoid", "isotonic"):
        cross = np.empty(len(y))
        for k in (0, 1):
            train, test = fold != k, fold == k
            if len(np.unique(y[train])) < 2:
                cross[test] = p[test]
                continue
            cross[test] = _apply(method, _fit(method, p[train], y[train]), p[test])
        scores[method] = _brier(y, cross)
    best = min(scores, key=lambda m: scores[m])
    model = None if best == "none" else _fit(best, p, y)
    return Calibration(best, scores, model)


def run_calibration(run: Any, name: str, *, random_state: int = 0) -> Calibration | None:
    """The calibration of model ``name`` of a run, fit on the run's validation data
    (``validation.parquet``: out-of-fold probabilities inside the training period) with
    ``crimeclass evaluate``'s default seed, so both give the same map; None for a run
    without validation data."""
    validation = run.validation
    if validation is None:
        return None
    v = validation[validation["model"] == name]
    if v.empty:
        return None
    return fit_calibration(v[run.label].to_numpy().astype(int), v["p"].to_numpy(dtype=float),
                           random_state=random_state)
