"""The linear SVM on Spark: MLlib's LinearSVC, its margins calibrated to probabilities.

MLlib's :class:`~pyspark.ml.classification.LinearSVC` (hinge loss, L2 penalty) is fitted on
the encoded training rows before the validation rows; Platt scaling, a logistic function of
the margin, is fitted on the validation rows' margins (one machine calibrates by 3-fold
Platt scaling inside the training rows). A logistic function of a linear margin is a
logistic regression: ``sigmoid(a * (w . x + b) + c)`` is saved as scikit-learn's
``LogisticRegression`` with coefficients ``a * w`` and intercept ``a * b + c``, after the
same encoders, so the run loads like any other.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

__all__ = ["fit_svm"]


def fit_svm(data: Any, train: Any, config: Any, num_workers: int, emit: Any,
            search: Any = None) -> Any:
    """Fit the calibrated linear SVM of a Spark run (see the module docstring); its
    ``regParam`` is the search's ``alpha`` (:mod:`~crimeclass.models._spark_search`)."""
    import pyarrow as pa
    from pyspark.ml.classification import LinearSVC
    from pyspark.ml.functions import array_to_vector, vector_to_array
    from pyspark.sql.functions import col
    from sklearn.linear_model import LogisticRegression

    from crimeclass.models._spark_train import _encoded, _scored

    t0 = time.perf_counter()
    alpha = search.param("model__estimator__svc__alpha", 1e-4) if search else 1e-4
    params: dict[str, float] = {"regParam": float(alpha), "maxIter": 100, "tol": 1e-6}
    with _encoded("lr", data, train, config) as (pipeline, columns, rows):
        emit("stage", {"text": f"svm: MLlib LinearSVC on Spark ({len(data.X):,} rows)"})
        vectors = rows.withColumn("v", array_to_vector(col("features")))
        model = LinearSVC(featuresCol="v", labelCol="label", standardization=False,
                          regParam=params["regParam"], maxIter=int(params["maxIter"]),
                          tol=params["tol"]).fit(vectors.where("NOT _val"))
        val = model.transform(vectors.where("_val")).select(
            "label", vector_to_array(col("rawPrediction"))[1].alias("margin")).toArrow()
    margin = val.column("margin").to_numpy().reshape(-1, 1)
    yv = val.column("label").to_numpy().astype(int)
    platt = LogisticRegression(C=1e6).fit(margin, yv)
    a, c = float(platt.coef_[0, 0]), float(platt.intercept_[0])
    est = pipeline.steps[-1][1]  # the logistic function of the margin
    est.coef_ = a * model.coefficients.toArray().reshape(1, -1)
    est.intercept_ = np.array([a * model.intercept + c])
    est.classes_ = np.array([0, 1])
    est.n_features_in_ = len(columns)
    est.n_iter_ = np.array([int(params["maxIter"])])
    p = platt.predict_proba(margin)[:, 1]
    calibrated = pa.table({"label": val.column("label"), "p": pa.array(p)})
    fitted = _scored("svm", pipeline, data, config, calibrated,
                     {**params, "platt_a": a, "platt_c": c}, time.perf_counter() - t0)
    fitted.entry["calibration"] = "Platt scaling on the validation rows' margins"
    return fitted
