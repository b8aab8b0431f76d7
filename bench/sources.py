"""Benchmark of the live sources against what a user would write instead.

Serves real rows (the 2016 and 2017 files of ../shared/data by default, or
``--years``; the last year alone for the smaller size) from the loopback servers
of the tests, and loads them:

* SODA: ``crimeclass``'s portal ingest (pages of 50,000 rows, validated and
  upserted into a DuckDB store) against a plain sodapy loop over the same pages
  into one pandas DataFrame (sodapy's README way);
* BigQuery: ``crimeclass``'s BigQuery ingest (``ingest_bigquery``: streams read
  in parallel, validated and upserted 500,000 rows per transaction) against
  ``client.read_rows(stream).to_dataframe()`` of the same session's streams,
  concatenated (both with crimeclass's default streams, half the cores; and once
  each with 4); and the source alone (batches counted, not stored), to tell the
  source's memory from the store's; the path before the source handed typed
  columns (every value formatted as text, parsed again by validation, one
  transaction), where the time went; and a file ingest of the same rows (a
  Parquet file of their text), the store's own speed on text.

Each client runs in a fresh Python process, so its peak memory (max RSS) is its
own; the servers run in this process. Figures are rows per second and peak
memory, and the ratio ours / theirs measured in the same run (the machine is
shared and noisy: BigQuery's two compared clients take turns ``--repeat`` times,
and each one's median run is compared). Two sizes show whether peak memory grows with the data.

    python bench/sources.py                     # both sizes, ~5 minutes on 2 cores
    python bench/sources.py --sizes 1           # the smaller size only
    python bench/sources.py --only bigquery --years 2012-2017 \
        --out bench/results/sources_bigquery.json   # 267,792 and 1,718,685 rows
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the loopback servers of the tests: tests.data.loopback


def _status_mb(field: str) -> float:
    """``VmHWM`` (peak resident memory) or ``VmRSS`` of this process, in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


