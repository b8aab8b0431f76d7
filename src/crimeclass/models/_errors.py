"""Errors of the models stage: one base, :class:`ModelsError`, and a subclass per kind.

Each carries its context as attributes (``attrs()``, shown by ``--json``): the
option in the user's words, the run folder, the model, the input file.
Errors about a bad value (an option, a parameter, training data a classifier
cannot learn from) are also ``ValueError``, as scikit-learn's checks expect of
an estimator's ``fit``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crimeclass.data import CrimeclassError

__all__ = ["ModelOptionError", "ModelsError", "PredictError", "RunError", "TrainingDataError"]


class ModelsError(CrimeclassError):
    """Base class of the errors of training, loading and scoring models."""


class ModelOptionError(ModelsError, ValueError):
    """An option or parameter has a value crimeclass cannot use.

    Attributes
    ----------
    option : str or None
        The option as the user wrote it (``--folds``, ``chunk_rows``).
    value : object
        The value given.
    """

    def __init__(self, message: str, *, option: str | None = None, value: Any = None) -> None:
        self.option = option
        self.value = value
        super().__init__(message)


class TrainingDataError(ModelsError, ValueError):
    """The data cannot train or evaluate a classifier (no rows, one class only).

    Attributes
    ----------
    period : str or None
        Which rows: ``training``, ``held-out``, ``validation`` ...
    rows : int or None
    """

    def __init__(self, message: str, *, period: str | None = None,
                 rows: int | None = None) -> None:
        self.period = period
        self.rows = rows
        super().__init__(message)


class RunError(ModelsError):
    """A run folder cannot be used: missing, incomplete, inconsistent, or without the model.

    Attributes
    ----------
    run : str
        The run folder.
    model : str or None
        The model asked for, if any.
    """

    def __init__(self, message: str, *, run: str | Path, model: str | None = None) -> None:
        self.run = str(run)
        self.model = model
        super().__init__(message)


class PredictError(ModelsError):
    """Input or output of a prediction cannot be used (columns missing, no rows, format).

    Attributes
    ----------
    path : str or None
        The file concerned.
    """

    def __init__(self, message: str, *, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(message)
