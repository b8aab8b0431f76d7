"""Every crime file of ../shared/data ingests, and every account adds up (slow: 6.8M rows)."""

from __future__ import annotations

import pytest

from crimeclass.data import Store

CRIME_FILES = "chicago_crimes_*"


@pytest.mark.slow
def test_every_crime_file_of_shared_data_ingests_with_a_balanced_account(tmp_path, shared_data):
    files = sorted(shared_data.glob(CRIME_FILES))
    assert len(files) == 29
    read = 0
    with Store(tmp_path / "all.duckdb") as s:
        for f in files:
            a = s.ingest_path(f)
            assert a.balanced, a.to_dict()
            assert a.read > 0 and a.quarantined < a.read * 0.01, a.to_dict()
            read += a.read
        info = s.info()
        # files overlap (SOURCES.md, section 5): fewer incidents than rows read
        assert read == 6_814_635
        assert 6_600_000 < info["rows"] < read
        assert info["quarantined"] == sum(info["quarantine_reasons"].values())
        dup = s.con.execute("SELECT count(*) - count(DISTINCT key) FROM incidents").fetchall()
        assert dup == [(0,)]
        # the homicide file takes over the per-year rows of the same homicides (no twins)
        twins = s.con.execute("""
            SELECT count(*) FROM (
                SELECT case_number, date, iucr, block, count(*) AS n,
                       count(*) FILTER (WHERE key_derived) AS derived
                FROM incidents WHERE fbi_code = '01A' AND year BETWEEN 2001 AND 2010
                GROUP BY ALL HAVING n > 1 AND derived > 0 AND derived < n)""").fetchall()
        assert twins == [(0,)]
