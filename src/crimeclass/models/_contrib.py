"""The features that pushed a score most: each model's own terms of its log-odds.

One function, shared by whoever explains single scores (the scoring service); the
evaluation's plots compute tree SHAP values over many rows.

A model's log-odds split into one term per input, exactly:

* XGBoost and LightGBM: tree SHAP (``pred_contribs``, ``pred_contrib``) plus a constant;
* logistic regression: coefficient times encoded input (a standardized number: its
  distance from the training mean; a category: its own coefficient) plus the intercept;
* the stacked ensemble (a logistic regression on its bases' log-odds): each base's terms
  times the base's weight, plus a constant.

The inputs a feature became (one-hot columns, a missing-value indicator) add up to the
feature's term, so every model is explained by the names of its feature frame. Other
models (the forest, the SVM, the network, the baselines) are not explained.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.models._run import LoadedModel
from crimeclass.models._treeshap import TreeShap

__all__ = ["Explainer", "model_explainer", "score_with_reasons", "top_contributions"]


def _feature_positions(columns: list[str], features: list[str]) -> np.ndarray | None:
    """The feature each encoded input comes from (``onehot__district_4.0`` -> ``district``,
    ``missing__missingindicator_x`` -> ``x``), as positions in ``features``; None where
    one is not found."""
    exact = {f: i for i, f in enumerate(features)}
    longest_first = sorted(exact, key=len, reverse=True)
    out = []
    for column in columns:
        name = column.split("__", 1)[-1].removeprefix("missingindicator_")
        i = exact.get(name)
        if i is None:
            i = next((exact[f] for f in longest_first if name.startswith(f + "_")), None)
        if i is None:
            return None
        out.append(i)
    return np.asarray(out, dtype=np.int64)


@dataclass
class _Part:
    """A model whose terms are known, with the transform to its inputs and its weight."""

    prep: Any  # the pipeline's steps before the model
    est: Any
    weight: float
    to_features: np.ndarray  # inputs x features: 1 where the input comes from the feature
    tables: TreeShap | None = None

    def encode(self, X: pd.DataFrame) -> Any:
        return self.prep.transform(X)

    def proba(self, encoded: Any) -> np.ndarray:
        return np.asarray(self.est.predict_proba(encoded)[:, 1], dtype=np.float64)

    def terms(self, encoded: Any) -> np.ndarray:
        """The model's log-odds terms, summed per feature (rows x features)."""
        from sklearn.linear_model import LogisticRegression

        from crimeclass.models._lgbm import EarlyStoppingLGBMClassifier

        if isinstance(self.est, LogisticRegression):
            x = encoded.toarray() if hasattr(encoded, "toarray") else np.asarray(encoded)
            inputs = x.astype(np.float64) * self.est.coef_[0]
        elif isinstance(self.est, EarlyStoppingLGBMClassifier):
            inputs = self.est.predict_contributions(encoded)
        else:  # XGBoost's: the leaf tables where they were made
            inputs = self.est.predict_contributions(encoded, self.tables,
                                                    threads=os.cpu_count() or 1)
        return np.asarray(inputs, dtype=np.float64) @ self.to_features


