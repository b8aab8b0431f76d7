"""BigQuery's public table through the Storage Read API, as a source of raw Arrow batches.

``bigquery-public-data.chicago_crime.crime`` is read with
google-cloud-bigquery-storage's ``BigQueryReadClient``: one read session in the
Arrow format, with the canonical columns selected and the :class:`RowFilter`
(a year range, ``updated_on`` after a time) pushed down as its row restriction,
so BigQuery sends only those rows and columns. The session's streams are read
in parallel threads, and the batches go through the same validation, quarantine,
account and store as a file. The client reconnects a broken stream at the row
where it stopped.

The table is typed (INTEGER, FLOAT, BOOLEAN, TIMESTAMP), so the batches the
ingest validates (:meth:`BigQuerySource.ingest_batches`) keep those columns in
their canonical Arrow type: a cast that is exact (a TIMESTAMP keeps its
wall-clock value, an INTEGER that fits stays that integer) gives the value that
validation's parse of its text would give, without formatting it as text and
parsing it again (most of the ingest's time before). A column whose cast fails
(an INTEGER too large for the canonical INTEGER) stays text in that batch, and
validation judges it. :meth:`BigQuerySource.batches` gives every column as text.

The source counts, per stream, the rows it has handed over (:attr:`offsets`),
and the newest ``updated_on`` among them (:attr:`high`): a run that commits as
it goes (:mod:`crimeclass.data.sources._bigquery_run`) stores them with its
rows, and a resumed run reads each stream of the same session from its offset.

The billing project comes from ``project=`` (``--project``), else
``$GOOGLE_CLOUD_PROJECT``, else Google's default credentials, which also give
the credentials (``gcloud auth application-default login``, or
``$GOOGLE_APPLICATION_CREDENTIALS``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from queue import Empty, Full, Queue
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crimeclass.data._errors import SourceError
from crimeclass.data._rowfilter import RowFilter
from crimeclass.data._schema import BIGQUERY_NAMES, BIGQUERY_TABLE, COLUMNS, HeaderMapping
from crimeclass.data.sources._base import Cursor, Source, raw_batch

__all__ = ["BigQuerySource", "bigquery_client", "default_streams"]


def default_streams() -> int:
    """Streams read in parallel unless told: half the cores this process may use, at least
    one. Each stream's thread decodes its Arrow batches on the cores that validation and
    DuckDB need: on two cores one stream was as fast as four or faster, with less memory
    (docs/benchmarks.md); over a slow network, more streams can help."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 2) // 2)

#: The columns asked for: every canonical column but the derived Location.
SELECTED_FIELDS: tuple[str, ...] = tuple(c.bigquery for c in COLUMNS if c.kind != "derived")
_PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")
#: The canonical Arrow type of each kind of column that BigQuery sends typed.
_CANONICAL_TYPES = {"id": pa.int64(), "int": pa.int32(), "year": pa.int32(),
                    "float": pa.float64(), "bool": pa.bool_(), "timestamp": pa.timestamp("us")}
_KIND = {c.name: c.kind for c in COLUMNS}
_LOGIN = ("run 'gcloud auth application-default login', or set GOOGLE_APPLICATION_CREDENTIALS "
          "to a service account key file")


def bigquery_client(endpoint: str | None = None, *, plaintext: bool = False) -> Any:
    """A ``BigQueryReadClient``; ``endpoint`` (``host:port``) replaces Google's address.

    With ``plaintext=True`` the client talks gRPC without TLS and without
    credentials: for a local server that implements the BigQuery Read service
    (an emulator, or the loopback server of the tests).
    """
    from google.cloud.bigquery_storage_v1 import BigQueryReadClient

    options = {"api_endpoint": endpoint} if endpoint else None
    if not plaintext:
        return BigQueryReadClient(client_options=options)
    if not endpoint:
        raise ValueError("a plaintext connection needs an endpoint (host:port)")
    import grpc
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
        BigQueryReadGrpcTransport,
    )

    def transport(**kwargs: Any) -> BigQueryReadGrpcTransport:
        channel = grpc.insecure_channel(kwargs["host"], options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])
        extra = {"client_info": kwargs["client_info"]} if kwargs.get("client_info") else {}
        return BigQueryReadGrpcTransport(host=kwargs["host"], channel=channel, **extra)

    return BigQueryReadClient(client_options=options, credentials=AnonymousCredentials(),
                              transport=transport)


