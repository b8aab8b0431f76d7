"""The Spark engine: SQL in DuckDB's dialect compiled to Spark SQL, over a Parquet export.

SQL is written once, in DuckDB's dialect; :func:`to_spark_sql` compiles it with
sqlglot. Where sqlglot's Spark output means something else than the DuckDB text,
the fix lives here, in :func:`spark_dialect`, and the parity tests
(``tests/explore/test_explore_parity.py``, ``tests/features/test_sql.py``) check
the results on both engines.

Spark is started with the session time zone UTC: the export's timestamps are
local Chicago time without a zone (``TIMESTAMP_NTZ``), and UTC keeps Spark from
shifting them when it compares them with literals. PySpark is imported inside
functions only: it is an optional extra (``crimeclass[spark]``).

>>> to_spark_sql("SELECT isodow(date) AS d FROM incidents")
'SELECT (WEEKDAY(date) + 1) AS d FROM incidents'
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from crimeclass.data import Store
from crimeclass.engines._errors import EngineError
from crimeclass.engines._sql import conform, sql_literal

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkEngine", "check_incident_schema", "export_for_spark", "read_incidents",
           "spark_dialect", "spark_session", "to_spark_sql"]

_QUARANTINE_SCHEMA = pa.schema([
    ("ingest_id", pa.int32()), ("source", pa.string()), ("line", pa.int64()),
    ("field", pa.string()), ("reason", pa.string()), ("problems", pa.string()),
    ("raw", pa.string()),
])


@lru_cache(maxsize=1)
def spark_dialect() -> type:
    """Spark as sqlglot writes it, with the fixes crimeclass's SQL needs (built on first
    use: the DuckDB engine never imports sqlglot)."""
    from sqlglot import exp
    from sqlglot.dialects.spark import Spark

    class CrimeclassSpark(Spark):
        class Generator(Spark.Generator):  # type: ignore[valid-type,misc]
            TRANSFORMS = {
                **Spark.Generator.TRANSFORMS,
                # sqlglot 30 writes ISODOW as (DAYOFWEEK(x) % 7) + 1, which counts from
                # Sunday = 2; Spark's WEEKDAY counts from Monday = 0.
                exp.DayOfWeekIso: lambda self, e: f"(WEEKDAY({self.sql(e, 'this')}) + 1)",
                # DuckDB's dayofweek counts from Sunday = 0, Spark's from Sunday = 1.
                exp.DayOfWeek: lambda self, e: f"(DAYOFWEEK({self.sql(e, 'this')}) - 1)",
                # DuckDB's quantile_cont(x, q) is Spark's percentile(x, q) (the same linear
                # interpolation); Spark's percentile_cont takes no window frame.
                exp.PercentileCont: lambda self, e: (
                    f"PERCENTILE({self.sql(e, 'this')}, {self.sql(e, 'expression')})"),
            }

    return CrimeclassSpark


@lru_cache(maxsize=256)
def to_spark_sql(sql: str, *, pretty: bool = False) -> str:
    """Compile one statement from DuckDB's dialect to Spark SQL (:func:`spark_dialect`)."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=spark_dialect(), pretty=pretty)[0]


