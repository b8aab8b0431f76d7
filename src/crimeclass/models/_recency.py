"""Recent incidents weigh more: sample weights that halve with each half-life of age.

What an incident says about the next one fades: places change, and so do the way offenses
are reported and the share of index offenses (docs/models.md, "What each change adds").
:class:`RecencyPipeline` is a scikit-learn :class:`~sklearn.pipeline.Pipeline` that, when
fitted, weighs each training row by ``0.5 ** (age / half_life_days)``, where the age is
counted back from the latest incident of the rows it is given. Inside a cross-validation
fold that is the fold's own latest incident, so no fold learns anything of a later period.
Prediction is the plain pipeline's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from crimeclass.features._history import DAY_US
from crimeclass.models._errors import ModelOptionError, TrainingDataError

__all__ = ["RecencyPipeline", "half_life_of", "recency_weights"]


def recency_weights(dates: Any, half_life_days: float, latest: Any = None) -> np.ndarray:
    """``0.5 ** (age / half_life_days)`` per row, the age in days before ``latest`` (by
    default the latest of ``dates``; Spark passes the latest training row of all
    partitions).

    >>> recency_weights(pd.to_datetime(["2016-01-01", "2016-12-31", "2017-01-01"]), 366)
    array([0.5       , 0.99810795, 1.        ])
    """
    if not half_life_days > 0:
        raise ModelOptionError(f"the half-life must be a positive number of days, got "
                               f"{half_life_days}", option="--half-life", value=half_life_days)
    us = pd.to_datetime(pd.Series(dates)).to_numpy(dtype="datetime64[us]")
    if len(us) and np.isnat(us).any():
        raise TrainingDataError("a training row has no date: its recency weight is unknown",
                                rows=int(np.isnat(us).sum()))
    if not len(us):
        return np.ones(0)
    end = us.max() if latest is None else np.datetime64(pd.Timestamp(latest), "us")
    age_days = (end - us).astype(np.int64) / DAY_US
    return np.power(0.5, age_days / half_life_days)


class RecencyPipeline(Pipeline):
    """A :class:`~sklearn.pipeline.Pipeline` whose last step is fitted with recency weights.

    Parameters
    ----------
    steps : list of (str, estimator)
        As in :class:`~sklearn.pipeline.Pipeline`; the last step's ``fit`` must take
        ``sample_weight``.
    half_life_days : float or None, default=None
        A row ``half_life_days`` older than the latest row of the fit weighs half as much;
        None fits unweighted. The rows must hold a ``date_column``.
    date_column : str, default="date"
    memory, verbose, transform_input :
        As in :class:`~sklearn.pipeline.Pipeline`.
    """

    def __init__(self, steps: list[tuple[str, Any]], *, half_life_days: float | None = None,
                 date_column: str = "date", transform_input: list[str] | None = None,
                 memory: Any = None, verbose: bool = False) -> None:
        super().__init__(steps, transform_input=transform_input, memory=memory,
                         verbose=verbose)
        self.half_life_days = half_life_days
        self.date_column = date_column

    def fit(self, X: Any, y: Any = None, **params: Any) -> RecencyPipeline:
        """Fit every step; the last one with ``sample_weight`` from the rows' dates."""
        if self.half_life_days is not None:
            if not hasattr(X, "columns") or self.date_column not in X.columns:
                raise TrainingDataError(f"recency weights need the {self.date_column!r} "
                                        "column in the rows to fit")
            last = self.steps[-1][0]
            params = {**params, f"{last}__sample_weight":
                      recency_weights(X[self.date_column], self.half_life_days)}
        super().fit(X, y, **params)
        return self


def half_life_of(model: Any) -> float | None:
    """The half-life a fitted pipeline was weighted with (a stack: its bases'); None when
    every row counted alike."""
    half_life = getattr(model, "half_life_days", None)
    if half_life is None and hasattr(model, "steps"):
        bases = getattr(model.steps[-1][1], "bases", None) or ()
        found = [h for _, b in bases if (h := getattr(b, "half_life_days", None)) is not None]
        half_life = max(found) if found else None
    return half_life