def _gone(e: BaseException) -> bool:
    """Whether ``e`` says that a stream, or its session, is no more (expired, or unknown)."""
    from google.api_core import exceptions as gexc

    return isinstance(e, (gexc.NotFound, gexc.FailedPrecondition))


def _table_path(table: str) -> str:
    parts = table.split(".")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"the table {table!r} should be written project.dataset.table, e.g. "
                         f"{BIGQUERY_TABLE}")
    return "projects/{}/datasets/{}/tables/{}".format(*parts)


@dataclass
class BigQuerySource(Source):
    """The crime table in BigQuery, read through the Storage Read API.

    The read session is created at construction, so that a refused request
    fails before anything is stored.

    Parameters
    ----------
    project : str or None
        The billing project; None: ``$GOOGLE_CLOUD_PROJECT``, else the default
        credentials' project.
    table : str
        ``project.dataset.table``.
    row_filter : RowFilter
        Rows to read, pushed down as the session's row restriction.
    streams : int, default=default_streams()
        Most streams to read in parallel (BigQuery may grant fewer); by default half the
        cores, at least one (:func:`default_streams`).
    endpoint : str or None
        ``host:port`` of another BigQuery Storage endpoint.
    plaintext : bool
        gRPC without TLS or credentials (a local server; see :func:`bigquery_client`).
    client : BigQueryReadClient or None
        A client to use instead of building one.
    session : ReadSession or None
        A read session to read (that of an interrupted run); None: create one.
    offsets : dict of str to int
        Rows of each stream already read (an interrupted run's): reading starts there.
    finished : set of str
        Streams already read to their end: not read again.

    Attributes
    ----------
    session : ReadSession
        The read session: its streams, schema and estimated row count.
    offsets, finished
        Updated as batches are handed over.
    high : datetime or None
        The newest ``updated_on`` of the rows handed over.
    session_gone : bool
        Whether a stream was refused as not found or expired (a resumed session that
        BigQuery no longer keeps).
    """

    project: str | None = None
    table: str = BIGQUERY_TABLE
    row_filter: RowFilter = field(default_factory=RowFilter)
    streams: int = field(default_factory=default_streams)
    endpoint: str | None = None
    plaintext: bool = False
    client: Any = field(default=None, repr=False)
    session: Any = field(default=None, repr=False)
    offsets: dict[str, int] = field(default_factory=dict)
    finished: set[str] = field(default_factory=set)

    high: datetime | None = field(default=None, init=False)
    session_gone: bool = field(default=False, init=False)

    format = "bigquery"

    def __post_init__(self) -> None:
        if self.streams < 1:
            raise ValueError(f"streams must be at least 1, not {self.streams}")
        self._path = _table_path(self.table)
        self.cursor = Cursor()
        try:
            import google.cloud.bigquery_storage_v1  # noqa: F401
        except ImportError as e:
            raise self._error(f"the BigQuery source needs the bigquery extra ({e}): "
                              "pip install 'crimeclass[bigquery]'") from None
        if self.client is None:
            self.client = self._call(lambda: bigquery_client(self.endpoint,
                                                             plaintext=self.plaintext))
        self.project = self.project or self._default_project()
        if self.session is None:
            self.session = self._call(self._create_session)
        self.schema = self._session_schema()
        mapping = {n: BIGQUERY_NAMES[n] for n in self.schema.names if n in BIGQUERY_NAMES}
        ignored = tuple(n for n in self.schema.names if n not in BIGQUERY_NAMES)
        self.header = HeaderMapping(mapping, ignored, "bigquery")

    @property
    def name(self) -> str:
        where = self.row_filter.where_bigquery()
        return f"bigquery:{self.table}" + (f" where {where}" if where else "")

    def size(self) -> int:
        return int(self.session.estimated_row_count or 0)

    # ------------------------------------------------------------ setup

    def _error(self, message: str) -> SourceError:
        return SourceError(self.name, None, None, message)

    def _default_project(self) -> str:
        for var in _PROJECT_ENV:
            if os.environ.get(var):
                return os.environ[var]
        if self.plaintext:
            raise self._error("no billing project: pass --project")
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            _, project = google.auth.default()
        except DefaultCredentialsError as e:
            raise self._error(f"no Google credentials ({e}): {_LOGIN}") from None
        if not project:
            raise self._error("no billing project: pass --project or set "
                              "GOOGLE_CLOUD_PROJECT (BigQuery bills the reads to it)")
        return str(project)

    def _create_session(self) -> Any:
        from google.cloud.bigquery_storage_v1 import types

        options = types.ReadSession.TableReadOptions(
            selected_fields=list(SELECTED_FIELDS),
            row_restriction=self.row_filter.where_bigquery())
        requested = types.ReadSession(table=self._path, data_format=types.DataFormat.ARROW,
                                      read_options=options)
        return self.client.create_read_session(parent=f"projects/{self.project}",
                                               read_session=requested,
                                               max_stream_count=self.streams)

    def _session_schema(self) -> pa.Schema:
        data = self.session.arrow_schema.serialized_schema
        try:
            schema = pa.ipc.read_schema(pa.py_buffer(data))
        except (pa.ArrowInvalid, OSError) as e:
            raise self._error(f"the read session has no readable Arrow schema ({e}): check "
                              "--endpoint; is it a BigQuery Storage Read API?") from None
        if "date" not in schema.names:
            raise self._error(f"the table has no 'date' column (columns: "
                              f"{', '.join(schema.names[:8])}): check --table")
        return schema

    def _call(self, fn: Any) -> Any:
        """Run ``fn``, turning Google's errors into a SourceError that says what to check."""
        try:
            return fn()
        except Exception as e:
            error = self._translate(e)
            if error is e:
                raise
            raise error from None

    def _translate(self, e: BaseException) -> BaseException:
        """A SourceError that says what to check for one of Google's errors; else ``e``."""
        from google.api_core import exceptions as gexc
        from google.auth.exceptions import DefaultCredentialsError, RefreshError

        if isinstance(e, DefaultCredentialsError):
            return self._error(f"no Google credentials ({e}): {_LOGIN}")
        if isinstance(e, RefreshError):
            return self._error(f"the Google credentials could not be refreshed ({e}): they "
                               f"may be expired or revoked; {_LOGIN}")
        if isinstance(e, gexc.Unauthenticated):
            return self._error(f"credentials refused ({e.message}): they may be expired; "
                               f"{_LOGIN}")
        if isinstance(e, (gexc.PermissionDenied, gexc.Forbidden)):
            return self._error(
                f"permission denied ({e.message}): check that your account may create read "
                f"sessions in the billing project {self.project!r} (role BigQuery Read "
                "Session User), that the BigQuery Storage API is enabled there, and that it "
                "may read the table")
        if isinstance(e, gexc.NotFound):
            return self._error(f"not found ({e.message}): check --table and --project")
        if isinstance(e, gexc.InvalidArgument):
            return self._error(f"the request was refused ({e.message}): check --table and "
                               "the year and updated-since filters")
        if isinstance(e, (gexc.GoogleAPICallError, gexc.RetryError)):
            where = self.endpoint or "bigquerystorage.googleapis.com"
            return self._error(f"the BigQuery Storage API at {where} failed ({e}): check the "
                               "network and --endpoint, or try again later")
        return e

    # ----------------------------------------------------------- reading

    def _columns(self, batch: pa.RecordBatch, typed: bool) -> dict[str, pa.Array]:
        """The batch's mapped columns: as text, or (``typed``) in their canonical type
        where the cast is exact (zoned timestamps as their wall-clock value)."""
        out = {}
        for name, canonical in self.header.mapping.items():
            arr = batch.column(name)
            if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
                arr = arr.cast(pa.timestamp(arr.type.unit))
            want = _CANONICAL_TYPES.get(_KIND[canonical]) if typed else None
            if want is not None and not pa.types.is_string(arr.type):
                try:
                    out[canonical] = arr.cast(want)  # safe: fails rather than change a value
                    continue
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                    pass
            out[canonical] = arr if arr.type == pa.string() else arr.cast(pa.string())
        return out

    def _newest(self, batch: pa.RecordBatch) -> datetime | None:
        if "updated_on" not in batch.schema.names:
            return None
        value = pc.max(batch.column("updated_on")).as_py()
        return value.replace(tzinfo=None) if isinstance(value, datetime) else None

    def _read_stream(self, stream: str, typed: bool, out: Queue[Any],
                     stop: threading.Event) -> None:
        """One stream's batches into ``out`` as ``(stream, columns, newest updated_on)``;
        then ``(stream, None, None)``, or the error."""
        try:
            reader = self.client.read_rows(stream, offset=self.offsets.get(stream, 0))
            for message in reader:
                if stop.is_set():
                    reader.cancel()
                    return
                data = message.arrow_record_batch.serialized_record_batch
                if not data:
                    continue
                try:
                    batch = pa.ipc.read_record_batch(pa.py_buffer(data), self.schema)
                except (pa.ArrowInvalid, OSError) as e:
                    raise self._error(f"stream {stream} sent data that is not an Arrow record "
                                      f"batch of the session's schema ({e})") from None
                item: Any = (stream, self._columns(batch, typed), self._newest(batch))
                while not stop.is_set():  # a bounded queue: memory stays a few batches
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
            item = (stream, None, None)
        except BaseException as e:  # handed to the consumer
            item = e
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except Full:
                continue

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Raw batches (text) from all streams, in the order they arrive; ``_line`` counts
        rows."""
        return self._batches(typed=False)

    def ingest_batches(self) -> Iterator[pa.RecordBatch]:
        """As :meth:`batches`, with the typed columns in their canonical type (see the
        module's docstring)."""
        return self._batches(typed=True)

    def _batches(self, typed: bool) -> Iterator[pa.RecordBatch]:
        streams = [s.name for s in self.session.streams if s.name not in self.finished]
        out: Queue[Any] = Queue(maxsize=2 * max(1, len(streams)))
        stop = threading.Event()
        threads = [threading.Thread(target=self._read_stream, args=(s, typed, out, stop),
                                    daemon=True, name=f"crimeclass-bq-{i}")
                   for i, s in enumerate(streams)]
        for t in threads:
            t.start()
        running, line = len(threads), self.cursor.rows + 1
        try:
            while running:
                item = out.get()
                if isinstance(item, BaseException):
                    self.session_gone = _gone(item)
                    error = self._translate(item)
                    if error is item:
                        raise item
                    raise error from None
                stream, columns, newest = item
                if columns is None:
                    running -= 1
                    self.finished.add(stream)
                    continue
                n = len(next(iter(columns.values()))) if columns else 0
                lines = pa.array(np.arange(line, line + n, dtype=np.int64))
                line += n
                self.offsets[stream] = self.offsets.get(stream, 0) + n
                if newest is not None and (self.high is None or newest > self.high):
                    self.high = newest
                self._advance(n)
                yield raw_batch(columns, lines)
        finally:
            stop.set()
            for t in threads:
                while t.is_alive():
                    try:
                        out.get_nowait()
                    except Empty:
                        t.join(timeout=0.05)
