"""Real servers on 127.0.0.1 for the live sources: SODA over HTTP, and the BigQuery Read service.

Both serve rows of the real sample bundled with crimeclass, in the shape the
real services use:

* :class:`SodaServer` is a ``ThreadingHTTPServer`` answering
  ``GET /resource/<dataset>.json`` with ``$select``, ``$where``, ``$order``,
  ``$limit`` and ``$offset`` like the Data Portal: JSON records with numbers as
  strings, booleans as JSON booleans, ISO floating timestamps, ``location`` as
  an object, nulls left out, and a ``:id`` row identifier to order by. SoQL's
  ``$where`` and ``$select`` are evaluated by DuckDB over the typed rows. It
  can be told to fail requests (500, 503, 429 with ``Retry-After``, a
  connection cut mid-body, garbage, 401/403) and it records every request.
* :class:`BigQueryReadServer` is a ``grpc.server`` implementing
  ``google.cloud.bigquery.storage.v1.BigQueryRead`` (``CreateReadSession``,
  ``ReadRows``) with the client library's own protobuf messages: it evaluates
  the session's ``row_restriction`` and ``selected_fields`` (DuckDB again),
  splits the rows into streams and streams Arrow IPC record batches in the
  BigQuery schema; it honours ``offset`` on a reconnect, and can fail a
  session or break a stream once.

Used by tests/data/sources/test_portal.py, tests/data/sources/test_bigquery.py,
tests/cli/test_sources.py and bench/sources.py. Loopback only; stop them with
``close()`` (or ``with``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import duckdb
import pyarrow as pa

from crimeclass.data import RAW_SCHEMA, Store, open_source, sample_files
from crimeclass.data._schema import BIGQUERY_ARROW_SCHEMA, COLUMNS, DATE_FORMATS

#: The bundled sample files in the portal's 22-column layout, every row with an ID.
PORTAL_SAMPLES = (
    "chicago_crimes_2025_01_api_sample.csv.gz",
    "chicago_crimes_2025_02_sample.csv.gz",
    "chicago_crimes_homicides_2001_2024_sample.csv.gz",
)


def portal_sample_files() -> list[Path]:
    return [f for f in sample_files() if f.name in PORTAL_SAMPLES]


# ------------------------------------------------------------- the rows

#: What two stores must agree on: the canonical columns, the label, the key and the flags.
COMPARED = ("id, case_number, date, block, iucr, primary_type, description, "
            "location_description, arrest, domestic, beat, district, ward, community_area, "
            "fbi_code, x_coordinate, y_coordinate, year, updated_on, latitude, longitude, "
            "location, is_index, label_source, key, key_derived, flags")


def incidents(path: Path, where: str = "true") -> pa.Table:
    """The incidents of a store, in key order, for comparing stores."""
    with Store(path, read_only=True) as st:
        return st.con.sql(f"SELECT {COMPARED} FROM incidents WHERE {where} ORDER BY key"
                          ).to_arrow_table()



def raw_rows(files: Iterable[Path], *, min_year: int | None = None) -> pa.Table:
    """The real rows of ``files`` as text, one per ID (the newest ``Updated On``), as the
    portal holds them: rows without an ID or ``Updated On`` are left out."""
    batches = [b for f in files for b in open_source(f).batches()]
    raw = pa.Table.from_batches(batches, schema=RAW_SCHEMA).drop_columns(
        ["_line", "_reject", "_raw"])
    con = duckdb.connect()
    con.register("raw", raw)
    fmts = "[" + ", ".join(f"'{f}'" for f in DATE_FORMATS.values()) + "]"
    where = f"AND year(try_strptime(date, {fmts})) >= {int(min_year)}" if min_year else ""
    out = con.sql(f"""
        SELECT * EXCLUDE (_u) FROM (
            SELECT *, try_strptime(updated_on, {fmts}) AS _u FROM raw
            WHERE id IS NOT NULL AND updated_on IS NOT NULL {where})
        QUALIFY row_number() OVER (PARTITION BY id ORDER BY _u DESC) = 1
        ORDER BY id""").to_arrow_table()
    con.close()
    return out


def _typed_sql(relation: str, keep: tuple[str, ...] = ()) -> str:
    """Typed columns (named as in the store) from the raw text of ``relation``, and ``keep``."""
    fmts = "[" + ", ".join(f"'{f}'" for f in DATE_FORMATS.values()) + "]"
    cols = []
    for c in COLUMNS:
        n = c.name
        if c.kind == "timestamp":
            cols.append(f"try_strptime(trim({n}), {fmts}) AS {n}")
        elif c.kind in ("id", "int", "year"):
            cols.append(f"CAST(TRY_CAST({n} AS DOUBLE) AS BIGINT) AS {n}")
        elif c.kind == "float":
            cols.append(f"TRY_CAST({n} AS DOUBLE) AS {n}")
        elif c.kind == "bool":
            cols.append(f"lower(trim({n})) IN ('true', 't', 'y', 'yes', '1') AS {n}")
        elif c.kind == "derived":
            cols.append("CASE WHEN latitude IS NOT NULL AND longitude IS NOT NULL THEN "
                        "'(' || latitude || ', ' || longitude || ')' END AS location")
        else:
            cols.append(n)
    return f"SELECT {', '.join([*keep, *cols])} FROM {relation}"


def soda_records(raw: pa.Table) -> list[dict[str, Any]]:
    """The rows as the portal's SODA JSON records (nulls left out)."""
    con = duckdb.connect()
    con.register("raw", raw)
    fmts = "[" + ", ".join(f"'{f}'" for f in DATE_FORMATS.values()) + "]"
    cols = []
    for c in COLUMNS:
        n = c.name
        if c.kind == "timestamp":
            cols.append(f"strftime(try_strptime(trim({n}), {fmts}), '%Y-%m-%dT%H:%M:%S.%g') AS {n}")
        elif c.kind == "bool":
            cols.append(f"lower(trim({n})) IN ('true', 't', 'y', 'yes', '1') AS {n}")
        elif c.kind == "derived":
            cols.append("CASE WHEN latitude IS NOT NULL AND longitude IS NOT NULL THEN "
                        "{'latitude': latitude, 'longitude': longitude, 'human_address': "
                        "'{\"address\": \"\", \"city\": \"\", \"state\": \"\", \"zip\": \"\"}'} "
                        "END AS location")
        elif c.kind == "year":  # the portal's Year is the year of Date
            cols.append(f"coalesce({n}, CAST(year(try_strptime(trim(date), {fmts})) AS VARCHAR))"
                        f" AS {n}")
        else:
            cols.append(n)
    rows = con.sql(f"SELECT {', '.join(cols)} FROM raw").to_arrow_table().to_pylist()
    con.close()
    return [{k: v for k, v in r.items() if v is not None} for r in rows]


