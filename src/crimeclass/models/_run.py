"""The run folder: its files, its format version, its one writer and its one reader.

``crimeclass train`` writes a run with :class:`RunWriter`; predict, evaluate and
everything later read it with :func:`open_run` only. The layout (format version
:data:`RUN_FORMAT_VERSION`, recorded in ``config.json``, ``data.json`` and
``metrics.json``):

``config.json``          the training config and the library versions
``data.json``            the data fingerprint: store, window, rows, sha256
``features.json``        the features, with their kind, group and meaning
``features.sql``         the feature query (DuckDB), and ``features.spark.sql``
``metrics.json``         per model: name, features, held-out window, metrics, CV, params
``predictions.parquet``  held-out ``key``, ``date``, the label and ``p_<model>`` per model
``validation.parquet``   ``model``, the label, ``p``: out-of-fold probabilities inside
                         the training period (optional: the first runs lack it)
``models/<name>/``       the saved model, its ``manifest.json`` and ``trials.json``
``comparison.md``, ``report.html``, ``plots/``  the report, for people

A run folder is written under a temporary name and renamed when complete: a
folder with a run's name is whole, an interrupted run leaves a hidden
``.<run-id>.tmp`` folder only.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.features import FeatureSpec, feature_catalog
from crimeclass.models._errors import RunError
from crimeclass.models._metrics import OLD_NAMES
from crimeclass.models._persist import (
    check_manifest_sha256,
    load_model,
    manifest_sha256,
    save_model,
)

__all__ = ["RUN_FILES", "RUN_FORMAT_VERSION", "LoadedModel", "Run", "RunWriter", "open_run",
           "write_json"]

#: The version of the run folder's layout that this crimeclass writes.
RUN_FORMAT_VERSION = 1
#: Versions this crimeclass reads (version 1: the layout above).
READABLE_VERSIONS = (1,)

CONFIG = "config.json"
DATA = "data.json"
FEATURES = "features.json"
FEATURE_SQL = "features.sql"
SPARK_SQL = "features.spark.sql"
METRICS = "metrics.json"
PREDICTIONS = "predictions.parquet"
VALIDATION = "validation.parquet"
MODELS_DIR = "models"
#: Files every run folder holds (``validation.parquet`` is optional).
RUN_FILES = (CONFIG, DATA, FEATURES, METRICS, PREDICTIONS)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, dt.datetime | dt.date):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    return repr(o)


def write_json(path: Path, obj: Any) -> None:
    """``obj`` as indented JSON (numpy scalars, dates and paths as plain values)."""
    path.write_text(json.dumps(obj, indent=2, default=_json_default) + "\n")


# ------------------------------------------------------------------ writer


class RunWriter:
    """Writes one run folder under a temporary name; :meth:`commit` renames it.

    Use it as a context manager: on any error the temporary folder is removed.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d, RunWriter(d, "r1") as w:
    ...     w.path.name
    '.r1.tmp'
    """

    def __init__(self, runs_dir: str | Path, run_id: str) -> None:
        self.runs_dir = Path(runs_dir)
        self.run_id = run_id
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.runs_dir / f".{run_id}.tmp"
        self.path.mkdir()
        (self.path / MODELS_DIR).mkdir()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if kind is not None:
            self.abort()

    def write_config(self, config: dict[str, Any]) -> None:
        write_json(self.path / CONFIG, {"format_version": RUN_FORMAT_VERSION,
                                        "run_id": self.run_id, **config})

    def write_data(self, fingerprint: dict[str, Any]) -> None:
        write_json(self.path / DATA, {"format_version": RUN_FORMAT_VERSION, **fingerprint})

    def write_features(self, features: list[dict[str, Any]], sql: str, spark_sql: str) -> None:
        write_json(self.path / FEATURES, features)
        (self.path / FEATURE_SQL).write_text(sql + "\n")
        (self.path / SPARK_SQL).write_text(spark_sql + "\n")

    def save_model(self, name: str, model: Any, *, saved_as: str, manifest: dict[str, Any],
                   trials: dict[str, Any]) -> None:
        folder = self.path / MODELS_DIR / name
        save_model(model, folder, saved_as=saved_as,
                   manifest={"run_id": self.run_id, **manifest})
        write_json(folder / "trials.json", trials)

    def write_metrics(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Write ``metrics.json``, with the sha256 of each saved model's manifest (so that a
        manifest edited or replaced afterwards is refused on loading); return it."""
        for entry in doc.get("models", []):
            folder = self.path / MODELS_DIR / entry["name"]
            if (folder / "manifest.json").is_file():
                entry["manifest_sha256"] = manifest_sha256(folder)
        full = {"format_version": RUN_FORMAT_VERSION, "run_id": self.run_id, **doc}
        write_json(self.path / METRICS, full)
        return full

    def write_predictions(self, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.path / PREDICTIONS, index=False)

    def write_validation(self, frame: pd.DataFrame) -> None:
        frame.to_parquet(self.path / VALIDATION, index=False)

    def commit(self) -> Path:
        """Rename the finished folder to ``runs_dir/<run-id>``; return it."""
        final = self.runs_dir / self.run_id
        self.path.rename(final)
        return final

    def abort(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


# ------------------------------------------------------------------ reader


@dataclass(frozen=True)
class LoadedModel:
    """A saved model of a run, checked and loaded, with what scoring needs.

    Attributes
    ----------
    name : str
    pipeline : sklearn.pipeline.Pipeline
    manifest : dict
        Its ``manifest.json``.
    spec : FeatureSpec
        The features it reads, as training computed them.
    run_id : str
    """

    name: str
    pipeline: Any
    manifest: dict[str, Any]
    spec: FeatureSpec
    run_id: str

    @property
    def threshold(self) -> float:
        return float(self.manifest["threshold"])

    @property
    def target(self) -> str:
        return str(self.manifest.get("target", "index"))

    @property
    def label(self) -> str:
        return str(self.manifest.get("label", self.spec.label_column))

    @property
    def model_id(self) -> str:
        """``<run-id>/<model>``: names the model in every prediction."""
        return f"{self.run_id}/{self.name}"

    @property
    def feature_names(self) -> list[str]:
        # the model's own columns: a model saved before history_days left the catalog
        # still reads it (scoring computes it for every row)
        return list(self.manifest.get("features")
                    or [f.name for f in feature_catalog(self.spec)])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(positive class) of each row of a feature frame, as float64."""
        X = frame[["date", *self.feature_names]]
        return np.asarray(self.pipeline.predict_proba(X)[:, 1], dtype=np.float64)


@dataclass
class Run:
    """A training run as written by ``crimeclass train`` (see the module docstring).

    Attributes
    ----------
    path : Path
    format_version : int
    config, data, metrics : dict
        ``config.json``, ``data.json``, ``metrics.json`` (metric names as today's).
    features : list of dict
        ``features.json``.
    """

    path: Path
    format_version: int
    config: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    features: list[dict[str, Any]]
    _models: dict[str, LoadedModel] = field(default_factory=dict, init=False, repr=False,
                                            compare=False)

    @property
    def run_id(self) -> str:
        return str(self.metrics.get("run_id", self.path.name))

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.metrics["models"]]

    @property
    def best_model(self) -> str | None:
        return self.metrics.get("best_model")

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.features]

    @property
    def label(self) -> str:
        """The label column: ``is_index`` (target index) or ``arrest`` (target arrest)."""
        return str(self.metrics.get("label", "is_index"))

    @property
    def target(self) -> str:
        return str(self.metrics.get("target", "index"))

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.config["features"])

    def model_entry(self, name: str) -> dict[str, Any]:
        return next(m for m in self.metrics["models"] if m["name"] == name)

    @cached_property
    def predictions(self) -> pd.DataFrame:
        """Held-out ``key``, ``date``, the label and ``p_<model>`` per model."""
        preds = pd.read_parquet(self.path / PREDICTIONS)
        cols = {"key", "date", self.label, *(f"p_{n}" for n in self.model_names)}
        lacking = sorted(cols - set(preds.columns))
        if lacking:
            raise RunError(f"{self.path / PREDICTIONS} lacks the column(s) "
                           f"{', '.join(lacking)}", run=self.path)
        return preds

    @cached_property
    def validation(self) -> pd.DataFrame | None:
        """``model``, the label, ``p`` (out-of-fold), or None for runs written before it."""
        if not (self.path / VALIDATION).is_file():
            return None
        validation = pd.read_parquet(self.path / VALIDATION)
        if not {"model", self.label, "p"} <= set(validation.columns):
            raise RunError(f"{self.path / VALIDATION} lacks model, {self.label} or p",
                           run=self.path)
        return validation

    def store_path(self) -> Path | None:
        """The run's store if it can be found (as recorded, or beside the runs folder)."""
        recorded = Path(self.data["store"])
        candidates = [recorded] if recorded.is_absolute() else [
            recorded, self.path.parent.parent / recorded, self.path.parent / recorded,
            self.path / recorded]
        return next((c.resolve() for c in candidates if c.is_file()), None)

    def load_model(self, name: str | None = None) -> LoadedModel:
        """The saved model ``name`` (the run's best by default), its files checked.

        Raises
        ------
        RunError
            No model ``name``, or a manifest that disagrees with the run's features.
        ModelFileError
            A model file is missing, altered (sha256) or holds an untrusted type.
        """
        name = name or self.best_model
        if name is None:
            raise RunError(f"the run {self.path} names no best model; pass a model name",
                           run=self.path)
        if name not in self.model_names:
            raise RunError(f"the run {self.path.name} has no model {name!r}; its models are: "
                           f"{', '.join(self.model_names)}", run=self.path, model=name)
        if name not in self._models:
            self._models[name] = self._load(name)
        return self._models[name]

    def _load(self, name: str) -> LoadedModel:
        folder = self.path / MODELS_DIR / name
        expected = self.model_entry(name).get("manifest_sha256")
        if expected is not None:  # runs before it was recorded load on their files' hashes
            check_manifest_sha256(folder, expected)
        pipeline, manifest = load_model(folder)
        spec = FeatureSpec.from_dict(manifest.get("feature_spec") or self.config["features"])
        if list(manifest.get("features", [])) != [f.name for f in feature_catalog(spec)]:
            raise RunError(f"the manifest of {name!r} lists other features than its feature "
                           "spec computes: the run folder was edited", run=self.path,
                           model=name)
        if list(manifest["features"]) != self.feature_names:
            raise RunError(f"models/{name}/manifest.json lists other features than "
                           "features.json; the run folder is inconsistent", run=self.path,
                           model=name)
        return LoadedModel(name=name, pipeline=pipeline, manifest=manifest, spec=spec,
                           run_id=str(manifest.get("run_id", self.path.name)))


def _read_json(path: Path, run: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise RunError(f"{path} cannot be read ({e}); the run folder is damaged",
                       run=run) from e


def _upgrade_metrics(doc: dict[str, Any]) -> dict[str, Any]:
    """Metric names of older outputs as today's (``pr_auc`` -> ``average_precision``)."""
    for entry in doc.get("models", []):
        for key in ("metrics", "holdout_metrics"):
            values = entry.get(key)
            if isinstance(values, dict):
                entry[key] = {OLD_NAMES.get(k, k): v for k, v in values.items()}
    return doc


def open_run(path: str | Path) -> Run:
    """Read a run folder; raise :class:`RunError` naming what is missing or inconsistent.

    Reads every format version in :data:`READABLE_VERSIONS`. The held-out
    predictions and validation data are read when first used; a model when
    :meth:`Run.load_model` asks for it.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path} is not a run folder (no such directory)", run=path)
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if missing:
        raise RunError(f"{path} is an incomplete run folder: {', '.join(missing)} missing "
                       "(an interrupted run leaves a hidden .tmp folder, never a run folder)",
                       run=path)
    config = _read_json(path / CONFIG, path)
    version = config.get("format_version", 1)
    if version not in READABLE_VERSIONS:
        raise RunError(f"{path / CONFIG}: run format version {version}; this crimeclass "
                       f"reads version(s) {', '.join(map(str, READABLE_VERSIONS))}", run=path)
    metrics = _upgrade_metrics(_read_json(path / METRICS, path))
    names = [m["name"] for m in metrics.get("models", [])]
    if not names:
        raise RunError(f"{path / METRICS} lists no models", run=path)
    absent = [n for n in names if not (path / MODELS_DIR / n / "manifest.json").is_file()]
    if absent:
        raise RunError(f"{path} is an incomplete run folder: models/{{{','.join(absent)}}}/"
                       "manifest.json missing", run=path)
    return Run(path=path, format_version=int(version), config=config,
               data=_read_json(path / DATA, path), metrics=metrics,
               features=_read_json(path / FEATURES, path))
