"""The sections of an evaluation, one function each: metrics, paired test, slices,
explanations, drift. :func:`~crimeclass.evaluation.evaluate_run` calls them in turn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.evaluation._drift import drift_summary
from crimeclass.evaluation._explain import permutation_importance, tree_shap
from crimeclass.evaluation._slices import slice_metrics
from crimeclass.models import (
    INTERVAL_METRICS,
    LoadedModel,
    Run,
    bootstrap_metrics,
    choose_threshold,
    expected_calibration_error,
    fit_calibration,
    paired_bootstrap,
    reliability,
)

__all__ = ["Scored", "Split", "add_explanations", "add_slices", "drift_of", "model_result",
           "paired_tests", "subsample_idx"]

#: ``on_event(kind, info)``: ``stage`` (``text``), ``step`` (``done``, ``total``, ``text``).
EventHandler = Callable[[str, dict[str, Any]], None]

SLICE_COLUMNS = ("district", "community_area", "year")


@dataclass
class Scored:
    """The evaluated rows: labels, each model's probabilities, and where they come from.

    ``frame`` holds the rows' features (None when the run's store is gone);
    ``until`` is the window's end (excluded), if any.
    """

    y: np.ndarray
    probs: dict[str, np.ndarray]
    dates: pd.Series
    frame: pd.DataFrame | None
    store_path: Path | None
    source: dict[str, Any]
    models: dict[str, LoadedModel]
    until: pd.Timestamp | None


@dataclass
class Split:
    """Where thresholds and calibration are fit, and which rows are reported.

    Runs with ``validation.parquet`` fit on it and report every row; older runs
    cut the window at its median date (``first``: the rows before).
    """

    has_val: bool
    first: np.ndarray
    report: np.ndarray
    cal_source: str

    @property
    def need_split(self) -> bool:
        return not self.has_val

    def validation_of(self, run: Run, scored: Scored, name: str
                      ) -> tuple[np.ndarray, np.ndarray]:
        if run.validation is not None:
            v = run.validation[run.validation["model"] == name]
            return v[run.label].to_numpy().astype(int), v["p"].to_numpy(dtype=float)
        return scored.y[self.first], scored.probs[name][self.first]


def subsample_idx(n: int, k: int, seed: int) -> np.ndarray:
    if k <= 0 or n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _threshold(run: Run, scored: Scored, split: Split, name: str, config: Any
               ) -> tuple[float, str]:
    entry = run.model_entry(name)
    if config.threshold_rule == "run":
        return float(entry["threshold"]), entry.get("threshold_rule",
                                                    "chosen by training on validation folds")
    vy, vp = split.validation_of(run, scored, name)
    f1 = config.threshold_rule == "f1"
    thr = choose_threshold(vy, vp, rule="f1" if f1 else "precision",
                           target_precision=config.target_precision)
    return thr, (f"{'best F1' if f1 else 'precision >= '}"
                 f"{'' if f1 else config.target_precision} "
                 f"on {'validation.parquet' if split.has_val else 'the first half'}")


def _calibration(run: Run, scored: Scored, split: Split, name: str, seed: int
                 ) -> dict[str, Any]:
    y, p = scored.y, scored.probs[name]
    vy, vp = split.validation_of(run, scored, name)
    cal = fit_calibration(vy, vp, random_state=seed)
    rows = ~split.first if split.need_split else split.report
    before = float(np.mean((p[rows] - y[rows]) ** 2))
    calibrated = cal.transform(p[rows])
    after = float(np.mean((calibrated - y[rows]) ** 2))
    return {"method": cal.method, "validation_brier": cal.validation_brier,
            "brier_before": before, "brier_after": after,
            "ece_before": expected_calibration_error(y[rows], p[rows]),
            "ece_after": expected_calibration_error(y[rows], calibrated),
            "helps": bool(cal.method != "none" and after < before), "rows": int(rows.sum()),
            "reliability_before": reliability(y[rows], p[rows]),
            "reliability_after": reliability(y[rows], calibrated)}


def model_result(run: Run, scored: Scored, split: Split, name: str, config: Any
                 ) -> dict[str, Any]:
    """A model's metrics with intervals, its threshold, and its calibration."""
    entry = run.model_entry(name)
    thr, thr_source = _threshold(run, scored, split, name, config)
    p, yr = scored.probs[name][split.report], scored.y[split.report]
    intervals = bootstrap_metrics(yr, p, thr, n_boot=config.n_boot, random_state=config.seed)
    return {
        "name": name,
        "title": entry.get("title", name),
        "baseline": bool(entry.get("baseline", False)),
        "threshold": thr,
        "threshold_source": thr_source,
        "metrics": {m: intervals[m].to_dict() for m in INTERVAL_METRICS},
        "rows": int(split.report.sum()),
        "positives": int(yr.sum()),
        "calibration": _calibration(run, scored, split, name, config.seed),
        "training_seconds": entry.get("seconds"),
        "cv": entry.get("cv"),
        "params": entry.get("params"),
    }


