"""The search's choice against the family's defaults, on more rows than the search saw.

A search on a sample of some 50,000 rows favours models that suit 50,000 rows: shallow
trees, strong penalties. Refitted on millions of rows such a choice can score below the
family's defaults (bench/xgb_default.py; docs/benchmarks.md), and below shapes that only
pay on many rows (more, deeper, slower trees: bench/ablation.py). The final round fits
the search's choice, the defaults and the family's candidates for many rows on the earlier
part of a larger sample of the training rows and scores them on its later part, as the
last rung of successive halving does; the best is refitted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from sklearn.base import clone

from crimeclass.models._search import SCORERS, OptunaSearchCV

__all__ = ["FinalRound", "final_round", "sample_index"]

#: Share of the final round's rows (the earliest) that the two models are fitted on.
FIT_SHARE = 0.8


@dataclass(frozen=True)
class FinalRound:
    """What the final round compared and which parameters it kept."""

    rows: int
    fit_rows: int
    scored_rows: int
    scoring: str
    choice: float
    defaults: float
    kept: str  # "choice", "defaults" or a candidate's name
    seconds: float
    candidates: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_index(n: int, size: int | None, seed: int) -> np.ndarray:
    """A seeded random sample of ``size`` of ``range(n)``, sorted (time order kept); all
    of it when ``size`` is None or not below ``n``."""
    if size is None or n <= size:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=size, replace=False))


def final_round(search: OptunaSearchCV, X: Any, y: np.ndarray, *, rows: int | None,
                seed: int, candidates: dict[str, dict[str, Any]] | None = None,
                search_rows: tuple[Any, Any] | None = None) -> FinalRound | None:
    """Compare the search's best, its start and ``candidates`` (named pipeline parameters)
    on up to ``rows`` rows of ``X`` (in time order): each fitted on the earliest 80 %,
    scored on the rest with the search's scoring. The best is kept, ties going to the
    start, then to the search's best: the start by :meth:`OptunaSearchCV.keep_start`, a
    candidate by :meth:`OptunaSearchCV.keep` after its cross-validation on
    ``search_rows`` (the search's ``X`` and ``y``: its out-of-fold predictions choose the
    threshold, as a trial's do). None, and nothing changed, when there is nothing to
    compare: no ``rows``, no start trial, or the start is the best and there are no
    candidates."""
    start = search.start_
    candidates = dict(candidates or {}) if search_rows is not None else {}
    same = start is not None and start["trial_params"] == search.best_trial_params_
    if not rows or start is None or (same and not candidates):
        return None
    t0 = time.perf_counter()
    idx = sample_index(len(y), rows, seed)
    cut = int(len(idx) * FIT_SHARE)
    fit, scored = idx[:cut], idx[cut:]
    score = SCORERS[search.scoring]
    shapes = {"defaults": start["params"], **({} if same else {"choice": search.best_params_}),
              **{name: {**start["params"], **params} for name, params in candidates.items()}}
    values = {}
    for name, params in shapes.items():
        model = clone(search.estimator).set_params(**params).fit(X.iloc[fit], y[fit])
        values[name] = float(score(y[scored], model.predict_proba(X.iloc[scored])[:, 1]))
    if same:
        values["choice"] = values["defaults"]
    kept = max(["defaults", "choice", *candidates], key=lambda k: values[k])  # first on ties
    if kept == "defaults":
        search.keep_start()
    elif kept in candidates and search_rows is not None:
        result = search.cross_validate(shapes[kept], *search_rows)
        search.keep({**result, "trial_params": {"final_round": kept}})
    return FinalRound(rows=len(idx), fit_rows=len(fit), scored_rows=len(scored),
                      scoring=search.scoring, choice=values["choice"],
                      defaults=values["defaults"], kept=kept,
                      seconds=round(time.perf_counter() - t0, 2),
                      candidates={k: values[k] for k in candidates})
