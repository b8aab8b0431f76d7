"""Shared fixtures: the bundled sample, ../shared/data, and fresh stores."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from crimeclass.data import Store, sample_files

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data beside the checkout (CI has it; slow tests read it)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: the slow tests need ../shared/data")
    return SHARED_DATA


@pytest.fixture(scope="session")
def sample() -> list[Path]:
    return sample_files()


@pytest.fixture(scope="session")
def main_sample(sample: list[Path]) -> Path:
    """The 46,000-row 2001-2017 sample file (20-column per-year layout)."""
    return sample[0]


@pytest.fixture(scope="session")
def sample_lines(main_sample: Path) -> tuple[str, list[str]]:
    """Header and lines of the main sample, for building bad inputs from real rows."""
    with gzip.open(main_sample, "rt", encoding="utf-8", newline="") as f:
        header = f.readline()
        return header, f.readlines()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store.duckdb") as s:
        yield s


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory, sample: list[Path]) -> Path:
    """A store holding the whole bundled sample (read it; do not write to it)."""
    path = tmp_path_factory.mktemp("sample") / "sample.duckdb"
    with Store(path) as s:
        for f in sample:
            s.ingest_path(f).check()
    return path


@pytest.fixture
def sample_store_copy(sample_store: Path, tmp_path: Path) -> Path:
    """A private copy of the sample store, to change."""
    dst = tmp_path / "copy.duckdb"
    shutil.copy(sample_store, dst)
    return dst


@pytest.fixture(scope="module")
def spark() -> Iterator[object]:
    """One local Spark session on 2 cores per test module (Java's start-up paid once)."""
    from crimeclass.engines import spark_session

    session = spark_session("local[2]", conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


def store_parquet(store: Path, out: Path, *, extra: tuple[str, ...] = ("key", "is_index"),
                  where: str = "", by_year: bool = True) -> Path:
    """A store's incidents as Parquet in the canonical schema (and ``extra``), as a cluster
    would hold them: ``where`` a condition on the rows, ``by_year`` partitioned."""
    from crimeclass.engines import sql_literal

    with Store(store, read_only=True) as st:
        st.con.execute(f"COPY ({st.canonical_sql(extra=extra)}{' WHERE ' + where if where else ''}"
                       f") TO {sql_literal(out)} (FORMAT parquet"
                       f"{', PARTITION_BY (year)' if by_year else ''})")
    return out


def load_script(name: str) -> ModuleType:
    """A script of scripts/ (not a package) as a module, to test its functions."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
