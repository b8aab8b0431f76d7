"""POST /v1/score: the batch path's numbers, the label never read, bad input answered."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pytest

from crimeclass.models import predict
from crimeclass.serve import IGNORED_FIELDS
from tests.serve.conftest import as_record, bearer, blank_labels_csv


def _batch(run: Path, store: Path, rows: list[dict[str, str]], tmp_path: Path,
           model: str = "xgb") -> dict:
    """``crimeclass predict``'s probability and history_complete by ID, for these rows."""
    out = tmp_path / "scores.csv"
    predict(run, blank_labels_csv(tmp_path / "input.csv", rows), out, model_name=model,
            history_store=store)
    t = pcsv.read_csv(out).to_pydict()
    return {i: (p, h) for i, p, h in zip(t["id"], t["probability"], t["history_complete"],
                                           strict=True)}


def _score(client, keys, records: list[dict]) -> dict:
    r = client.post("/v1/score", json={"incidents": records}, headers=bearer(keys["user"]))
    assert r.status_code == 200, r.text
    return r.json()


def test_a_request_gets_the_numbers_of_batch_predict(client, keys, xgb_run, history_store,
                                                     new_rows, records, tmp_path):
    rows, recs = new_rows[:300], records[:300]
    batch = _batch(xgb_run, history_store, rows, tmp_path)
    answer = _score(client, keys, recs)
    results = answer["results"]
    assert len(results) == len(recs) == len(batch)
    diffs = [abs(r["probability"] - batch[int(r["id"])][0]) for r in results]
    assert max(diffs) <= 1e-6
    assert [r["history_complete"] for r in results] == [batch[int(r["id"])][1]
                                                        for r in results]
    assert answer["model"]["ignored_fields"] == list(IGNORED_FIELDS)


@pytest.mark.parametrize("model", ["lgbm", "stack"])
def test_every_explained_model_is_served_with_batch_s_numbers_and_its_reasons(
        model, xgb_run, history_store, new_rows, records, tmp_path):
    from crimeclass.serve._incidents import validate_records
    from crimeclass.serve._scoring import load_serving

    rows, recs = new_rows[:100], records[:100]
    batch = _batch(xgb_run, history_store, rows, tmp_path, model=model)
    serving = load_serving(xgb_run, history_store, model=model)
    results = serving.score(validate_records(recs), len(recs))
    assert max(abs(r["probability"] - batch[int(r["id"])][0]) for r in results) <= 1e-6
    names = set(serving.model.feature_names)
    for r in results:
        assert len(r["reasons"]) == 3 and {x["feature"] for x in r["reasons"]} <= names


def test_one_incident_alone_gets_the_numbers_of_a_file_of_one(client, keys, xgb_run,
                                                             history_store, new_rows,
                                                             tmp_path):
    row = new_rows[7]
    batch = _batch(xgb_run, history_store, [row], tmp_path)
    result = _score(client, keys, [as_record(row)])["results"][0]
    assert abs(result["probability"] - batch[int(row["ID"])][0]) <= 1e-6


def test_the_fields_of_the_label_change_nothing(client, keys, records):
    recs = records[:60]
    changed = [dict(r, iucr="0110", primary_type="HOMICIDE", description="FIRST DEGREE MURDER",
                    fbi_code="01A", arrest=not bool(i % 2)) for i, r in enumerate(recs)]
    a, b = _score(client, keys, recs)["results"], _score(client, keys, changed)["results"]
    assert [r["probability"] for r in a] == [r["probability"] for r in b]
    # and a label of a nonsense code is not read either: no error. Alone, as it is scored
    # alone: the other incidents of a request are history to it (their times and places)
    alone = _score(client, keys, [recs[0]])["results"][0]
    bad = _score(client, keys, [dict(recs[0], iucr="not a code")])["results"][0]
    assert "errors" not in bad and bad["probability"] == alone["probability"]


def test_an_incident_the_store_holds_is_scored_as_batch_scores_it(client, keys, xgb_run,
                                                                 history_store, sample,
                                                                 tmp_path):
    import csv
    import gzip

    path = next(p for p in sample if p.name == "chicago_crimes_2025_01_api_sample.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))[:20]
    batch = _batch(xgb_run, history_store, rows, tmp_path)
    results = _score(client, keys, [as_record(r) for r in rows])["results"]
    assert max(abs(r["probability"] - batch[int(r["id"])][0]) for r in results) <= 1e-6


def test_reasons_are_three_features_of_the_model(client, keys, records, xgb_run):
    from crimeclass.models import open_run

    names = set(open_run(xgb_run).feature_names)
    result = _score(client, keys, records[:3])["results"]
    for r in result:
        assert len(r["reasons"]) == 3
        assert {x["feature"] for x in r["reasons"]} <= names
        sizes = [abs(x["contribution"]) for x in r["reasons"]]
        assert sizes == sorted(sizes, reverse=True)


def test_a_bad_incident_gets_its_own_error_and_the_others_are_scored(client, keys, records):
    recs = [records[0], dict(records[1], date="the 3rd of May"), records[2],
            dict(records[3], beat="12.5"), dict(records[4], id=records[0]["id"])]
    results = _score(client, keys, recs)["results"]
    assert [("errors" in r) for r in results] == [False, True, False, True, True]
    assert results[1]["errors"] == [{"field": "date", "reason": "unparseable_date"}]
    assert results[3]["errors"] == [{"field": "beat", "reason": "not_a_whole_number"}]
    assert results[4]["errors"] == [{"field": "id", "reason": "duplicate_id"}]
    assert [r["index"] for r in results] == list(range(5))
    assert all(0 <= results[i]["probability"] <= 1 for i in (0, 2))


def test_an_incident_without_id_or_update_time_is_scored(client, keys, records):
    rec = {k: v for k, v in records[0].items() if k not in ("id", "updated_on")}
    result = _score(client, keys, [rec])["results"][0]
    assert result["id"] is None and 0 <= result["probability"] <= 1


@pytest.mark.parametrize("body,path", [
    ({"incidents": [{"date": "2025-02-01T10:00:00", "beat": [1]}]},
     ["body", "incidents", 0, "beat"]),
    ({"incidents": [{"date": 20250201}]}, ["body", "incidents", 0, "date"]),
    ({"incidents": [{"date": "2025-02-01T10:00:00", "domestic": 3.5}]},
     ["body", "incidents", 0, "domestic"]),
    ({"incidents": []}, ["body", "incidents"]),
    ({"incident": []}, ["body", "incidents"]),
    ([1, 2], ["body"]),
])
def test_a_malformed_body_is_a_422_naming_the_field(client, keys, body, path):
    r = client.post("/v1/score", json=body, headers=bearer(keys["user"]))
    assert r.status_code == 422
    assert any(d["loc"][:len(path)] == path for d in r.json()["detail"])


def test_more_than_ten_thousand_incidents_is_a_422(client, keys):
    r = client.post("/v1/score", json={"incidents": [{"date": "2025-02-01T10:00:00"}] * 10_001},
                    headers=bearer(keys["user"]))
    assert r.status_code == 422


def test_not_json_is_a_422(client, keys):
    r = client.post("/v1/score", content=b"{not json", headers={
        **bearer(keys["user"]), "Content-Type": "application/json"})
    assert r.status_code == 422
    assert "Traceback" not in r.text


def test_the_probabilities_are_numbers_between_0_and_1(client, keys, records):
    p = np.array([r["probability"] for r in _score(client, keys, records[:50])["results"]])
    assert ((p >= 0) & (p <= 1)).all() and p.std() > 0


def test_requests_scored_together_get_what_each_gets_alone(client, records):
    """The service scores the requests waiting at once in one pass: each on its own."""
    from crimeclass.serve._batch import _score
    from crimeclass.serve._incidents import validate_records

    serving = client.app.state.serve.current()
    requests = [records[:40], records[20:60],  # the same incidents in two requests
                [records[5], dict(records[6], date="never")], records[100:101],
                [dict(records[7], id=None), dict(records[7], id=None)],
                # a field of the wrong type, the same ID twice, no update time
                [dict(records[8], beat=[1]), records[9], records[9],
                 {k: v for k, v in records[10].items() if k != "updated_on"}]]
    together = _score([(serving, r, None) for r in requests])
    for recs, got in zip(requests, together, strict=True):
        alone = serving.score(validate_records(recs), len(recs))
        assert got == alone
    assert [sorted(e["reason"] for e in r.get("errors", [])) for r in together[-1]] == [
        ["wrong_type"], [], ["duplicate_id"], []]


def test_calibrated_probabilities_use_the_map_evaluate_fits(client, keys, records, xgb_run):
    from crimeclass.models import open_run, run_calibration

    answer = _score(client, keys, records[:50])
    cal = run_calibration(open_run(xgb_run), "xgb")
    assert cal is not None and answer["model"]["calibration"] == cal.method
    p = np.array([r["probability"] for r in answer["results"]])
    got = np.array([r["probability_calibrated"] for r in answer["results"]])
    np.testing.assert_allclose(got, cal.transform(p), atol=1e-12)
    assert ((got >= 0) & (got <= 1)).all()


def test_the_answer_text_is_that_of_jsonable():
    """One pass without NaN, the round trip with it: the same text either way."""
    import datetime as dt
    import json

    from crimeclass.serve._scoring import json_text, jsonable

    plain = {"a": [np.float32(0.1), np.int64(3), 1.5, None, True], "b": {"c": "é\n"},
             "when": dt.datetime(2025, 2, 1, 12), 4: (1, 2)}
    for obj in (plain, {**plain, "nan": [float("nan"), np.float32("inf")]}):
        assert json_text(obj) == json.dumps(jsonable(obj))
    assert json.loads(json_text({"x": float("nan")})) == {"x": None}


def test_the_metrics_count_each_incident_scored_and_rejected(client, keys, records):
    def counts() -> dict[str, float]:
        out = {}
        for line in client.get("/metrics").text.splitlines():
            for name in ('crimeclass_scores_total{decision="positive"}',
                         'crimeclass_scores_total{decision="negative"}',
                         "crimeclass_incidents_rejected_total"):
                if line.startswith(name + " "):
                    out[name] = float(line.split()[-1])
        return out

    before = counts()
    got = _score(client, keys, [*records[:30], dict(records[30], date="never")])["results"]
    after = counts()
    decisions = [r["decision"] for r in got if "decision" in r]
    delta = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in {*after, *before}}
    assert delta['crimeclass_scores_total{decision="positive"}'] == sum(decisions)
    assert delta['crimeclass_scores_total{decision="negative"}'] == 30 - sum(decisions)
    assert delta["crimeclass_incidents_rejected_total"] == 1


def test_reasons_from_the_tabled_contributions_are_xgboosts_own(xgb_run, history_store,
                                                                records):
    import dataclasses

    from crimeclass.serve._incidents import validate_records
    from crimeclass.serve._scoring import load_serving

    serving = load_serving(xgb_run, history_store, model="xgb")
    # built once, when the model is loaded
    assert serving.explainer is not None and serving.explainer.parts[0].tables is not None
    plain = dataclasses.replace(serving, explainer=None)  # XGBoost's pred_contribs
    recs = records[:80]
    ours = serving.score(validate_records(recs), len(recs))
    theirs = plain.score(validate_records(recs), len(recs))
    assert [r["probability"] for r in ours] == [r["probability"] for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        assert [x["feature"] for x in a["reasons"]] == [x["feature"] for x in b["reasons"]]
        assert [x["value"] for x in a["reasons"]] == [x["value"] for x in b["reasons"]]
        np.testing.assert_allclose([x["contribution"] for x in a["reasons"]],
                                   [x["contribution"] for x in b["reasons"]], atol=1e-5)
