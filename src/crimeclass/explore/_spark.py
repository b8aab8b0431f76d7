"""The Spark engine: the catalog compiled to Spark SQL, over the Parquet export.

The catalog's SQL is written once, in DuckDB's dialect; :func:`to_spark_sql`
compiles it with sqlglot. Where sqlglot's Spark output means something else
than the DuckDB text, the fix lives here, in :func:`_dialect`, and the
parity test (``tests/explore/test_explore_parity.py``) checks every statistic on both.

Spark is started with the session time zone UTC: the export's timestamps are
local Chicago time without a zone (``TIMESTAMP_NTZ``), and UTC keeps Spark from
shifting them when it compares them with literals.

>>> to_spark_sql("SELECT isodow(date) AS d FROM incidents")
'SELECT (WEEKDAY(date) + 1) AS d FROM incidents'
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from crimeclass.data import Store
from crimeclass.explore._engine import conform
from crimeclass.explore._errors import ExploreError
from crimeclass.explore._lookups import community_areas, police_districts

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SparkEngine", "export_for_spark", "spark_session", "to_spark_sql"]

_QUARANTINE_SCHEMA = pa.schema([
    ("ingest_id", pa.int32()), ("source", pa.string()), ("line", pa.int64()),
    ("field", pa.string()), ("reason", pa.string()), ("problems", pa.string()),
    ("raw", pa.string()),
])


@lru_cache(maxsize=1)
def _dialect() -> type:
    """Spark as sqlglot writes it, with the fixes the catalog needs (built on first use:
    the DuckDB engine never imports sqlglot)."""
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
            }

    return CrimeclassSpark


@lru_cache(maxsize=256)
def to_spark_sql(sql: str) -> str:
    """Compile one statement from DuckDB's dialect to Spark SQL."""
    import sqlglot

    return sqlglot.transpile(sql, read="duckdb", write=_dialect())[0]


def spark_session(master: str = "local[*]", *, app_name: str = "crimeclass-explore",
                  conf: dict[str, str] | None = None) -> SparkSession:
    """A Spark session for the catalog (``getOrCreate``: an existing one is reused).

    Parameters
    ----------
    master : str, default="local[*]"
        ``local[N]`` or a cluster URL (``spark://host:7077``, ``yarn``, ...).
    conf : dict, optional
        More Spark settings.
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as e:
        raise ExploreError("the Spark engine needs PySpark: pip install 'crimeclass[spark]'"
                           ) from e
    builder = (SparkSession.builder.master(master).appName(app_name)
               .config("spark.sql.session.timeZone", "UTC")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false"))
    if master.startswith("local"):
        # the catalog's results are small: a few shuffle partitions, not 200
        builder = builder.config("spark.sql.shuffle.partitions", "8")
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
        target = str(quarantine).replace("'", "''")
        st.con.execute(f"COPY (SELECT * FROM quarantine) TO '{target}' (FORMAT parquet)")
    return incidents, quarantine


class SparkEngine:
    """Runs the catalog with PySpark on a Parquet export of the store.

    Parameters
    ----------
    incidents : str or pathlib.Path
        A folder written by ``crimeclass export`` / :meth:`Store.export_parquet`
        (``year=YYYY/`` partitions), local or on a cluster file system.
    quarantine : str or pathlib.Path, optional
        The store's quarantine as Parquet (:func:`export_for_spark`); without it
        the quarantine summary is empty.
    master : str, default="local[*]"
        Where Spark runs, when no ``session`` is given and none is active.
    session : pyspark.sql.SparkSession, optional
        A session to use. A given or already active session is left running on
        :meth:`close`; one the engine starts is stopped.
    """

    name = "spark"
    source = "_incidents_parquet"

    def __init__(self, incidents: str | Path, quarantine: str | Path | None = None, *,
                 master: str = "local[*]", session: SparkSession | None = None) -> None:
        path = str(incidents)
        if "://" not in path and not (Path(path).is_dir()
                                      and any(Path(path).rglob("*.parquet"))):
            raise ExploreError(f"no Parquet export at {path}; write one with "
                               f"'crimeclass export --out {path}' (or run on the store "
                               "with --engine duckdb)")
        if session is None:
            # a session already running in this process is reused, and left running
            active = _active_session()
            self._own = active is None
            session = active or spark_session(master)
        else:
            self._own = False
        self.spark = session
        try:
            df = self.spark.read.parquet(path)
            df.createOrReplaceTempView(self.source)
            if quarantine is not None and ("://" in str(quarantine)
                                           or Path(quarantine).exists()):
                self.spark.read.parquet(str(quarantine)).createOrReplaceTempView("quarantine")
            else:
                self._view("quarantine", _QUARANTINE_SCHEMA.empty_table())
            self._view("community_areas", community_areas())
            self._view("police_districts", police_districts())
        except BaseException:
            self.close()
            raise
        self.has_quarantine = quarantine is not None
        self._cached: list[str] = []
        self.detail = (f"PySpark {self.spark.version} ({self.spark.sparkContext.master}) "
                       f"over the Parquet export {path}")

    def _view(self, name: str, table: pa.Table) -> None:
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
        """Rows of ``sql`` (DuckDB's dialect) as Arrow."""
        result: Any = self.spark.sql(to_spark_sql(sql)).toArrow()
        return conform(result)

    def close(self) -> None:
        """Free the cached relations; stop the session if this engine started it."""
        for name in getattr(self, "_cached", []):
            self.spark.sql(f"UNCACHE TABLE IF EXISTS {name}")
        if self._own:
            self.spark.stop()

    def __enter__(self) -> SparkEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
