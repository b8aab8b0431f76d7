"""The leakage guard trusts each feature's declared ``uses``: check them against the SQL.

Two independent checks, neither of which reads ``uses`` to decide what to change:

- Change what must not reach a feature in a copy of the sample store (the
  offense columns and Arrest of every row, and the label of the scored row
  and of every later row), compute the features of both stores through the
  public API, and compare.
- Parse the feature statement with sqlglot and follow each feature back to
  the store columns it reads (its lineage); they must be its ``uses``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine
from crimeclass.features import (
    DEFINE_LABEL,
    FeatureSpec,
    HistoryWindow,
    feature_catalog,
    feature_sql,
    read_features,
)

#: Every feature of the index target (the default spec holds a window of every place).
SPEC = FeatureSpec()
FEATURES = [f.name for f in feature_catalog(SPEC)]
READS_LABEL = [f.name for f in feature_catalog(SPEC) if "is_index" in f.uses]


def _features(store: Path, spec: FeatureSpec = SPEC) -> pd.DataFrame:
    """Every incident's features, through the public API (the one place to adapt to it)."""
    with Store(store, read_only=True) as s:
        return read_features(DuckDBEngine.from_store(s), spec,
                             labeled_only=False).reset_index(drop=True)


@pytest.fixture(scope="module")
def original(sample_store: Path) -> pd.DataFrame:
    return _features(sample_store)


def _scored_row(store: Path, share: float) -> tuple[object, int]:
    """The ``share`` point of the incidents in time, moved on to a row that has a twin:
    a later-keyed incident on the same block at the same minute, whose label is then
    changed too."""
    with Store(store, read_only=True) as s:
        rows = s.con.execute("""
            SELECT date, key FROM incidents AS a
            WHERE EXISTS (SELECT 1 FROM incidents AS b
                          WHERE b.date = a.date AND b.block = a.block AND b.key > a.key)
            ORDER BY date, key""").fetchall()
    assert rows, "the sample has no incidents recorded at the same minute on one block"
    date, key = rows[int(share * (len(rows) - 1))]
    return date, key


def _change_what_must_not_matter(store: Path, date: object, key: int) -> None:
    """Offense columns and Arrest of every row; the label from (date, key) on."""
    with Store(store) as s:
        s.con.execute("""
            UPDATE incidents SET
                primary_type = 'CHANGED ' || md5(key::VARCHAR),
                description = reverse(coalesce(description, '')) || ' CHANGED',
                iucr = right(md5(key::VARCHAR), 4),
                fbi_code = CASE WHEN fbi_code = '06' THEN '26' ELSE '06' END,
                arrest = CASE WHEN arrest IS NULL THEN true ELSE NOT arrest END""")
        s.con.execute("""
            UPDATE incidents SET is_index = CASE WHEN is_index IS NULL THEN true
                                                 ELSE NOT is_index END
            WHERE date > ? OR (date = ? AND key >= ?)""", [date, date, key])


@pytest.mark.parametrize("share", [
    pytest.param(0.25, id="early", marks=pytest.mark.slow),
    pytest.param(0.6, id="middle"),
    pytest.param(0.95, id="late", marks=pytest.mark.slow),
])
def test_no_feature_moves_with_the_offense_arrest_or_the_label_from_now_on(
        share, original, sample_store, tmp_path):
    changed_store = tmp_path / "changed.duckdb"
    shutil.copy(sample_store, changed_store)
    date, key = _scored_row(changed_store, share)
    _change_what_must_not_matter(changed_store, date, key)
    changed = _features(changed_store)

    assert changed["key"].tolist() == original["key"].tolist()
    at = original.index[original["key"] == key][0]
    assert original.loc[at, "date"] == date
    # up to and including the scored row: every feature exactly as before
    pd.testing.assert_frame_equal(changed.loc[:at, FEATURES], original.loc[:at, FEATURES])
    # after it: only the features that count earlier labels may move, and they do
    later = [f for f in FEATURES if f not in READS_LABEL]
    pd.testing.assert_frame_equal(changed.loc[at + 1:, later], original.loc[at + 1:, later])
    moved = (changed.loc[at + 1:, READS_LABEL] != original.loc[at + 1:, READS_LABEL])
    assert moved.to_numpy().any() or at == len(original) - 1
    # the history the scored row sees is not empty: the comparison has something to compare
    assert original.loc[at, [f"n_{w.stem}" for w in SPEC.history]].sum() > 0


# ----------------------------------------------------------------- lineage


def _store_schema(tmp_path: Path) -> dict[str, dict[str, str]]:
    with Store(tmp_path / "empty.duckdb") as s:
        return {"incidents": dict(s.con.execute(
            "SELECT column_name, data_type FROM duckdb_columns() "
            "WHERE table_name = 'incidents'").fetchall())}


def _lineage(spec: FeatureSpec, schema: dict[str, dict[str, str]]) -> dict[str, set[str]]:
    """For each output column of the feature statement, the store columns it is read from.

    A column that comes from the holidays list reaches the row through the join on
    the incident's date: it reads what the join's own columns read.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.lineage import lineage

    sql = feature_sql(spec, since="2015-01-01", until="2016-01-01", years=[2015])
    nodes = lineage(None, sql, schema, dialect="duckdb")

    def leaves(name: str) -> tuple[set[str], bool]:
        cols, via_join = set(), False
        for node in nodes[name].walk():
            if node.downstream:
                continue
            if isinstance(node.source, exp.Table) and node.source.name == "incidents":
                cols.add(node.name.split(".")[-1])
            elif isinstance(node.source, exp.Values):  # the holidays list
                via_join = True
            else:  # a column sqlglot cannot place: never what a feature declares
                cols.add(f"unresolved {node.name}")
        return cols, via_join

    join = sqlglot.parse_one(sql, read="duckdb").find(exp.Join)
    assert join is not None
    join_cols = {c.name for c in join.args["on"].find_all(exp.Column) if c.table == "history"}
    out = {}
    for name in nodes:
        cols, via_join = leaves(name)
        for c in join_cols if via_join else ():
            cols |= leaves(c)[0]
        out[name] = cols
    return out


@pytest.mark.parametrize("spec", [
    pytest.param(SPEC, id="index"),
    pytest.param(FeatureSpec(target="arrest", history=(HistoryWindow("beat_location", 28),)),
                 id="arrest-target"),
    pytest.param(FeatureSpec(allow_arrest=True, history=(HistoryWindow("grid_cell", 7),)),
                 id="allow-arrest"),
])
def test_each_feature_reads_exactly_the_columns_it_declares(spec, tmp_path):
    read = _lineage(spec, _store_schema(tmp_path))
    for f in feature_catalog(spec):
        assert read[f.name] == set(f.uses), f.name
        if spec.target == "index":
            assert not read[f.name] & DEFINE_LABEL - {"is_index"}, f.name
            assert "is_index" not in read[f.name] or f.history, f.name
