"""Evaluate a training run: on its held-out period, or on any other data.

:func:`evaluate_run` reads a run folder (``crimeclass train``), checks every
model file against its sha256, and computes for each model the held-out
metrics with bootstrap intervals, a paired bootstrap test of the best model
against the runner-up, calibration (fit on validation data), metrics per
district, community area and year with the much worse slices flagged,
permutation importance and SHAP values, the drift of each feature against
the training period, and a model card. :func:`write_evaluation` writes it all
into a folder under a temporary name and renames it when complete.

Where the validation data comes from is stated in every output: runs written
by this version hold ``validation.parquet`` (out-of-fold probabilities of each
model's best trial on time-ordered folds inside the training period). For
older runs, the evaluation window is cut at its median date: calibration (and a
threshold rule other than the run's) is fit on the first half and everything
it touches is reported on the second half only.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from crimeclass.evaluation._calibration import fit_calibration, reliability
from crimeclass.evaluation._drift import drift_summary
from crimeclass.evaluation._explain import permutation_importance, tree_shap
from crimeclass.evaluation._metrics import (
    METRICS,
    bootstrap_metrics,
    choose_threshold,
    paired_bootstrap,
)
from crimeclass.evaluation._run import Run, RunError, open_run
from crimeclass.evaluation._slices import slice_metrics

__all__ = ["EVALUATION_FORMAT_VERSION", "EvaluateConfig", "check_roc_sanity", "evaluate_run"]

EVALUATION_FORMAT_VERSION = 1

#: ``on_event(kind, info)``: ``stage`` (``text``), ``step`` (``done``, ``total``, ``text``).
EventHandler = Callable[[str, dict[str, Any]], None]

SLICE_COLUMNS = ("district", "community_area", "year")
LOWER_IS_BETTER = ("log_loss", "brier")


@dataclass(frozen=True)
class EvaluateConfig:
    """How an evaluation is computed.

    Parameters
    ----------
    threshold_rule : {"run", "f1", "precision"}
        ``run``: each model's threshold as chosen by training (best F1 on its
        validation folds); ``f1`` or ``precision`` (with ``target_precision``):
        chosen again on the validation data, never on the evaluated rows.
    target_precision : float, optional
    n_boot : int
        Bootstrap replicates of the metric intervals and the paired test.
    slice_boot : int
        Bootstrap replicates per slice.
    slice_margin : float
        A slice is flagged when its interval of ROC AUC lies more than this
        below the whole (see :func:`slice_metrics`).
    explain_rows : int
        Rows (a seeded subsample) for permutation importance; 0 skips explanations.
    importance_repeats : int
        Shuffles per feature column.
    shap_rows : int
        Rows for XGBoost's SHAP values.
    forest_shap_rows : int
        Rows for the random forest's SHAP values (``TreeExplainer`` is slow on deep forests).
    drift_rows : int
        Rows of each period (a seeded subsample) compared for drift.
    seed : int
    """

    threshold_rule: Literal["run", "f1", "precision"] = "run"
    target_precision: float | None = None
    n_boot: int = 1000
    slice_boot: int = 200
    slice_margin: float = 0.05
    explain_rows: int = 20_000
    importance_repeats: int = 2
    shap_rows: int = 2_000
    forest_shap_rows: int = 100
    drift_rows: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.threshold_rule not in ("run", "f1", "precision"):
            raise ValueError(f"unknown threshold rule {self.threshold_rule!r}; use run, f1 "
                             "or precision")
        if self.threshold_rule == "precision" and not (
                self.target_precision is not None and 0 < self.target_precision <= 1):
            raise ValueError("the precision rule needs a target precision in (0, 1]")
        if self.n_boot < 10 or self.slice_boot < 10:
            raise ValueError("n_boot and slice_boot must be at least 10")


def _no_event(kind: str, info: dict[str, Any]) -> None:
    pass


def _ts(value: str | dt.date | None) -> pd.Timestamp | None:
    return None if value is None else pd.Timestamp(value)


@contextmanager
def _temporary_store(data: Path, emit: EventHandler,
                     accounts: list[dict[str, Any]]) -> Iterator[Path]:
    """``data`` as a store: itself if it is one, else ingested into a temporary store.

    The ingest accounts (rows read, loaded, quarantined and why) go into ``accounts``.
    """
    from crimeclass.data import Store, expand_paths, open_source

    if data.is_file() and data.suffix in (".duckdb", ".db"):
        yield data
        return
    files = expand_paths([data])
    sources = [open_source(f) for f in files]
    with tempfile.TemporaryDirectory(prefix="crimeclass-eval-") as tmp:
        path = Path(tmp) / "evaluate.duckdb"
        with Store(path) as st:
            for i, src in enumerate(sources):
                emit("stage", {"text": f"ingesting {src.path.name} ({i + 1}/{len(sources)})"})
                a = st.ingest(src)
                accounts.append({"source": a.source, "read": a.read,
                                 "inserted": a.inserted, "updated": a.updated,
                                 "quarantined": a.quarantined,
                                 "quarantine_reasons": a.quarantine_reasons})
        yield path


def _required_columns(features: list[dict[str, Any]], label: str) -> set[str]:
    return {c for f in features for c in f["uses"] if c != label}


def _check_sources(data: Path, need: set[str]) -> None:
    """Refuse files that lack a column the features read (before anything is ingested)."""
    from crimeclass.data import expand_paths, open_source

    if data.is_file() and data.suffix in (".duckdb", ".db"):
        return
    for f in expand_paths([data]):
        missing = sorted(need - set(open_source(f).header.columns))
        if missing:
            raise ValueError(f"{f}: missing column(s) {', '.join(missing)} that the run's "
                             "features read; nothing was evaluated")


def _read_frame(store_path: Path, run: Run, since: pd.Timestamp | None,
                until: pd.Timestamp | None) -> pd.DataFrame:
    from crimeclass.data import Store
    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import FeatureSpec, read_features

    spec = FeatureSpec.from_dict(run.config["features"])
    with Store(store_path, read_only=True) as st:
        st.require_rows()
        frame = read_features(DuckDBEngine.from_store(st), spec, since=since, until=until)
    frame = frame[frame[run.label].notna()].reset_index(drop=True)
    missing = [c for c in run.feature_names if c not in frame.columns]
    if missing:
        raise RunError(f"the features of {store_path} lack {', '.join(missing)}")
    return frame


def _subsample_idx(n: int, k: int, seed: int) -> np.ndarray:
    if k <= 0 or n <= k:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=k, replace=False))


def _community_names() -> dict[str, str]:
    from crimeclass.explore import community_areas

    t = community_areas().to_pandas()
    return {str(int(k)): str(v) for k, v in zip(t["community_area"], t["name"], strict=True)}


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    config: EvaluateConfig | None = None,
    on_event: EventHandler | None = None,
) -> dict[str, Any]:
    """Evaluate every model of a run; return the evaluation (nothing is written).

    Parameters
    ----------
    run_dir : str or Path
        A run folder written by ``crimeclass train``.
    data : str or Path, optional
        A store, or files / a folder that ``crimeclass ingest`` reads (ingested
        into a temporary store with the usual validation and quarantine). None:
        the run's own held-out period (its stored predictions).
    since, until : str or date, optional
        The window (``until`` excluded); with ``data`` None, inside the held-out period.
    config : EvaluateConfig, optional
    on_event : callable, optional

    Returns
    -------
    dict
        The evaluation (see ``docs/results.md``); the plots' inputs under ``_plot``.

    Raises
    ------
    RunError
        An incomplete run folder.
    ModelFileError
        A model file that does not match its recorded sha256.
    ValueError
        Input without a column the features read, a window without labeled rows.
    """
    from crimeclass.models import load_model

    config = config or EvaluateConfig()
    emit = on_event or _no_event
    t0 = time.perf_counter()
    run = open_run(run_dir)
    names = run.model_names
    notes: list[str] = []
    if run.metrics.get("allow_arrest"):
        notes.append(run.metrics.get("arrest_warning", "these models use Arrest"))

    models: dict[str, Any] = {}

    def load_models() -> None:
        emit("stage", {"text": f"checking and loading {len(names)} models"})
        for i, name in enumerate(names):
            model, manifest = load_model(run.path / "models" / name)
            if list(manifest["features"]) != run.feature_names:
                raise RunError(f"models/{name}/manifest.json lists other features than "
                               "features.json; the run folder is inconsistent")
            models[name] = model
            emit("step", {"done": i + 1, "total": len(names), "text": "loading models"})

    hold = run.metrics["holdout"]
    lo, hi = _ts(since), _ts(until)
    store_path: Path | None
    if data is None:
        h_lo, h_hi = pd.Timestamp(hold["since"]), pd.Timestamp(hold["until"])
        lo = max(lo, h_lo) if lo is not None else h_lo
        hi = min(hi, h_hi) if hi is not None else h_hi
        preds = run.predictions
        preds = preds[(preds["date"] >= lo) & (preds["date"] < hi)].reset_index(drop=True)
        if len(preds) == 0:
            raise ValueError(f"no held-out rows from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}; the "
                             f"held-out period is {hold['since'][:10]} to {hold['until'][:10]}")
        load_models()  # checks every file's sha256, even where the stored predictions suffice
        store_path = run.store_path()
        frame: pd.DataFrame | None = None
        if store_path is not None:
            emit("stage", {"text": f"computing features from {store_path.name}"})
            frame = _read_frame(store_path, run, lo, hi)
            frame = preds[["key"]].merge(frame, on="key", how="left", validate="one_to_one")
            if frame["date"].isna().any():
                raise RunError(f"{store_path} no longer holds {int(frame['date'].isna().sum())} "
                               "of the run's held-out incidents; evaluate with --data")
        else:
            notes.append(f"the run's store ({run.data['store']}) was not found: slices by "
                         "district and community area, explanations and drift are skipped")
        y = preds[run.label].to_numpy().astype(int)
        probs = {n: preds[f"p_{n}"].to_numpy(dtype=float) for n in names}
        dates = preds["date"]
        source: dict[str, Any] = {"kind": "held-out period of the run",
                                  "store": str(store_path)}
    else:
        data = Path(data)
        if not data.exists():
            raise FileNotFoundError(f"{data}: no such file or folder")
        _check_sources(data, _required_columns(run.features, run.label))
        accounts: list[dict[str, Any]] = []
        with _temporary_store(data, emit, accounts) as sp:
            emit("stage", {"text": "computing features"})
            frame = _read_frame(sp, run, lo, hi)
        if len(frame) == 0:
            raise ValueError(f"{data} holds no labeled incidents from "
                             f"{'the start' if lo is None else f'{lo:%Y-%m-%d}'} to "
                             f"{'the end' if hi is None else f'{hi:%Y-%m-%d}'}")
        load_models()
        y = frame[run.label].to_numpy().astype(int)
        X = frame[["date", *run.feature_names]]
        probs = {}
        for i, name in enumerate(names):
            emit("step", {"done": i, "total": len(names), "text": f"scoring {name}"})
            probs[name] = np.asarray(models[name].predict_proba(X)[:, 1], dtype=float)
        emit("step", {"done": len(names), "total": len(names), "text": "scored"})
        dates = frame["date"]
        store_path = run.store_path()
        source = {"kind": "other data", "path": str(data), "ingested": accounts}
        quarantined = sum(a["quarantined"] for a in accounts)
        if quarantined:
            notes.append(f"{quarantined:,} of {sum(a['read'] for a in accounts):,} rows read "
                         "were quarantined by the ingest checks and not scored")
        t_since = pd.Timestamp(run.metrics["train"]["since"])
        t_until = pd.Timestamp(run.metrics["train"]["until"])
        if dates.min() < t_until and dates.max() >= t_since:
            notes.append(f"the data overlaps the training period ({t_since:%Y-%m-%d} to "
                         f"{t_until:%Y-%m-%d}): those rows are not unseen")
    if len(np.unique(y)) < 2:
        raise ValueError("the window holds one class only; ROC AUC and most metrics need both")

    # validation data, or the split of the evaluation window
    has_val = run.validation is not None
    need_split = not has_val
    cut = dates.sort_values().iloc[len(dates) // 2]
    first = (dates < cut).to_numpy()
    report = ~first if (need_split and config.threshold_rule != "run") else np.ones(len(y), bool)
    if has_val:
        cal_source = ("validation folds inside the training period (validation.parquet: "
                      "out-of-fold probabilities of each model's best trial)")
    else:
        cal_source = (f"FALLBACK, the run has no validation.parquet: fit on the first half of "
                      f"the evaluation window (before {cut:%Y-%m-%d %H:%M}, {int(first.sum()):,} "
                      f"rows) and reported on the second half ({int((~first).sum()):,} rows)")
        notes.append("calibration: " + cal_source)
        if config.threshold_rule != "run":
            notes.append("thresholds were chosen on the first half of the window; every "
                         "metric is reported on the second half only")

    def validation_of(name: str) -> tuple[np.ndarray, np.ndarray]:
        if run.validation is not None:
            v = run.validation[run.validation["model"] == name]
            return v[run.label].to_numpy().astype(int), v["p"].to_numpy(dtype=float)
        return y[first], probs[name][first]

    results: list[dict[str, Any]] = []
    for i, name in enumerate(names):
        emit("step", {"done": i, "total": len(names), "text": f"metrics: {name}"})
        entry = run.model_entry(name)
        if config.threshold_rule == "run":
            thr, thr_source = float(entry["threshold"]), entry.get(
                "threshold_rule", "chosen by training on validation folds")
        else:
            vy, vp = validation_of(name)
            thr = choose_threshold(vy, vp, rule="f1" if config.threshold_rule == "f1"
                                   else "precision", target_precision=config.target_precision)
            thr_source = (f"{'best F1' if config.threshold_rule == 'f1' else 'precision >= '}"
                          f"{'' if config.threshold_rule == 'f1' else config.target_precision} "
                          f"on {'validation.parquet' if has_val else 'the first half'}")
        p, yr = probs[name][report], y[report]
        intervals = bootstrap_metrics(yr, p, thr, n_boot=config.n_boot,
                                      random_state=config.seed)
        vy, vp = validation_of(name)
        cal = fit_calibration(vy, vp, random_state=config.seed)
        rows = ~first if need_split else report
        before = float(np.mean((probs[name][rows] - y[rows]) ** 2))
        calibrated = cal.transform(probs[name][rows])
        after = float(np.mean((calibrated - y[rows]) ** 2))
        results.append({
            "name": name,
            "title": entry.get("title", name),
            "baseline": bool(entry.get("baseline", False)),
            "threshold": thr,
            "threshold_source": thr_source,
            "metrics": {m: intervals[m].to_dict() for m in METRICS},
            "rows": int(report.sum()),
            "positives": int(yr.sum()),
            "calibration": {
                "method": cal.method,
                "validation_brier": cal.validation_brier,
                "brier_before": before,
                "brier_after": after,
                "helps": bool(cal.method != "none" and after < before),
                "rows": int(rows.sum()),
                "reliability_before": reliability(y[rows], probs[name][rows]),
                "reliability_after": reliability(y[rows], calibrated),
            },
            "training_seconds": entry.get("seconds"),
            "cv": entry.get("cv"),
            "params": entry.get("params"),
        })
    by = {r["name"]: r for r in results}

    ranked = sorted((r for r in results), key=lambda r: -r["metrics"]["roc_auc"]["value"])
    paired = None
    if len(ranked) >= 2:
        a, b = ranked[0]["name"], ranked[1]["name"]
        emit("stage", {"text": f"paired bootstrap: {a} against {b}"})
        paired = {"a": a, "b": b, "tests": [
            paired_bootstrap(y[report], probs[a][report], probs[b][report], metric=m,
                             n_boot=config.n_boot, random_state=config.seed).to_dict()
            for m in ("roc_auc", "pr_auc", "brier")]}

    # slices
    groups: dict[str, np.ndarray] = {"year": dates.dt.year.to_numpy()}
    cnames: dict[str, str] = {}
    if frame is not None:
        groups["district"] = frame["district"].astype("string").to_numpy(dtype=object,
                                                                      na_value=None)
        cnames = _community_names()
        groups["community_area"] = frame["community_area"].astype("string").to_numpy(
            dtype=object, na_value=None)
    total = len(names) * len(groups)
    done = 0
    for name in names:
        r = by[name]
        r["slices"], r["flagged"] = {}, []
        for col in SLICE_COLUMNS:
            if col not in groups:
                continue
            emit("step", {"done": done, "total": total, "text": f"slices: {name} by {col}"})
            done += 1
            rows = slice_metrics(y[report], probs[name][report], groups[col][report],
                                 threshold=r["threshold"], margin=config.slice_margin,
                                 n_boot=config.slice_boot, random_state=config.seed)
            for s in rows:
                if col == "community_area" and s["slice"] is not None:
                    s["name"] = cnames.get(str(s["slice"]))
                if isinstance(s["slice"], np.generic):
                    s["slice"] = s["slice"].item()
                if s["worse"]:
                    r["flagged"].append({"by": col, "slice": s["slice"],
                                         "name": s.get("name"), "rows": s["rows"],
                                         "roc_auc": s["roc_auc"]})
            r["slices"][col] = rows

    # explanations
    plot_inputs: dict[str, Any] = {"shap": {}}
    if frame is not None and config.explain_rows > 0:
        idx = np.flatnonzero(report)
        idx = idx[_subsample_idx(len(idx), config.explain_rows, config.seed)]
        X = frame.iloc[idx][["date", *run.feature_names]].reset_index(drop=True)
        ye = y[idx]
        explain = [n for n in names if n != "majority"]
        for i, name in enumerate(explain):
            emit("step", {"done": i, "total": len(explain),
                          "text": f"permutation importance: {name}"})
            by[name]["importance"] = {
                "rows": int(len(X)), "repeats": config.importance_repeats,
                "metric": "ROC AUC lost when the column is shuffled",
                "features": permutation_importance(
                    models[name], X, ye, run.feature_names,
                    n_repeats=config.importance_repeats, random_state=config.seed)}
            est = type(models[name].steps[-1][1]).__name__
            if est in ("EarlyStoppingXGBClassifier", "RandomForestClassifier"):
                k = config.shap_rows if est.startswith("Early") else config.forest_shap_rows
                emit("stage", {"text": f"SHAP values: {name} on {min(k, len(X)):,} rows"})
                sub = X.iloc[_subsample_idx(len(X), k, config.seed + 1)]
                shap_out = tree_shap(models[name], sub)
                if shap_out is not None:
                    values, inputs = shap_out
                    mean_abs = np.abs(values).mean(axis=0)
                    order = np.argsort(-mean_abs)
                    by[name]["shap"] = {
                        "rows": int(len(sub)),
                        "scale": "log-odds" if est.startswith("Early") else "probability",
                        "mean_abs": [{"input": inputs.columns[j], "value": float(mean_abs[j])}
                                     for j in order]}
                    plot_inputs["shap"][name] = (values, inputs)
        emit("step", {"done": len(explain), "total": len(explain), "text": "explained"})

    # drift against the training period
    drift: list[dict[str, Any]] | None = None
    if frame is not None and store_path is not None:
        emit("stage", {"text": "drift: computing the training period's features"})
        train = _read_frame(store_path, run, pd.Timestamp(run.metrics["train"]["since"]),
                            pd.Timestamp(run.metrics["train"]["until"]))
        tr = train.iloc[_subsample_idx(len(train), config.drift_rows, config.seed)]
        ev = frame.iloc[_subsample_idx(len(frame), config.drift_rows, config.seed)]
        drift = drift_summary(tr[run.feature_names], ev[run.feature_names])
    elif frame is not None:
        notes.append("drift skipped: the run's training store was not found")

    best = ranked[0]["name"]
    doc = {
        "format_version": EVALUATION_FORMAT_VERSION,
        "run_id": run.metrics.get("run_id", run.path.name),
        "run_dir": str(run.path),
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "source": source,
        "window": {"since": str(dates.min()), "until_excluded": None if hi is None else str(hi),
                   "first": str(dates.min()), "last": str(dates.max()),
                   "rows": int(len(y)), "reported_rows": int(report.sum()),
                   "positive_share": float(y.mean()),
                   **({"index_share": float(y.mean())} if run.target == "index" else {})},
        "target": run.target,
        "label": run.label,
        "train": run.metrics["train"],
        "holdout": hold,
        "allow_arrest": bool(run.metrics.get("allow_arrest", False)),
        "config": asdict(config),
        "threshold_rule": config.threshold_rule,
        "calibration_source": cal_source,
        "validation": "validation.parquet" if has_val else "none (split of the window)",
        "best_model": best,
        "ranking": [r["name"] for r in ranked],
        "paired": paired,
        "models": results,
        "drift": drift,
        "notes": notes,
        "seconds": round(time.perf_counter() - t0, 1),
        "_plot": plot_inputs,
    }
    return doc


def check_roc_sanity(doc: dict[str, Any]) -> list[str]:
    """Warnings for results that look too good to be true (ROC AUC above 0.9: a leak?)."""
    return [f"{r['name']}: ROC AUC {r['metrics']['roc_auc']['value']:.3f} is above 0.9; on "
            "this task that is far more likely a leak than a good model"
            for r in doc["models"] if r["metrics"]["roc_auc"]["value"] > 0.9]

