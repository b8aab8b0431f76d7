from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from crimeclass.data import Store
from crimeclass.data.sources import FIRST_SCALE_ID, scaleset, scaleset_sources


@pytest.fixture(scope="module")
def two_years(shared_data):
    return [p for p in scaleset_sources(shared_data) if "2011" in p.name or "2016" in p.name]


def test_a_scale_set_resamples_real_rows_with_fresh_ids(tmp_path, two_years):
    out = tmp_path / "scale.parquet"
    manifest = scaleset(5_000, out, two_years, seed=7)
    table = pq.read_table(out)
    assert table.num_rows == manifest["rows"] == 5_000
    ids = table.column("ID").to_pylist()
    assert len(set(ids)) == 5_000 and min(map(int, ids)) == FIRST_SCALE_ID
    assert manifest["resampled"] and "not a record of real incidents" in manifest["note"]
    assert json.loads((tmp_path / "scale.parquet.resampled.json").read_text()) == manifest
    assert pq.read_schema(out).metadata[b"crimeclass.resampled"] == b"true"
    assert sum(manifest["rows_per_source"].values()) == 5_000


def test_the_same_seed_gives_the_same_rows(tmp_path, two_years):
    a = scaleset(2_000, tmp_path / "a.csv", two_years, seed=1)
    b = scaleset(2_000, tmp_path / "b.csv", two_years, seed=1)
    assert a["rows_per_source"] == b["rows_per_source"]
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_a_scale_set_ingests_like_a_portal_export(tmp_path, two_years):
    out = tmp_path / "scale.csv.gz"
    scaleset(3_000, out, two_years, seed=3)
    with Store(tmp_path / "s.duckdb") as s:
        account = s.ingest_path(out)
    assert account.variant == "portal" and account.inserted == 3_000 and account.balanced


def test_bad_output_names_are_refused(tmp_path, two_years):
    with pytest.raises(ValueError, match="must end in"):
        scaleset(10, tmp_path / "x.json", two_years)
