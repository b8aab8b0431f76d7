"""Keys, and step 2 of an ingest: the new rows settled against each other and the stored ones.

A row with an ID is keyed by it. A row without one gets a key derived from its
Case Number, Date, IUCR (or descriptions) and Block (:data:`BASE_TEXT`), and its
rank among this source's rows with the same such values. When the whole source
is appended, :func:`reconcile` settles it: an ID already stored keeps the row
with the newest ``updated_on`` (an equal one: the incoming row if its content
differs); a row with an ID takes over a stored row without ID that is the same
incident; a row without ID pairs with the stored incident it repeats; duplicate
IDs inside the source keep the newest row and quarantine the rest.
"""

from __future__ import annotations

from typing import Any

import duckdb

from crimeclass.data._account import IngestAccount
from crimeclass.data._reasons import Reason
from crimeclass.data._schema import COLUMNS

__all__ = ["BASE_TEXT", "CONTENT", "STORED", "add_counts", "derived_key", "hash62", "reconcile",
           "sql_int", "sql_rows"]

STORED = [c for c in COLUMNS if c.kind != "derived"]  # location is computed
CONTENT = [c.name for c in STORED if c.name != "id"]


def hash62(expr: str) -> str:
    """A stable 62-bit hash (from MD5, the same on every DuckDB version), as BIGINT."""
    return f"CAST(md5_number({expr}) >> 66 AS BIGINT)"


#: What identifies an incident that has no ID (docs/data.md).
BASE_TEXT = (
    "concat_ws('|', coalesce(upper(case_number), ''), strftime(date, '%Y-%m-%d %H:%M:%S'), "
    "coalesce(iucr, upper(coalesce(primary_type, '')) || '/' || upper(coalesce(description, ''))), "
    "coalesce(upper(block), ''))"
)

def derived_key(base_key: str, ordinal: str) -> str:
    """SQL for the key of the ``ordinal``-th incident without ID of a base key (< 0)."""
    return f"(-{hash62(f'{base_key}::VARCHAR || chr(35) || {ordinal}::VARCHAR')} - 1)"


def sql_rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
             ) -> list[tuple[Any, ...]]:
    return con.execute(sql, params or []).fetchall()


