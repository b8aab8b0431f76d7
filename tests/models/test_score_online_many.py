"""The online index's sums of many incidents at once (sums_many, the online scoring path)
equal its sums of each alone (sums, checked against the window SQL in tests/features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from crimeclass.engines import attach, connect
from crimeclass.features import FeatureSpec
from crimeclass.features._online import HistoryIndex
from crimeclass.features._sql import history_rows_sql

SPEC = FeatureSpec()


def _rows(con, since: str, until: str) -> pa.Table:
    rows = history_rows_sql(SPEC, hashed=True, extra=("updated_on",))
    return con.sql(f"SELECT * FROM ({rows}) WHERE _us >= epoch_us(TIMESTAMP '{since}') "
                   f"AND _us < epoch_us(TIMESTAMP '{until}') ORDER BY _us, key"
                   ).to_arrow_table()


def test_sums_many_equal_the_sums_of_each_incident(sample_store: Path) -> None:
    con = connect()
    attach(con, sample_store, "s")
    con.execute("CREATE TABLE incidents AS SELECT * FROM s.incidents "
                "WHERE date >= TIMESTAMP '2012-01-01' AND date < TIMESTAMP '2018-01-01'")
    index = HistoryIndex.from_connection(con, SPEC, until="2017-01-01")
    # later arrivals: the first half of 2017 goes to the buffers (new places among them),
    # and a few incidents come back moved to another block and a newer update
    for row in _rows(con, "2017-01-01", "2017-07-01").to_pylist():
        assert index.add(row)
    moved = _rows(con, "2017-06-01", "2017-06-08").to_pylist()[:20]
    for row, other in zip(moved, moved[1:], strict=False):
        assert index.add({**row, "block": other["block"], "p_block": other["p_block"],
                          "updated_on": row["updated_on"].replace(year=2030)})
    table = _rows(con, "2017-07-01", "2018-01-01")
    # a place the index never saw, and an unknown block
    keys = table.column("p_beat").to_pylist()
    table = table.set_column(table.schema.get_field_index("p_beat"), "p_beat",
                             pa.array([12345, None, *keys[2:]], table.schema.field(
                                 "p_beat").type))
    blocks = table.column("block").to_pylist()
    table = table.set_column(table.schema.get_field_index("block"), "block",
                             pa.array([None, *blocks[1:]], table.schema.field("block").type))
    con.close()
    assert table.num_rows > 1000
    each = [index.sums(r) for r in table.to_pylist()]
    for rows in (table, table.slice(0, 10)):  # searched all at once, and one by one
        many = index.sums_many(rows)
        assert set(many) == set(each[0])
        for name, got in many.items():
            np.testing.assert_array_equal(got, [e[name] for e in each[:rows.num_rows]],
                                          err_msg=name)
    many = index.sums_many(table)
    assert np.isnan(many["_n_beat_7d"][1]) and many["_n_beat_7d"][0] == 0
    assert np.isfinite(many["_n_block_365d"]).all()