def bigquery_table(raw: pa.Table) -> pa.Table:
    """The rows in the BigQuery table's schema (``unique_key INTEGER, date TIMESTAMP, ...``):
    the Chicago wall-clock times labelled UTC, as the public table holds them."""
    con = duckdb.connect()
    con.register("raw", raw)
    typed = con.sql(_typed_sql("raw")).to_arrow_table()
    con.close()
    arrays = []
    for c, f in zip(COLUMNS, BIGQUERY_ARROW_SCHEMA, strict=True):
        arr = typed.column(c.name)
        if pa.types.is_timestamp(f.type):
            arr = arr.cast(pa.timestamp("us")).cast(f.type)  # same wall-clock value, UTC
        arrays.append(arr.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=BIGQUERY_ARROW_SCHEMA)


# ----------------------------------------------------------------- SODA


def _row_id(record_id: Any) -> str:
    """A Socrata-like ``:id`` (``row-xxxx~xxxx.xxxx``): stable per record, in no useful order."""
    h = hashlib.sha1(str(record_id).encode()).hexdigest()
    return f"row-{h[:4]}~{h[4:8]}.{h[8:12]}"


def _soda_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return str(v)
    return v


#: The key clause that a client paging by key appends to its ``$where``.
_AFTER_KEY = re.compile(r"(?: AND )?:id > '([^']*)'$")


def _soql(text: str) -> str:
    """SoQL as DuckDB SQL: the ``:id`` system field is the column ``_id``."""
    return re.sub(r"(?<![\w@]):id\b", "_id", text)


@dataclass
class Failure:
    kind: str  # "500", "503", "429", "401", "403", "cut", "cut-unsized", "garbage",
    # or "without-<field>": the answer's records lack that field
    offset: int | None  # fail only page requests at this $offset; None: any request
    times: int
    retry_after: str | None = None


