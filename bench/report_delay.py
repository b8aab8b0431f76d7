"""How the share of index offenses varies with the days from an incident to its report.

On the features of a store (``--store``; ``report_delay_days`` as ``crimeclass train``
computes it: the report time dated by the case number), the incidents of ``--since`` to
``--until`` grouped by that delay: how many, and which share are index offenses. What
docs/models.md says of the report group's gain comes from here.

Run: ``python bench/report_delay.py --store bench/data/real_2012_2017.duckdb``
(``bench/results/report_delay.json``). Figures come from the real data only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimeclass.data import Store
from crimeclass.engines import DuckDBEngine
from crimeclass.features import FeatureSpec, read_features

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _common import stamped, write_json  # noqa: E402  (bench/_common.py)

#: Upper bounds of the delay groups, in days (the last group: everything longer).
EDGES = (0.0, 0.5, 2.0, 7.0, 30.0, 365.0)


def delay_groups(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Incidents and index share per delay group (``0``: reported at once or earlier than
    the estimate; ``unknown``: no case number to date the report by)."""
    delay = frame["report_delay_days"].to_numpy(dtype=float)
    label = frame["is_index"].to_numpy(dtype=bool)
    groups = [("unknown", np.isnan(delay)), ("0", delay == 0)]
    lo = 0.0
    for hi in (*EDGES[1:], np.inf):
        name = f"({lo:g}, {hi:g}]" if np.isfinite(hi) else f"> {lo:g}"
        groups.append((name, (delay > lo) & (delay <= hi)))
        lo = hi
    return [{"delay_days": name, "incidents": int(m.sum()),
             "share_of_incidents": round(float(m.mean()), 4),
             "index_share": round(float(label[m].mean()), 4) if m.any() else None}
            for name, m in groups]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--since", default="2012-01-01")
    p.add_argument("--until", default="2018-01-01")
    p.add_argument("--out", type=Path, default=HERE / "results" / "report_delay.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    spec = FeatureSpec(groups=("report",))
    with Store(args.store, read_only=True) as store:
        frame = read_features(DuckDBEngine.from_store(store), spec, since=args.since,
                              until=args.until)
    doc = {"store": str(args.store), "since": args.since, "until": args.until,
           "incidents": len(frame), "index_share": round(float(frame["is_index"].mean()), 4),
           "groups": delay_groups(frame)}
    for g in doc["groups"]:
        print(f"{g['delay_days']:>12} {g['incidents']:>10,} {g['index_share']}")
    write_json(stamped(doc, t0), args.out)
    return doc


if __name__ == "__main__":
    main()
