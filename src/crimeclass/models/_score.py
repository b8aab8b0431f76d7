"""The scoring core: validated incident rows and their history -> features -> scores.

:func:`score` takes incidents already validated by the data layer (an Arrow
table or DataFrame with the store's column names), a history (a
:class:`~crimeclass.data.Store` whose earlier incidents the history features
count, or nothing) and a model loaded by the run reader
(:meth:`Run.load_model <crimeclass.models.Run.load_model>`). It computes the
features with the run's own feature query, in memory, and returns the
probabilities, the calibrated probabilities (given a calibration) and the
decisions. Nothing is written.

Batch prediction (``crimeclass predict``) and ``crimeclass evaluate --data``
use the same two steps on stores too large for memory: :func:`feature_query`
over tables in DuckDB, then :func:`score_features` on each chunk.

Without a history, the history features (incidents in the same place in the
days before) count the rows' own earlier incidents only: for rows less than the
longest window (``lookback``) after the first one they are too low. Each row
says how many days of earlier data its features could read (``history_days``)
and whether that covers the whole lookback (``history_complete``).

Those days are counted back from the row through the earlier incidents of the
input and the history together, without a gap: a stretch of more than
:data:`HISTORY_GAP_DAYS` days without any incident (Chicago records hundreds a
day) is missing data, and the history starts again after it. A history store
of 2001-2015 and an input of 2017 thus give the first ``lookback`` days of 2017
an incomplete history (2016 is missing), as would a store that starts less
than ``lookback`` days before a row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from crimeclass.data import COLUMNS
from crimeclass.features import (
    CASE_SERIES_SQL,
    FeatureSpec,
    feature_catalog,
    feature_frame,
    feature_sql,
    report_rows_sql,
    table_history_sums,
)
from crimeclass.models._errors import PredictError
from crimeclass.models._run import LoadedModel

if TYPE_CHECKING:
    from crimeclass.data import Store

__all__ = ["HISTORY_GAP_DAYS", "OUTPUT_COLUMNS", "OUTPUT_SCHEMA", "Features", "Scores",
           "feature_query", "incident_features", "required_columns", "score", "score_features",
           "window_sql"]

#: Columns of a prediction, in order.
OUTPUT_COLUMNS = ("id", "key", "date", "probability", "label", "model_id", "target",
                  "history_days", "history_complete")

OUTPUT_SCHEMA = pa.schema([
    ("id", pa.int64()), ("key", pa.int64()), ("date", pa.timestamp("us")),
    ("probability", pa.float64()), ("label", pa.bool_()), ("model_id", pa.string()),
    ("target", pa.string()), ("history_days", pa.float32()), ("history_complete", pa.bool_()),
])

#: Days without any incident after which the data has a gap (the history restarts).
HISTORY_GAP_DAYS = 7

#: The incident columns the feature query reads (the store's names).
ROW_COLUMNS = ("key", "id", "case_number", "date", "is_index", "arrest", "block",
               "location_description", "domestic", "beat", "district", "ward",
               "community_area", "x_coordinate", "y_coordinate", "primary_type",
               "description", "iucr", "fbi_code")


class Calibration(Protocol):
    """Maps probabilities to calibrated probabilities (e.g. the evaluation's)."""

    def transform(self, p: np.ndarray) -> np.ndarray: ...


def required_columns(spec: FeatureSpec) -> list[str]:
    """The canonical input columns the features of ``spec`` are computed from."""
    uses = {c for f in feature_catalog(spec) for c in f.uses}
    if "is_index" in uses:  # the label of earlier incidents comes from the IUCR code
        uses = (uses - {"is_index"}) | {"iucr"}
    uses.add("date")
    return [c.name for c in COLUMNS if c.name in uses]


# --------------------------------------------------------------- the query


def window_sql(since: str | None, until: str | None) -> str:
    """A condition on ``date`` selecting ``[since, until)`` (``true`` for no window)."""
    cond = ["true"]
    if since:
        cond.append(f"date >= TIMESTAMP '{dt.datetime.fromisoformat(since).isoformat(' ')}'")
    if until:
        cond.append(f"date < TIMESTAMP '{dt.datetime.fromisoformat(until).isoformat(' ')}'")
    return " AND ".join(cond)


def feature_query(con: Any, spec: FeatureSpec, *, inputs: str, window: str = "true",
                  history: str | None = None, history_is_input: bool = False,
                  temp: bool = False) -> tuple[str, int]:
    """The statement returning the features of the incidents to score, and their count.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Where the tables are; a table ``_rows`` is created there (``temp``: a
        temporary one, else on disk, where DuckDB may spill).
    spec : FeatureSpec
    inputs : str
        The table of incidents to score (the store's columns, with ``ingest_id``
        and ``source_line``, which order the result).
    window : str
        A condition on ``date``: which incidents of ``inputs`` to score.
    history : str, optional
        A table of incidents whose earlier rows the history features count too
        (an incident in both counts once, as the input's).
    history_is_input : bool
        ``inputs`` is a store: its rows outside the window are history.

    Raises
    ------
    PredictError
        No incident to score.
    """
    cols = ", ".join(ROW_COLUMNS)
    n, lo, hi = con.execute(f"SELECT count(*), min(date), max(date) FROM {inputs} "
                            f"WHERE {window}").fetchall()[0]
    if not n:
        raise PredictError("no incidents to score: the input holds no valid rows"
                           + ("" if window == "true" else " in the window"))
    start = lo - dt.timedelta(days=spec.lookback_days)
    span = (f"date >= TIMESTAMP '{start.isoformat(' ')}' "
            f"AND date <= TIMESTAMP '{hi.isoformat(' ')}'")
    if history_is_input:  # a store as input is its own history
        rows = (f"SELECT {cols}, ({window}) AS _target, ingest_id AS _ingest, "
                f"source_line AS _line FROM {inputs} WHERE {span}")
    else:
        rows = (f"SELECT {cols}, true AS _target, ingest_id AS _ingest, source_line AS _line "
                f"FROM {inputs} WHERE {window}")
    if history is not None:  # an incident in both counts once, as the input's
        taken = span if history_is_input else window
        rows += (f"\nUNION ALL\nSELECT {cols}, false, NULL, NULL FROM {history} "
                 f"WHERE {span} AND key NOT IN (SELECT key FROM {inputs} WHERE {taken})")
    con.execute(f"CREATE OR REPLACE {'TEMP ' if temp else ''}TABLE _rows AS {rows}")
    sums = (table_history_sums(con, spec, table="_rows", temp=temp)
            if "history" in spec.groups else None)
    reported = (_report_times(con, inputs, window, history, history_is_input, temp)
                if "report" in spec.groups else None)
    # ordered=False: the features in any order, sorted once below (their own ORDER BY,
    # by date and key, was a second sort of every feature: a fifth of predict's time)
    features = feature_sql(spec, years=range(start.year, hi.year + 2), labeled_only=False,
                           table="_rows", history_from=sums, report_from=reported,
                           ordered=False)
    names = [f.name for f in feature_catalog(spec)]
    days = (f"CAST(least({float(spec.lookback_days)}, date_diff('day', c.since, f.date)) "
            "AS FLOAT) AS history_days")
    sql = (f"WITH f AS ({features}),\n_cover AS ({_COVER})\n"
           f"SELECT r.id, f.key, f.date, f.{spec.label_column}, "
           f"{', '.join('f.' + n for n in names)}, {days}\n"
           "FROM f JOIN (SELECT key, id, _ingest, _line FROM _rows WHERE _target) AS r "
           "USING (key) JOIN _cover AS c ON c.day = CAST(f.date AS DATE)\n"
           "ORDER BY r._ingest, r._line, f.date, f.key")
    return sql, int(n)


def _report_times(con: Any, inputs: str, window: str, history: str | None,
                  history_is_input: bool, temp: bool) -> str:
    """A table ``_reported`` of the report times of the incidents to score, from every
    incident of the input and the history in their case series (not only those of the
    history span: the incidents numbered just before a late report happened after it).
    Returns its name."""
    cols = "key, date, case_number"
    # only the case series of the incidents to score: the window reads no other
    mine = (f"{CASE_SERIES_SQL} IN (SELECT DISTINCT {CASE_SERIES_SQL} FROM {inputs} "
            f"WHERE {window})")
    if history_is_input:
        rows = f"SELECT {cols}, ({window}) AS _target FROM {inputs} WHERE {mine}"
    else:
        rows = f"SELECT {cols}, true AS _target FROM {inputs} WHERE {window}"
        if history is not None:  # an incident in both counts once, as the input's
            rows += (f"\nUNION ALL\nSELECT {cols}, false FROM {history} "
                     f"WHERE key NOT IN (SELECT key FROM {inputs} WHERE {window}) "
                     f"AND {mine}")
    kind = "TEMP " if temp else ""
    con.execute(f"CREATE OR REPLACE {kind}TABLE _report_rows AS {rows}")
    con.execute(f"CREATE OR REPLACE {kind}TABLE _reported AS "
                f"{report_rows_sql('_report_rows', where='_target')}")
    return "_reported"


# Days of earlier data the history features could read (at most the lookback): not a
# feature (it only grows with the calendar), but each output row reports it. For each day
# of ``_rows``, ``since``: the first day of the stretch of data without a gap it ends.
_COVER = f"""\
SELECT day, max(CASE WHEN restart THEN day END) OVER (ORDER BY day ROWS UNBOUNDED PRECEDING)
       AS since
FROM (SELECT day, coalesce(date_diff('day', lag(day) OVER (ORDER BY day), day) - 1
                      > {HISTORY_GAP_DAYS}, true)
             AS restart
      FROM (SELECT DISTINCT CAST(date AS DATE) AS day FROM _rows))"""


# --------------------------------------------------------------- the scores


@dataclass
class Features:
    """The features of incidents to score, in the input's order.

    Attributes
    ----------
    index : pyarrow.Table
        ``id``, ``key``, ``date`` of each incident.
    frame : DataFrame
        ``key``, ``date``, the label (missing where unknown), one column per
        feature, and ``history_days``.
    spec : FeatureSpec
    """

    index: pa.Table
    frame: pd.DataFrame
    spec: FeatureSpec

    @classmethod
    def from_arrow(cls, data: pa.Table | pa.RecordBatch, spec: FeatureSpec) -> Features:
        """From the result of :func:`feature_query` (consumed: Arrow's buffers are freed)."""
        index = pa.table([data.column("id").cast(pa.int64()),
                          data.column("key").cast(pa.int64()),
                          data.column("date").cast(pa.timestamp("us"))],
                         names=["id", "key", "date"])
        return cls(index=index, frame=feature_frame(data, spec), spec=spec)

    def __len__(self) -> int:
        return self.index.num_rows

    def take(self, rows: np.ndarray) -> Features:
        """The features of the rows at positions ``rows``, in that order."""
        return Features(index=self.index.take(pa.array(rows)),
                        frame=self.frame.iloc[rows].reset_index(drop=True), spec=self.spec)

    @property
    def history_days(self) -> np.ndarray:
        return self.frame["history_days"].to_numpy(np.float32)

    @property
    def history_complete(self) -> np.ndarray:
        """Whether each row's history features could read the whole lookback (earlier
        incidents of the input and the history, without a gap, back ``lookback`` days)."""
        return self.history_days >= self.spec.lookback_days


@dataclass
class Scores:
    """What a model says of each incident.

    Attributes
    ----------
    features : Features
    probability : ndarray of float64
        P(positive class of the model's target).
    calibrated : ndarray of float64 or None
        ``probability`` through the calibration given, else None.
    decision : ndarray of bool
        ``probability >= threshold``.
    model_id, target : str
    threshold : float
    """

    features: Features
    probability: np.ndarray
    calibrated: np.ndarray | None
    decision: np.ndarray
    model_id: str
    target: str
    threshold: float

    def to_arrow(self) -> pa.Table:
        """One row per incident, the columns of :data:`OUTPUT_COLUMNS`."""
        n, f = len(self.features), self.features
        return pa.Table.from_arrays([
            *f.index.columns, pa.array(self.probability), pa.array(self.decision),
            pa.array([self.model_id] * n, pa.string()), pa.array([self.target] * n, pa.string()),
            pa.array(f.history_days), pa.array(f.history_complete)], schema=OUTPUT_SCHEMA)


def score_features(features: Features, model: LoadedModel, *,
                   calibration: Calibration | None = None) -> Scores:
    """Score computed features with a loaded model."""
    p = model.predict_proba(features.frame)
    return Scores(features=features, probability=p,
                  calibrated=None if calibration is None else
                  np.asarray(calibration.transform(p), dtype=np.float64),
                  decision=p >= model.threshold, model_id=model.model_id,
                  target=model.target, threshold=model.threshold)


def _input_table(rows: pa.Table | pd.DataFrame) -> pa.Table:
    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(
        rows, preserve_index=False)
    missing = [c for c in ROW_COLUMNS if c not in table.schema.names]
    if missing:
        raise PredictError(f"the rows lack the column(s) {', '.join(missing)} (the store's "
                           "names: validated rows, as ingest stores them)")
    n = table.num_rows
    return table.select(list(ROW_COLUMNS)).append_column(
        "ingest_id", pa.array(np.zeros(n, np.int32))).append_column(
        "source_line", pa.array(np.arange(n, dtype=np.int64)))


def incident_features(rows: pa.Table | pd.DataFrame, spec: FeatureSpec, *,
                      history: Store | None = None) -> Features:
    """The features of validated incident rows, computed in memory.

    Parameters
    ----------
    rows : pyarrow.Table or DataFrame
        Incidents with the store's column names (as ingest validates them).
    spec : FeatureSpec
        The model's features (:attr:`LoadedModel.spec`).
    history : Store, optional
        Its incidents before each row count in the history features, besides
        the rows' own; read, never written.

    Returns
    -------
    Features
        In the order of ``rows``.
    """
    from crimeclass.engines import DuckDBSettings, apply_settings, connect

    table = _input_table(rows)
    quiet = DuckDBSettings(progress_bar=False)
    con = history.con.cursor() if history is not None else connect()
    try:
        apply_settings(con, quiet)  # a cursor shares the store's settings: ours are its own
        con.register("_input", table)
        sql, _ = feature_query(con, spec, inputs="_input",
                               history=None if history is None else "incidents", temp=True)
        return Features.from_arrow(con.sql(sql).to_arrow_table(), spec)
    finally:
        con.close()


def score(rows: pa.Table | pd.DataFrame, model: LoadedModel, *, history: Store | None = None,
          calibration: Calibration | None = None) -> Scores:
    """Score validated incident rows with a model of a run, in memory.

    Parameters
    ----------
    rows : pyarrow.Table or DataFrame
        Incidents with the store's column names (validated by the data layer).
    model : LoadedModel
        From :meth:`Run.load_model <crimeclass.models.Run.load_model>`.
    history : Store, optional
        A store whose earlier incidents the history features count.
    calibration : object with ``transform(p)``, optional

    Returns
    -------
    Scores
        In the order of ``rows``; :meth:`Scores.to_arrow` gives predict's columns.

    Raises
    ------
    PredictError
        Rows without the columns the features read, or no rows.
    """
    return score_features(incident_features(rows, model.spec, history=history), model,
                          calibration=calibration)
