"""The feature query evaluated by Arrow equals DuckDB's, value for value, on real rows."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from crimeclass.engines import EngineError
from crimeclass.features import (
    MORE_PLACES,
    MORE_SCALES,
    FeatureSpec,
    arrow_features,
    feature_catalog,
    feature_sql,
    history_sums,
    report_rows_sql,
)

SPECS = {
    "default": FeatureSpec(),
    "arrest target": FeatureSpec(target="arrest"),
    "with arrest": FeatureSpec(allow_arrest=True),
    "more places": FeatureSpec(history=MORE_PLACES),
    "more scales": FeatureSpec(history=MORE_SCALES),
    "no history": FeatureSpec(groups=("time", "place", "location", "domestic")),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_every_feature_of_every_incident_equals_duckdbs(incidents_con, name):
    spec = SPECS[name]
    years = range(2011, 2020)
    history, hist = None, None
    if "history" in spec.groups:
        sums = history_sums(incidents_con, spec).sort_by("key")
        incidents_con.register("_sums", sums)
        history = "_sums"
        hist = {n: sums.column(n) for n in sums.schema.names if n != "key"}
    report = None
    if "report" in spec.groups:  # the report times, as the online index gives them
        reported = incidents_con.sql(report_rows_sql("incidents")).to_arrow_table()
        incidents_con.register("_reported", reported)
        report = "_reported"
        times = reported.sort_by("key").column("_reported_us")
        hist = {**(hist or {}), "_reported_us": times}
    want = incidents_con.sql(feature_sql(spec, years=years, labeled_only=False,
                                         history_from=history, report_from=report,
                                         ordered=False)
                             ).to_arrow_table().sort_by("key")
    rows = incidents_con.sql("SELECT * FROM incidents ORDER BY key").to_arrow_table()
    got = arrow_features(rows, spec, history=hist, years=years)
    assert got.schema.names == want.schema.names
    assert got.num_rows == want.num_rows > 10_000
    for column in want.schema.names:
        a, b = want.column(column).combine_chunks(), got.column(column).combine_chunks()
        assert a.type == b.type, column
        if not a.equals(b):
            differ = pc.invert(pc.fill_null(pc.equal(a, b), False))
            pytest.fail(f"{column}: {pc.sum(differ)} rows differ, e.g. DuckDB "
                        f"{pc.filter(a, differ)[:3]} and Arrow {pc.filter(b, differ)[:3]}")


def test_the_holidays_and_the_constants_of_a_few_rows(incidents_con):
    rows = incidents_con.sql("SELECT * FROM incidents WHERE strftime(date, '%m-%d') = '07-04' "
                             "ORDER BY key LIMIT 3").to_arrow_table()
    spec = FeatureSpec(groups=("time",))
    got = arrow_features(rows, spec)
    assert got.column("holiday").to_pylist() == [1.0, 1.0, 1.0]
    assert got.num_rows == 3 and got.schema.names[:3] == ["key", "date", "is_index"]
    assert [f.name for f in feature_catalog(spec)] == got.schema.names[3:]


def test_no_rows_give_no_rows(incidents_con):
    rows = incidents_con.sql("SELECT * FROM incidents LIMIT 0").to_arrow_table()
    spec = FeatureSpec(groups=("time", "place"))
    got = arrow_features(rows, spec)
    assert got.num_rows == 0 and len(got.schema.names) == 3 + len(feature_catalog(spec))


def test_history_features_without_their_sums_are_refused(incidents_con):
    rows = incidents_con.sql("SELECT * FROM incidents LIMIT 2").to_arrow_table()
    with pytest.raises(EngineError, match="_n_beat_7d"):
        arrow_features(rows, FeatureSpec(), history=None)


def test_a_column_missing_from_the_rows_is_named(incidents_con):
    rows = incidents_con.sql("SELECT * EXCLUDE (beat) FROM incidents LIMIT 2").to_arrow_table()
    with pytest.raises(EngineError, match="beat"):
        arrow_features(rows, FeatureSpec(groups=("place",)))


def test_the_frame_of_a_few_rows_has_sorted_categories_as_a_large_one(incidents_con):
    import pandas as pd
    import pyarrow as pa

    from crimeclass.features import feature_frame
    from crimeclass.features._frame import frame_types

    spec = FeatureSpec(groups=("place", "location"))
    rows = incidents_con.sql("SELECT * FROM incidents ORDER BY key DESC LIMIT 40"
                             ).to_arrow_table()
    table = arrow_features(rows, spec)
    small = feature_frame(table, spec)  # one chunk: the dictionaries sorted in Arrow
    kinds = {f.name for f in feature_catalog(spec) if "category" in f.kind or "high" in f.kind}
    unsorted = pa.table({n: pc.dictionary_encode(table.column(n)) if n in kinds
                         else table.column(n) for n in table.schema.names})
    before = frame_types(unsorted.to_pandas(), feature_catalog(spec))  # reordered by pandas
    pd.testing.assert_frame_equal(small, before, check_exact=True)
    for name in ("beat", "block", "location_description"):
        categories = small[name].cat.categories
        assert categories.is_monotonic_increasing and len(categories) > 1
