"""The report time's own arithmetic: medians of ragged groups, neighbours within a group."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from crimeclass.features._report import REPORT_NEIGHBOURS, ReportTimes, medians


def test_medians_are_duckdbs_quantile_cont_of_each_row():
    import duckdb

    rng = np.random.default_rng(3)
    row = rng.integers(0, 50, 2_000)
    values = rng.integers(1_300_000_000_000_000, 1_500_000_000_000_000, 2_000)
    got = medians(row, values, 60)  # rows 50..59 have no values
    con = duckdb.connect()
    table = pa.table({"row": row, "v": values})
    con.register("t", table)
    want = dict(con.sql("SELECT row, quantile_cont(CAST(v AS DOUBLE), 0.5) FROM t "
                        "GROUP BY row").fetchall())
    np.testing.assert_array_equal(got, [want.get(r, np.nan) for r in range(60)])


def _empty_index() -> ReportTimes:
    none = pa.array([], pa.int64())
    return ReportTimes.build(np.zeros(0, np.int64), np.zeros(0, np.int64),
                             pa.array([], pa.string()), none)


def _rows(series: list[str], seq: list[int | None], us: list[int]) -> pa.Table:
    return pa.table({"_us": pa.array(us, pa.int64()), "case_series": series,
                     "case_seq": pa.array(seq, pa.int64())})


def _one_by_one(series, seq, us, starts) -> list[float]:
    """The definition, row by row: the median time of the rows of the same group and
    series numbered 1 to REPORT_NEIGHBOURS before."""
    out = []
    for g in range(len(starts) - 1):
        for i in range(starts[g], starts[g + 1]):
            near = [us[j] for j in range(starts[g], starts[g + 1])
                    if seq[i] is not None and seq[j] is not None and series[j] == series[i]
                    and seq[i] - REPORT_NEIGHBOURS <= seq[j] <= seq[i] - 1]
            out.append(float(np.median(near)) if near else np.nan)
    return out


def test_groups_with_numbers_too_far_apart_for_one_sort_key():
    # case numbers of 18 digits: (group, number) no longer fits one 64-bit number, so
    # each group is searched alone; the answer is the same
    big = 10**17
    seq = [big + 5, big + 1, 3, big + 2, None, big + 50, big + 3, big + 1]
    series = ["JA", "JA", "JA", "JA", "JA", "HZ", "JA", "JA"]
    us = [10, 20, 30, 40, 50, 60, 70, 80]
    starts = np.array([0, 3, 5, 8])
    got = _empty_index().reported(_rows(series, seq, us), starts)
    np.testing.assert_array_equal(got, _one_by_one(series, seq, us, starts))
    assert np.isfinite(got).tolist() == [True] + [False] * 5 + [True, False]


def test_random_groups_match_the_definition():
    rng = np.random.default_rng(7)
    n = 400
    series = rng.choice(["HZ", "JA", "JB"], n).tolist()
    seq = [None if rng.random() < 0.1 else int(v) for v in rng.integers(0, 600, n)]
    us = rng.integers(0, 10**12, n).tolist()
    starts = np.unique(np.concatenate([[0, n], rng.integers(0, n, 12)]))
    got = _empty_index().reported(_rows(series, seq, us), starts)
    np.testing.assert_array_equal(got, _one_by_one(series, seq, us, starts))
    assert np.isfinite(got).sum() > 50
