"""Cross-validation: time-ordered folds (train on the past, validate on what follows).

>>> import pandas as pd
>>> X = pd.DataFrame({"date": pd.date_range("2016-01-01", periods=8, freq="D")})
>>> [(tr.tolist(), va.tolist()) for tr, va in TimeOrderedSplit(n_splits=3).split(X)]
[([0, 1], [2, 3]), ([0, 1, 2, 3], [4, 5]), ([0, 1, 2, 3, 4, 5], [6, 7])]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold

from crimeclass.models._errors import ModelOptionError, TrainingDataError

__all__ = ["CVKind", "TimeOrderedSplit", "make_cv", "check_folds"]

CVKind = Literal["time", "stratified"]


class TimeOrderedSplit(BaseCrossValidator):
    """Expanding-window folds in time order.

    The rows, sorted by time, are cut into ``n_splits + 1`` consecutive
    periods holding about the same number of rows. Fold ``i`` trains on
    periods ``0 .. i`` and validates on period ``i + 1``: every validation
    row is later than every training row. A cut never separates two rows with
    the same timestamp.

    Parameters
    ----------
    n_splits : int, default=3
        Number of folds (at least 2).
    time_column : str, default="date"
        The DataFrame column holding the time of each row.
    """

    def __init__(self, n_splits: int = 3, time_column: str = "date") -> None:
        self.n_splits = n_splits
        self.time_column = time_column

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        return self.n_splits

    def _times(self, X: Any) -> np.ndarray:
        if not hasattr(X, "columns") or self.time_column not in X.columns:
            raise TrainingDataError(f"time-ordered folds need a DataFrame with a "
                                    f"{self.time_column!r} column")
        times = pd.to_datetime(X[self.time_column]).to_numpy()
        if pd.isna(times).any():
            raise TrainingDataError(f"the {self.time_column!r} column has missing values")
        return times

    def split(self, X: Any, y: Any = None, groups: Any = None
              ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self.n_splits < 2:
            raise ModelOptionError(f"n_splits must be at least 2, got {self.n_splits}",
                                   option="--folds", value=self.n_splits)
        times = self._times(X)
        n = len(times)
        order = np.argsort(times, kind="stable")
        sorted_times = times[order]
        cuts = [0]
        for i in range(1, self.n_splits + 1):
            c = max(int(round(i * n / (self.n_splits + 1))), cuts[-1])
            # move the cut forward past rows sharing the timestamp just before it
            if 0 < c < n:
                c = int(np.searchsorted(sorted_times, sorted_times[c - 1], side="right"))
            cuts.append(c)
        cuts.append(n)
        for i in range(self.n_splits):
            train, val = order[:cuts[i + 1]], order[cuts[i + 1]:cuts[i + 2]]
            if len(train) == 0 or len(val) == 0:
                raise TrainingDataError(f"{n} rows cannot be cut into {self.n_splits + 1} time "
                                        f"periods for {self.n_splits} time-ordered folds; use "
                                        "fewer folds or more rows", rows=n)
            yield np.sort(train), np.sort(val)

    def _iter_test_indices(self, X: Any = None, y: Any = None, groups: Any = None
                           ) -> Iterator[np.ndarray]:  # pragma: no cover - split is overridden
        for _, val in self.split(X, y, groups):
            yield val


def make_cv(kind: CVKind, n_splits: int = 3, random_state: int | None = 0) -> Any:
    """The splitter for ``--cv time`` or ``--cv stratified``."""
    if kind == "time":
        return TimeOrderedSplit(n_splits=n_splits)
    if kind == "stratified":
        return StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    raise ModelOptionError(f"unknown cross-validation {kind!r}; use 'time' or 'stratified'",
                           option="--cv", value=kind)


def check_folds(splits: list[tuple[np.ndarray, np.ndarray]], y: np.ndarray,
                times: Any = None, *, min_rows: int = 20) -> None:
    """Raise a clear ValueError if a fold cannot give a ROC AUC (one class, too few rows)."""
    for i, (train, val) in enumerate(splits):
        where = f"fold {i + 1} of {len(splits)}"
        if times is not None and len(val):
            t = pd.to_datetime(np.asarray(times)[val])
            where += f" (validation {t.min():%Y-%m-%d} to {t.max():%Y-%m-%d})"
        for part, idx in (("training", train), ("validation", val)):
            if len(idx) < min_rows:
                raise TrainingDataError(f"{where}: {len(idx)} {part} rows; at least {min_rows} "
                                        "are needed. Use fewer folds or a longer window",
                                        period=part, rows=len(idx))
            if len(np.unique(y[idx])) < 2:
                raise TrainingDataError(f"{where}: the {part} rows hold one class only "
                                        f"({np.unique(y[idx])[0]!r}); use fewer folds or a "
                                        "longer window", period=part, rows=len(idx))