def sql_int(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    return int(sql_rows(con, sql, params)[0][0] or 0)


def add_counts(counter: dict[str, int], rows: list[tuple[Any, ...]]) -> None:
    for key, n in rows:
        counter[str(key)] = counter.get(str(key), 0) + int(n)


def _newer(n: str, o: str) -> str:
    """CASE: 'update', 'stale' or 'unchanged' for incoming ``n`` against stored ``o``."""
    return f"""CASE
        WHEN {n}.updated_on > {o}.updated_on
          OR ({o}.updated_on IS NULL AND {n}.updated_on IS NOT NULL) THEN 'update'
        WHEN {n}.updated_on < {o}.updated_on
          OR ({n}.updated_on IS NULL AND {o}.updated_on IS NOT NULL) THEN 'stale'
        WHEN {" OR ".join(f"{n}.{c} IS DISTINCT FROM {o}.{c}" for c in CONTENT)}
            THEN 'update'
        ELSE 'unchanged' END"""


def reconcile(con: duckdb.DuckDBPyConnection, source: str, ingest_id: int,
               account: IngestAccount, *, maybe_duplicates: bool = True) -> None:
    """Step 2: settle the new rows against each other and against the stored ones.

    ``maybe_duplicates`` False: the file repeats no ID (see :class:`_IdsSeen`).
    """
    cur = int(ingest_id)
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"

    if maybe_duplicates:
        _drop_duplicate_ids(con, source, cur)
    if sql_int(con, f"SELECT count(*) FROM (SELECT 1 FROM incidents WHERE ingest_id <> {cur} "
                 "LIMIT 1)"):
        counts, upgraded = _reconcile_stored(con, cur)
    else:  # the store held nothing before: every new row is new
        counts, upgraded = {}, 0

    problems = sql_rows(con, f"SELECT reason, count(*) FROM quarantine WHERE ingest_id = {cur} "
                          "GROUP BY ALL ORDER BY 2 DESC")
    account.quarantine_reasons = {str(r): int(n) for r, n in problems}
    account.quarantined = sum(account.quarantine_reasons.values())
    account.derived_keys = sql_int(con, f"SELECT count(*) FROM {new} WHERE key_derived")
    account.updated = counts.get("update", 0) + upgraded
    account.stale = counts.get("stale", 0)
    account.matched_by_derived_key = counts.get("matched", 0)
    account.unchanged = counts.get("unchanged", 0) + account.stale + account.matched_by_derived_key
    stored_now = sql_int(con, f"SELECT count(*) FROM {new}")
    account.inserted = stored_now - account.updated


def _drop_duplicate_ids(con: duckdb.DuckDBPyConnection, source: str, cur: int) -> None:
    """Rows of the file that repeat an ID: the newest (then the last line) stays, the
    others are quarantined."""
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _dup AS
        SELECT key, source_line, first(source_line ORDER BY updated_on DESC NULLS LAST,
                                       source_line DESC) OVER (PARTITION BY key) AS winner
        FROM {new} WHERE NOT key_derived AND key IN (
            SELECT key FROM {new} WHERE NOT key_derived GROUP BY key HAVING count(*) > 1)""")
    con.execute(f"""
        INSERT INTO quarantine
        SELECT {cur}, ?, i.source_line, 'ID', '{Reason.DUPLICATE_ID}',
               'ID:{Reason.DUPLICATE_ID}',
               to_json({{'superseded_by_line': d.winner, 'row': {{{", ".join(
                   f"'{c.portal}': i.{c.name}" for c in STORED)}}}}})
        FROM incidents AS i JOIN _dup AS d USING (key, source_line)
        WHERE i.ingest_id = {cur} AND d.source_line <> d.winner""", [source])
    con.execute(f"""
        DELETE FROM incidents USING _dup
        WHERE incidents.ingest_id = {cur} AND incidents.key = _dup.key
          AND incidents.source_line = _dup.source_line AND _dup.source_line <> _dup.winner""")
    con.execute("DROP TABLE IF EXISTS temp._dup")


def _reconcile_stored(con: duckdb.DuckDBPyConnection, cur: int) -> tuple[dict[str, int], int]:
    """The new rows against the stored ones: the counts of each action, and the stored
    incidents without ID that new rows with an ID took over."""
    new = f"(SELECT * FROM incidents WHERE ingest_id = {cur})"
    old = f"(SELECT * FROM incidents WHERE ingest_id <> {cur})"
    counts: dict[str, int] = {}
    # An ID already stored: the newer row stays. Which IDs are stored already is
    # found on the key column alone; whole rows are compared only for those.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _known AS
        SELECT key FROM {new} WHERE NOT key_derived
        INTERSECT SELECT key FROM {old} WHERE NOT key_derived""")
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _act AS
        SELECT n.key, {_newer('n', 'o')} AS action
        FROM {new} AS n JOIN {old} AS o USING (key)
        WHERE n.key IN (SELECT key FROM _known) AND o.key IN (SELECT key FROM _known)
          AND NOT n.key_derived""" if sql_int(con, "SELECT count(*) FROM _known") else
                "CREATE OR REPLACE TEMP TABLE _act (key BIGINT, action VARCHAR)")
    add_counts(counts, sql_rows(con, "SELECT action, count(*) FROM _act GROUP BY ALL"))
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT key FROM _act WHERE action = 'update')")
    con.execute(f"DELETE FROM incidents WHERE ingest_id = {cur} AND key IN "
                "(SELECT key FROM _act WHERE action <> 'update')")

    # A new ID that is a stored incident without ID (same derived key material):
    # it takes that incident over. Pair the k-th of each base key with the k-th.
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _up AS
        WITH cand AS (
            SELECT key, base_key, row_number() OVER (PARTITION BY base_key ORDER BY key) AS rk
            FROM {new} WHERE NOT key_derived AND key NOT IN (SELECT key FROM _act)
              AND base_key IN (SELECT base_key FROM {old} WHERE key_derived)
        ), st AS (
            SELECT key, base_key, row_number() OVER (PARTITION BY base_key
                                                     ORDER BY ordinal, key) AS rk
            FROM {old} WHERE key_derived AND base_key IN (SELECT base_key FROM cand)
        )
        SELECT cand.key AS new_key, st.key AS old_key FROM cand JOIN st USING (base_key, rk)""")
    upgraded = sql_int(con, "SELECT count(*) FROM _up")
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT old_key FROM _up)")

    # New rows without ID: the k-th of a base key pairs with the k-th stored
    # incident of that base key (rows of this file excluded).
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _pair AS
        WITH st AS (
            SELECT *, row_number() OVER (PARTITION BY base_key
                                      ORDER BY ordinal, key_derived, key) AS rk
            FROM {old} WHERE base_key IN (SELECT base_key FROM {new} WHERE key_derived)
        )
        SELECT n.key AS new_key, o.key AS old_key, o.ordinal AS old_ordinal,
               CASE WHEN NOT o.key_derived THEN 'matched' ELSE {_newer('n', 'o')} END AS action
        FROM {new} AS n JOIN st AS o ON o.base_key = n.base_key AND o.rk = n.ordinal
        WHERE n.key_derived""")
    add_counts(counts, sql_rows(con, "SELECT action, count(*) FROM _pair GROUP BY ALL"))
    con.execute(f"DELETE FROM incidents WHERE ingest_id <> {cur} AND key IN "
                "(SELECT old_key FROM _pair WHERE action = 'update')")
    con.execute(f"DELETE FROM incidents WHERE ingest_id = {cur} AND key IN "
                "(SELECT new_key FROM _pair WHERE action <> 'update')")
    # an updated incident keeps its key; so does a stored one whose key a new row took
    con.execute(f"""
        UPDATE incidents SET key = p.old_key, ordinal = p.old_ordinal
        FROM _pair AS p WHERE incidents.ingest_id = {cur} AND incidents.key = p.new_key
          AND p.action = 'update'""")
    _rekey_collisions(con, cur)
    for t in ("_known", "_act", "_up", "_pair"):
        con.execute(f"DROP TABLE IF EXISTS temp.{t}")
    return counts, upgraded


def _rekey_collisions(con: duckdb.DuckDBPyConnection, cur: int) -> None:
    """Give a new row without ID a fresh ordinal if its key is taken by a stored row.

    Happens only when stored incidents of a base key were taken over (by rows with
    an ID) so that ordinals have gaps; the new row moves past the largest ordinal.
    """
    ordinal = "m.top + row_number() OVER (PARTITION BY n.base_key ORDER BY n.key)"
    while True:
        clash = sql_int(con, f"""
            SELECT count(*) FROM incidents AS n JOIN incidents AS o USING (key)
            WHERE n.ingest_id = {cur} AND o.ingest_id <> {cur}""")
        if not clash:
            return
        con.execute(f"""
            UPDATE incidents SET ordinal = f.ordinal, key = f.key
            FROM (
                SELECT n.key AS old, n.base_key, {ordinal} AS ordinal,
                       {derived_key('n.base_key', ordinal)} AS key
                FROM incidents AS n JOIN incidents AS o USING (key)
                JOIN (SELECT base_key, max(ordinal) AS top FROM incidents GROUP BY ALL) AS m
                  ON m.base_key = n.base_key
                WHERE n.ingest_id = {cur} AND o.ingest_id <> {cur}
            ) AS f
            WHERE incidents.ingest_id = {cur} AND incidents.key = f.old""")
