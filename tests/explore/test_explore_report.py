"""The report folder: tables named after the catalog, a self-contained page, honest plots."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from crimeclass.explore import CATALOG, Exploration, summarize
from crimeclass.explore._plots import _PARTIAL, PLOTS


def test_every_table_is_written_as_csv_and_parquet(sample_report, sample_exploration):
    out, _ = sample_report
    for stat in CATALOG:
        table = sample_exploration.tables[stat.name]
        assert pq.read_table(out / "tables" / f"{stat.name}.parquet").equals(table)
        csv = pcsv.read_csv(out / "tables" / f"{stat.name}.csv")
        assert csv.num_rows == table.num_rows and csv.schema.names == table.schema.names


def test_report_is_one_self_contained_page(sample_report):
    out, result = sample_report
    html = (out / "report.html").read_text()
    # every image is embedded; nothing is fetched from elsewhere
    assert not re.search(r'<(img|script|link)[^>]+(src|href)="(?!data:)', html)
    assert html.count('src="data:image/png;base64,') == len(result["plots"]) == len(PLOTS)
    assert "Main findings" in html and "filters: <b>none</b>" in html
    assert "Data window: <b>2001-01-01 to 2026-06-08</b>" in html
    for stat in CATALOG:
        assert f'id="{stat.name}"' in html and f"tables/{stat.name}.csv" in html


def test_summary_is_computed_from_the_tables(sample_exploration):
    text = " ".join(f.text for f in summarize(sample_exploration))
    years = sample_exploration.tables["incidents_by_year"].to_pylist()
    complete = [r for r in years if r["complete"]]
    busiest = max(complete, key=lambda r: r["count"])
    assert f"the busiest year was {busiest['year']} ({busiest['count']:,})" in text
    top = sample_exploration.tables["top_primary_types"].to_pylist()[0]
    assert f"{top['primary_type']} ({top['share']:.1%})" in text
    assert "Complete years: 2001–2017" in text and "Partial years: 2018–2026" in text
    assert "district, community_area, updated_on in 2001–2011" in text
    assert "bundled with crimeclass" in text


def test_every_plot_has_a_title_and_labelled_axes(sample_exploration):
    for name, plot in PLOTS.items():
        fig = plot(sample_exploration.tables[name])
        assert fig is not None, name
        ax = fig.axes[0]
        assert ax.get_title(), name
        assert ax.get_xlabel(), name
        assert ax.get_ylabel() or name in {"hour_by_weekday", "top_primary_types",
                                           "arrest_rate_by_type", "top_location_descriptions",
                                           "incidents_by_community_area", "missing_by_column",
                                           "missing_by_year"}, name


def test_partial_years_are_drawn_hatched(sample_exploration):
    fig = PLOTS["incidents_by_year"](sample_exploration.tables["incidents_by_year"])
    bars = fig.axes[0].patches
    years = sample_exploration.tables["incidents_by_year"].to_pylist()
    assert len(bars) == len(years)
    for bar, row in zip(bars, years, strict=True):
        assert (bar.get_hatch() == _PARTIAL["hatch"]) == (not row["complete"]), row["year"]


def test_a_report_that_matches_nothing_says_so(sample_exploration, tmp_path):
    from dataclasses import replace

    from crimeclass.explore import Filters, write_report

    empty = Exploration(
        tables={k: t.slice(0, 0) for k, t in sample_exploration.tables.items()},
        filters=Filters(types=("GAMBLING",), districts=(1,)), engine="duckdb",
        engine_detail="test", rows=0, rows_window=100, first=None, last=None)
    result = write_report(replace(empty), tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "No incidents match the filters (primary type GAMBLING; district 1)" in html
    assert "No incident matches the filters" in html and result["plots"] == []
    assert (tmp_path / "tables" / "incidents_by_year.csv").exists()


@pytest.mark.parametrize("name", sorted(PLOTS))
def test_plots_draw_nothing_for_empty_tables(sample_exploration, name):
    assert PLOTS[name](sample_exploration.tables[name].slice(0, 0)) is None


def test_report_files_are_replaced_not_half_written(sample_report):
    out, _ = sample_report
    leftovers = [p for p in Path(out).rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []
