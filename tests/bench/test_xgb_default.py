"""bench/xgb_default.py runs end to end on the bundled sample.

Its figures come from the real data only; this checks that each variant is fitted on the
train code's frame, with the parameters it names, and that what it writes is whole.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "xgb_default.py"


def test_every_variant_is_fitted_and_written(sample_store, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_xgb_default", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        metrics = tmp_path / "metrics.json"
        metrics.write_text(json.dumps({"models": [{"name": "xgb", "pipeline_params": {
            "model__max_depth": 3, "model__learning_rate": 0.3}}]}))
        doc = module.main(["--store", str(sample_store), "--since", "2014-01-01",
                           "--until", "2017-01-01", "--run-metrics", str(metrics),
                           "--n-jobs", "1", "--out", str(tmp_path / "out.json")])
    finally:
        del sys.modules[spec.name]
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == doc["rows"]
    assert doc["tuned"]["params"] == {"max_depth": 3, "learning_rate": 0.3}
    assert doc["tuned_lr_0.1"]["params"] == {"max_depth": 3, "learning_rate": 0.1}
    assert doc["crimeclass"]["params"] == {}
    for name in ("crimeclass", "tuned", "tuned_lr_0.1"):
        r = doc[name]
        assert 1 <= r["trees_kept"] <= r["trees_grown"] <= 1000
        assert 0.5 < r["roc_auc"] < 1
        assert r["encoders_s"] + r["boosting_s"] <= r["fit_s"] + 0.2
    assert doc["library"]["trees_grown"] == 100 and 0.5 < doc["library"]["roc_auc"] < 1
