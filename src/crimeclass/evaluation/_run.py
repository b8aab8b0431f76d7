"""Reading a training run folder (see ``docs/models.md``) and checking that it is whole."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crimeclass.data import CrimeclassError

__all__ = ["Run", "RunError", "open_run"]

#: Files every run folder holds (``validation.parquet`` is optional: older runs lack it).
RUN_FILES = ("config.json", "data.json", "features.json", "metrics.json",
             "predictions.parquet")


class RunError(CrimeclassError):
    """A run folder is incomplete or inconsistent."""


@dataclass
class Run:
    """A training run as written by ``crimeclass train``.

    Attributes
    ----------
    path : Path
    config, data, metrics : dict
        ``config.json``, ``data.json``, ``metrics.json``.
    features : list of dict
        ``features.json``.
    predictions : DataFrame
        Held-out ``key``, ``date``, the label (:attr:`label`) and ``p_<model>`` per model.
    validation : DataFrame or None
        ``model``, the label, ``p``: out-of-fold probabilities inside the
        training period (None for runs written before it existed).
    """

    path: Path
    config: dict[str, Any]
    data: dict[str, Any]
    metrics: dict[str, Any]
    features: list[dict[str, Any]]
    predictions: pd.DataFrame
    validation: pd.DataFrame | None

    @property
    def model_names(self) -> list[str]:
        return [m["name"] for m in self.metrics["models"]]

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

    def model_entry(self, name: str) -> dict[str, Any]:
        return next(m for m in self.metrics["models"] if m["name"] == name)

    def store_path(self) -> Path | None:
        """The run's store if it can be found (as recorded, or beside the runs folder)."""
        recorded = Path(self.data["store"])
        candidates = [recorded] if recorded.is_absolute() else [
            recorded, self.path.parent.parent / recorded, self.path.parent / recorded,
            self.path / recorded]
        return next((c.resolve() for c in candidates if c.is_file()), None)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise RunError(f"{path} is not valid JSON ({e}); the run folder is damaged") from e


def open_run(path: str | Path) -> Run:
    """Read a run folder; raise :class:`RunError` naming what is missing or inconsistent."""
    path = Path(path)
    if not path.is_dir():
        raise RunError(f"{path} is not a run folder (no such directory)")
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if missing:
        raise RunError(f"{path} is an incomplete run folder: {', '.join(missing)} missing")
    metrics = _json(path / "metrics.json")
    names = [m["name"] for m in metrics.get("models", [])]
    if not names:
        raise RunError(f"{path / 'metrics.json'} lists no models")
    absent = [n for n in names if not (path / "models" / n / "manifest.json").is_file()]
    if absent:
        raise RunError(f"{path} is an incomplete run folder: models/{{{','.join(absent)}}}/"
                       "manifest.json missing")
    label = str(metrics.get("label", "is_index"))
    preds = pd.read_parquet(path / "predictions.parquet")
    cols = {"key", "date", label, *(f"p_{n}" for n in names)}
    lacking = sorted(cols - set(preds.columns))
    if lacking:
        raise RunError(f"{path / 'predictions.parquet'} lacks the column(s) {', '.join(lacking)}")
    validation = None
    if (path / "validation.parquet").is_file():
        validation = pd.read_parquet(path / "validation.parquet")
        if not {"model", label, "p"} <= set(validation.columns):
            raise RunError(f"{path / 'validation.parquet'} lacks model, {label} or p")
    return Run(path=path, config=_json(path / "config.json"), data=_json(path / "data.json"),
               metrics=metrics, features=_json(path / "features.json"), predictions=preds,
               validation=validation)
