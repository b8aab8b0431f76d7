"""Where a scoring batch's time goes: each stage of the service's path, in one process.

The service scores the requests that arrive together in one pass (``serve/_batch.py``).
This bench takes ``--requests`` requests of one incident each (the store's newest
incidents, with IDs of their own, as ``bench/serve.py`` sends them) and times, over
``--repeats`` passes (``--size``: incidents per request), each stage of that pass as the
service runs it:

``validation``
    the data layer's validation statement (DuckDB) and the split into requests;
``history_rows``
    the places of the rows as the history index keys them (one DuckDB statement: the
    index holds DuckDB's hashes of the places);
``history_sums``
    the counts of the online index and of the requests' own earlier rows;
``report_times``
    the report times (the median time of the incidents numbered just before each
    incident: the online index's and the requests' own), for a run with the report group;
``features_arrow``
    the feature catalog's expressions evaluated by Arrow (the service's path);
``feature_frame``
    the pandas frame the model reads;
``encoders``, ``model``, ``reasons``
    the pipeline's encoders, the model's probabilities, and the three reasons of each
    incident (its exact tree SHAP values, tabled: ``models/_treeshap.py``), as
    ``score_with_reasons`` computes them (the bench checks the same numbers).

Beside ``features_arrow``, ``features_duckdb`` times what the service ran before
(2026-12-07): the same features from the DuckDB feature statement over the same rows and
sums; the bench checks that both give the same values. The figures are medians over the
passes, in milliseconds a pass.

By default the history is the 8M-row scale set of bench/features.py and the run is trained
on it as ``bench/serve.py`` trains it; ``--small`` uses the bundled sample (a check that
the bench runs).

Run: ``python bench/serve_stages.py [--small] [--run RUN] [--requests 32] [--size 1]``.
Results: bench/results/serve_stages.json (one entry per history and batch size).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "serve_stages.json"
sys.path.insert(0, str(ROOT / "bench"))


def _duckdb_features(table: Any, sums: Any, reported: Any, spec: Any, years: range,
                     con: Any) -> Any:
    """The features of the rows from the DuckDB feature statement (the path before)."""
    from crimeclass.engines import prepared
    from crimeclass.features import feature_sql

    con.register("_online_rows", table)
    con.register("_online_sums", sums)
    if reported is not None:
        con.register("_online_reported", reported)
    try:
        sql = feature_sql(spec, years=years, labeled_only=False, table="_online_rows",
                          history_from="_online_sums", ordered=False,
                          report_from=None if reported is None else "_online_reported")
        return prepared(con, f"SELECT * FROM ({sql}) ORDER BY key").to_arrow_table()
    finally:
        con.unregister("_online_rows")
        con.unregister("_online_sums")
        if reported is not None:
            con.unregister("_online_reported")


def one_pass(serving: Any, requests: list[list[dict[str, Any]]],
             clock: Callable[[str], None]) -> None:
    """One scoring pass of the requests, as ``Serving.score_many`` runs it, timed."""
    import numpy as np
    import pyarrow as pa

    from crimeclass.engines import prepared
    from crimeclass.features import arrow_features, feature_frame
    from crimeclass.features._arrow import _days, _years
    from crimeclass.features._sql import history_rows_sql
    from crimeclass.models._score_online import _combined, _sums_table
    from crimeclass.serve._incidents import connection, validate_requests

    spec, index = serving.model.spec, serving.history.index
    validated = validate_requests(requests)
    clock("validation")
    table, _, starts = _combined([v.rows for v in validated])
    with connection() as con:
        con.register("_online_rows", table)
        hist = prepared(con, history_rows_sql(spec, table="_online_rows", hashed=True,
                                              cases=True)).to_arrow_table()
        con.unregister("_online_rows")
        hist = hist.take(pa.array(np.argsort(hist.column("key").to_numpy(), kind="stable")))
        clock("history_rows")
        sums = _sums_table(hist, spec, index, starts)
        clock("history_sums")
        given = {n: sums.column(n) for n in sums.schema.names if n != "key"}
        reported = None
        if "report" in spec.groups:  # a run of the report time's features
            times = index.reported_many(hist, starts)
            given["_reported_us"] = pa.array(times, mask=np.isnan(times))
            reported = pa.table({"key": hist.column("key"),
                                 "_reported_us": given["_reported_us"]})
        clock("report_times")
        years = _years(_days({"date": table.column("date")}))  # arrow_features' own
        data = arrow_features(table, spec, years=years, history=given)
        clock("features_arrow")
        before = _duckdb_features(table, sums, reported, spec, years, con)
        clock("features_duckdb")
    if not before.equals(data):
        raise SystemExit("the Arrow and DuckDB features differ")
    frame = feature_frame(data, spec)
    clock("feature_frame")
    _model_stages(serving, frame, clock)


class _Clock:
    """The time since the last stage ended, kept per stage (the clock's own time left out)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.last, self.keep = 0.0, False

    def start(self, *, keep: bool) -> None:
        self.last, self.keep = time.perf_counter(), keep

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self.keep:
            self.times.setdefault(stage, []).append((now - self.last) * 1000)
        self.last = time.perf_counter()


def _model_stages(serving: Any, frame: Any, clock: Callable[[str], None]) -> None:
    """``score_with_reasons`` of a one-model explainer (XGBoost's), step by step."""
    import numpy as np
    import xgboost

    from crimeclass.models import score_with_reasons
    from crimeclass.models._contrib import _top

    explainer = serving.explainer
    X = frame[["date", *serving.model.feature_names]]
    with xgboost.config_context(nthread=1):  # as score_with_reasons scores
        (part,) = explainer.parts
        encoded = part.encode(X)
        clock("encoders")
        p = part.proba(encoded)
        clock("model")
        reasons = _top(part.terms(encoded), explainer.features, frame, 3)
        clock("reasons")
    want = score_with_reasons(serving.model, frame, explainer=explainer)
    if not (np.array_equal(want[0], p) and want[1] == reasons):
        raise SystemExit("the stages do not give score_with_reasons' numbers")
    clock("check")


def measure(run: Path, store: Path, n: int, size: int, repeats: int) -> dict[str, Any]:
    from crimeclass.serve._scoring import load_serving
    from serve import incidents  # bench/serve.py: the same incidents

    serving = load_serving(run, store, model="xgb")
    records = incidents(store, n * size)
    requests = [records[i:i + size] for i in range(0, n * size, size)]
    clock = _Clock()
    for i in range(repeats + 3):  # three passes to warm up
        clock.start(keep=i >= 3)
        one_pass(serving, requests, clock)
    times = clock.times
    stages = {k: round(statistics.median(v), 2) for k, v in times.items() if k != "check"}
    # a stage the service runs by Arrow now, and the DuckDB statement it ran before
    pairs = {"features_arrow": "features_duckdb"}
    path = sum(v for k, v in stages.items() if k not in pairs.values())
    before = path + sum(stages[b] - stages[a] for a, b in pairs.items())
    return {"requests": n, "incidents_per_request": size, "repeats": repeats,
            "stages_ms": stages, "pass_ms": round(path, 2),
            "pass_ms_with_duckdb_statements": round(before, 2),
            "duckdb_over_arrow": {a: round(stages[b] / stages[a], 1)
                                  for a, b in pairs.items()}}


def main() -> None:
    from serve import history_arguments, store_and_run  # bench/serve.py: the same history

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    history_arguments(parser)
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--size", type=int, default=1, help="incidents per request")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=RESULTS)
    a = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    try:
        store, run = store_and_run(a, work)
        entry = {"cores": os.cpu_count(), "load_before": os.getloadavg()[0],
                 "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                 **measure(run, store, a.requests, a.size, a.repeats)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(entry, indent=2))
    results = json.loads(a.out.read_text()) if a.out.exists() else {}
    results[f"{'small' if a.small else a.rows}_{a.requests}x{a.size}"] = entry
    a.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
