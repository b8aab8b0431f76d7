"""CSV exports (plain or gzipped) as streams of raw Arrow batches.

Every file source (this one and :class:`~crimeclass.data.sources.ParquetSource`)
yields :class:`pyarrow.RecordBatch` objects of
:data:`~crimeclass.data._schema.RAW_SCHEMA`: each canonical column as text (null
where the file lacks it), the line the row came from, and, for a line that
cannot be split into the header's fields, the reason and its text.
Memory stays bounded by the block size, whatever the file's size.

CSV is read in blocks cut at line ends outside quotes; pyarrow's multi-threaded
parser takes each block, and the block's first line number is known, so each
row's line is exact. Blocks with anything unusual (a line with the wrong number
of fields, blank lines, line breaks inside quoted values) go through Python's
``csv`` module instead, which counts lines itself.

For the ingest (:meth:`Source.ingest_batches`), the CSV parser also types the
numbers and booleans of a block itself, at almost no cost, which spares DuckDB
taking in their text and parsing it. It types a column only when every value of
the block parses exactly (anything else, such as ``10.0`` for a district, raises,
and that column of the block stays text for validation's SQL to parse and judge),
so the typed values are those the SQL would have produced. Dates stay text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

from crimeclass.data._errors import HeaderError, SourceError
from crimeclass.data._reasons import Reason
from crimeclass.data._schema import COLUMNS, resolve_header
from crimeclass.data.sources._base import Cursor, FileSource, raw_batch

__all__ = ["CsvSource"]

#: Arrow type the CSV parser gives each kind of column in a typed block. Timestamps stay
#: text: DuckDB's strptime parses them for less than Arrow's parser (measured: 0.45
#: against 0.9 CPU s for the two timestamp columns of 1.7 million rows), and it tries
#: every known format.
_PARSED_TYPES = {"id": pa.int64(), "int": pa.int32(), "year": pa.int32(),
                 "float": pa.float64(), "bool": pa.bool_()}
_KIND = {c.name: c.kind for c in COLUMNS}
# what validation's SQL reads as true and false, in the spellings the parser matches exactly
_TRUE_TEXT = ["true", "True", "TRUE", "t", "T", "y", "Y", "yes", "Yes", "YES", "1"]
_FALSE_TEXT = ["false", "False", "FALSE", "f", "F", "n", "N", "no", "No", "NO", "0"]
_FAILED_COLUMN = re.compile(r"In CSV column #(\d+)")
#: Blocks in which a column may fail to parse before it stays text for the rest of the file.
_TYPED_FAILURES = 2


def _cut(buf: bytes) -> int:
    """Index just after the last line end of ``buf`` that lies outside quotes, or 0.

    ``buf`` starts at a record boundary. CSV escapes a quote by doubling it, so a
    position is outside quotes exactly when an even number of quotes precede it.
    """
    end = buf.rfind(b"\n")
    quotes = buf.count(b'"', 0, end) if end >= 0 else 0
    while end >= 0 and quotes % 2:
        prev = buf.rfind(b"\n", 0, end)
        quotes -= buf.count(b'"', prev + 1, end)
        end = prev
    return end + 1


def _first_line_end(buf: bytes) -> int:
    """Index just after the first line end of ``buf`` outside quotes, or 0."""
    end = buf.find(b"\n")
    while end >= 0 and buf.count(b'"', 0, end) % 2:
        end = buf.find(b"\n", end + 1)
    return end + 1


def _first_bad_utf8(data: bytes, first_line: int) -> tuple[int, str]:
    """Line number and description of the first invalid UTF-8 byte in ``data``."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + data.count(b"\n", 0, e.start)
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        return line, f"byte 0x{data[e.start]:02X} at column {col}"
    return first_line, "unknown position"  # pragma: no cover - only called on bad data


