"""The features that pushed a score most: XGBoost's exact tree SHAP contributions.

One function, shared by whoever explains single scores (the scoring service); the
evaluation's plots compute the same contributions over many rows.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.models._run import LoadedModel
from crimeclass.models._treeshap import TreeShap

__all__ = ["contribution_tables", "score_with_reasons", "top_contributions"]


def _feature_of(column: str) -> str:
    """The feature behind an encoded input (``numbers__hour`` -> ``hour``)."""
    return column.split("__")[-1]


def _top(contrib: np.ndarray, names: list[str], frame: pd.DataFrame, k: int
         ) -> list[list[dict[str, Any]]]:
    top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :k]
    values = {names[j]: frame[names[j]].to_numpy(dtype=object)
              for j in np.unique(top) if names[j] in frame}
    return [[{"feature": names[j], "contribution": float(contrib[i, j]),
              "value": _plain(values[names[j]][i]) if names[j] in values else None}
             for j in cols] for i, cols in enumerate(top)]


def _xgb(model: LoadedModel) -> Any:
    from crimeclass.models._xgb import EarlyStoppingXGBClassifier

    est = model.pipeline.steps[-1][1]
    return est if isinstance(est, EarlyStoppingXGBClassifier) else None


def top_contributions(model: LoadedModel, frame: pd.DataFrame, k: int = 3
                      ) -> list[list[dict[str, Any]]] | None:
    """For each row, the ``k`` features whose contributions moved its score most.

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
        model is not an XGBoost tree ensemble.
    """
    return score_with_reasons(model, frame, k)[1]


def contribution_tables(model: LoadedModel) -> TreeShap | None:
    """The model's leaf contributions tabled (:class:`~crimeclass.models.TreeShap`), for a
    caller that explains many requests' rows (:func:`score_with_reasons`); None for a
    model that is not XGBoost's, or whose tables would not fit."""
    est = _xgb(model)
    return None if est is None else est.tree_shap()


def score_with_reasons(model: LoadedModel, frame: pd.DataFrame, k: int = 3,
                       tables: TreeShap | None = None
                       ) -> tuple[np.ndarray, list[list[dict[str, Any]]] | None]:
    """:meth:`LoadedModel.predict_proba` and :func:`top_contributions` of the rows, the
    pipeline's encoding computed once (the pipeline's own steps, so the same numbers).
    With the model's :func:`contribution_tables`, the contributions come from them (the
    same values within float32 rounding, about 15 times faster)."""
    est = _xgb(model)
    if est is None or not len(frame):
        return model.predict_proba(frame), None
    import xgboost

    encoded = model.pipeline[:-1].transform(frame[["date", *model.feature_names]])
    # one thread (a setting of the calling thread alone): handing a few rows' matrix to
    # threads costs more than copying it (on 2 busy cores, 24 ms against 0.1 ms for 32
    # rows); the numbers are the same. The tables' lookups take whole blocks of 256
    # rows per thread, so a request of a few rows stays on one
    with xgboost.config_context(nthread=1):
        p = np.asarray(est.predict_proba(encoded)[:, 1], dtype=np.float64)
        contrib = np.asarray(est.predict_contributions(encoded, tables,
                                                       threads=os.cpu_count() or 1))
    names = ([_feature_of(str(c)) for c in encoded.columns] if hasattr(encoded, "columns")
             else [f"x{i}" for i in range(contrib.shape[1])])
    return p, _top(contrib, names, frame, k)


def _plain(value: Any) -> Any:
    """A feature value as JSON takes it (NaN and missing: None)."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    return value if isinstance(value, int | float | bool | str) else str(value)
