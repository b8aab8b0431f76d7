"""Models: baselines and the five classifiers behind one interface, search, training runs.

A run folder is written by :func:`train` and read by :func:`open_run` only; a
model of a run scores incidents through :func:`score` (in memory) or
:func:`predict` (files and stores, in bounded memory).
"""

from crimeclass.models._baselines import GroupRateClassifier
from crimeclass.models._calibration import (
    Calibration,
    fit_calibration,
    reliability,
    run_calibration,
)
from crimeclass.models._config import TrainConfig
from crimeclass.models._contrib import (
    Explainer,
    model_explainer,
    score_with_reasons,
    top_contributions,
)
from crimeclass.models._cv import CVKind, TimeOrderedSplit, check_folds, make_cv
from crimeclass.models._errors import (
    ModelOptionError,
    ModelsError,
    PredictError,
    RunError,
    TrainingDataError,
)
from crimeclass.models._final_round import FinalRound, final_round
from crimeclass.models._keras import KerasTabularClassifier
from crimeclass.models._lgbm import EarlyStoppingLGBMClassifier
from crimeclass.models._metrics import (
    ECE_BINS,
    HELD_OUT_METRICS,
    INTERVAL_METRICS,
    METRICS,
    Interval,
    Metric,
    PairedTest,
    average_precision,
    binary_metrics,
    bootstrap_metrics,
    choose_threshold,
    expected_calibration_error,
    paired_bootstrap,
    point_metrics,
    roc_auc,
)
from crimeclass.models._persist import (
    MODEL_FORMAT_VERSION,
    TRUSTED_TYPES,
    ModelFileError,
    check_manifest_sha256,
    load_model,
    manifest_sha256,
    save_model,
)
from crimeclass.models._predict import PredictOptions, PredictResult, predict, quarantine_path
from crimeclass.models._recency import RecencyPipeline, recency_weights
from crimeclass.models._registry import (
    BASELINES,
    MODELS,
    STACK_BASES,
    ModelFamily,
    baselines_for,
    default_models,
    make_model,
    parse_model_names,
)
from crimeclass.models._run import (
    RUN_FORMAT_VERSION,
    LoadedModel,
    Run,
    RunWriter,
    open_run,
)
from crimeclass.models._score import (
    OUTPUT_COLUMNS,
    Features,
    Scores,
    feature_query,
    incident_features,
    required_columns,
    score,
    score_features,
    window_sql,
)
from crimeclass.models._score_online import (
    DayCover,
    held_keys,
    online_features,
    online_features_many,
)
from crimeclass.models._search import SCORERS, OptunaSearchCV, Scoring
from crimeclass.models._signing import SIGNATURE_FILE, SignatureError, sign_run, verify_run
from crimeclass.models._spark_predict import SparkPredictResult, spark_predict
from crimeclass.models._spark_train import SPARK_MODELS, spark_train
from crimeclass.models._stack import TimeStackClassifier
from crimeclass.models._train import TrainResult, train
from crimeclass.models._treeshap import TreeShap
from crimeclass.models._window import Window, complete_years, period_text, resolve_window
from crimeclass.models._xgb import EarlyStoppingXGBClassifier

__all__ = [
    "RecencyPipeline",
    "recency_weights",
    "Calibration",
    "fit_calibration",
    "reliability",
    "run_calibration",
    "DayCover",
    "held_keys",
    "online_features",
    "online_features_many",
    "top_contributions",
    "score_with_reasons",
    "model_explainer",
    "Explainer",
    "TreeShap",
    "verify_run",
    "sign_run",
    "manifest_sha256",
    "check_manifest_sha256",
    "SignatureError",
    "SIGNATURE_FILE",
    "SPARK_MODELS",
    "BASELINES",
    "ECE_BINS",
    "HELD_OUT_METRICS",
    "INTERVAL_METRICS",
    "METRICS",
    "MODELS",
    "STACK_BASES",
    "MODEL_FORMAT_VERSION",
    "OUTPUT_COLUMNS",
    "RUN_FORMAT_VERSION",
    "SCORERS",
    "TRUSTED_TYPES",
    "CVKind",
    "EarlyStoppingLGBMClassifier",
    "EarlyStoppingXGBClassifier",
    "Features",
    "GroupRateClassifier",
    "Interval",
    "KerasTabularClassifier",
    "LoadedModel",
    "Metric",
    "ModelFamily",
    "ModelFileError",
    "ModelOptionError",
    "ModelsError",
    "OptunaSearchCV",
    "FinalRound",
    "final_round",
    "PairedTest",
    "PredictError",
    "PredictOptions",
    "PredictResult",
    "Run",
    "RunError",
    "RunWriter",
    "Scores",
    "Scoring",
    "SparkPredictResult",
    "TimeOrderedSplit",
    "TimeStackClassifier",
    "TrainConfig",
    "TrainResult",
    "TrainingDataError",
    "Window",
    "average_precision",
    "baselines_for",
    "binary_metrics",
    "bootstrap_metrics",
    "check_folds",
    "choose_threshold",
    "expected_calibration_error",
    "complete_years",
    "feature_query",
    "incident_features",
    "load_model",
    "make_cv",
    "make_model",
    "open_run",
    "paired_bootstrap",
    "default_models",
    "parse_model_names",
    "point_metrics",
    "predict",
    "quarantine_path",
    "required_columns",
    "period_text",
    "resolve_window",
    "roc_auc",
    "save_model",
    "score",
    "score_features",
    "spark_predict",
    "spark_train",
    "train",
    "window_sql",
]