class SodaServer:
    """A SODA endpoint on 127.0.0.1 serving ``records`` as dataset ``dataset``.

    Parameters
    ----------
    records : list of dict
        SODA JSON records; each has an ``id``.
    dataset : str
        The dataset id in ``/resource/<dataset>.json``.
    app_tokens : set of str or None
        When given, requests must carry one of them in ``X-App-Token`` (else 403).

    Attributes
    ----------
    requests : list of dict
        The query parameters of every request received, in order.
    headers : list of dict
        Their headers.
    """

    def __init__(self, records: list[dict[str, Any]], *, dataset: str = "ijzp-q8t2",
                 app_tokens: set[str] | None = None) -> None:
        self.dataset = dataset
        self.app_tokens = app_tokens
        self.requests: list[dict[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.failures: list[Failure] = []
        #: Called with a request's parameters before it is answered (to change the data
        #: between pages, as the portal does while a run reads it).
        self.before_request: Callable[[dict[str, str]], None] | None = None
        self._lock = threading.Lock()
        self._con = duckdb.connect()
        self._con.execute("SET threads = 1")
        self.replace(records)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server interface
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True, name="soda-server")
        self._thread.start()

    # ----------------------------------------------------------- control

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._con.close()

    def __enter__(self) -> SodaServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fail(self, kind: str, *, offset: int | None = None, times: int = 1,
             retry_after: str | None = None) -> None:
        """Fail the next ``times`` requests (at page ``offset``, if given) with ``kind``."""
        with self._lock:
            self.failures.append(Failure(kind, offset, times, retry_after))

    def heal(self) -> None:
        """Stop failing."""
        with self._lock:
            self.failures.clear()

    def replace(self, records: list[dict[str, Any]]) -> None:
        """Serve ``records`` from now on (a record keeps its ``:id`` across versions)."""
        names = [c.name for c in COLUMNS if c.kind != "derived"]
        text = {n: pa.array([None if isinstance(r.get(n), dict) else
                             (str(r[n]).lower() if isinstance(r.get(n), bool) else r.get(n))
                             if n in r else None for r in records], pa.string())
                for n in names}
        text["_id"] = pa.array([_row_id(r.get("id")) for r in records], pa.string())
        text["_pos"] = pa.array(range(len(records)), pa.int64())
        table = pa.table(text)
        with self._lock:
            self.records = list(records)
            self._json = [json.dumps(r, separators=(",", ":")) for r in records]
            self._con.register("_text", table)
            self._con.execute("CREATE OR REPLACE TABLE data AS "
                              + _typed_sql("_text", keep=("_id", "_pos")))
            self._con.unregister("_text")

    # ---------------------------------------------------------- serving

    def _take_failure(self, params: dict[str, str]) -> Failure | None:
        with self._lock:
            offset = None
            for f in self.failures:
                if f.times <= 0:
                    continue
                if f.offset is not None and offset is None:
                    offset = self._offset(params)
                if f.offset is None or offset == f.offset:
                    f.times -= 1
                    return f
        return None

    def _offset(self, params: dict[str, str]) -> int:
        """Rows before a page request's first row: its ``$offset``, or for a request by key
        (``... AND :id > 'k'``) the rows of its window up to ``k``; -1 if no page request."""
        if "$offset" in params:
            return int(params["$offset"])
        if "$order" not in params:
            return -1
        where = params.get("$where") or "true"
        found = _AFTER_KEY.search(where)
        if not found:
            return 0
        base = where[:found.start()] or "true"
        return int(self._con.execute(f"SELECT count(*) FROM data WHERE ({_soql(base)}) "
                                     "AND _id <= ?", [found.group(1)]).fetchall()[0][0])

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        split = urlsplit(h.path)
        params = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if self.before_request is not None:
            self.before_request(params)
        with self._lock:
            self.requests.append(params)
            self.headers.append(dict(h.headers))
        if split.path != f"/resource/{self.dataset}.json":
            return self._send(h, 404, {"code": "not_found", "error": True,
                                       "message": f"no dataset at {split.path}"})
        if self.app_tokens is not None and h.headers.get("X-App-Token") not in self.app_tokens:
            return self._send(h, 403, {"code": "permission_denied", "error": True,
                                       "message": "Invalid app_token specified"})
        failure = self._take_failure(params)
        if failure and failure.kind in ("500", "503", "429", "401", "403"):
            extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
            return self._send(h, int(failure.kind), {"error": True, "message": "injected"},
                              extra)
        if failure and failure.kind == "garbage":
            return self._send_bytes(h, 200, b"<html><body>Service maintenance</body></html>",
                                    "text/html")
        try:
            body = self._query(params)
        except (duckdb.Error, ValueError) as e:
            return self._send(h, 400, {"code": "query.compiler.malformed", "error": True,
                                       "message": str(e).splitlines()[0]})
        if failure and failure.kind.startswith("without-"):  # an answer that lacks a field
            field = failure.kind.removeprefix("without-")
            body = json.dumps([{k: v for k, v in r.items() if k != field}
                               for r in json.loads(body)]).encode()
        if failure and failure.kind in ("cut", "cut-unsized"):
            # the headers promise the whole body (or none says how long), half comes, close
            h.send_response(200)
            h.send_header("Content-Type", "application/json;charset=utf-8")
            if failure.kind == "cut":
                h.send_header("Content-Length", str(len(body)))
            else:
                h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.close_connection = True
            return
        self._send_bytes(h, 200, body, "application/json;charset=utf-8")

    def _query(self, params: dict[str, str]) -> bytes:
        where = _soql(params.get("$where") or "true")
        order = _soql(params.get("$order") or "_id")
        limit = int(params.get("$limit", "1000"))
        offset = int(params.get("$offset", "0"))
        if limit > 50_000:
            raise ValueError("$limit must be at most 50000 on a 2.0 endpoint")
        page = f"ORDER BY {order} LIMIT {limit} OFFSET {offset}"
        select = params.get("$select", "*")
        with self._lock:
            if select.replace(" ", "") in (":id,*", "*,:id"):  # the records and their :id
                rows = self._con.execute(f"SELECT _pos, _id FROM data WHERE {where} {page}"
                                         ).fetchall()
                return ("[" + ",".join('{":id":' + json.dumps(i) + ("," if self._json[p] != "{}"
                                       else "") + self._json[p][1:] for p, i in rows)
                        + "]").encode()
            if "$select" in params:
                sql = f"SELECT {_soql(params['$select'])} FROM data WHERE {where}"
                rel = self._con.sql(sql if "(" in params["$select"] else f"{sql} {page}")
                names = rel.columns
                rows = [{k: _soda_value(v) for k, v in zip(names, r, strict=True)
                         if v is not None} for r in rel.fetchall()]
                return json.dumps(rows).encode()
            pos = self._con.execute(f"SELECT _pos FROM data WHERE {where} {page}").fetchall()
            return ("[" + ",".join(self._json[p] for (p,) in pos) + "]").encode()

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: Any,
              headers: dict[str, str] | None = None) -> None:
        SodaServer._send_bytes(h, status, json.dumps(body).encode(),
                               "application/json;charset=utf-8", headers)

    @staticmethod
    def _send_bytes(h: BaseHTTPRequestHandler, status: int, data: bytes, kind: str,
                    headers: dict[str, str] | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)


