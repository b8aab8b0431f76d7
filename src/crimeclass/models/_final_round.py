"""The search's choice against the family's defaults, on more rows than the search saw.

A search on a sample of some 50,000 rows favours models that suit 50,000 rows: shallow
trees, strong penalties. Refitted on millions of rows such a choice can score below the
family's defaults (bench/xgb_default.py; docs/benchmarks.md). The final round fits both
on the earlier part of a larger sample of the training rows and scores them on its later
part, as the last rung of successive halving does; the better is refitted.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
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
    kept: str  # "choice" or "defaults"
    seconds: float

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
                seed: int) -> FinalRound | None:
    """Compare the search's best with its start on up to ``rows`` rows of ``X`` (in time
    order): each fitted on the earliest 80 %, scored on the rest with the search's
    scoring. When the start scores at least as well, the search keeps it
    (:meth:`OptunaSearchCV.keep_start`). None, and nothing changed, when there is
    nothing to compare: no ``rows``, no start trial, or the start is the best."""
    start = search.start_
    if not rows or start is None or start["trial_params"] == search.best_trial_params_:
        return None
    t0 = time.perf_counter()
    idx = sample_index(len(y), rows, seed)
    cut = int(len(idx) * FIT_SHARE)
    fit, scored = idx[:cut], idx[cut:]
    score = SCORERS[search.scoring]
    values = {}
    for kept, params in (("choice", search.best_params_), ("defaults", start["params"])):
        model = clone(search.estimator).set_params(**params).fit(X.iloc[fit], y[fit])
        values[kept] = float(score(y[scored], model.predict_proba(X.iloc[scored])[:, 1]))
    kept = "defaults" if values["defaults"] >= values["choice"] else "choice"
    if kept == "defaults":
        search.keep_start()
    return FinalRound(rows=len(idx), fit_rows=len(fit), scored_rows=len(scored),
                      scoring=search.scoring, choice=values["choice"],
                      defaults=values["defaults"], kept=kept,
                      seconds=round(time.perf_counter() - t0, 2))
