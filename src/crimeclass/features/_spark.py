"""The features on Spark: the one feature query, compiled, left distributed.

:func:`read_features` collects a Spark engine's feature frame to the driver (as
pandas); :func:`spark_features` keeps it a Spark DataFrame, for training and
scoring on a cluster. Both run the same statement (:func:`store_feature_sql`),
with the history windows as window frames (``RANGE BETWEEN n PRECEDING AND 1
PRECEDING``, written as growing frames: see :mod:`crimeclass.features._sql`), the
formulation that defines them: the vectorized kernel that
DuckDB uses computes the same numbers on one machine
(``tests/features/test_spark_features.py`` checks the two against each other on
the bundled sample).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crimeclass.engines import Engine
from crimeclass.features._catalog import FeatureSpec
from crimeclass.features._errors import FeaturesError
from crimeclass.features._sql import store_feature_sql

__all__ = ["spark_features"]


def spark_features(engine: Engine, spec: FeatureSpec | None = None, *,
                   since: str | dt.date | None = None, until: str | dt.date | None = None,
                   labeled_only: bool = True) -> Any:
    """The features of the incidents in ``[since, until)`` as a Spark DataFrame.

    Parameters
    ----------
    engine : crimeclass.engines.SparkEngine
        Its incidents (``SparkEngine.from_input``, or an export).
    spec : FeatureSpec, optional
    since, until : str or date, optional
    labeled_only : bool, default=True

    Returns
    -------
    pyspark.sql.DataFrame
        The columns of :func:`read_features` (``key``, ``date``, the label, the
        features: categories as strings, numbers as FLOAT), ordered by date and key.

    Raises
    ------
    FeaturesError
        An engine that is not Spark's.
    """
    if engine.name != "spark" or not hasattr(engine, "frame"):
        raise FeaturesError(f"spark_features runs on a Spark engine, not {engine.name!r}; "
                            "use read_features", option="engine", value=engine.name)
    sql = store_feature_sql(engine, spec, since=since, until=until, labeled_only=labeled_only)
    return engine.frame(sql)
