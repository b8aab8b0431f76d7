"""Features known when an incident is reported, and the guard that keeps the label out."""

from crimeclass.engines import to_spark_sql  # the one Spark compiler, for feature statements
from crimeclass.features._arrow import arrow_features
from crimeclass.features._catalog import (
    BASE_WINDOWS,
    DEFAULT_LATEST,
    DEFAULT_WINDOWS,
    FEATURE_GROUPS,
    LABEL_COLUMNS,
    MORE_PLACES,
    MORE_SCALES,
    TARGETS,
    Feature,
    FeatureKind,
    FeatureSpec,
    HistoryWindow,
    Latest,
    Target,
    feature_catalog,
)
from crimeclass.features._encoders import (
    CategoryCodes,
    PreprocessStyle,
    embedding_columns,
    make_preprocessor,
)
from crimeclass.features._errors import FeaturesError
from crimeclass.features._frame import feature_frame
from crimeclass.features._leakage import (
    AFTER_THE_FACT,
    DEFINE_LABEL,
    NOT_FEATURES,
    LeakageError,
    LeakageGuard,
    check_features,
    forbidden_reason,
)
from crimeclass.features._online import HistoryIndex
from crimeclass.features._report import CASE_SERIES_SQL, REPORT_NEIGHBOURS
from crimeclass.features._spark import spark_features
from crimeclass.features._sql import (
    META_COLUMNS,
    feature_sql,
    history_sums,
    holiday_rows,
    meta_columns,
    read_features,
    report_rows_sql,
    store_feature_sql,
    table_history_sums,
)

__all__ = [
    "arrow_features",
    "BASE_WINDOWS",
    "DEFAULT_LATEST",
    "DEFAULT_WINDOWS",
    "Latest",
    "MORE_PLACES",
    "MORE_SCALES",
    "HistoryIndex",
    "AFTER_THE_FACT",
    "DEFINE_LABEL",
    "FEATURE_GROUPS",
    "META_COLUMNS",
    "NOT_FEATURES",
    "REPORT_NEIGHBOURS",
    "CASE_SERIES_SQL",
    "CategoryCodes",
    "Feature",
    "FeatureKind",
    "FeatureSpec",
    "FeaturesError",
    "HistoryWindow",
    "LABEL_COLUMNS",
    "LeakageError",
    "LeakageGuard",
    "TARGETS",
    "Target",
    "PreprocessStyle",
    "check_features",
    "embedding_columns",
    "feature_catalog",
    "feature_frame",
    "feature_sql",
    "forbidden_reason",
    "holiday_rows",
    "make_preprocessor",
    "meta_columns",
    "history_sums",
    "read_features",
    "report_rows_sql",
    "spark_features",
    "table_history_sums",
    "store_feature_sql",
    "to_spark_sql",
]
