"""Evaluate a training run: on its held-out period, or on any other data.

:func:`evaluate_run` reads a run folder (``crimeclass train``), checks every
model file against its sha256, and computes for each model the held-out
metrics with bootstrap intervals, a paired bootstrap test of the best model
against the runner-up, the drop of each model's ROC AUC from its validation
figure (flagged beyond 0.02: :mod:`crimeclass.evaluation._holds`), calibration
(fit on validation data), metrics per
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

from crimeclass.evaluation._errors import EvaluationDataError, EvaluationOptionError
from crimeclass.evaluation._holds import add_validation_drops
from crimeclass.evaluation._sections import (
    Scored,
    Split,
    add_explanations,
    add_slices,
    drift_of,
    model_result,
    paired_tests,
)
from crimeclass.models import Features, LoadedModel, Run, RunError, open_run, score_features

__all__ = ["EVALUATION_FORMAT_VERSION", "EvaluateConfig", "check_roc_sanity", "evaluate_run"]

EVALUATION_FORMAT_VERSION = 1

#: ``on_event(kind, info)``: ``stage`` (``text``), ``step`` (``done``, ``total``, ``text``).
EventHandler = Callable[[str, dict[str, Any]], None]


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
            raise EvaluationOptionError(f"unknown threshold rule {self.threshold_rule!r}; use "
                                        "run, f1 or precision", option="--threshold-rule",
                                        value=self.threshold_rule)
        if self.threshold_rule == "precision" and not (
                self.target_precision is not None and 0 < self.target_precision <= 1):
            raise EvaluationOptionError("the precision rule needs a target precision in "
                                        "(0, 1]", option="--target-precision",
                                        value=self.target_precision)
        for name, option in (("n_boot", "--n-boot"), ("slice_boot", "slice_boot")):
            if getattr(self, name) < 10:
                raise EvaluationOptionError("n_boot and slice_boot must be at least 10",
                                            option=option, value=getattr(self, name))


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
    from crimeclass.data import Store, expand_paths, is_duckdb_file, open_source

    if is_duckdb_file(data):
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


def _check_sources(data: Path, run: Run) -> None:
    """Refuse files that lack a column the features read (before anything is ingested)."""
    from crimeclass.data import expand_paths, is_duckdb_file, open_source

    if is_duckdb_file(data):
        return
    need = {c for f in run.features for c in f["uses"] if c != run.label}
    for f in expand_paths([data]):
        missing = sorted(need - set(open_source(f).header.columns))
        if missing:
            raise EvaluationDataError(f"{f}: missing column(s) {', '.join(missing)} that the "
                                      "run's features read; nothing was evaluated", path=f)


def _read_frame(store_path: Path, run: Run, since: pd.Timestamp | None,
                until: pd.Timestamp | None) -> pd.DataFrame:
    """The labeled incidents of ``[since, until)`` with their features, as training read them."""
    from crimeclass.data import Store
    from crimeclass.engines import DuckDBEngine
    from crimeclass.features import read_features

    with Store(store_path, read_only=True) as st:
        st.require_rows()
        frame = read_features(DuckDBEngine.from_store(st), run.feature_spec, since=since,
                              until=until)
    frame = frame[frame[run.label].notna()].reset_index(drop=True)
    missing = [c for c in run.feature_names if c not in frame.columns]
    if missing:
        raise RunError(f"the features of {store_path} lack {', '.join(missing)}", run=run.path)
    return frame


def _store_features(store_path: Path, run: Run, since: pd.Timestamp | None,
                    until: pd.Timestamp | None) -> Features | None:
    """The labeled incidents of a store's window, ordered by date and key, through the
    scoring core (the store is their history); None when the window holds none."""
    from crimeclass.data import Store
    from crimeclass.models import feature_query, window_sql

    spec = run.feature_spec
    window = window_sql(None if since is None else since.isoformat(),
                        None if until is None else until.isoformat())
    with Store(store_path, read_only=True) as st:
        st.require_rows()
        con = st.con.cursor()
        try:
            (n,) = con.execute(f"SELECT count(*) FROM incidents WHERE {window}").fetchall()[0]
            if not n:
                return None
            sql, _ = feature_query(con, spec, inputs="incidents", window=window,
                                   history_is_input=True, temp=True)
            features = Features.from_arrow(con.sql(sql).to_arrow_table(), spec)
        finally:
            con.close()
    f = features.frame
    labeled = np.flatnonzero(f[run.label].notna().to_numpy())
    order = np.lexsort((f["key"].to_numpy()[labeled], f["date"].to_numpy()[labeled]))
    return features.take(labeled[order])


def _load_models(run: Run, emit: EventHandler) -> dict[str, LoadedModel]:
    """Every model of the run, each file checked against its sha256."""
    emit("stage", {"text": f"checking and loading {len(run.model_names)} models"})
    models = {}
    for i, name in enumerate(run.model_names):
        models[name] = run.load_model(name)
        emit("step", {"done": i + 1, "total": len(run.model_names), "text": "loading models"})
    return models


def _held_out(run: Run, lo: pd.Timestamp | None, hi: pd.Timestamp | None,
              emit: EventHandler, notes: list[str], store_path: Path | None) -> Scored:
    """The run's held-out period (inside ``[lo, hi)``): its stored predictions."""
    hold = run.metrics["holdout"]
    h_lo, h_hi = pd.Timestamp(hold["since"]), pd.Timestamp(hold["until"])
    lo = max(lo, h_lo) if lo is not None else h_lo
    hi = min(hi, h_hi) if hi is not None else h_hi
    preds = run.predictions
    preds = preds[(preds["date"] >= lo) & (preds["date"] < hi)].reset_index(drop=True)
    if len(preds) == 0:
        raise EvaluationDataError(f"no held-out rows from {lo:%Y-%m-%d} to {hi:%Y-%m-%d}; the "
                                  f"held-out period is {hold['since'][:10]} to "
                                  f"{hold['until'][:10]}", path=run.path, rows=0)
    models = _load_models(run, emit)  # checks every sha256, even where predictions suffice
    frame: pd.DataFrame | None = None
    if store_path is not None:
        emit("stage", {"text": f"computing features from {store_path.name}"})
        frame = _read_frame(store_path, run, lo, hi)
        frame = preds[["key"]].merge(frame, on="key", how="left", validate="one_to_one")
        if frame["date"].isna().any():
            raise RunError(f"{store_path} no longer holds {int(frame['date'].isna().sum())} "
                           "of the run's held-out incidents; evaluate with --data",
                           run=run.path)
    else:
        notes.append(f"the run's store ({run.data['store']}) was not found: slices by "
                     "district and community area, explanations and drift are skipped")
    return Scored(y=preds[run.label].to_numpy().astype(int),
                  probs={n: preds[f"p_{n}"].to_numpy(dtype=float) for n in run.model_names},
                  dates=preds["date"], frame=frame, store_path=store_path,
                  source={"kind": "held-out period of the run", "store": str(store_path)},
                  models=models, until=hi)


