"""A Keras 3 network (TensorFlow backend) for tabular data, as a scikit-learn classifier.

Keras' own ``keras.wrappers.SKLearnClassifier`` takes one input matrix; this
network needs one integer input per categorical column (for its embedding) and
one for the numbers, so it is a thin estimator of its own.

It trains in float32, then keeps (and saves) the fitted network in float64. In
float32 a row's probability depended on the rows batched beside it: the matrix
products (oneDNN or Eigen) give a row in a full tile and a row in the last,
partial one different kernels and so different rounding, up to a few units in
the 8th digit. In float64 that rounding lies near the 16th digit, far below any
tolerance, so a row's probability is its own, whatever its neighbours.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from crimeclass.models._target import BinaryPredictMixin, binary_target

__all__ = ["KerasTabularClassifier", "import_keras"]


def import_keras() -> Any:
    """Import Keras on the TensorFlow backend, quietly."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # every fitted network traces new functions: TensorFlow's "retracing" notes are expected
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"crimeclass's network needs Keras on the TensorFlow backend; "
                           f"KERAS_BACKEND is {keras.backend.backend()!r}")
    return keras


def _in_float64(network: Any) -> Any:
    """A copy of a trained network that computes in float64, with the same weights."""
    keras = import_keras()

    def in_float64(layer: Any) -> Any:
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})

    copy = keras.models.clone_model(network, clone_function=in_float64)
    copy.set_weights([np.asarray(w, dtype=np.float64) for w in network.get_weights()])
    return copy


class KerasTabularClassifier(BinaryPredictMixin, ClassifierMixin, BaseEstimator):
    """A feed-forward network with embeddings for categorical columns.

    Each categorical column (integer codes, ``-1`` or any code unseen in
    training for missing/rare/unseen) goes through its own embedding; the
    embeddings and the numeric columns are concatenated and pass through
    ``hidden_units`` dense ReLU layers with dropout and L2 penalties, to one
    sigmoid unit. Training stops early when the log loss on the *last*
    ``validation_fraction`` of the rows (the latest, in time order) stops
    improving; the best weights are kept.

    Parameters
    ----------
    categorical_features : sequence of int, optional
        Positions of the integer-coded categorical columns.
    hidden_units : sequence of int, default=(64, 32)
    dropout : float, default=0.2
    l2 : float, default=1e-4
        L2 penalty on the dense kernels and the embeddings.
    embedding_dim : int, default=8
        Largest embedding size (a column with few categories gets fewer).
    learning_rate : float, default=1e-3
        Adam's learning rate.
    batch_size : int, default=1024
    epochs : int, default=20
        Most passes over the data.
    validation_fraction : float, default=0.1
    patience : int, default=3
        Epochs without improvement before stopping.
    random_state : int, default=0
        Seeds Keras (Python, NumPy and TensorFlow generators) for the fit.
    verbose : int, default=0

    Attributes
    ----------
    classes_ : ndarray of shape (2,)
    model_ : keras.Model
        The trained network, in float64 (see the module docstring).
    cardinalities_ : list of int
        Embedding rows per categorical column (row 0: missing, rare or unseen).
    epochs_ : int
        Epochs run before stopping.
    n_features_in_ : int
    """

    def __init__(self, categorical_features: Sequence[int] | None = None,
                 hidden_units: Sequence[int] = (64, 32), dropout: float = 0.2, l2: float = 1e-4,
                 embedding_dim: int = 8, learning_rate: float = 1e-3, batch_size: int = 1024,
                 epochs: int = 20, validation_fraction: float = 0.1, patience: int = 3,
                 random_state: int = 0, verbose: int = 0) -> None:
        self.categorical_features = categorical_features
        self.hidden_units = hidden_units
        self.dropout = dropout
        self.l2 = l2
        self.embedding_dim = embedding_dim
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    def _split(self, X: np.ndarray) -> list[np.ndarray]:
        cats = list(self.categorical_features or [])
        nums = [j for j in range(X.shape[1]) if j not in set(cats)]
        inputs = []
        for j, card in zip(cats, self.cardinalities_, strict=True):
            code = X[:, j] + 1  # -1 (missing, rare, unseen) -> 0
            code = np.where((code >= 1) & (code < card), code, 0)
            inputs.append(code.astype(np.int32).reshape(-1, 1))
        inputs.append(X[:, nums].astype(np.float32, copy=False))  # one copy: the selection
        return inputs

    def _build(self, n_numeric: int) -> Any:
        keras = import_keras()
        reg = keras.regularizers.L2(self.l2)
        inputs, parts = [], []
        for i, card in enumerate(self.cardinalities_):
            inp = keras.Input(shape=(1,), dtype="int32", name=f"cat{i}")
            dim = int(max(1, min(self.embedding_dim, (card + 1) // 2)))
            emb = keras.layers.Embedding(card, dim, embeddings_regularizer=reg)(inp)
            inputs.append(inp)
            parts.append(keras.layers.Flatten()(emb))
        num = keras.Input(shape=(n_numeric,), dtype="float32", name="numbers")
        inputs.append(num)
        parts.append(num)
        h = keras.layers.Concatenate()(parts) if len(parts) > 1 else parts[0]
        for units in self.hidden_units:
            h = keras.layers.Dense(int(units), activation="relu", kernel_regularizer=reg)(h)
            if self.dropout:
                h = keras.layers.Dropout(self.dropout)(h)
        out = keras.layers.Dense(1, activation="sigmoid")(h)
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.Adam(self.learning_rate),
                      loss="binary_crossentropy")
        return model

    def fit(self, X: Any, y: Any) -> KerasTabularClassifier:
        if not 0 <= self.validation_fraction < 1:
            raise ValueError("validation_fraction must be in [0, 1), got "
                             f"{self.validation_fraction}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        # float32 input stays float32 (the network computes in float32; the integer codes
        # of the categories are exact in it): on 6.2M rows a float64 copy was 5 GB
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64))
        self.classes_, y01 = binary_target(y)
        cats = list(self.categorical_features or [])
        if any(not 0 <= j < X.shape[1] for j in cats):
            raise ValueError(f"categorical_features {cats} outside the {X.shape[1]} columns")
        self.cardinalities_ = [int(max(np.nanmax(X[:, j]), -1)) + 2 for j in cats]
        keras = import_keras()
        keras.utils.set_random_seed(int(self.random_state))
        self.model_ = self._build(X.shape[1] - len(cats))
        y01 = y01.astype(np.float32)
        n_val = int(round(self.validation_fraction * len(y01)))
        callbacks = []
        val: float = 0.0
        if n_val >= 1 and len(y01) - n_val >= 1:
            val = self.validation_fraction
            callbacks.append(keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=self.patience, restore_best_weights=True))
        history = self.model_.fit(self._split(X), y01, batch_size=self.batch_size,
                                  epochs=self.epochs, validation_split=val, shuffle=True,
                                  callbacks=callbacks, verbose=self.verbose)
        self.epochs_ = len(history.history["loss"])
        self.model_ = _in_float64(self.model_)
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float32, np.float64))
        inputs = self._split(X)
        inputs[-1] = inputs[-1].astype(np.float64)
        p = np.asarray(self.model_.predict(inputs, batch_size=8192, verbose=0),
                       dtype=np.float64).reshape(-1)
        return np.column_stack([1 - p, p])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        tags.non_deterministic = False
        return tags
