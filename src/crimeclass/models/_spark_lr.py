"""Logistic regression on Spark: MLlib's elastic net, saved as scikit-learn's.

MLlib's :class:`~pyspark.ml.classification.LogisticRegression` is fitted on the encoded
training rows before the validation rows, with the C and penalty the search chose on the
driver's sample in MLlib's terms (:func:`~crimeclass.models._spark_search.mllib_lr_params`);
its coefficients and intercept are set on the pipeline's scikit-learn
``LogisticRegression``, so the run loads like any other.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from crimeclass.models._spark_search import SampleSearch, mllib_lr_params

__all__ = ["fit_lr"]


def fit_lr(data: Any, train: Any, config: Any, num_workers: int, emit: Any,
           search: SampleSearch | None = None) -> Any:
    """Logistic regression with an elastic net (MLlib) on the training rows before the
    validation rows, saved as scikit-learn's LogisticRegression with MLlib's coefficients
    (the search's C and penalty in MLlib's terms: :func:`mllib_lr_params`)."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql.functions import col

    from crimeclass.models._spark_train import _encoded, _scored  # it builds on this module

    t0 = time.perf_counter()
    best = search.params if search else None
    with _encoded("lr", data, train, config, best) as (pipeline, columns, rows):
        emit("stage", {"text": f"lr: MLlib elastic net on Spark ({len(data.X):,} rows)"})
        vectors = rows.withColumn("v", array_to_vector(col("features")))
        fit_rows = vectors.where("NOT _val")
        params = mllib_lr_params(search, fit_rows.count())
        # the encoders scale the numbers: MLlib's own standardization would do it twice
        model = LogisticRegression(
            featuresCol="v", labelCol="label", standardization=False,
            regParam=params["regParam"], elasticNetParam=params["elasticNetParam"],
            maxIter=int(params["maxIter"]), tol=params["tol"]).fit(fit_rows)
        val = model.transform(vectors.where("_val")).select(
            "label", vector_to_array(col("probability"))[1].alias("p")).toArrow()
    est = pipeline.steps[-1][1]
    est.coef_ = model.coefficients.toArray().reshape(1, -1)
    est.intercept_ = np.array([model.intercept])
    est.classes_ = np.array([0, 1])
    est.n_features_in_ = len(columns)
    est.n_iter_ = np.array([model.summary.totalIterations])
    return _scored("lr", pipeline, data, config, val, params, time.perf_counter() - t0)