# ------------------------------------------------------------- BigQuery

TABLE_PATH = "projects/bigquery-public-data/datasets/chicago_crime/tables/crime"


class BigQueryReadServer:
    """The BigQuery Read service on 127.0.0.1, serving ``table`` (in the BigQuery schema).

    Parameters
    ----------
    table : pyarrow.Table
        The rows, in :data:`BIGQUERY_ARROW_SCHEMA`.
    batch_rows : int
        Rows per ``ReadRowsResponse``.

    Attributes
    ----------
    sessions : list
        The ``CreateReadSessionRequest`` messages received.
    reads : list of (str, int)
        ``(stream, offset)`` of every ``ReadRows`` call.
    """

    SERVICE = "google.cloud.bigquery.storage.v1.BigQueryRead"

    def __init__(self, table: pa.Table, *, batch_rows: int = 1000) -> None:
        import grpc
        from google.cloud.bigquery_storage_v1 import types

        self.table = table
        self.batch_rows = batch_rows
        self.sessions: list[Any] = []
        self.reads: list[tuple[str, int]] = []
        self.session_error: tuple[Any, str] | None = None
        self.break_stream: tuple[int, int] | None = None  # (stream, after batches), once
        self.garbage = False
        self._streams: dict[str, pa.Table] = {}
        self._lock = threading.Lock()
        handlers = {
            "CreateReadSession": grpc.unary_unary_rpc_method_handler(
                self._create_read_session,
                request_deserializer=types.CreateReadSessionRequest.deserialize,
                response_serializer=types.ReadSession.serialize),
            "ReadRows": grpc.unary_stream_rpc_method_handler(
                self._read_rows,
                request_deserializer=types.ReadRowsRequest.deserialize,
                response_serializer=types.ReadRowsResponse.serialize),
        }
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                                   options=[("grpc.so_reuseport", 0)])
        self._server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self.SERVICE, handlers),))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.stop(grace=None).wait(5)

    def __enter__(self) -> BigQueryReadServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _create_read_session(self, request: Any, context: Any) -> Any:
        import grpc
        from google.cloud.bigquery_storage_v1 import types

        with self._lock:
            self.sessions.append(request)
        if self.session_error:
            code, message = self.session_error
            context.abort(code, message)
        requested = request.read_session
        if requested.table != TABLE_PATH:
            context.abort(grpc.StatusCode.NOT_FOUND, f"Not found: Table {requested.table}")
        if requested.data_format != types.DataFormat.ARROW:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "this server streams Arrow only")
        fields = list(requested.read_options.selected_fields) or self.table.column_names
        restriction = requested.read_options.row_restriction or "true"
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.register("t", self.table)
        try:
            rows = con.sql(f"SELECT {', '.join(fields)} FROM t WHERE {restriction}"
                           ).to_arrow_table()
        except duckdb.Error as e:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"row_restriction: {e}")
        finally:
            con.close()
        schema = pa.schema([self.table.schema.field(f) for f in fields])
        rows = rows.cast(schema)
        n_streams = min(max(1, request.max_stream_count or 1), rows.num_rows)
        name = f"projects/{request.parent.split('/')[-1]}/locations/us/sessions/{uuid.uuid4().hex}"
        streams = []
        step = -(-rows.num_rows // n_streams) if n_streams else 0
        for i in range(n_streams):
            stream = f"{name}/streams/{i}"
            with self._lock:
                self._streams[stream] = rows.slice(i * step, step)
            streams.append(types.ReadStream(name=stream))
        return types.ReadSession(
            name=name, data_format=types.DataFormat.ARROW, table=requested.table,
            read_options=requested.read_options, streams=streams,
            arrow_schema=types.ArrowSchema(serialized_schema=schema.serialize().to_pybytes()),
            estimated_row_count=rows.num_rows,
            expire_time=datetime.now(UTC) + timedelta(hours=6))

    def _read_rows(self, request: Any, context: Any) -> Iterator[Any]:
        import grpc
        from google.cloud.bigquery_storage_v1 import types

        with self._lock:
            self.reads.append((request.read_stream, request.offset))
            table = self._streams.get(request.read_stream)
        if table is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"no stream {request.read_stream}")
        index = int(request.read_stream.rsplit("/", 1)[1])
        schema = types.ArrowSchema(serialized_schema=table.schema.serialize().to_pybytes())
        for k, batch in enumerate(table.slice(request.offset).to_batches(self.batch_rows)):
            if self._breaks(index, k):
                context.abort(grpc.StatusCode.UNAVAILABLE, "injected: connection reset")
            data = b"\x00garbage" if self.garbage else batch.serialize().to_pybytes()
            response = types.ReadRowsResponse(
                arrow_record_batch=types.ArrowRecordBatch(serialized_record_batch=data,
                                                          row_count=batch.num_rows),
                row_count=batch.num_rows)
            if k == 0:  # as BigQuery does, the first response carries the schema
                response.arrow_schema = schema
            yield response

    def forget_sessions(self) -> None:
        """Forget every session's streams, as BigQuery does when a session expires."""
        with self._lock:
            self._streams.clear()

    def _breaks(self, stream: int, batch: int) -> bool:
        """Whether to break ``stream`` before ``batch`` (once)."""
        with self._lock:
            if self.break_stream == (stream, batch):
                self.break_stream = None
                return True
        return False
