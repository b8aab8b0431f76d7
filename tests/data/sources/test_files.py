from __future__ import annotations

import csv
import gzip
import io
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crimeclass.data import (
    RAW_SCHEMA,
    CsvSource,
    HeaderError,
    ParquetSource,
    SourceError,
    expand_paths,
    open_source,
)


def with_field(line: str, index: int, value: str) -> str:
    """A CSV line with one field replaced (quoted as needed)."""
    fields = next(csv.reader(io.StringIO(line)))
    fields[index] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(fields)
    return out.getvalue()


def _rows(source) -> list[dict]:
    return pa.Table.from_batches(list(source.batches()), schema=RAW_SCHEMA).to_pylist()


def _write(path: Path, text: str | bytes, gz: bool = False) -> Path:
    data = text.encode() if isinstance(text, str) else text
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def test_lines_match_the_csv_module_on_the_sample(main_sample):
    rows = _rows(open_source(main_sample))
    with gzip.open(main_sample, "rt", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        expected = [(reader.line_num, r[1]) for r in reader]
    assert [(r["_line"], r["case_number"]) for r in rows] == expected
    assert len(rows) == 46_000


@pytest.mark.parametrize("block", [1 << 10, 7_777, 1 << 16], ids=["1k", "odd", "64k"])
def test_small_blocks_give_the_same_rows(main_sample, block):
    big = _rows(open_source(main_sample))[:3000]
    src = open_source(main_sample, block_bytes=block)
    small = []
    for b in src.batches():
        small += b.to_pylist()
        if len(small) >= 3000:
            break
    assert small[:3000] == big


def test_irregular_lines_keep_exact_line_numbers(tmp_path, sample_lines):
    header, lines = sample_lines
    text = (header + lines[0] + "\n"  # a blank line: no record
            + lines[1] + "1,2,3\n"  # wrong field count
            + with_field(lines[2], 3, "A\nB")  # a line break in a value
            + lines[3])
    rows = _rows(open_source(_write(tmp_path / "x.csv", text)))
    assert [r["_line"] for r in rows] == [2, 4, 5, 6, 8]
    assert [r["_reject"] for r in rows] == [None, None, "wrong_field_count", None, None]
    assert '"line": "1,2,3"' in rows[2]["_raw"]
    assert rows[3]["block"] == "A\nB"


def test_quoted_line_break_across_a_block_boundary(tmp_path, sample_lines):
    header, lines = sample_lines
    odd = with_field(lines[5], 3, "A\nB")
    text = header + "".join(lines[:40]) + odd + "".join(lines[40:80])
    path = _write(tmp_path / "x.csv", text)
    expected = _rows(open_source(path, block_bytes=1 << 20))
    for block in (997, 2048, 4096):
        assert _rows(open_source(path, block_bytes=block)) == expected
    assert len(expected) == 81 and expected[40]["block"] == "A\nB"
    assert expected[41]["_line"] == 44


def test_gzip_and_plain_give_the_same_rows(tmp_path, sample_lines):
    header, lines = sample_lines
    text = header + "".join(lines[:500])
    plain = _rows(open_source(_write(tmp_path / "a.csv", text)))
    zipped = _rows(open_source(_write(tmp_path / "a.csv.gz", text, gz=True)))
    assert plain == zipped and len(plain) == 500


def test_gzip_detected_from_its_bytes_not_its_name(tmp_path, sample_lines):
    header, lines = sample_lines
    src = open_source(_write(tmp_path / "looks_plain.csv", header + lines[0], gz=True))
    assert isinstance(src, CsvSource) and src.compressed


def test_latin1_bytes_are_an_error_naming_the_line(tmp_path, sample_lines):
    header, lines = sample_lines
    bad = with_field(lines[2], 7, "RÉSIDENCE").encode("latin-1")
    data = (header + lines[0] + lines[1]).encode() + bad + lines[3].encode()
    with pytest.raises(SourceError, match=r"line 4: not valid UTF-8 \(byte 0xC9"):
        list(open_source(_write(tmp_path / "latin1.csv", data)).batches())


@pytest.mark.parametrize("block_bytes", [16 << 20, 1 << 16], ids=["one-block", "many-blocks"])
def test_truncated_gzip_is_an_error_naming_the_last_line_read(tmp_path, main_sample,
                                                              block_bytes):
    data = main_sample.read_bytes()
    cut = data[: len(data) // 2]
    path = _write(tmp_path / "cut.csv.gz", cut)
    # what a streaming decompressor gets out of the bytes that are there
    readable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    assert readable > 10_000
    with pytest.raises(SourceError, match=rf"cut\.csv\.gz, line {readable + 1}: the file is cut "
                                          rf"off or corrupt after line {readable:,} "):
        list(open_source(path, block_bytes=block_bytes).batches())


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(SourceError, match="empty"):
        open_source(_write(tmp_path / "empty.csv", ""))


def test_header_only_file_has_no_rows(tmp_path, sample_lines):
    assert _rows(open_source(_write(tmp_path / "h.csv", sample_lines[0]))) == []


@pytest.mark.parametrize(
    "content,error",
    [
        pytest.param(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", HeaderError, id="png"),
        pytest.param(b"name,colour\nann,red\n", HeaderError, id="other-csv"),
        pytest.param(b"<html><body>Not found</body></html>\n", HeaderError, id="html"),
    ],
)
def test_a_file_that_is_not_a_crime_export_is_refused(tmp_path, content, error):
    with pytest.raises(error, match="line 1"):
        open_source(_write(tmp_path / "x.csv", content))


def test_parquet_source_reads_text_and_typed_columns(tmp_path, shared_data):
    src = open_source(shared_data / "chicago_crimes_datastore_2011.parquet")
    assert isinstance(src, ParquetSource) and src.header.variant == "portal_per_year"
    first = next(src.batches()).slice(0, 2).to_pylist()
    assert first[0]["_line"] == 1 and first[0]["id"] == "7869839"
    typed = pa.table({"ID": [1, 2], "Date": pa.array([0, 10**12], pa.timestamp("us")),
                      "Arrest": [True, False], "Beat": [111, 2535]})
    pq.write_table(typed, tmp_path / "typed.parquet")
    rows = _rows(open_source(tmp_path / "typed.parquet"))
    assert [r["id"] for r in rows] == ["1", "2"]
    assert rows[0]["arrest"] == "true" and rows[1]["beat"] == "2535"


def test_expand_paths_lists_a_folder_and_refuses_missing_files(tmp_path, sample):
    assert expand_paths([sample[0].parent]) == sorted(sample)
    with pytest.raises(SourceError, match="no such file"):
        expand_paths([tmp_path / "nope.csv"])


def test_batches_stream_in_bounded_memory(main_sample):
    src = open_source(main_sample, block_bytes=1 << 20)
    sizes = [b.nbytes for b in src.batches()]
    assert len(sizes) > 5 and max(sizes) < 4 << 20


def test_header_with_bom_and_crlf(tmp_path, sample_lines):
    header, lines = sample_lines
    text = "\ufeff" + header.replace("\n", "\r\n") + lines[0].replace("\n", "\r\n")
    rows = _rows(open_source(_write(tmp_path / "bom.csv", text)))
    assert len(rows) == 1 and rows[0]["_line"] == 2
    assert rows[0]["case_number"] == next(csv.reader(io.StringIO(lines[0])))[1]
    assert rows[0]["longitude"] == next(csv.reader(io.StringIO(lines[0])))[19]
