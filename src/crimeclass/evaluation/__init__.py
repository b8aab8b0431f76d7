"""Evaluation: metrics with intervals, calibration, slices, drift, explanations, model cards."""

from crimeclass.evaluation._calibration import Calibration, fit_calibration, reliability
from crimeclass.evaluation._drift import drift_summary, psi
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
from crimeclass.evaluation._slices import slice_metrics

__all__ = [
    "METRICS",
    "Calibration",
    "Interval",
    "PairedTest",
    "average_precision",
    "bootstrap_metrics",
    "choose_threshold",
    "drift_summary",
    "fit_calibration",
    "paired_bootstrap",
    "point_metrics",
    "psi",
    "reliability",
    "roc_auc",
    "slice_metrics",
]