def _other_data(run: Run, data: Path, lo: pd.Timestamp | None, hi: pd.Timestamp | None,
                emit: EventHandler, notes: list[str], store_path: Path | None) -> Scored:
    """Other data (a store, or files ingested with the usual checks), scored by each model."""
    if not data.exists():
        raise FileNotFoundError(f"{data}: no such file or folder")
    _check_sources(data, run)
    accounts: list[dict[str, Any]] = []
    with _temporary_store(data, emit, accounts) as sp:
        emit("stage", {"text": "computing features"})
        features = _store_features(sp, run, lo, hi)
    if features is None or len(features) == 0:
        raise EvaluationDataError(f"{data} holds no labeled incidents from "
                                  f"{'the start' if lo is None else f'{lo:%Y-%m-%d}'} to "
                                  f"{'the end' if hi is None else f'{hi:%Y-%m-%d}'}",
                                  path=data, rows=0)
    models = _load_models(run, emit)
    probs = {}
    for i, name in enumerate(run.model_names):
        emit("step", {"done": i, "total": len(models), "text": f"scoring {name}"})
        probs[name] = score_features(features, models[name]).probability
    emit("step", {"done": len(models), "total": len(models), "text": "scored"})
    frame = features.frame
    _note_data(run, frame["date"], accounts, notes)
    return Scored(y=frame[run.label].to_numpy().astype(int), probs=probs, dates=frame["date"],
                  frame=frame, store_path=store_path,
                  source={"kind": "other data", "path": str(data), "ingested": accounts},
                  models=models, until=hi)


def _note_data(run: Run, dates: pd.Series, accounts: list[dict[str, Any]],
               notes: list[str]) -> None:
    quarantined = sum(a["quarantined"] for a in accounts)
    if quarantined:
        notes.append(f"{quarantined:,} of {sum(a['read'] for a in accounts):,} rows read "
                     "were quarantined by the ingest checks and not scored")
    t_since = pd.Timestamp(run.metrics["train"]["since"])
    t_until = pd.Timestamp(run.metrics["train"]["until"])
    if dates.min() < t_until and dates.max() >= t_since:
        notes.append(f"the data overlaps the training period ({t_since:%Y-%m-%d} to "
                     f"{t_until:%Y-%m-%d}): those rows are not unseen")


