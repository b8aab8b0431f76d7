"""The leakage guard: the columns that define the label never become features.

The guard follows the target. For ``index`` (the default) the label
(``is_index``) is a function of the IUCR code, so Primary Type, Description,
IUCR and FBI Code (and the label itself, and how it was found) give the answer
away, and Arrest is recorded after the report. For ``arrest`` the kind of
offense is known when it is reported and may be a feature; Arrest itself, the
label, never. Identifiers and lineage columns say nothing about the incident,
whatever the target.

:func:`check_features` raises :class:`LeakageError` when a feature list holds
one of them or anything named after one (``primary_type_THEFT``,
``onehot__iucr``); for :class:`~crimeclass.features.Feature` objects it also
reads what each feature is computed from. The only exception: history
features read the labels of *earlier* incidents (never the row's own).
:class:`LeakageGuard` runs the same check as the first step of every model
pipeline, so a frame with a forbidden column cannot be fitted.

>>> check_features(["hour", "location_description"])
>>> check_features(["hour", "iucr"])  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
crimeclass.features._leakage.LeakageError: 'iucr' cannot be a feature: it defines the label ...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crimeclass.features._catalog import TARGETS, Feature
from crimeclass.features._errors import FeaturesError

__all__ = ["AFTER_THE_FACT", "DEFINE_LABEL", "NOT_FEATURES", "REPORT_ORDER", "LeakageError",
           "LeakageGuard", "check_features", "forbidden_reason"]

#: Columns that define the label, and the label itself.
DEFINE_LABEL = frozenset({"primary_type", "description", "iucr", "fbi_code", "is_index",
                          "label_source"})
#: Recorded after the report: allowed only with ``allow_arrest``.
AFTER_THE_FACT = frozenset({"arrest"})
#: Identifiers, lineage and later edits: never features.
NOT_FEATURES = frozenset({"id", "case_number", "key", "base_key", "ordinal", "key_derived",
                          "flags", "ingest_id", "source_line", "updated_on"})
#: Identifiers handed out in the order reports are taken: never a feature themselves, but
#: the ``report`` group may read that order (when the report was taken: known at report
#: time) through the times of the incidents reported just before.
REPORT_ORDER = frozenset({"case_number"})
#: Lineage of the index label: never a feature, whatever the target.
_LINEAGE = frozenset({"label_source"})
#: Names that contain a forbidden name but are not derived from it.
_ALLOWED = frozenset({"location_description"})


class LeakageError(FeaturesError):
    """A feature list holds a column that leaks the label or is not known at report time."""

    def __init__(self, feature: str, reason: str) -> None:
        self.feature = feature
        self.reason = reason
        super().__init__(f"{feature!r} cannot be a feature: {reason}", option="features",
                         value=feature)


def _base(name: str) -> str:
    # scikit-learn output names carry the transformer as a prefix: "onehot__primary_type_X"
    return name.rsplit("__", 1)[-1].lower()


def _check_target(target: str) -> None:
    if target not in TARGETS:
        raise FeaturesError(f"unknown target {target!r}; targets are {list(TARGETS)}",
                            option="target", value=target)


def forbidden_reason(name: str, *, allow_arrest: bool = False,
                     target: str = "index") -> str | None:
    """Why the column ``name`` may not be a feature for ``target``, or None if it may.

    >>> forbidden_reason("fbi_code_08B")
    'it defines the label (index offense or not)'
    >>> forbidden_reason("arrest", allow_arrest=True) is None
    True
    >>> forbidden_reason("fbi_code_08B", target="arrest") is None
    True
    >>> forbidden_reason("arrest", target="arrest")
    'it is the label (arrest or not)'
    """
    _check_target(target)
    base = _base(name)
    if base in _ALLOWED:
        return None

    def hits(cols: frozenset[str]) -> bool:
        return any(base == c or base.startswith(c + "_") for c in cols)

    if target == "arrest":
        if hits(AFTER_THE_FACT):
            return "it is the label (arrest or not)"
        if hits(_LINEAGE):
            return "it is lineage of the index label, not known about the incident"
    elif hits(DEFINE_LABEL):
        return "it defines the label (index offense or not)"
    if hits(NOT_FEATURES):
        return "it is an identifier, lineage or a later edit, not known about the incident"
    if hits(AFTER_THE_FACT) and not allow_arrest:
        return ("arrest is recorded after the report; pass allow_arrest=True (--allow-arrest) "
                "to use it, and every output will say so")
    return None


def check_features(features: Iterable[str | Feature], *, allow_arrest: bool = False,
                   target: str = "index") -> None:
    """Raise :class:`LeakageError` if any feature leaks the label of ``target``.

    Parameters
    ----------
    features : iterable of str or Feature
        Feature names, or catalog features (whose ``uses`` are checked too).
    allow_arrest : bool, default=False
        Let ``arrest`` through (it is known only after the report); never
        with ``target="arrest"``.
    target : {"index", "arrest"}, default="index"
        What the label is; the forbidden columns follow it.
    """
    if allow_arrest and target == "arrest":
        raise LeakageError("arrest", "it is the label (arrest or not); allow_arrest cannot "
                                     "apply to the arrest target")
    label = "is_index" if target == "index" else "arrest"
    for f in features:
        name = f.name if isinstance(f, Feature) else str(f)
        reason = forbidden_reason(name, allow_arrest=allow_arrest, target=target)
        if reason:
            raise LeakageError(name, reason)
        if isinstance(f, Feature):
            for col in f.uses:
                if f.history and col == label:
                    continue  # labels of strictly earlier incidents only (see _sql.py)
                if f.group == "report" and col in REPORT_ORDER:
                    continue  # the order of the reports, not the number (see _catalog.py)
                reason = forbidden_reason(col, allow_arrest=allow_arrest, target=target)
                if reason:
                    raise LeakageError(name, f"it is computed from {col!r}, and {reason}")


class LeakageGuard(TransformerMixin, BaseEstimator):
    """Pass the data through unchanged after checking that no column leaks the label.

    The first step of every crimeclass model pipeline. It needs column names
    (a DataFrame); without them it cannot check and refuses.

    Parameters
    ----------
    allow_arrest : bool, default=False
        Let the ``arrest`` column through (index target only).
    target : {"index", "arrest"}, default="index"
        What the label is; the forbidden columns follow it.

    Attributes
    ----------
    feature_names_in_ : ndarray of str
        The columns seen in ``fit``.
    n_features_in_ : int
    """

    def __init__(self, allow_arrest: bool = False, target: str = "index") -> None:
        self.allow_arrest = allow_arrest
        self.target = target

    def fit(self, X: Any, y: Any = None) -> LeakageGuard:
        self._check(X)
        self.feature_names_in_ = np.asarray(list(X.columns), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def _check(self, X: Any) -> None:
        if not hasattr(X, "columns"):
            raise TypeError("LeakageGuard needs a DataFrame with column names to check them; "
                            f"got {type(X).__name__}")
        check_features([str(c) for c in X.columns], allow_arrest=self.allow_arrest,
                       target=getattr(self, "target", "index"))  # saved before targets

    def transform(self, X: Any) -> Any:
        check_is_fitted(self)
        self._check(X)
        validate_data(self, X, reset=False, skip_check_array=True)
        return X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self)
        return self.feature_names_in_.copy()

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True
        return tags
