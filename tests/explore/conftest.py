"""Fixtures of the exploration tests: the sample's catalog and report, computed once."""

from __future__ import annotations

from pathlib import Path

import pytest

from crimeclass.engines import DuckDBEngine
from crimeclass.explore import Exploration, compute, write_report


@pytest.fixture(scope="session")
def sample_exploration(sample_store: Path) -> Exploration:
    """The whole catalog on the bundled sample, by DuckDB, without filters."""
    with DuckDBEngine.open_store(sample_store) as engine:
        return compute(engine)


@pytest.fixture(scope="session")
def sample_report(sample_exploration: Exploration,
                  tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The report folder of the sample (plots included) and what write_report returned."""
    out = tmp_path_factory.mktemp("report")
    return out, write_report(sample_exploration, out)
