"""Several files in one ingest: each commits alone, and its account says what became of it."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest

from crimeclass.data import Store, expand_paths, ingest_files


@pytest.fixture
def folder(tmp_path: Path, sample_lines: tuple[str, list[str]]) -> Path:
    """Good files, and one each: wrong header, binary, empty, cut-off gzip."""
    header, lines = sample_lines
    d = tmp_path / "in"
    d.mkdir()
    (d / "a_good.csv").write_text(header + "".join(lines[:300]))
    (d / "b_header.csv").write_text("when,where\n2020-01-01,here\n")
    (d / "c_binary.csv").write_bytes(bytes(range(256)) * 40)
    (d / "d_empty.csv").write_text("")
    whole = gzip.compress((header + "".join(lines[300:20_300])).encode())
    (d / "e_cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    (d / "f_good.csv").write_text(header + "".join(lines[20_300:20_500]))
    return d


def _ids(path: Path) -> set[int]:
    with Store(path, read_only=True) as st:
        return {i for (i,) in st.con.execute("SELECT id FROM incidents").fetchall()}


def test_each_file_commits_alone_and_says_what_became_of_it(folder, tmp_path):
    path = tmp_path / "s.duckdb"
    with Store(path) as st:
        accounts = ingest_files(st, expand_paths([folder]))
    status = {Path(a.source).name: a.status for a in accounts}
    assert status == {"a_good.csv": "committed", "b_header.csv": "failed",
                      "c_binary.csv": "failed", "d_empty.csv": "failed",
                      "e_cut.csv.gz": "failed", "f_good.csv": "committed"}
    errors = {Path(a.source).name: a.error for a in accounts if a.error}
    assert "header" in errors["b_header.csv"].lower()
    assert "binary data" in errors["c_binary.csv"]
    assert "empty" in errors["d_empty.csv"]
    cut = (folder / "e_cut.csv.gz").read_bytes()
    readable = zlib.decompressobj(wbits=31).decompress(cut).count(b"\n")
    assert f"cut off or corrupt after line {readable:,} " in errors["e_cut.csv.gz"]
    assert all(a.read == a.inserted == 0 for a in accounts if a.status == "failed")
    # exactly the good files are stored
    with Store(tmp_path / "oracle.duckdb") as st:
        for name in ("a_good.csv", "f_good.csv"):
            st.ingest_path(folder / name)
    assert _ids(path) == _ids(tmp_path / "oracle.duckdb")
    assert sum(a.inserted for a in accounts) == 500


def test_ctrl_c_stores_nothing_of_the_file_and_reaches_no_later_one(folder, tmp_path):
    files = [folder / n for n in ("a_good.csv", "f_good.csv", "b_header.csv")]
    path = tmp_path / "s.duckdb"

    def progress(p: Path, source):
        if p.name == "f_good.csv":
            def stop(done, total):
                raise KeyboardInterrupt
            return stop
        return None

    with Store(path) as st:
        accounts = ingest_files(st, files, progress=progress)
    assert [a.status for a in accounts] == ["committed", "interrupted", "not reached"]
    with Store(path, read_only=True) as st:
        assert st.count() == 300
        assert st.con.execute("SELECT count(*) FROM ingests").fetchall()[0][0] == 1
