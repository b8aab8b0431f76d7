"""The Arrow engine: each construct it evaluates gives DuckDB's value, nulls included."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from crimeclass.engines import EngineError, compile_expression, connect

#: Values chosen for SQL's edge cases (nulls, zero, negatives, halves), not incidents.
COLUMNS = pa.table({
    "i": pa.array([7, -7, 0, None, 3, 12], pa.int32()),
    "j": pa.array([2, 3, 0, 1, None, -5], pa.int64()),
    "x": pa.array([2.5, -2.5, 0.0, None, 1e6 + 0.4, -3.75], pa.float64()),
    "b": pa.array([True, False, None, True, False, None]),
    "s": pa.array(["012XX W MADISON ST", "0000X N STATE ST", None, "X", "", "1 2 3"]),
    "t": pa.array([dt.datetime(2017, 1, 1, 0, 0), dt.datetime(2016, 12, 31, 23, 59),
                   dt.datetime(2001, 3, 4, 12, 30), dt.datetime(1999, 12, 31, 6, 1),
                   dt.datetime(2020, 2, 29, 18, 45), dt.datetime(2017, 7, 4, 4, 4)],
                  pa.timestamp("us")),
})

EXPRESSIONS = [
    "i + j", "i - j", "i * j", "x + i", "x * 2", "i / j", "x / j", "i / 0", "x / 0",
    "0.0 / 0", "i % 5", "-7 % 3", "j % 4", "i % 7 + 1", "floor(x)", "floor(i / 4)",
    "CAST(i AS DOUBLE)", "CAST(CAST(x AS DOUBLE) AS FLOAT)", "CAST(x AS BIGINT)",
    "CAST(2.5 AS BIGINT)", "CAST(-2.5 AS BIGINT)",
    "CAST(floor(x / 1000) AS BIGINT)", "CAST(i AS VARCHAR)", "CAST(b AS VARCHAR)",
    "i = j", "i > j", "i >= j", "x > 0", "b AND i > 0", "b OR i > 0", "NOT b",
    "i IS NULL", "s IS NOT NULL", "CASE WHEN b THEN 1.0 WHEN NOT b THEN 0.0 END",
    "CASE WHEN i > 0 THEN x / i END", "CASE WHEN i > 0 THEN 1 ELSE 0.5 END",
    "CASE WHEN s IS NOT NULL THEN s ELSE 'none' END", "s || ' | ' || CAST(i AS VARCHAR)",
    "regexp_replace(s, '^[0-9X]+ +', '')", "regexp_replace(s, ' ', '_')",
    "sin(2 * pi() * (x) / 24)", "cos(2 * pi() * (i - 1) / 7)", "hour(t)", "minute(t)",
    "month(t)", "day(t)", "dayofyear(t)", "hour(t) + CAST(minute(t) AS DOUBLE) / 60",
    "date_diff('day', DATE '1900-01-01', CAST(t AS DATE)) % 7 + 1",
    "date_diff('microsecond', TIMESTAMP '1970-01-01 00:00:00', t)",
    "CAST(CAST(floor(hour(t) / 4) AS BIGINT) AS VARCHAR)",
]


@pytest.fixture(scope="module")
def con():
    c = connect()
    c.register("cols", COLUMNS)
    yield c
    c.close()


def _same(got: list, want: list) -> bool:
    return all((g is None and w is None) or g == w or
               (isinstance(g, float) and isinstance(w, float) and math.isnan(g)
                and math.isnan(w)) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("sql", EXPRESSIONS)
def test_each_construct_gives_duckdbs_values(con, sql):
    want = con.sql(f"SELECT {sql} AS v FROM cols").to_arrow_table().column("v")
    value = compile_expression(sql)({n: COLUMNS.column(n) for n in COLUMNS.schema.names})
    got = (value.as_py(),) * COLUMNS.num_rows if isinstance(value, pa.Scalar) else value
    got = list(got) if isinstance(got, tuple) else got.to_pylist()
    assert _same(got, want.to_pylist()), (sql, got, want.to_pylist())


def test_a_constant_is_a_scalar():
    assert compile_expression("1 + 2")({}).as_py() == 3


@pytest.mark.parametrize("sql, named", [
    ("lower(s)", "lower"), ("CAST(x AS VARCHAR)", "double as text"),
    ("CAST(i AS DECIMAL(4, 1))", "DECIMAL"), ("regexp_replace(s, 'a', 'b', 'g')", "regexp"),
    ("sum(i) OVER ()", "SUM"), ("date_diff('month', DATE '1900-01-01', t)", "DATE_DIFF"),
])
def test_what_it_does_not_evaluate_is_refused_by_name(sql, named):
    with pytest.raises(EngineError, match="Arrow engine does not evaluate") as err:
        compile_expression(sql)({n: COLUMNS.column(n) for n in COLUMNS.schema.names})
    assert named.lower() in str(err.value).lower()
    assert err.value.setting == "expression"


def test_unparsable_sql_is_refused():
    with pytest.raises(EngineError, match="cannot parse"):
        compile_expression("CASE WHEN")
