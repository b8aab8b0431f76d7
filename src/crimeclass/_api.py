"""The command line's verbs as Python functions, for notebooks and scripts.

``crimeclass.ingest``, ``info``, ``explore``, ``train``, ``evaluate`` and
``predict`` do what the commands of the same name do and return small result
objects that show themselves as the command's tables: as text (``repr``) and as
HTML in a notebook (``_repr_html_``). See docs/python.md for a walk through.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Evaluation",
    "Ingested",
    "Prediction",
    "Report",
    "StoreInfo",
    "TrainedRun",
    "evaluate",
    "explore",
    "info",
    "ingest",
    "predict",
    "train",
]

PathLike = str | os.PathLike[str]
EventHandler = Callable[[str, dict[str, Any]], None]


def _store(store: PathLike | None) -> Path:
    from crimeclass.data import default_store_path

    return Path(store) if store is not None else default_store_path()


class _Shown:
    """Shows itself through :meth:`_parts` (Rich renderables): text and HTML."""

    def _parts(self) -> list[Any]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        from crimeclass.cli._render import as_text

        return as_text(*self._parts())

    def _repr_html_(self) -> str:
        from crimeclass.cli._render import as_html

        return as_html(*self._parts())


# ----------------------------------------------------------------- the store


@dataclass(repr=False)
class Ingested(_Shown):
    """What :func:`ingest` loaded: one account per file, and their sum."""

    store: Path
    accounts: list[Any]

    @property
    def summary(self) -> dict[str, Any]:
        """The summed account, as ``crimeclass ingest --json`` prints it."""
        from crimeclass.data import total

        return {**total(self.accounts), "store": str(self.store)}

    def _parts(self) -> list[Any]:
        from crimeclass.cli._render import account_note, accounts_table

        return [accounts_table(self.accounts), *(account_note(a) for a in self.accounts),
                f"store: {self.store}"]


def ingest(sources: PathLike | Sequence[PathLike] | None = None, *, sample: bool = False,
           store: PathLike | None = None, memory_limit: str = "1GB") -> Ingested:
    """Validate, label and load crime records into a store (``crimeclass ingest``).

    Parameters
    ----------
    sources : path or list of paths, optional
        CSV, CSV.gz or Parquet exports, or folders of them.
    sample : bool, default=False
        Also load the real sample bundled with crimeclass.
    store : path, optional
        The store (created if missing); the default store if omitted.
    memory_limit : str, default="1GB"

    Returns
    -------
    Ingested
        The account of each file (each file is loaded in its own transaction).
    """
    from crimeclass.data import IngestOptions, Store, expand_paths, ingest_files, sample_files

    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    if not sources and not sample:
        raise ValueError("name the files to load, or pass sample=True for the bundled sample")
    files = expand_paths([Path(s) for s in sources or []]) + (sample_files() if sample else [])
    options = IngestOptions(memory_limit=memory_limit)
    path = _store(store)
    with Store(path) as st:
        accounts = ingest_files(st, files, options)
    return Ingested(path, accounts)


class StoreInfo(dict[str, Any], _Shown):
    """What a store holds (``crimeclass info``): a dict, shown as two tables."""

    def _parts(self) -> list[Any]:
        from crimeclass.cli._render import info_tables

        return list(info_tables(self))

    __repr__ = _Shown.__repr__


def info(store: PathLike | None = None) -> StoreInfo:
    """Rows, dates, years, index share, labels and quarantine of a store."""
    from crimeclass.data import Store

    with Store(_store(store), read_only=True) as st:
        return StoreInfo(st.info())


# ------------------------------------------------------------------- explore


class Report(dict[str, Any], _Shown):
    """The summary of :func:`explore` (a dict): its findings and where the report is."""

    def _parts(self) -> list[Any]:
        from rich.text import Text

        return [*(Text(f"- {f}") for f in self["findings"]), Text(f"report: {self['report']}")]

    __repr__ = _Shown.__repr__


def explore(store: PathLike | None = None, out: PathLike = "explore-report", *,
            since: str | None = None, until: str | None = None, types: Sequence[str] = (),
            districts: Sequence[int] = (), engine: str = "duckdb", plots: bool = True,
            spark_master: str = "local[*]", parquet: PathLike | None = None) -> Report:
    """Descriptive statistics of a store's incidents, written to ``out`` (``crimeclass
    explore``): report.html, and every table as CSV and Parquet."""
    from crimeclass.explore import explore as run
    from crimeclass.explore import parse_filters

    if engine not in ("duckdb", "spark"):
        raise ValueError(f"unknown engine {engine!r}; engines are: duckdb, spark")
    filters = parse_filters(since, until, tuple(types), tuple(districts))
    path = None if (engine == "spark" and parquet is not None and store is None) \
        else _store(store)
    return Report(run(path, out, filters, engine=engine,  # type: ignore[arg-type]
                      spark_master=spark_master,
                      parquet=None if parquet is None else Path(parquet), plots=plots))


# --------------------------------------------------------------------- train


@dataclass(repr=False)
class TrainedRun(_Shown):
    """A training run (``runs/<run-id>/``): its folder and metrics; a path-like of the folder."""

    run_dir: Path
    metrics: dict[str, Any]

    @property
    def best_model(self) -> str | None:
        return self.metrics["best_model"]

    def __fspath__(self) -> str:
        return str(self.run_dir)

    def _parts(self) -> list[Any]:
        from crimeclass.cli._render import comparison_table

        return [comparison_table(self.metrics),
                f"* best by held-out {self.metrics['primary_metric']}: {self.best_model}",
                f"run: {self.run_dir}"]


def train(store: PathLike | None = None, *, models: str | Sequence[str] | None = None,
          runs_dir: PathLike = "runs", on_event: EventHandler | None = None,
          **config: Any) -> TrainedRun:
    """Train, tune and compare classifiers on a store (``crimeclass train``).

    ``models`` are short names (``"lr,xgb"`` or ``["lr", "xgb"]``; by default every family
    the target allows, see :func:`~crimeclass.models.default_models`); the other
    keywords are those of :class:`~crimeclass.models.TrainConfig` (``trials``,
    ``folds``, ``target``, ``holdout``, ``sample``, ``seed``, ...).
    """
    from crimeclass.models import TrainConfig, parse_model_names
    from crimeclass.models import train as run_training

    names = models if isinstance(models, str) or models is None else ",".join(models)
    cfg = TrainConfig(models=tuple(parse_model_names(names)) if names else None, **config)
    result = run_training(_store(store), cfg, runs_dir=Path(runs_dir), on_event=on_event)
    return TrainedRun(Path(result.run_dir), result.metrics)


# ------------------------------------------------------------------ evaluate


@dataclass(repr=False)
class Evaluation(_Shown):
    """An evaluation of a run (``evaluation.json``) and the folder it was written to."""

    doc: dict[str, Any]
    out: Path

    def summary(self) -> dict[str, Any]:
        """What ``crimeclass evaluate --json`` prints."""
        doc = self.doc
        return {
            "run_id": doc["run_id"], "out": str(self.out), "source": doc["source"],
            "window": doc["window"], "best_model": doc["best_model"],
            "threshold_rule": doc["threshold_rule"],
            "calibration_source": doc["calibration_source"],
            "models": [{"name": r["name"], "baseline": r["baseline"],
                        "threshold": r["threshold"], "metrics": r["metrics"],
                        "calibration": {k: r["calibration"][k] for k in
                                        ("method", "brier_before", "brier_after", "helps")},
                        "flagged": r["flagged"]} for r in doc["models"]],
            "paired": doc["paired"], "notes": doc["notes"]}

    def _parts(self) -> list[Any]:
        from crimeclass.cli._render import evaluation_tables, paired_line

        line = paired_line(self.doc)
        return [*evaluation_tables(self.doc), *([line] if line else []),
                *(f"note: {n}" for n in self.doc["notes"]), f"evaluation: {self.out}"]


def evaluate(run: PathLike, *, data: PathLike | None = None, since: str | None = None,
             until: str | None = None, out: PathLike | None = None,
             on_event: EventHandler | None = None, store: PathLike | None = None,
             **config: Any) -> Evaluation:
    """Evaluate a training run and write the evaluation folder (``crimeclass evaluate``).

    ``out`` defaults to ``RUN/evaluation`` (or ``RUN/evaluations/<time>`` with
    ``data``); the other keywords are those of
    :class:`~crimeclass.evaluation.EvaluateConfig` (``n_boot``, ``explain_rows``,
    ``threshold_rule``, ``target_precision``, ``seed``, ...). ``store``: the run's
    training store, where it is no longer where the run recorded it.
    """
    from crimeclass.evaluation import EvaluateConfig, evaluate_run, write_evaluation

    run_dir = Path(run)
    folder = None if out is None else Path(out)
    if folder is not None and folder.exists() and not (folder / "evaluation.json").is_file():
        raise FileExistsError(f"{folder} exists and is not an evaluation folder; choose another "
                              "--out")
    doc = evaluate_run(run_dir, data=None if data is None else Path(data), since=since,
                       until=until, config=EvaluateConfig(**config), on_event=on_event,
                       store=None if store is None else Path(store))
    if on_event is not None:
        on_event("stage", {"text": "writing the evaluation"})
    if folder is None:
        folder = run_dir / "evaluation" if data is None else (
            run_dir / "evaluations" / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    return Evaluation(doc, Path(write_evaluation(doc, folder, cards_into_run=data is None)))


# ------------------------------------------------------------------- predict


@dataclass(repr=False)
class Prediction(_Shown):
    """What :func:`predict` wrote (a :class:`~crimeclass.models.PredictResult`)."""

    result: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name == "result":  # not set yet (a copy, an unpickling)
            raise AttributeError(name)
        return getattr(self.result, name)

    def _parts(self) -> list[Any]:
        from rich.text import Text

        from crimeclass.cli._render import prediction_lines

        return [Text.from_markup(line) for line in prediction_lines(self.result)]


def predict(run: PathLike, inputs: PathLike | Sequence[PathLike] | None = None,
            out: PathLike = "predictions.parquet", *, model: str | None = None,
            store: PathLike | None = None, on_event: EventHandler | None = None,
            **options: Any) -> Prediction:
    """Score incidents with a saved model of a run (``crimeclass predict``).

    ``inputs`` are files or folders that ingest reads, or a store; omitted, the
    incidents of ``store``. ``store`` is the history store of the features. The
    other keywords are those of :class:`~crimeclass.models.PredictOptions`
    (``chunk_rows``, ``since``, ``until``, ``memory_limit``).
    """
    from crimeclass.models import PredictOptions
    from crimeclass.models import predict as run_predict

    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    if not inputs:
        if store is None:
            raise ValueError("nothing to score: give inputs or a store")
        inputs = [store]
    result = run_predict(Path(run), [Path(i) for i in inputs], Path(out), model_name=model,
                         history_store=None if store is None else Path(store),
                         options=PredictOptions(**options), on_event=on_event)
    return Prediction(result)