def _split(run: Run, scored: Scored, config: EvaluateConfig, notes: list[str]) -> Split:
    """Validation data, or the split of the evaluation window at its median date."""
    dates, has_val = scored.dates, run.validation is not None
    cut = dates.sort_values().iloc[len(dates) // 2]
    first = (dates < cut).to_numpy()
    report = (~first if (not has_val and config.threshold_rule != "run")
              else np.ones(len(scored.y), bool))
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
    return Split(has_val=has_val, first=first, report=report, cal_source=cal_source)


def _drift(run: Run, scored: Scored, config: EvaluateConfig, emit: EventHandler,
           notes: list[str]) -> list[dict[str, Any]] | None:
    if scored.frame is None:
        return None
    if scored.store_path is None:
        notes.append("drift skipped: the run's training store was not found")
        return None
    emit("stage", {"text": "drift: computing the training period's features"})
    train = _read_frame(scored.store_path, run, pd.Timestamp(run.metrics["train"]["since"]),
                        pd.Timestamp(run.metrics["train"]["until"]))
    return drift_of(train, scored, run.feature_names, config)


def _training_store(run: Run, store: str | Path | None) -> Path | None:
    """The run's training store: ``store`` where given (it must exist), else as recorded."""
    if store is None:
        return run.store_path()
    if not Path(store).is_file():
        raise EvaluationDataError(f"the store {store} (--store) does not exist", path=store,
                                  rows=0)
    return Path(store)


def evaluate_run(
    run_dir: str | Path,
    *,
    data: str | Path | None = None,
    since: str | dt.date | None = None,
    until: str | dt.date | None = None,
    config: EvaluateConfig | None = None,
    on_event: EventHandler | None = None,
    store: str | Path | None = None,
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
    store : str or Path, optional
        The store the run was trained on (``--store``), where it is not where the
        run recorded it: the features of the held-out incidents, slices and drift
        are read from it.

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
    EvaluationDataError
        Input without a column the features read, a window without labeled
        rows or with one class only.
    """
    config = config or EvaluateConfig()
    emit = on_event or _no_event
    t0 = time.perf_counter()
    run = open_run(run_dir)
    notes: list[str] = []
    if run.metrics.get("allow_arrest"):
        notes.append(run.metrics.get("arrest_warning", "these models use Arrest"))
    lo, hi = _ts(since), _ts(until)
    store_path = _training_store(run, store)
    scored = (_held_out(run, lo, hi, emit, notes, store_path) if data is None
              else _other_data(run, Path(data), lo, hi, emit, notes, store_path))
    if len(np.unique(scored.y)) < 2:
        raise EvaluationDataError("the window holds one class only; ROC AUC and most metrics "
                                  "need both", rows=len(scored.y))
    split = _split(run, scored, config, notes)
    results = []
    for i, name in enumerate(run.model_names):
        emit("step", {"done": i, "total": len(run.model_names), "text": f"metrics: {name}"})
        results.append(model_result(run, scored, split, name, config))
    add_validation_drops(run, results, notes)  # flags a model that does not hold
    ranked, paired = paired_tests(results, scored, split, config, emit)
    by = {r["name"]: r for r in results}
    add_slices(by, scored, split, config, emit)
    plot_inputs = add_explanations(by, run, scored, split, config, emit)
    drift = _drift(run, scored, config, emit, notes)
    return _document(run, scored, split, config, results, ranked, paired, drift, notes,
                     plot_inputs, time.perf_counter() - t0)


def _document(run: Run, scored: Scored, split: Split, config: EvaluateConfig,
              results: list[dict[str, Any]], ranked: list[dict[str, Any]],
              paired: dict[str, Any] | None, drift: list[dict[str, Any]] | None,
              notes: list[str], plot_inputs: dict[str, Any], seconds: float
              ) -> dict[str, Any]:
    y, dates, hi = scored.y, scored.dates, scored.until
    return {
        "format_version": EVALUATION_FORMAT_VERSION,
        "run_id": run.run_id,
        "run_dir": str(run.path),
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "source": scored.source,
        "window": {"since": str(dates.min()), "until_excluded": None if hi is None else str(hi),
                   "first": str(dates.min()), "last": str(dates.max()),
                   "rows": int(len(y)), "reported_rows": int(split.report.sum()),
                   "positive_share": float(y.mean()),
                   **({"index_share": float(y.mean())} if run.target == "index" else {})},
        "target": run.target,
        "label": run.label,
        "train": run.metrics["train"],
        "holdout": run.metrics["holdout"],
        "allow_arrest": bool(run.metrics.get("allow_arrest", False)),
        "config": asdict(config),
        "threshold_rule": config.threshold_rule,
        "calibration_source": split.cal_source,
        "validation": "validation.parquet" if split.has_val else "none (split of the window)",
        "best_model": ranked[0]["name"],
        "ranking": [r["name"] for r in ranked],
        "paired": paired,
        "validation_drops": [r["name"] for r in results if r["validation_drop"]["flagged"]],
        "models": results,
        "drift": drift,
        "notes": notes,
        "seconds": round(seconds, 1),
        "_plot": plot_inputs,
    }


def check_roc_sanity(doc: dict[str, Any]) -> list[str]:
    """Warnings for results that look too good to be true (ROC AUC above 0.9: a leak?)."""
    return [f"{r['name']}: ROC AUC {r['metrics']['roc_auc']['value']:.3f} is above 0.9; on "
            "this task that is far more likely a leak than a good model"
            for r in doc["models"] if r["metrics"]["roc_auc"]["value"] > 0.9]