def spark_session(master: str = "local[*]", *, app_name: str = "crimeclass",
                  conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session for crimeclass (``getOrCreate``: an existing one is reused).

    Parameters
    ----------
    master : str, default="local[*]"
        ``local[N]`` or a cluster URL (``spark://host:7077``, ``yarn``, ...).
    app_name : str, default="crimeclass"
    conf : dict, optional
        More Spark settings.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise EngineError("spark", "the Spark engine needs PySpark: "
                          "pip install 'crimeclass[spark]'") from e
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if master.startswith("local"):
        # crimeclass's results are small: a few shuffle partitions, not 200
        builder = builder.config("spark.sql.shuffle.partitions", "8")
        # crimeclass keeps no Spark tables: the catalog's folder goes to the temporary
        # folder, not a spark-warehouse/ left in the user's working folder
        builder = builder.config("spark.sql.warehouse.dir", str(_warehouse()))
        # a frame collected to the driver (read_features) comes back with each task's
        # reply, not through the block manager: in one process its small memory store can
        # drop a result before the driver fetches it (TaskResultLost) while windows sort
        builder = builder.config("spark.task.maxDirectResultSize", "64m")
        # Python workers (scoring, training) run this very interpreter, where crimeclass
        # and its libraries are installed, not whatever python3 is first on the PATH
        # (PySpark reads the variable when the session starts; a cluster sets its own)
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    with warnings.catch_warnings():
        # PySpark 4.x warns on start-up that it does not fully support pandas 3;
        # the engine passes Arrow, never pandas, to and from Spark.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas",
                                category=FutureWarning)
        session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def _warehouse() -> Path:
    """The local session's (unused) catalog folder: one per user, in the temporary folder."""
    return Path(tempfile.gettempdir()) / f"crimeclass-spark-warehouse-{os.getuid()}"


def _active_session() -> SparkSession | None:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    return SparkSession.getActiveSession()


def export_for_spark(store: str | Path, folder: str | Path) -> tuple[Path, Path]:
    """Write what the Spark engine reads: the store's Parquet export and its quarantine.

    Returns ``(folder/incidents, folder/quarantine.parquet)``.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    incidents, quarantine = folder / "incidents", folder / "quarantine.parquet"
    with Store(store, read_only=True) as st:
        st.export_parquet(incidents, overwrite=True)
        st.con.execute(f"COPY (SELECT * FROM quarantine) TO {sql_literal(quarantine)} "
                       "(FORMAT parquet)")
    return incidents, quarantine


def _check_export(path: str) -> None:
    if "://" not in path and not (Path(path).is_dir() and any(Path(path).rglob("*.parquet"))):
        raise EngineError("spark", f"no Parquet export at {path}; write one with "
                          f"'crimeclass export --out {path}' (or run on the store "
                          "with --engine duckdb)", setting="incidents", value=path)


class SparkEngine:
    """Runs SQL with PySpark on a Parquet export of the store.

    Parameters
    ----------
    incidents : str or pathlib.Path
        A folder written by ``crimeclass export`` / :meth:`Store.export_parquet`
        (``year=YYYY/`` partitions), local or on a cluster file system.
    quarantine : str or pathlib.Path, optional
        The store's quarantine as Parquet (:func:`export_for_spark`); without it
        the ``quarantine`` view is empty.
    master : str, default="local[*]"
        Where Spark runs, when no ``session`` is given and none is active.
    session : pyspark.sql.SparkSession, optional
        A session to use. A given or already active session is left running on
        :meth:`close`; one the engine starts is stopped.

    Raises
    ------
    EngineError
        If ``incidents`` is a local path that holds no Parquet file.
    """

    name = "spark"
    source = "_incidents_parquet"

    def __init__(self, incidents: str | Path, quarantine: str | Path | None = None, *,
                 master: str = "local[*]", session: SparkSession | None = None) -> None:
        path = str(incidents)
        _check_export(path)
        if session is None:
            # a session already running in this process is reused, and left running
            active = _active_session()
            self._own = active is None
            session = active or spark_session(master)
        else:
            self._own = False
        self.spark = session
        self._cached: list[str] = []
        try:
            self.spark.read.parquet(path).createOrReplaceTempView(self.source)
            if quarantine is not None and ("://" in str(quarantine)
                                           or Path(quarantine).exists()):
                self.spark.read.parquet(str(quarantine)).createOrReplaceTempView("quarantine")
            else:
                self.register("quarantine", _QUARANTINE_SCHEMA.empty_table())
        except BaseException:
            self.close()
            raise
        self.has_quarantine = quarantine is not None
        self.detail = (f"PySpark {self.spark.version} ({self.spark.sparkContext.master}) "
                       f"over the Parquet export {path}")

    @classmethod
    def from_input(cls, incidents: str | Path, *, required: Sequence[str] = ("date",),
                   master: str = "local[*]",
                   session: SparkSession | None = None) -> SparkEngine:
        """An engine over incidents in the canonical schema, read and checked by
        :func:`read_incidents` (``key`` and ``is_index`` given or derived): the input of
        the features, training and scoring on Spark.

        Raises
        ------
        EngineError
            No Parquet at ``incidents``, or a column missing or of another type.
        """
        engine = cls.__new__(cls)
        engine._own = session is None and _active_session() is None
        engine.spark = session or _active_session() or spark_session(master)
        engine._cached = []
        try:
            read_incidents(engine.spark, incidents, required=required
                           ).createOrReplaceTempView(cls.source)
            engine.register("quarantine", _QUARANTINE_SCHEMA.empty_table())
        except BaseException:
            engine.close()
            raise
        engine.has_quarantine = False
        engine.detail = (f"PySpark {engine.spark.version} ({engine.spark.sparkContext.master}) "
                         f"over {incidents}")
        return engine

    def frame(self, sql: str) -> Any:
        """The rows of ``sql`` (DuckDB's dialect) as a Spark DataFrame, not collected."""
        return self.spark.sql(to_spark_sql(sql))

    def register(self, name: str, table: pa.Table) -> None:
        """Create or replace the temporary view ``name`` over the Arrow ``table``."""
        self.spark.createDataFrame(table).createOrReplaceTempView(name)

    def define(self, name: str, sql: str, *, materialize: bool = False) -> None:
        """Create or replace the temporary view ``name`` (``sql`` in DuckDB's dialect);
        cached at once if ``materialize``."""
        self.spark.sql(f"DROP VIEW IF EXISTS {name}")  # uncaches it too
        self.spark.sql(f"CREATE TEMP VIEW {name} AS {to_spark_sql(sql)}")
        if materialize:
            self.spark.sql(f"CACHE TABLE {name}")
            self._cached.append(name)

    def table(self, sql: str) -> pa.Table:
        """Rows of ``sql`` (DuckDB's dialect) as Arrow, :func:`conform`-ed."""
        result: Any = self.spark.sql(to_spark_sql(sql)).toArrow()
        return conform(result)

    def reader(self, sql: str, batch_rows: int = 1 << 20) -> pa.RecordBatchReader:
        """Rows of ``sql`` (DuckDB's dialect) in batches of ``batch_rows``, in Spark's
        Arrow types (collected to the driver first)."""
        result: pa.Table = self.spark.sql(to_spark_sql(sql)).toArrow()
        return pa.RecordBatchReader.from_batches(
            result.schema, result.to_batches(max_chunksize=batch_rows))

    def memory_limit(self, limit: str | None) -> AbstractContextManager[None]:
        """A block as configured: Spark's memory is set when its session starts.

        Raises
        ------
        EngineError
            If a ``limit`` is given (set ``spark.driver.memory`` and
            ``spark.executor.memory`` in the session instead).
        """
        if limit:
            raise EngineError("spark", f"a memory limit ({limit}) cannot be changed on a "
                              "running Spark session; set spark.driver.memory and "
                              "spark.executor.memory when it starts",
                              setting="memory_limit", value=limit)
        return nullcontext()

    def close(self) -> None:
        """Free the cached relations; stop the session if this engine started it."""
        for name in self._cached:
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
        if self._own:
            self.spark.stop()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ------------------------------------------------------------------ the input

#: The Spark types each canonical Arrow type may arrive as (cast to the first on reading).
_SPARK_TYPES = {
    "int64": ("bigint", "int", "smallint", "tinyint"),
    "int32": ("int", "bigint", "smallint", "tinyint"),
    "double": ("double", "float", "bigint", "int", "smallint", "tinyint"),
    "string": ("string",),
    "bool": ("boolean",),
    "timestamp[us]": ("timestamp_ntz", "timestamp"),
}


def _canonical_types() -> dict[str, tuple[str, ...]]:
    """Each canonical column (and ``key``, ``is_index``) with the Spark types it may have."""
    from crimeclass.data import COLUMNS

    out = {c.name: _SPARK_TYPES[str(c.arrow_type)] for c in COLUMNS}
    out.update(key=_SPARK_TYPES["int64"], is_index=_SPARK_TYPES["bool"])
    return out


def check_incident_schema(fields: dict[str, str], *, required: Sequence[str],
                          where: str) -> None:
    """Raise :class:`EngineError` naming a missing or mistyped column of an input.

    Parameters
    ----------
    fields : dict
        Column name -> Spark's ``simpleString`` of its type (``"bigint"``,
        ``"timestamp_ntz"``, ``"decimal(10,2)"`` ...).
    required : sequence of str
        Columns that must be there (the others of the canonical schema may be absent).
    where : str
        The input, for the message.
    """
    types = _canonical_types()
    missing = [c for c in required if c not in fields]
    if missing:
        raise EngineError("spark", f"{where}: missing column(s) {', '.join(missing)} (the "
                          "canonical schema's snake_case names, as 'crimeclass export' "
                          "writes them)", setting=missing[0], value=where)
    for name, found in fields.items():
        allowed = types.get(name)
        if allowed is not None and found.split("(")[0] not in allowed:
            raise EngineError("spark", f"{where}: column {name} is {found}, expected "
                              f"{' or '.join(allowed)}", setting=name, value=found)


def read_incidents(spark: SparkSession, path: str | Path, *,
                   required: Sequence[str] = ("date",)) -> Any:
    """The incidents of a Parquet folder, file or URI as a Spark DataFrame, checked.

    ``path`` is anything Spark reads (a local folder, ``file:``, ``s3a:``,
    ``abfss:``, ``gs:`` ...) holding incidents in the canonical schema (the
    snake_case names of ``crimeclass export``; other columns are ignored). The
    result has every canonical column in its canonical type (those absent as
    nulls, as ingest leaves a column a source lacks), ``key`` (the input's own,
    else ``id``; rows with neither are left out: ``crimeclass export`` writes
    ``key``) and ``is_index`` (the input's own, else labeled from the IUCR code as
    ingest does,
    :func:`crimeclass.data.label_sql`).

    Raises
    ------
    EngineError
        No Parquet at ``path``, a column of ``required`` missing, or a column of
        the canonical schema of another type.
    """
    from crimeclass.data import COLUMNS

    where = str(path)
    local = Path(where.removeprefix("file:"))
    if "://" not in where and not (local.is_file() or (
            local.is_dir() and any(local.rglob("*.parquet")))):
        raise EngineError("spark", f"no Parquet at {where} (a file, or a folder such as "
                          "'crimeclass export' writes)", setting="input", value=where)
    try:
        df = spark.read.parquet(where)
    except Exception as e:  # AnalysisException: no such path, not Parquet
        raise EngineError("spark", f"Spark cannot read Parquet at {where}: "
                          f"{str(e).splitlines()[0]}", setting="input", value=where) from e
    fields = {f.name: f.dataType.simpleString() for f in df.schema.fields}
    keyed = [*required, *(() if "key" in fields else ("id",))]
    check_incident_schema(fields, required=keyed, where=where)
    spark_type = {"int64": "BIGINT", "int32": "INT", "double": "DOUBLE", "string": "STRING",
                  "bool": "BOOLEAN", "timestamp[us]": "TIMESTAMP_NTZ"}
    cols = [f"CAST({c.name if c.name in fields else 'NULL'} AS "
            f"{spark_type[str(c.arrow_type)]}) AS {c.name}" for c in COLUMNS
            if c.name != "location"]
    cols.append(f"CAST({'key' if 'key' in fields else 'id'} AS BIGINT) AS key")
    view = f"_input_{abs(hash(where)):x}"
    df.createOrReplaceTempView(view)
    rows = spark.sql(f"SELECT {', '.join(cols)}"
                     + (", CAST(is_index AS BOOLEAN) AS is_index" if "is_index" in fields
                        else "") + f" FROM {view}")
    rows = rows.where("key IS NOT NULL")
    return rows if "is_index" in fields else _labeled(spark, rows)


def _labeled(spark: SparkSession, rows: Any) -> Any:
    """``rows`` with ``is_index`` from their IUCR code, description or FBI code (ingest's
    rules, :mod:`crimeclass.data._labels`, compiled to Spark)."""
    from crimeclass.data import iucr_table
    from crimeclass.data._labels import label_sql, lookup_sql

    spark.createDataFrame(iucr_table()).createOrReplaceTempView("_iucr_codes")
    for name, sql in lookup_sql("_iucr_codes").items():
        spark.sql(f"CREATE OR REPLACE TEMP VIEW {name} AS {to_spark_sql(sql)}")
    view = f"_unlabeled_{id(rows):x}"
    rows.createOrReplaceTempView(view)
    return spark.sql(to_spark_sql(f"SELECT * FROM ({label_sql(view)}) AS labeled")
                     ).drop("label_source")
