"""The catalog: one definition per statistic, valid on both engines' dialects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import sqlglot

import crimeclass.explore
from crimeclass.engines import to_spark_sql
from crimeclass.explore import CATALOG, Filters, get, relations

REQUIRED = {
    "incidents_by_year": "count",
    "incidents_by_month": "count",
    "hour_by_weekday": "count",
    "index_share_by_year": "share",
    "arrest_rate_by_district": "count",
}


def test_names_are_unique_and_described():
    names = [s.name for s in CATALOG]
    assert len(names) == len(set(names))
    for s in CATALOG:
        assert s.name.isidentifier() and s.title and len(s.description) > 40, s.name
        assert s.keys


def test_unknown_statistic_names_the_catalog():
    with pytest.raises(KeyError, match="incidents_by_year"):
        get("incidents_by_yaer")


@pytest.mark.parametrize("stat", CATALOG, ids=lambda s: s.name)
def test_statistic_compiles_to_spark(stat):
    spark_sql = to_spark_sql(stat.sql)
    # the Spark text parses back as Spark SQL, and is ordered like the DuckDB text
    sqlglot.parse_one(spark_sql, read="spark")
    assert ("ORDER BY" in spark_sql) == ("ORDER BY" in stat.sql)


def test_relations_compile_to_spark():
    f = Filters(types=("THEFT",), districts=(1,))
    for rel in relations(f, "src"):
        sqlglot.parse_one(to_spark_sql(rel.sql), read="spark")


def test_required_tables_have_a_count_or_share(sample_exploration):
    for name, column in REQUIRED.items():
        table = sample_exploration.tables[name]
        assert column in table.schema.names, name
        assert set(get(name).keys) <= set(table.schema.names)


def test_every_statistic_is_sorted_on_its_keys_or_values(sample_exploration):
    # a stable order is what lets two engines be compared row by row
    for s in CATALOG:
        assert "ORDER BY" in s.sql, s.name


def test_explore_imports_only_earlier_stages():
    package = Path(crimeclass.explore.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.startswith("crimeclass."):
                    stage = name.split(".")[1]
                    assert stage in {"data", "engines", "explore"}, f"{path.name} imports {name}"
