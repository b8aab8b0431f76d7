"""Learned encodings: scikit-learn transformers that fit inside each training fold.

:func:`make_preprocessor` builds the ColumnTransformer that turns a feature
frame into the matrix a model family wants. Everything that learns from data
(the median of a column, which categories are rare, the index rate of each
beat) is fitted by ``Pipeline.fit`` on the training rows only, so a
cross-validation fold never sees its validation rows' labels.
``TargetEncoder`` goes further and cross-fits on the training rows themselves
(its ``fit_transform`` encodes each row with a model that did not see it).

Styles
------
``linear`` (logistic regression, SVM)
    counts: log1p; counts, numbers and shares: median-imputed and standardized,
    plus a 0/1 indicator for each column that had missing values in training;
    binary: most frequent; categories: one-hot with rare ones (fewer than
    ``min_frequency`` rows) grouped into one column, unseen ones too;
    high-cardinality categories: target encoding.
``tree`` (random forest, XGBoost)
    numbers as they are (missing values are handled by the trees); categories:
    ordinal codes with rare and unseen ones grouped; high-cardinality: target
    encoding.
``embedding`` (neural network)
    every category, rare and unseen grouped, as an integer code (``-1`` for
    missing, rare or unseen) in the first columns, for embedding layers; numbers
    as in ``linear``. :func:`embedding_columns` tells the network which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    StandardScaler,
    TargetEncoder,
)

from crimeclass.features._catalog import Feature
from crimeclass.features._errors import FeaturesError

__all__ = ["CategoryCodes", "PreprocessStyle", "embedding_columns", "make_preprocessor"]

PreprocessStyle = Literal["linear", "tree", "embedding"]


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Categories as numeric codes that keep their identity and order, for the encoders.

    scikit-learn's encoders find and count the categories of a column of text in
    Python, one value at a time (with ``min_frequency``, 30 of the 31 seconds that
    the tree encoders took on 2 million rows); on numbers they use numpy. This
    step gives each category seen in ``fit`` its rank among them in sorted order
    (so an encoder that sorts its categories orders them as before), a missing
    value NaN, and a category unseen in ``fit`` :attr:`UNSEEN` (-2), which the
    encoders then treat as unknown: their results are those they give on the text.

    Attributes
    ----------
    categories_ : list of ndarray
        The sorted categories of each column seen in ``fit``.
    """

    #: The code of a category not seen in ``fit``.
    UNSEEN = -2.0

    def fit(self, X: Any, y: Any = None) -> CategoryCodes:
        frame = _as_frame(X)
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = frame.shape[1]
        self.categories_ = [np.sort(pd.unique(_present(frame.iloc[:, j])).astype(str))
                            for j in range(frame.shape[1])]
        self._make_indexes()
        return self

    def transform(self, X: Any) -> np.ndarray:
        frame = _as_frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise FeaturesError(f"CategoryCodes was fitted on {self.n_features_in_} columns, "
                                f"got {frame.shape[1]}", option="X", value=frame.shape[1])
        out = np.empty(frame.shape, dtype=np.float32)
        for j in range(len(self.categories_)):
            col = frame.iloc[:, j]
            index = self._index(j)
            if isinstance(col.dtype, pd.CategoricalDtype):  # look up each category once
                codes = col.cat.codes.to_numpy()
                # a column with no category at all (all missing: the years before the
                # police published districts) has nothing to look up
                ranks = np.append(index.get_indexer(col.cat.categories.astype(str)), -1)
                found = np.where(codes >= 0, ranks[codes], -1)
                missing = codes < 0
            else:
                missing = col.isna().to_numpy()
                found = index.get_indexer(col.astype(str))
            values = found.astype(np.float32)
            values[found < 0] = self.UNSEEN
            values[missing] = np.nan
            out[:, j] = values
        return out

    def _make_indexes(self) -> None:
        """Each column's categories as an index with its hash table, made when fitted
        or loaded, not saved with the model (a service's requests of a few rows:
        building the index of 30,000 blocks cost more than the rest of their encoding)."""
        self._indexes = [pd.Index(c) for c in self.categories_]
        for index, c in zip(self._indexes, self.categories_, strict=True):
            index.get_indexer(c[:1])  # builds the hash table now

    def _index(self, j: int) -> pd.Index:
        indexes = self.__dict__.get("_indexes")
        return indexes[j] if indexes is not None else pd.Index(self.categories_[j])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_indexes", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "categories_" in state:
            self._make_indexes()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray(self.feature_names_in_, dtype=object)


