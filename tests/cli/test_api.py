"""The notebook API's results show themselves as the command's tables."""

from __future__ import annotations

from pathlib import Path

import pytest

import crimeclass


def test_an_ingest_shows_its_account(tmp_path: Path, sample: list[Path]) -> None:
    loaded = crimeclass.ingest(sample[1], store=tmp_path / "s.duckdb")
    assert loaded.summary["read"] == loaded.summary["inserted"] == 1_000
    text, html = repr(loaded), loaded._repr_html_()
    assert "Ingest account: read = inserted + updated + unchanged + quarantined" in text
    assert sample[1].name in text and f"store: {tmp_path / 's.duckdb'}" in text
    assert html.startswith("<pre") and "1,000" in html


def test_info_is_the_dict_of_info_json_shown_as_tables(sample_store: Path) -> None:
    info = crimeclass.info(sample_store)
    assert isinstance(info, dict) and info["rows"] == 49_998
    assert "incidents by year" in repr(info) and "49,998" in info._repr_html_()


def test_the_api_raises_the_commands_errors(tmp_path: Path) -> None:
    from crimeclass.data import EmptyStoreError

    with pytest.raises(EmptyStoreError, match="crimeclass ingest"):
        crimeclass.info(tmp_path / "none.duckdb")
    with pytest.raises(ValueError, match="sample=True"):
        crimeclass.ingest(store=tmp_path / "s.duckdb")
    with pytest.raises(ValueError, match="engines are: duckdb, spark"):
        crimeclass.explore(tmp_path / "s.duckdb", tmp_path / "rep", engine="polars")
