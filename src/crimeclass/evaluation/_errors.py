"""Errors of the evaluation stage: :class:`EvaluationError` and its subclasses.

Each carries its context as attributes (``attrs()``, shown by ``--json``). A
run folder that cannot be read raises the run reader's
:class:`~crimeclass.models.RunError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crimeclass.data import CrimeclassError

__all__ = ["EvaluationDataError", "EvaluationError", "EvaluationOptionError"]


class EvaluationError(CrimeclassError):
    """Base class of the errors of evaluating a run."""


class EvaluationOptionError(EvaluationError, ValueError):
    """An option of the evaluation has a value it cannot use.

    Attributes
    ----------
    option : str
        The option as the user wrote it (``--n-boot``, ``--threshold-rule``).
    value : object
    """

    def __init__(self, message: str, *, option: str, value: Any = None) -> None:
        self.option = option
        self.value = value
        super().__init__(message)


class EvaluationDataError(EvaluationError, ValueError):
    """The data to evaluate on cannot be used: columns missing, no rows, one class only.

    Attributes
    ----------
    path : str or None
        The file, folder or store concerned.
    rows : int or None
    """

    def __init__(self, message: str, *, path: str | Path | None = None,
                 rows: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.rows = rows
        super().__init__(message)
