"""What drives a model: permutation importance for every model, SHAP values for trees.

Permutation importance (Breiman 2001; scikit-learn's ``permutation_importance``
computes the same): shuffle one feature column of the evaluation rows, score
again, and report how much the ROC AUC drops; a feature the model ignores
costs nothing. It is computed per *feature column* of the frame (before any
encoding), on a seeded subsample, so that every model is explained by the same
names. SHAP values (Lundberg and Lee 2017) split each prediction (in log-odds
for XGBoost, probability for the forest) into one contribution per model input:
XGBoost computes them exactly (``pred_contribs``), the random forest through
``shap.TreeExplainer``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crimeclass.models import roc_auc

__all__ = ["import_shap", "permutation_importance", "tree_shap"]


def import_shap() -> Any:
    """``shap``, imported without the deprecation warnings its import raises on new matplotlib."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        import shap
    return shap


def permutation_importance(model: Any, X: pd.DataFrame, y: np.ndarray, features: list[str], *,
                           n_repeats: int = 2, random_state: int = 0) -> list[dict[str, Any]]:
    """ROC AUC lost when each feature column is shuffled, largest first.

    Parameters
    ----------
    model : fitted pipeline with ``predict_proba``
    X : DataFrame
        The rows to explain (``date`` and the features).
    y : array of {0, 1}
    features : list of str
        The columns to shuffle, one at a time.
    n_repeats : int
        Shuffles per column; the mean and standard deviation are reported.
    random_state : int
    """
    X = X.reset_index(drop=True)
    y = np.asarray(y).astype(int)
    base = roc_auc(y, model.predict_proba(X)[:, 1])
    rng = np.random.default_rng(random_state)
    out = []
    for col in features:
        drops = []
        for _ in range(n_repeats):
            Xp = X.copy()
            Xp[col] = X[col].iloc[rng.permutation(len(X))].reset_index(drop=True)
            drops.append(base - roc_auc(y, model.predict_proba(Xp)[:, 1]))
        out.append({"feature": col, "importance": float(np.mean(drops)),
                    "std": float(np.std(drops)), "repeats": n_repeats})
    return sorted(out, key=lambda r: -r["importance"])


def _input_names(prep: Any, n: int) -> list[str]:
    try:
        names = [str(s).split("__")[-1] for s in prep.get_feature_names_out()]
    except (AttributeError, ValueError):
        names = []
    return names if len(names) == n else [f"x{i}" for i in range(n)]


def tree_shap(model: Any, X: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame] | None:
    """SHAP values of a fitted XGBoost or random-forest pipeline on the rows ``X``.

    Returns ``(values, inputs)``: one row per row of ``X``, one column per model
    input (named after its feature), and the encoded inputs themselves (for the
    plot's colors); None for a model that is neither.
    """
    from sklearn.ensemble import RandomForestClassifier

    from crimeclass.models import EarlyStoppingLGBMClassifier, EarlyStoppingXGBClassifier

    est = model.steps[-1][1]
    prep = model[:-1]
    encoded = prep.transform(X)  # a DataFrame for XGBoost's pipeline, else an array
    Xt = np.asarray(encoded, dtype=np.float32)
    names = _input_names(model.steps[-2][1], Xt.shape[1]) if len(model.steps) > 2 else \
        [f"x{i}" for i in range(Xt.shape[1])]
    inputs = pd.DataFrame(Xt, columns=names)
    if isinstance(est, EarlyStoppingXGBClassifier | EarlyStoppingLGBMClassifier):
        return est.predict_contributions(encoded), inputs
    if isinstance(est, RandomForestClassifier):
        shap = import_shap()
        values = shap.TreeExplainer(est).shap_values(Xt, check_additivity=False)
        values = np.asarray(values)
        if values.ndim == 3:  # (rows, inputs, classes)
            values = values[:, :, 1]
        return values.astype(float), inputs
    return None