@dataclass
class Explainer:
    """How a loaded model's scores split into one log-odds term per feature.

    Build it once per model (:func:`model_explainer`: XGBoost's leaf tables take seconds);
    :func:`score_with_reasons` uses it for each request.
    """

    features: list[str]
    parts: list[_Part]
    stack: Any = None  # the ensemble whose meta-learner weighs the parts, if any
    guard: Any = None  # the stack's pipeline steps before it

    def score(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities (the pipeline's own, computed the same way) and the terms."""
        if self.guard is not None:
            X = self.guard.transform(X)
        probas, terms = [], np.zeros((len(X), len(self.features)))
        for part in self.parts:
            encoded = part.encode(X)
            probas.append(part.proba(encoded))
            terms += part.weight * part.terms(encoded)
        if self.stack is None:
            return probas[0], terms
        p = self.stack.combine(np.column_stack(probas))
        return np.asarray(p, dtype=np.float64), terms


def _part(pipeline: Any, features: list[str], weight: float, tabled: bool) -> _Part | None:
    """The last model of a pipeline of crimeclass's (guard, encoders, model), if its
    terms are known."""
    from sklearn.linear_model import LogisticRegression

    from crimeclass.models._lgbm import EarlyStoppingLGBMClassifier
    from crimeclass.models._xgb import EarlyStoppingXGBClassifier

    est = pipeline.steps[-1][1]
    if len(pipeline.steps) < 2 or not isinstance(
            est, LogisticRegression | EarlyStoppingLGBMClassifier | EarlyStoppingXGBClassifier):
        return None
    try:
        names = [str(c) for c in pipeline.steps[-2][1].get_feature_names_out()]
    except (AttributeError, ValueError):
        return None
    positions = _feature_positions(names, features)
    if positions is None:
        return None
    to_features = np.zeros((len(positions), len(features)))
    to_features[np.arange(len(positions)), positions] = 1.0
    tables = est.tree_shap() if tabled and isinstance(est, EarlyStoppingXGBClassifier) else None
    return _Part(pipeline[:-1], est, weight, to_features, tables)


def model_explainer(pipeline: Any, features: list[str], *, tabled: bool = True
                    ) -> Explainer | None:
    """The :class:`Explainer` of a fitted pipeline of crimeclass's (guard, encoders, model;
    or guard and stacked ensemble) over a frame of ``features``; None for a model whose
    terms are not known.

    ``tabled``: XGBoost's leaf contributions tabled (:class:`TreeShap`, seconds to build,
    for a caller that explains many requests); otherwise XGBoost's ``pred_contribs``."""
    from crimeclass.models._stack import TimeStackClassifier

    features = list(features)
    est = pipeline.steps[-1][1]
    if not isinstance(est, TimeStackClassifier):
        part = _part(pipeline, features, 1.0, tabled)
        return None if part is None else Explainer(features, [part])
    parts = [_part(base, features, float(w), tabled) for (_, base), w in
             zip(est.estimators_, est.meta_.coef_[0], strict=True)]
    if any(p is None for p in parts):
        return None
    return Explainer(features, [p for p in parts if p is not None], stack=est,
                     guard=pipeline[:-1])


def _top(terms: np.ndarray, names: list[str], frame: pd.DataFrame, k: int
         ) -> list[list[dict[str, Any]]]:
    top = np.argsort(-np.abs(terms), axis=1, kind="stable")[:, :k]
    values = {names[j]: frame[names[j]].to_numpy(dtype=object)
              for j in np.unique(top) if names[j] in frame}
    return [[{"feature": names[j], "contribution": float(terms[i, j]),
              "value": _plain(values[names[j]][i]) if names[j] in values else None}
             for j in cols] for i, cols in enumerate(top)]


def top_contributions(model: LoadedModel, frame: pd.DataFrame, k: int = 3
                      ) -> list[list[dict[str, Any]]] | None:
    """For each row, the ``k`` features whose terms moved its score most.

    Parameters
    ----------
    model : LoadedModel
    frame : DataFrame
        The rows' features (:attr:`Features.frame <crimeclass.models.Features>`).
    k : int

    Returns
    -------
    list or None
        Per row, ``{"feature", "contribution", "value"}`` by decreasing absolute
        contribution (log-odds, positive: towards the positive class); None where the
        model's terms are not known (see the module's docstring).
    """
    return score_with_reasons(model, frame, k)[1]


def score_with_reasons(model: LoadedModel, frame: pd.DataFrame, k: int = 3,
                       explainer: Explainer | None = None
                       ) -> tuple[np.ndarray, list[list[dict[str, Any]]] | None]:
    """:meth:`LoadedModel.predict_proba` and :func:`top_contributions` of the rows, each
    model's encoding computed once (the pipeline's own steps, so the same numbers).

    ``explainer``: the model's :func:`model_explainer`, built once (XGBoost's terms then
    come from its leaf tables: the same values within float32 rounding, about 15 times
    faster); without it, one without tables is built for this call."""
    explain = explainer if explainer is not None else model_explainer(
        model.pipeline, model.feature_names, tabled=False)
    if explain is None or not len(frame):
        return model.predict_proba(frame), None
    import xgboost

    # one thread (a setting of the calling thread alone): handing a few rows' matrix to
    # threads costs more than copying it (on 2 busy cores, 24 ms against 0.1 ms for 32
    # rows); the numbers are the same. The tables' lookups take whole blocks of 256
    # rows per thread, so a request of a few rows stays on one
    with xgboost.config_context(nthread=1):
        p, terms = explain.score(frame[["date", *model.feature_names]])
    return p, _top(terms, explain.features, frame, k)


def _plain(value: Any) -> Any:
    """A feature value as JSON takes it (NaN and missing: None)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, int | float | bool | str) else str(value)