def paired_tests(results: list[dict[str, Any]], scored: Scored, split: Split, config: Any,
                 emit: EventHandler) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The models ranked by ROC AUC, and the paired bootstrap of the best against the next."""
    ranked = sorted(results, key=lambda r: -r["metrics"]["roc_auc"]["value"])
    if len(ranked) < 2:
        return ranked, None
    a, b = ranked[0]["name"], ranked[1]["name"]
    emit("stage", {"text": f"paired bootstrap: {a} against {b}"})
    rep = split.report
    return ranked, {"a": a, "b": b, "tests": [
        paired_bootstrap(scored.y[rep], scored.probs[a][rep], scored.probs[b][rep], metric=m,
                         n_boot=config.n_boot, random_state=config.seed).to_dict()
        for m in ("roc_auc", "average_precision", "brier")]}


def _community_names() -> dict[str, str]:
    from crimeclass.explore import community_areas

    t = community_areas().to_pandas()
    return {str(int(k)): str(v) for k, v in zip(t["community_area"], t["name"], strict=True)}


def _groups(scored: Scored) -> dict[str, np.ndarray]:
    groups: dict[str, np.ndarray] = {"year": scored.dates.dt.year.to_numpy()}
    if scored.frame is not None:
        for col in ("district", "community_area"):
            groups[col] = scored.frame[col].astype("string").to_numpy(dtype=object,
                                                                      na_value=None)
    return groups


def add_slices(by: dict[str, dict[str, Any]], scored: Scored, split: Split, config: Any,
               emit: EventHandler) -> None:
    """Metrics per district, community area and year; the much worse slices flagged."""
    groups = _groups(scored)
    cnames = _community_names() if scored.frame is not None else {}
    total, done, rep = len(by) * len(groups), 0, split.report
    for name, r in by.items():
        r["slices"], r["flagged"] = {}, []
        for col in SLICE_COLUMNS:
            if col not in groups:
                continue
            emit("step", {"done": done, "total": total, "text": f"slices: {name} by {col}"})
            done += 1
            rows = slice_metrics(scored.y[rep], scored.probs[name][rep], groups[col][rep],
                                 threshold=r["threshold"], margin=config.slice_margin,
                                 n_boot=config.slice_boot, random_state=config.seed)
            for s in rows:
                if col == "community_area" and s["slice"] is not None:
                    s["name"] = cnames.get(str(s["slice"]))
                if isinstance(s["slice"], np.generic):
                    s["slice"] = s["slice"].item()
                if s["worse"]:
                    r["flagged"].append({"by": col, "slice": s["slice"], "name": s.get("name"),
                                         "rows": s["rows"], "roc_auc": s["roc_auc"]})
            r["slices"][col] = rows


def _shap(model: LoadedModel, X: pd.DataFrame, config: Any, emit: EventHandler
          ) -> tuple[dict[str, Any], Any] | None:
    est = type(model.pipeline.steps[-1][1]).__name__
    if est not in ("EarlyStoppingXGBClassifier", "EarlyStoppingLGBMClassifier",
                   "RandomForestClassifier"):
        return None
    k = config.shap_rows if est.startswith("Early") else config.forest_shap_rows
    emit("stage", {"text": f"SHAP values: {model.name} on {min(k, len(X)):,} rows"})
    sub = X.iloc[subsample_idx(len(X), k, config.seed + 1)]
    shap_out = tree_shap(model.pipeline, sub)
    if shap_out is None:
        return None
    values, inputs = shap_out
    mean_abs = np.abs(values).mean(axis=0)
    order = np.argsort(-mean_abs)
    return {"rows": int(len(sub)), "scale": "log-odds" if est.startswith("Early") else
            "probability", "mean_abs": [{"input": inputs.columns[j], "value": float(mean_abs[j])}
                                        for j in order]}, (values, inputs)


def add_explanations(by: dict[str, dict[str, Any]], run: Run, scored: Scored, split: Split,
                     config: Any, emit: EventHandler) -> dict[str, Any]:
    """Permutation importance of every model, SHAP values of the tree models; the plots'
    inputs."""
    plot_inputs: dict[str, Any] = {"shap": {}}
    if scored.frame is None or config.explain_rows <= 0:
        return plot_inputs
    idx = np.flatnonzero(split.report)
    idx = idx[subsample_idx(len(idx), config.explain_rows, config.seed)]
    X = scored.frame.iloc[idx][["date", *run.feature_names]].reset_index(drop=True)
    ye = scored.y[idx]
    explain = [n for n in by if n != "majority"]
    for i, name in enumerate(explain):
        emit("step", {"done": i, "total": len(explain),
                      "text": f"permutation importance: {name}"})
        by[name]["importance"] = {
            "rows": int(len(X)), "repeats": config.importance_repeats,
            "metric": "ROC AUC lost when the column is shuffled",
            "features": permutation_importance(
                scored.models[name].pipeline, X, ye, run.feature_names,
                n_repeats=config.importance_repeats, random_state=config.seed)}
        shap = _shap(scored.models[name], X, config, emit)
        if shap is not None:
            by[name]["shap"], plot_inputs["shap"][name] = shap
    emit("step", {"done": len(explain), "total": len(explain), "text": "explained"})
    return plot_inputs


def drift_of(train: pd.DataFrame, scored: Scored, names: list[str], config: Any
             ) -> list[dict[str, Any]]:
    """The drift of each feature of the evaluated rows against the training period's."""
    assert scored.frame is not None
    tr = train.iloc[subsample_idx(len(train), config.drift_rows, config.seed)]
    ev = scored.frame.iloc[subsample_idx(len(scored.frame), config.drift_rows, config.seed)]
    return drift_summary(tr[names], ev[names])