def _as_frame(X: Any) -> pd.DataFrame:
    return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))


def _present(col: pd.Series) -> np.ndarray:
    """The distinct values present in a column (a categorical's unused categories left out)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = np.unique(col.cat.codes.to_numpy())
        return np.asarray(col.cat.categories[codes[codes >= 0]])
    return col.dropna().unique()


def _names(features: Sequence[Feature], *kinds: str) -> list[str]:
    return [f.name for f in features if f.kind in kinds]


def _scaled(log: bool) -> object:
    steps: list[object] = []
    if log:
        steps.append(FunctionTransformer(np.log1p, feature_names_out="one-to-one"))
    steps += [SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()]
    return make_pipeline(*steps)


def make_preprocessor(
    features: Sequence[Feature],
    style: PreprocessStyle,
    *,
    min_frequency: int = 50,
    random_state: int = 0,
) -> ColumnTransformer:
    """The ColumnTransformer of a model family.

    Parameters
    ----------
    features : sequence of Feature
        The catalog features the frame holds (other columns, such as ``date``,
        are dropped).
    style : {"linear", "tree", "embedding"}
        See the module docstring.
    min_frequency : int, default=50
        Categories seen in fewer training rows are grouped as rare.
    random_state : int, default=0
        Seeds the shuffled folds of the target encoder's cross-fitting.

    Returns
    -------
    sklearn.compose.ColumnTransformer
    """
    if style not in ("linear", "tree", "embedding"):
        raise FeaturesError(f"unknown preprocessing style {style!r}; "
                            "styles are 'linear', 'tree', 'embedding'", option="style",
                            value=style)
    cats = _names(features, "category")
    high = _names(features, "high_cardinality")
    counts = _names(features, "count")
    numbers = _names(features, "numeric", "share")
    binary = _names(features, "binary")
    parts: list[tuple[str, object, list[str]]] = []
    # every encoder of categories reads them as CategoryCodes (numbers: numpy's speed)
    ordinal = make_pipeline(CategoryCodes(), OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1,
        min_frequency=min_frequency, dtype=np.float32))
    if style == "embedding":
        if cats + high:
            parts.append(("codes", ordinal, cats + high))
    if style == "linear" and cats:
        parts.append(("onehot", make_pipeline(CategoryCodes(), OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=min_frequency,
            sparse_output=True)), cats))
    if style == "tree" and cats:
        parts.append(("codes", ordinal, cats))
    if style in ("linear", "tree") and high:
        folds = KFold(5, shuffle=True, random_state=random_state)
        steps: list[object] = [CategoryCodes(), TargetEncoder(target_type="binary", cv=folds)]
        if style == "tree":  # float32 like the rest, so the matrix is half the size
            steps.append(FunctionTransformer(np.float32, feature_names_out="one-to-one"))
        parts.append(("target", make_pipeline(*steps), high))
    if style == "tree":
        if counts + numbers + binary:
            parts.append(("numbers", "passthrough", counts + numbers + binary))
    else:
        if counts:
            parts.append(("counts", _scaled(log=True), counts))
        if numbers:
            parts.append(("numbers", _scaled(log=False), numbers))
        if counts + numbers:
            # 0/1 columns, not standardized: a rare missing value would become a huge number
            parts.append(("missing", MissingIndicator(features="missing-only",
                                                      error_on_new=False), counts + numbers))
        if binary:
            parts.append(("binary", SimpleImputer(strategy="most_frequent",
                                                  keep_empty_features=True), binary))
    if not parts:
        raise FeaturesError("no features to encode", option="features")
    # The linear style's one-hot columns stay sparse (CSR, with the dense numbers
    # beside them): a row has one non-zero per category, so the matrix is a fraction
    # of its dense size, and lbfgs, liblinear, saga, SGD and Nystroem all take CSR.
    return ColumnTransformer(parts, remainder="drop",
                             sparse_threshold=1.0 if style == "linear" else 0.0,
                             verbose_feature_names_out=True)


def embedding_columns(features: Sequence[Feature]) -> list[int]:
    """Indices of the integer-coded columns that an ``embedding`` preprocessor puts first."""
    return list(range(len(_names(features, "category", "high_cardinality"))))
