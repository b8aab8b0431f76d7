"""Evaluation: metrics with intervals, calibration, slices, drift, explanations, model cards.

Runs are read by :func:`crimeclass.models.open_run`, and the metrics come from
the one registry in :mod:`crimeclass.models` (``METRICS``, ``bootstrap_metrics``,
``paired_bootstrap``, ``choose_threshold``).
"""

from crimeclass.evaluation._drift import drift_summary, psi
from crimeclass.evaluation._errors import (
    EvaluationDataError,
    EvaluationError,
    EvaluationOptionError,
)
from crimeclass.evaluation._evaluate import (
    EVALUATION_FORMAT_VERSION,
    EvaluateConfig,
    check_roc_sanity,
    evaluate_run,
)
from crimeclass.evaluation._explain import permutation_importance, tree_shap
from crimeclass.evaluation._report import (
    interval_text,
    model_card,
    render_markdown,
    write_evaluation,
)
from crimeclass.evaluation._slices import slice_metrics
from crimeclass.models import Calibration, fit_calibration, reliability

__all__ = [
    "EVALUATION_FORMAT_VERSION",
    "Calibration",
    "EvaluateConfig",
    "EvaluationDataError",
    "EvaluationError",
    "EvaluationOptionError",
    "check_roc_sanity",
    "drift_summary",
    "evaluate_run",
    "fit_calibration",
    "interval_text",
    "model_card",
    "permutation_importance",
    "psi",
    "reliability",
    "render_markdown",
    "slice_metrics",
    "tree_shap",
    "write_evaluation",
]
