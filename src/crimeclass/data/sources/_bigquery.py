"""BigQuery's public table through the Storage Read API, as a source of raw Arrow batches.

``bigquery-public-data.chicago_crime.crime`` is read with
google-cloud-bigquery-storage's ``BigQueryReadClient``: one read session in the
Arrow format, with the canonical columns selected and the :class:`RowFilter`
(a year range, ``updated_on`` after a time) pushed down as its row restriction,
so BigQuery sends only those rows and columns. The session's streams are read
in parallel threads, each batch cast to text as :data:`RAW_SCHEMA` wants, and
the batches go through the same validation, quarantine, account and store as a
file. The client reconnects a broken stream at the row where it stopped.

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
from queue import Empty, Full, Queue
from typing import Any

import numpy as np
import pyarrow as pa

from crimeclass.data._errors import SourceError
from crimeclass.data._rowfilter import RowFilter
from crimeclass.data._schema import BIGQUERY_NAMES, BIGQUERY_TABLE, COLUMNS, HeaderMapping
from crimeclass.data.sources._base import Cursor, Source, raw_batch

__all__ = ["BigQuerySource", "bigquery_client"]

#: The columns asked for: every canonical column but the derived Location.
SELECTED_FIELDS: tuple[str, ...] = tuple(c.bigquery for c in COLUMNS if c.kind != "derived")
_PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT")
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
    streams : int
        Most streams to read in parallel (BigQuery may grant fewer).
    endpoint : str or None
        ``host:port`` of another BigQuery Storage endpoint.
    plaintext : bool
        gRPC without TLS or credentials (a local server; see :func:`bigquery_client`).
    client : BigQueryReadClient or None
        A client to use instead of building one.

    Attributes
    ----------
    session : ReadSession
        The read session: its streams, schema and estimated row count.
    """

    project: str | None = None
    table: str = BIGQUERY_TABLE
    row_filter: RowFilter = field(default_factory=RowFilter)
    streams: int = 4
    endpoint: str | None = None
    plaintext: bool = False
    client: Any = field(default=None, repr=False)

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

    def _text(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        """The batch's mapped columns as text (zoned timestamps as their wall-clock value)."""
        out = {}
        for name, canonical in self.header.mapping.items():
            arr = batch.column(name)
            if pa.types.is_timestamp(arr.type) and arr.type.tz is not None:
                arr = arr.cast(pa.timestamp(arr.type.unit))
            out[canonical] = arr if arr.type == pa.string() else arr.cast(pa.string())
        return out

    def _read_stream(self, stream: str, out: Queue[Any], stop: threading.Event) -> None:
        """One stream's batches, as text columns, into ``out``; then None, or the error."""
        try:
            reader = self.client.read_rows(stream)
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
                item: Any = self._text(batch)
                while not stop.is_set():  # a bounded queue: memory stays a few batches
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except Full:
                        continue
            item = None
        except BaseException as e:  # handed to the consumer
            item = e
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return
            except Full:
                continue

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Raw batches from all streams, in the order they arrive; ``_line`` counts rows."""
        streams = [s.name for s in self.session.streams]
        out: Queue[Any] = Queue(maxsize=2 * max(1, len(streams)))
        stop = threading.Event()
        threads = [threading.Thread(target=self._read_stream, args=(s, out, stop), daemon=True,
                                    name=f"crimeclass-bq-{i}") for i, s in enumerate(streams)]
        for t in threads:
            t.start()
        running, line = len(threads), 1
        try:
            while running:
                item = out.get()
                if item is None:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    error = self._translate(item)
                    if error is item:
                        raise item
                    raise error from None
                n = len(next(iter(item.values()))) if item else 0
                lines = pa.array(np.arange(line, line + n, dtype=np.int64))
                line += n
                self._advance(n)
                yield raw_batch(item, lines)
        finally:
            stop.set()
            for t in threads:
                while t.is_alive():
                    try:
                        out.get_nowait()
                    except Empty:
                        t.join(timeout=0.05)