def _cpu_seconds() -> float:
    """CPU time of this process, every thread (DuckDB's and the readers') included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reset_peak() -> None:
    """Start the peak afresh (it would otherwise keep the parent's, from before exec)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:  # pragma: no cover - not Linux, or not allowed
        pass


# ------------------------------------------------------------- clients


def client_crimeclass_soda(url: str) -> int:
    from crimeclass.data import Portal, Store, ingest_portal

    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.duckdb") as st:
        run = ingest_portal(st, Portal(url=url))
        return run.summary()["read"]


def client_sodapy(url: str) -> int:
    import pandas as pd
    from requests.adapters import HTTPAdapter
    from sodapy import Socrata

    host = url.split("://", 1)[1]
    client = Socrata(host, None, session_adapter={"prefix": "http://", "adapter": HTTPAdapter()},
                     timeout=300)
    records: list[dict] = []
    offset = 0
    while True:
        page = client.get("ijzp-q8t2", limit=50_000, offset=offset, order=":id")
        records.extend(page)
        offset += len(page)
        if len(page) < 50_000:
            break
    frame = pd.DataFrame.from_records(records)
    return len(frame)


def client_crimeclass_bigquery(endpoint: str, streams: int) -> int:
    from crimeclass.data import Store
    from crimeclass.data.sources import ingest_bigquery

    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.duckdb") as st:
        run = ingest_bigquery(st, project="bench", endpoint=endpoint, plaintext=True,
                              streams=streams)
        return int(run.summary()["read"])


def client_bigquery_text_path(endpoint: str, streams: int) -> int:
    """The path before: every column as text, parsed by validation, one transaction."""
    from crimeclass.data import BigQuerySource, Store

    class TextSource(BigQuerySource):
        def ingest_batches(self):  # type: ignore[no-untyped-def]
            return self.batches()

    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.duckdb") as st:
        source = TextSource(project="bench", endpoint=endpoint, plaintext=True, streams=streams)
        return st.ingest(source).read


def client_duckdb_floor(endpoint: str, streams: int) -> int:
    """The floor of any ingest that keeps the rows in DuckDB: the source's typed batches
    streamed into a table of a DuckDB file, committed and checkpointed; no validation, no
    labels, no keys, no upsert."""
    import duckdb
    import pyarrow as pa

    from crimeclass.data import BigQuerySource

    source = BigQuerySource(project="bench", endpoint=endpoint, plaintext=True, streams=streams)
    batches = source.ingest_batches()
    first = next(batches)
    reader = pa.RecordBatchReader.from_batches(  # noqa: F841 - read by DuckDB
        first.schema, itertools.chain([first], batches))
    with tempfile.TemporaryDirectory() as d:
        con = duckdb.connect(str(Path(d) / "floor.duckdb"))
        con.execute("CREATE TABLE t AS SELECT * FROM reader")
        con.execute("CHECKPOINT")
        n = int(con.execute("SELECT count(*) FROM t").fetchall()[0][0])
        con.close()
    return n


def client_validation_only(endpoint: str, streams: int) -> int:
    """The source's typed batches through the ingest's validation, label and key statement,
    its results summed and dropped (nothing stored): what checking the rows costs alone."""
    import duckdb

    from crimeclass.data import BigQuerySource
    from crimeclass.data._ingest import _grouped, run_on, stage_sql, typed_columns
    from crimeclass.data._labels import iucr_table, lookup_sql
    from crimeclass.data._schema import DATE_FORMATS
    from crimeclass.data._validate import Bounds

    source = BigQuerySource(project="bench", endpoint=endpoint, plaintext=True, streams=streams)
    con = duckdb.connect()
    for name, sql in lookup_sql("_batch").items():
        run_on(con, iucr_table(), f"CREATE TEMP TABLE {name} AS {sql}")
    n = 0
    for table in _grouped(source.ingest_batches(), 500_000):
        sql = stage_sql(list(DATE_FORMATS.values()), Bounds(), "now()::TIMESTAMP",
                        typed=typed_columns(table.schema))
        n += int(run_on(con, table, f"""
            SELECT count(*), sum(base_key), count(is_index), count(_flags),
                   sum(length(_problems)), count(_raw), sum(length(case_number)),
                   sum(length(block)), sum(length(location_description)), count(latitude)
            FROM ({sql})""")[0][0])
    return n


def client_file_ingest(path: str) -> int:
    """The same rows from a Parquet file of text: the store's own speed, for reference."""
    from crimeclass.data import Store

    with tempfile.TemporaryDirectory() as d, Store(Path(d) / "s.duckdb") as st:
        return st.ingest_path(path).read


def client_bigquery_source_only(endpoint: str, streams: int) -> int:
    """The source's batches, counted and dropped: its own memory, without the store."""
    from crimeclass.data import BigQuerySource

    source = BigQuerySource(project="bench", endpoint=endpoint, plaintext=True, streams=streams)
    return sum(b.num_rows for b in source.batches())


def client_to_dataframe(endpoint: str, streams: int) -> int:
    import pandas as pd
    from google.cloud.bigquery_storage_v1 import types

    from crimeclass.data.sources._bigquery import SELECTED_FIELDS, bigquery_client

    client = bigquery_client(endpoint, plaintext=True)
    requested = types.ReadSession(
        table="projects/bigquery-public-data/datasets/chicago_crime/tables/crime",
        data_format=types.DataFormat.ARROW,
        read_options=types.ReadSession.TableReadOptions(selected_fields=list(SELECTED_FIELDS)))
    session = client.create_read_session(parent="projects/bench", read_session=requested,
                                         max_stream_count=streams)
    frames = [client.read_rows(s.name).to_dataframe(read_session=session)
              for s in session.streams]
    return len(pd.concat(frames, ignore_index=True))


CLIENTS = {
    "crimeclass-soda": lambda a: client_crimeclass_soda(a.url),
    "sodapy": lambda a: client_sodapy(a.url),
    "crimeclass-bigquery": lambda a: client_crimeclass_bigquery(a.endpoint, a.streams),
    "bigquery-text-path": lambda a: client_bigquery_text_path(a.endpoint, a.streams),
    "bigquery-duckdb-floor": lambda a: client_duckdb_floor(a.endpoint, a.streams),
    "bigquery-source-only": lambda a: client_bigquery_source_only(a.endpoint, a.streams),
    "bigquery-validation-only": lambda a: client_validation_only(a.endpoint, a.streams),
    "to_dataframe": lambda a: client_to_dataframe(a.endpoint, a.streams),
    "file-ingest": lambda a: client_file_ingest(a.path),
}


def run_client(args: argparse.Namespace) -> None:
    """In the child process: import, then time one client; print its figures as JSON."""
    import duckdb  # noqa: F401 - imports are not part of the time or of the growth
    import pandas  # noqa: F401
    import pyarrow  # noqa: F401
    from google.cloud import bigquery_storage_v1  # noqa: F401

    import crimeclass.data  # noqa: F401

    _reset_peak()
    start_mb = _status_mb("VmRSS")
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    rows = CLIENTS[args.client](args)
    seconds, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    peak = _status_mb("VmHWM")
    print(json.dumps({"rows": rows, "seconds": round(seconds, 3),
                      "cpu_seconds": round(cpu, 3),
                      "rows_per_second": round(rows / seconds),
                      "peak_mb": round(peak), "growth_mb": round(peak - start_mb)}))


def measure(name: str, **kwargs: object) -> dict:
    cmd = [sys.executable, __file__, "--client", name]
    for k, v in kwargs.items():
        cmd += [f"--{k}", str(v)]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"{name} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -------------------------------------------------------------- driver


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--sizes", type=int, default=2, help="1: 2017 only; 2: also 2016+2017")
    p.add_argument("--streams", type=int,
                   help="BigQuery streams (default: crimeclass's, half the cores)")
    p.add_argument("--years", default="2016-2017", help="first-last year of the files served")
    p.add_argument("--repeat", type=int, default=5,
                   help="turns of BigQuery's two compared clients (each one's median compared)")
    p.add_argument("--only", choices=("soda", "bigquery"), help="one source's clients only")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sources.json")
    p.add_argument("--client", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--endpoint", help=argparse.SUPPRESS)
    p.add_argument("--path", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.client:
        return run_client(args)
    from crimeclass.data.sources._bigquery import default_streams

    args.streams = args.streams or default_streams()

    import pyarrow.compute as pc
    from tests.data.loopback import raw_rows

    first, last = (int(y) for y in args.years.split("-"))
    files = [args.data / f"chicago_crimes_datastore_{y}.csv.gz" for y in range(first, last + 1)]
    print(f"reading {', '.join(f.name for f in files)} ...", flush=True)
    everything = raw_rows(files)
    years = pc.utf8_slice_codeunits(everything.column("date"), 6, 10)
    sizes = [everything.filter(pc.equal(years, str(last))), everything][: args.sizes]
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                           "platform": platform.platform()},
               "data": [f.name for f in files], "page_rows": 50_000,
               "streams": args.streams, "runs": []}
    for raw in sizes:
        n = raw.num_rows
        print(f"\n{n:,} rows", flush=True)
        entry: dict = {"rows": n}
        if args.only != "bigquery":
            _soda(entry, raw)
        if args.only != "soda":
            _bigquery(entry, raw, args.streams, args.repeat)
        for kind in ("soda", "bigquery"):
            for who, fig in entry.get(kind, {}).items():
                if isinstance(fig, dict) and "rows_per_second" in fig:
                    memory = (f"peak {fig['peak_mb']:>5,} MB (+{fig['growth_mb']:,} MB)"
                              if "peak_mb" in fig else "(computed, see _cpu_bound)")
                    print(f"  {kind:8} {who:22} {fig['rows_per_second']:>9,} rows/s  "
                          f"cpu {fig.get('cpu_seconds', 0):6.2f} s  {memory}")
            if kind in entry:
                print(f"  {kind:8} ours/theirs: speed x{entry[kind]['speed_ratio']}, "
                      f"memory growth x{entry[kind]['memory_ratio']}")
                if "cpu_bound_speed_ratio" in entry[kind]:
                    print(f"  {kind:8} floor/theirs x{entry[kind]['floor_speed_ratio']}, "
                          f"CPU bound/theirs x{entry[kind]['cpu_bound_speed_ratio']}")
        results["runs"].append(entry)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def _soda(entry: dict, raw: Any) -> None:
    from tests.data.loopback import SodaServer, soda_records

    with SodaServer(soda_records(raw)) as soda:
        ours = measure("crimeclass-soda", url=soda.url)
        theirs = measure("sodapy", url=soda.url)
    entry["soda"] = {"crimeclass": ours, "sodapy": theirs,
                     "speed_ratio": round(ours["rows_per_second"]
                                          / theirs["rows_per_second"], 2),
                     "memory_ratio": round(ours["growth_mb"] / max(theirs["growth_mb"], 1), 2)}


def _median_run(runs: list[dict]) -> dict:
    """The run of median speed (the middle one of an odd count), with every speed beside it."""
    ranked = sorted(runs, key=lambda f: f["rows_per_second"])
    return {**ranked[len(ranked) // 2], "runs_rows_per_second": [f["rows_per_second"]
                                                                  for f in runs]}


def _bigquery(entry: dict, raw: Any, streams: int, repeat: int) -> None:
    import pyarrow.parquet as pq
    from tests.data.loopback import BigQueryReadServer, bigquery_table

    with BigQueryReadServer(bigquery_table(raw), batch_rows=20_000) as bq:
        # the two clients compared take turns, ``repeat`` times each (the machine is
        # shared and its speed drifts by minutes): each one's median run is compared
        theirs_runs, ours_runs = [], []
        for _ in range(repeat):
            theirs_runs.append(measure("to_dataframe", endpoint=bq.endpoint, streams=streams))
            ours_runs.append(measure("crimeclass-bigquery", endpoint=bq.endpoint,
                                     streams=streams))
        ours4 = measure("crimeclass-bigquery", endpoint=bq.endpoint, streams=4)
        theirs4 = measure("to_dataframe", endpoint=bq.endpoint, streams=4)
        source = measure("bigquery-source-only", endpoint=bq.endpoint, streams=streams)
        floor = measure("bigquery-duckdb-floor", endpoint=bq.endpoint, streams=streams)
        checks = measure("bigquery-validation-only", endpoint=bq.endpoint, streams=streams)
        before = measure("bigquery-text-path", endpoint=bq.endpoint, streams=streams)
    with tempfile.TemporaryDirectory() as d:
        pq.write_table(raw, Path(d) / "rows.parquet")
        files_ = measure("file-ingest", path=Path(d) / "rows.parquet")
    ours, theirs = _median_run(ours_runs), _median_run(theirs_runs)
    bound = _cpu_bound(entry["rows"], floor, checks, source)
    entry["bigquery"] = {"crimeclass": ours, "crimeclass_4_streams": ours4,
                         "to_dataframe_4_streams": theirs4,
                         "source_only": source, "duckdb_floor": floor,
                         "validation_only": checks, "cpu_bound": bound,
                         "text_path_before": before, "to_dataframe": theirs,
                         "file_ingest_same_rows": files_,
                         "speed_ratio": round(ours["rows_per_second"]
                                              / theirs["rows_per_second"], 2),
                         "speed_ratio_per_turn": [
                             round(o["rows_per_second"] / t["rows_per_second"], 2)
                             for o, t in zip(ours_runs, theirs_runs, strict=True)],
                         "floor_speed_ratio": round(floor["rows_per_second"]
                                                    / theirs["rows_per_second"], 2),
                         "cpu_bound_speed_ratio": round(bound["rows_per_second"]
                                                        / theirs["rows_per_second"], 2),
                         "speed_ratio_4_streams": round(ours4["rows_per_second"]
                                                        / theirs4["rows_per_second"], 2),
                         "cpu_ratio": round(ours["cpu_seconds"] / theirs["cpu_seconds"], 2),
                         "memory_ratio": round(ours["growth_mb"]
                                               / max(theirs["growth_mb"], 1), 2)}


def _cpu_bound(rows: int, floor: dict, checks: dict, source: dict) -> dict:
    """The fastest any validated ingest into a DuckDB file could be on this machine's cores.

    It must at least read and store the rows (the floor's CPU) and check them (the
    validation's CPU less the reading it shares with the floor); with every core busy all
    the time, that CPU divided by the cores is its shortest wall time.
    """
    cpu = floor["cpu_seconds"] + max(checks["cpu_seconds"] - source["cpu_seconds"], 0.0)
    cores = os.cpu_count() or 1
    return {"cpu_seconds": round(cpu, 3), "cores": cores,
            "rows_per_second": round(rows / (cpu / cores))}


if __name__ == "__main__":
    main()
