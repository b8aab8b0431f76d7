"""What the report says about its input: the files loaded into the store, and the lookups."""

from __future__ import annotations

from pathlib import Path

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine, Engine
from crimeclass.explore._lookups import community_areas, police_districts

__all__ = ["engine_sources", "register_lookups", "store_sources"]


def register_lookups(engine: Engine) -> None:
    """Create the views of the lookup tables the catalog joins (community areas, districts)."""
    engine.register("community_areas", community_areas())
    engine.register("police_districts", police_districts())


def engine_sources(engine: Engine) -> list[dict[str, object]]:
    """The files loaded into the store the engine reads (latest ingest of each): source,
    read, loaded, at; empty when the engine does not reach the store's own tables."""
    schema = getattr(engine, "store_schema", None)
    if schema is None:
        return []
    rows = engine.table(f"""
        SELECT source, max_by(read, ingest_id) AS read,
               max_by(inserted + updated + unchanged, ingest_id) AS loaded,
               max(started_at) AS at
        FROM {schema}.ingests GROUP BY source ORDER BY source""").to_pylist()
    return [{"source": r["source"], "read": int(r["read"] or 0),
             "loaded": int(r["loaded"] or 0), "at": str(r["at"])} for r in rows]


def store_sources(store: str | Path) -> list[dict[str, object]]:
    """The files loaded into a store (latest ingest of each): source, read, loaded, at."""
    with Store(store, read_only=True) as st:
        return engine_sources(DuckDBEngine.from_store(st))
