"""What the service serves: a run's model and its history, and how a request is scored.

A request is scored as ``crimeclass predict`` scores a file of the same incidents with
the same history store: validated by the data layer (:mod:`._incidents`), the features
from the online index (:func:`~crimeclass.models.online_features`, the same values as
the batch query), the model's probabilities, decisions and the three features that
moved each score most (each model's own log-odds terms: tree SHAP for XGBoost, from its
leaf contributions tabled when the model is loaded, and LightGBM; coefficient times
input for the logistic regression; the stacked ensemble's bases' terms weighed by its
meta-learner: :class:`~crimeclass.models.Explainer`). A request
holding an incident the store holds already is scored by the batch query itself
(:func:`~crimeclass.models.score`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.models import (
    Explainer,
    Features,
    LoadedModel,
    Run,
    TimeStackClassifier,
    held_keys,
    incident_features,
    model_explainer,
    online_features_many,
    open_run,
    run_calibration,
    score_with_reasons,
    verify_run,
)
from crimeclass.serve._errors import ServeError
from crimeclass.serve._history import History
from crimeclass.serve._incidents import IGNORED_FIELDS, Validated, connection

__all__ = ["Serving", "json_text", "jsonable", "load_serving"]


@dataclass
class Serving:
    """A run's model with its history: what one request is scored with, start to end."""

    run: Run
    model: LoadedModel
    history: History
    loaded_at: dt.datetime
    calibration: Any = None  # models.Calibration from the run's validation data, if any
    explainer: Explainer | None = None  # the model's log-odds terms, for the reasons

    def describe(self) -> dict[str, Any]:
        """The model's part of every answer."""
        m = self.model
        return {"run_id": self.run.run_id, "name": m.name, "model_id": m.model_id,
                "target": m.target, "threshold": m.threshold,
                "calibration": None if self.calibration is None else self.calibration.method,
                "ignored_fields": list(IGNORED_FIELDS)}

    def score(self, v: Validated, n: int) -> list[dict[str, Any]]:
        """One result per incident of a request of ``n``, in its order."""
        return self.score_many([(v, n)])[0]

    def score_many(self, requests: list[tuple[Validated, int]]) -> list[list[dict[str, Any]]]:
        """The results of several requests, each scored on its own (one feature query and
        one model call for all of those the online path takes)."""
        results = [_rejected(v, n) for v, n in requests]
        index = self.history.index
        online = [i for i, (v, _) in enumerate(requests)
                  if v.rows.num_rows and not held_keys(v.rows, index)]
        if online:
            with connection() as con:
                feats = online_features_many([requests[i][0].rows for i in online],
                                             self.model.spec, index, self.history.cover, con)
            self._fill(results, [requests[i][0] for i in online], online, feats)
        for i, (v, _) in enumerate(requests):
            if v.rows.num_rows and i not in online:  # the batch query, on the store
                self._fill(results, [v], [i], self._batch_features(v))
        return results

    def _batch_features(self, v: Validated) -> Features:
        """The batch query's features of rows that hold an incident the store holds."""
        def run(store: Any) -> Features:
            return incident_features(v.rows, self.model.spec, history=store)

        return self.history.with_store(run)

    def _fill(self, results: list[list[dict[str, Any]]], requests: list[Validated],
              which: list[int], feats: Features) -> None:
        """The scores of ``feats`` (the rows of ``requests``, one after the other) into the
        results of the requests at ``which``."""
        p, reasons = score_with_reasons(self.model, feats.frame,
                                        explainer=self.explainer)
        decision = p >= self.model.threshold
        calibrated: list[float | None] = (
            [float(c) for c in self.calibration.transform(p)] if self.calibration is not None
            else [None] * len(p))
        complete, days = feats.history_complete, feats.history_days
        j = 0
        for i, v in zip(which, requests, strict=True):
            for pos, id_ in zip(v.positions, v.rows.column("id").to_pylist(), strict=True):
                results[i][pos] = {
                    "index": pos, "id": id_, "probability": float(p[j]),
                    "probability_calibrated": calibrated[j],
                    "decision": bool(decision[j]),
                    "reasons": reasons[j] if reasons else [],
                    "history_complete": bool(complete[j]), "history_days": float(days[j])}
                j += 1


def _rejected(v: Validated, n: int) -> list[dict[str, Any]]:
    """The results of a request of ``n`` with its rejected incidents filled in."""
    results: list[dict[str, Any]] = [{} for _ in range(n)]
    for r in v.rejected:
        results[r.index] = {"index": r.index, "id": r.id, "errors": r.problems}
    return results