@dataclass
class CsvSource(FileSource):
    """A Data Portal CSV export, plain or gzipped, in any of the known header variants.

    Parameters
    ----------
    path : pathlib.Path
        The file.
    compressed : bool
        Whether the file is gzipped.
    block_bytes : int
        Size of the uncompressed blocks parsed at a time: the memory bound.
    """

    path: Path
    compressed: bool = False
    block_bytes: int = 16 << 20

    format = "csv"

    def __post_init__(self) -> None:
        self.cursor = Cursor()
        head = b""
        bom = b"\xef\xbb\xbf"
        with self._open() as stream:
            while True:  # read until the header's line end (outside quotes)
                chunk = self._read(stream, 1 << 16, line=1)
                head += chunk
                cut = _first_line_end(head[3:] if head.startswith(bom) else head)
                if cut or not chunk:
                    break
        self._bom = 3 if head.startswith(bom) else 0
        head = head[self._bom:]
        header_bytes = head[:cut] if cut else head
        if not header_bytes.strip():
            raise SourceError(self.name, 1, None, "the file is empty: no header line")
        if head.startswith(b"PK\x03\x04"):
            raise HeaderError(self.name, 1, None, "a ZIP archive (an Excel .xlsx file?), not a "
                              "CSV file: export or save it as CSV")
        if b"\x00" in head:
            raise HeaderError(self.name, 1, None, "binary data: this is not a CSV file")
        try:
            text = header_bytes.decode("utf-8")
        except UnicodeDecodeError:
            line, where = _first_bad_utf8(header_bytes, 1)
            raise SourceError(self.name, line, None,
                              f"not valid UTF-8 ({where}); convert the file to UTF-8, e.g. "
                              "with 'iconv -f latin1 -t utf-8'") from None
        names = next(csv.reader([text.rstrip("\r\n")]), [])
        self.header = resolve_header(names, source=self.name)
        self._names = names
        self._header_lines = header_bytes.count(b"\n") or 1
        self._header_len = len(header_bytes) + self._bom
        # positions of the columns we keep, and their canonical names
        self._keep = {f"f{i}": self.header.mapping[n] for i, n in enumerate(names)
                      if n in self.header.mapping}
        self._typeable = {k for k, v in self._keep.items() if _KIND[v] in _PARSED_TYPES}
        self._failures: dict[str, int] = {}

    def _open(self) -> pa.NativeFile:
        try:
            raw = pa.OSFile(str(self.path), "rb")
        except OSError as e:
            raise SourceError(self.name, None, None, f"cannot open: {e}") from e
        self._raw_file = raw
        return pa.CompressedInputStream(raw, "gzip") if self.compressed else raw


    def _read(self, stream: pa.NativeFile, n: int, line: int) -> bytes:
        try:
            return stream.read(n)
        except OSError as e:  # truncated or corrupt gzip stream
            # the read that failed began at ``line``; the lines it had decompressed
            # are lost with it, so count them again: the last whole line read
            last = self._whole_lines() if self.compressed else line - 1
            raise SourceError(
                self.name, last + 1, None,
                f"the file is cut off or corrupt after line {last:,} ({e}); "
                "download it again",
            ) from e

    def _whole_lines(self) -> int:
        """Lines that end with a line end before the gzip stream fails (only on error)."""
        n = 0
        try:
            with gzip.open(self.path, "rb") as f:
                for text in f:
                    n += text.endswith(b"\n")
        except (OSError, EOFError, zlib.error):
            pass
        return n

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Raw batches (every column as text), one or more per block, in file order."""
        return self._batches(typed=False)

    def ingest_batches(self) -> Iterator[pa.RecordBatch]:
        """As :meth:`batches`, with the numbers and booleans of clean blocks typed by the
        parser (see the module's docstring)."""
        return self._batches(typed=True)

    def text_rows(self, lines: Sequence[int]) -> pa.RecordBatch | None:
        """The rows at ``lines`` as text, read again from the file (one pass).

        Only for lines of typed blocks, where every record is one physical line.
        """
        wanted = set(lines)
        found: dict[int, bytes] = {}
        line = self._header_lines + 1  # of the first line in the next block
        with self._open() as stream:
            carry = self._read(stream, self._header_len, line=1)[self._header_len:]
            while len(found) < len(wanted):
                chunk = self._read(stream, self.block_bytes, line=line)
                buf = carry + chunk
                end = buf.rfind(b"\n") + 1 if chunk else len(buf)
                block, carry = buf[:end], buf[end:]
                texts = block.split(b"\n")
                if block.endswith(b"\n"):
                    texts.pop()
                for k, text in enumerate(texts):
                    if line + k in wanted:
                        found[line + k] = text
                line += len(texts)
                if not chunk:
                    break
        batches = [b for n in sorted(found)
                   for b in self._parse_block_slowly(found[n] + b"\n", n)]
        return pa.concat_batches(batches) if batches else None

    def _batches(self, typed: bool) -> Iterator[pa.RecordBatch]:
        line = self._header_lines + 1  # first line of the next block
        with self._open() as stream:
            carry = self._read(stream, self._header_len, line=1)[self._header_len:]
            while True:
                chunk = self._read(stream, self.block_bytes, line=line)
                buf = carry + chunk
                if not chunk:
                    if buf.strip():
                        yield from self._counted(self._parse_block(buf, line, typed),
                                                 self.size())
                    self._advance(0, self.size())
                    return
                cut = _cut(buf)
                if not cut:
                    carry = buf
                    continue
                block, carry = buf[:cut], buf[cut:]
                n_lines = block.count(b"\n")  # the block ends with a line end
                yield from self._counted(self._parse_block(block, line, typed, n_lines),
                                         self._raw_file.tell())
                line += n_lines

    def _counted(self, batches: Iterator[pa.RecordBatch], position: int
                 ) -> Iterator[pa.RecordBatch]:
        """``batches`` of a block, the cursor moving past each as it is handed over (its
        position to ``position``, the bytes read up to the block's end)."""
        for batch in batches:
            self._advance(batch.num_rows, position)
            yield batch

    def _parse_block(self, block: bytes, first_line: int, typed: bool = False,
                     n_lines: int | None = None) -> Iterator[pa.RecordBatch]:
        if n_lines is None:
            n_lines = block.count(b"\n") + (not block.endswith(b"\n"))
        parsed = {k for k in self._typeable
                  if self._failures.get(k, 0) < _TYPED_FAILURES} if typed else set()
        while True:
            try:
                table = self._read_block(block, parsed)
                break
            except pa.ArrowInvalid as e:
                failed = _FAILED_COLUMN.match(str(e))
                key = f"f{failed.group(1)}" if failed else None
                if key in parsed and "conversion error" in str(e):
                    # a value the parser cannot type: this column of the block stays text
                    parsed.discard(key)
                    self._failures[key] = self._failures.get(key, 0) + 1
                    continue
                if "UTF8" in str(e):
                    line, where = _first_bad_utf8(block, first_line)
                    raise SourceError(self.name, line, None,
                                      f"not valid UTF-8 ({where}); convert the file to "
                                      "UTF-8, e.g. with 'iconv -f latin1 -t utf-8'") from None
                table = None  # a line with the wrong number of fields, etc.
                break
        if table is not None and table.num_rows == n_lines:
            # one batch per parser chunk: several batches let DuckDB use several threads
            start = first_line
            for chunk in table.to_batches():
                n = chunk.num_rows
                lines = pa.array(np.arange(start, start + n, dtype=np.int64))
                yield raw_batch({self._keep[k]: chunk.column(k) for k in self._keep}, lines)
                start += n
            return
        yield from self._parse_block_slowly(block, first_line)

    def _read_block(self, block: bytes, parsed: set[str]) -> pa.Table:
        """pyarrow's parse of a block: the columns in ``parsed`` typed, the others text."""
        names = [f"f{i}" for i in range(len(self._names))]
        return pcsv.read_csv(
            io.BytesIO(block),
            read_options=pcsv.ReadOptions(column_names=names, block_size=2 << 20),
            parse_options=pcsv.ParseOptions(newlines_in_values=False),
            convert_options=pcsv.ConvertOptions(
                column_types={k: _PARSED_TYPES[_KIND[v]] if k in parsed else pa.string()
                              for k, v in self._keep.items()},
                include_columns=list(self._keep),
                true_values=_TRUE_TEXT,
                false_values=_FALSE_TEXT,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )

    def _parse_block_slowly(self, block: bytes, first_line: int) -> Iterator[pa.RecordBatch]:
        """Python's csv module: exact lines for blocks with irregular rows."""
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - the fast path reports it first
            line, where = _first_bad_utf8(block, first_line)
            raise SourceError(self.name, line, None, f"not valid UTF-8 ({where})") from None
        physical = text.split("\n")
        keep = [(int(k[1:]), v) for k, v in self._keep.items()]
        width = len(self._names)
        cols: dict[str, list[str | None]] = {v: [] for _, v in keep}
        lines: list[int] = []
        rejects: list[str | None] = []
        raws: list[str | None] = []
        reader = csv.reader(io.StringIO(text, newline=""))
        last = 0
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line is no record
            lines.append(first_line + start - 1)
            if len(row) != width:
                rejects.append(Reason.WRONG_FIELD_COUNT.value)
                raw_text = "\n".join(physical[start - 1:last]).rstrip("\r")
                raws.append(json.dumps({"line": raw_text, "fields": len(row),
                                        "expected": width}))
                for _, v in keep:
                    cols[v].append(None)
                continue
            rejects.append(None)
            raws.append(None)
            for i, v in keep:
                cols[v].append(row[i] or None)
        if not lines:
            return
        arrays = {v: pa.array(vals, pa.string()) for v, vals in cols.items()}
        yield raw_batch(arrays, pa.array(lines, pa.int64()),
                              pa.array(rejects, pa.string()), pa.array(raws, pa.string()))


