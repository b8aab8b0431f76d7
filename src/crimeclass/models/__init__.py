"""Models: baselines and the five classifiers behind one interface, search, training runs."""

from crimeclass.models._baselines import GroupRateClassifier
from crimeclass.models._cv import CVKind, TimeOrderedSplit, check_folds, make_cv
from crimeclass.models._keras import KerasTabularClassifier
from crimeclass.models._metrics import METRICS, binary_metrics, choose_threshold
from crimeclass.models._persist import (
    MODEL_FORMAT_VERSION,
    TRUSTED_TYPES,
    ModelFileError,
    load_model,
    save_model,
)
from crimeclass.models._predict import (
    OUTPUT_COLUMNS,
    PredictOptions,
    PredictResult,
    RunError,
    load_run_model,
    predict,
    quarantine_path,
    required_columns,
)
from crimeclass.models._registry import (
    BASELINES,
    MODELS,
    ModelFamily,
    baselines_for,
    make_model,
    parse_model_names,
)
from crimeclass.models._search import SCORERS, OptunaSearchCV, Scoring
from crimeclass.models._train import RUN_FORMAT_VERSION, TrainConfig, TrainResult, train
from crimeclass.models._window import Window, complete_years, resolve_window
from crimeclass.models._xgb import EarlyStoppingXGBClassifier

__all__ = [
    "BASELINES",
    "METRICS",
    "MODELS",
    "MODEL_FORMAT_VERSION",
    "OUTPUT_COLUMNS",
    "RUN_FORMAT_VERSION",
    "SCORERS",
    "TRUSTED_TYPES",
    "CVKind",
    "EarlyStoppingXGBClassifier",
    "GroupRateClassifier",
    "KerasTabularClassifier",
    "ModelFamily",
    "ModelFileError",
    "OptunaSearchCV",
    "PredictOptions",
    "PredictResult",
    "RunError",
    "Scoring",
    "TimeOrderedSplit",
    "TrainConfig",
    "TrainResult",
    "Window",
    "baselines_for",
    "binary_metrics",
    "check_folds",
    "choose_threshold",
    "complete_years",
    "load_model",
    "load_run_model",
    "make_cv",
    "make_model",
    "parse_model_names",
    "predict",
    "quarantine_path",
    "required_columns",
    "resolve_window",
    "save_model",
    "train",
]