def card_text(run: Run, name: str) -> str | None:
    """The model card of a model of the run (written by evaluate), if there is one."""
    path = run.path / "models" / name / "model_card.md"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _intervals(run: Run) -> dict[str, Any]:
    """Each model's metrics with bootstrap intervals, where ``crimeclass evaluate`` wrote
    them into the run (``evaluation/evaluation.json``)."""
    path = run.path / "evaluation" / "evaluation.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        return {m["name"]: m["metrics"] for m in doc["models"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def model_entry(run: Run, name: str, intervals: dict[str, Any]) -> dict[str, Any]:
    """A model of the run as ``GET /v1/models`` lists it."""
    entry = run.model_entry(name)
    keep = ("title", "baseline", "target", "threshold", "threshold_rule", "metrics",
            "holdout", "cv")
    return {"name": name, "best": name == run.best_model,
            **{k: entry.get(k) for k in keep if k in entry},
            "intervals": intervals.get(name)}


def check_run(run_dir: str | Path, *, model: str | None = None,
              verify_key: str | Path | None = None) -> tuple[Run, LoadedModel]:
    """The run's model, checked (hashes, types, and the signature with ``verify_key``) as
    :func:`load_serving` checks it, without its history: a refusal before the server starts."""
    if verify_key is not None:
        verify_run(Path(run_dir), Path(verify_key))
    run = open_run(run_dir)
    return run, run.load_model(model)


def load_serving(run_dir: str | Path, store: str | Path, *, model: str | None = None,
                 verify_key: str | Path | None = None,
                 history: History | None = None) -> Serving:
    """Load a run's model (checked: manifest hashes, and the signature with ``verify_key``)
    and its history (``history`` reused where its features are the model's)."""
    run, loaded = check_run(run_dir, model=model, verify_key=verify_key)
    _xgboost_on_one_thread(loaded.pipeline)
    if history is None or history.spec != loaded.spec:
        history = History(Path(store), loaded.spec)
    return Serving(run=run, model=loaded, history=history, loaded_at=dt.datetime.now(dt.UTC),
                   calibration=run_calibration(run, loaded.name),
                   explainer=model_explainer(loaded.pipeline, loaded.feature_names))


def _xgboost_on_one_thread(pipeline: Any) -> None:
    """XGBoost's boosters of a pipeline (a stack's bases' too) set to one thread: a
    request's few rows cost more to hand to threads than to score (LightGBM's booster
    has no set_param: its threads are a parameter of each predict call)."""
    est = pipeline.steps[-1][1]
    bases = est.estimators_ if isinstance(est, TimeStackClassifier) else []
    for step in [est, *(base.steps[-1][1] for _, base in bases)]:
        set_param = getattr(getattr(step, "booster_", None), "set_param", None)
        if set_param is not None:
            set_param({"nthread": 1})


def models_doc(serving: Serving) -> dict[str, Any]:
    """``GET /v1/models``: the run, its models, features, metrics and windows."""
    run = serving.run
    metrics = run.metrics
    intervals = _intervals(run)
    return {"run_id": run.run_id, "serving": serving.describe(),
            "features": run.feature_names,
            "trained_window": metrics.get("train"), "held_out_window": metrics.get("holdout"),
            "primary_metric": metrics.get("primary_metric"),
            "models": [model_entry(run, n, intervals) for n in run.model_names],
            "history": serving.history.info()}


def jsonable(obj: Any) -> Any:
    """``obj`` with what JSON lacks (NaN, numpy numbers, times) made plain."""
    return json.loads(json.dumps(obj, default=_plain), parse_constant=lambda c: None)


def json_text(obj: Any) -> str:
    """``json.dumps(jsonable(obj))`` (NaN and infinities as null), in one pass where
    ``obj`` holds none of them (a 1,000-incident answer: a third of the time)."""
    try:
        return json.dumps(obj, default=_plain, allow_nan=False)
    except ValueError:
        return json.dumps(jsonable(obj))


def _plain(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, dt.datetime | dt.date | Path | pa.Scalar):
        return str(o)
    raise TypeError(type(o).__name__)


def check_model_name(serving: Serving, name: str) -> None:
    if name not in serving.run.model_names:
        raise ServeError(f"the run has no model {name!r}", status=404, field="name")
