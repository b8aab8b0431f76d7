"""Evaluation: metrics with intervals, calibration, slices, drift, explanations, model cards."""

from crimeclass.evaluation._calibration import Calibration, fit_calibration, reliability
from crimeclass.evaluation._drift import drift_summary, psi
from crimeclass.evaluation._evaluate import (
    EVALUATION_FORMAT_VERSION,
    EvaluateConfig,
    check_roc_sanity,
    evaluate_run,
)
from crimeclass.evaluation._explain import permutation_importance, tree_shap
from crimeclass.evaluation._metrics import (
    METRICS,
    Interval,
    PairedTest,
    average_precision,
    bootstrap_metrics,
    choose_threshold,
    paired_bootstrap,
    point_metrics,
    roc_auc,
)
from crimeclass.evaluation._report import model_card, render_markdown, write_evaluation
from crimeclass.evaluation._run import Run, RunError, open_run
from crimeclass.evaluation._slices import slice_metrics

__all__ = [
    "EVALUATION_FORMAT_VERSION",
    "METRICS",
    "Calibration",
    "EvaluateConfig",
    "Run",
    "RunError",
    "Interval",
    "PairedTest",
    "average_precision",
    "bootstrap_metrics",
    "check_roc_sanity",
    "choose_threshold",
    "drift_summary",
    "evaluate_run",
    "fit_calibration",
    "model_card",
    "open_run",
    "paired_bootstrap",
    "permutation_importance",
    "point_metrics",
    "psi",
    "reliability",
    "render_markdown",
    "roc_auc",
    "slice_metrics",
    "tree_shap",
    "write_evaluation",
]
