"""bench/report_delay.py runs end to end on the bundled sample (figures: real data only)."""

from __future__ import annotations

import json

from .helpers import bench_module


def test_the_delay_groups_cover_every_incident_once(sample_store, tmp_path):
    out = tmp_path / "report_delay.json"
    with bench_module("report_delay") as module:
        doc = module.main(["--store", str(sample_store), "--since", "2012-01-01",
                           "--until", "2018-01-01", "--out", str(out)])
    assert json.loads(out.read_text())["groups"] == doc["groups"]
    groups = doc["groups"]
    assert [g["delay_days"] for g in groups][:3] == ["unknown", "0", "(0, 0.5]"]
    assert sum(g["incidents"] for g in groups) == doc["incidents"] > 1000
    assert abs(sum(g["share_of_incidents"] for g in groups) - 1) < 1e-3
    assert groups[1]["incidents"] > 0 and 0 < groups[1]["index_share"] < 1
