"""The other routes: keys, limits, models, reload, incidents, health, metrics, log, CSV."""

from __future__ import annotations

import csv
import io
import json
import logging
import shutil
from pathlib import Path

import pytest

from crimeclass.data import Store
from crimeclass.serve import ServeConfig, ServeError, create_app
from tests.serve.conftest import bearer, make_client, write_csv


def test_serve_error_is_a_crimeclass_error_with_context():
    from crimeclass.data import CrimeclassError

    e = ServeError("busy", status=503, retry_after=5)
    assert isinstance(e, CrimeclassError)
    assert e.attrs() == {"status": 503, "field": None, "retry_after": 5}


# ------------------------------------------------------------------ keys


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer cck_not-a-key"},
                                     {"Authorization": "Basic abc"}, {"X-API-Key": ""}])
def test_no_valid_key_is_a_401(client, records, headers):
    r = client.post("/v1/score", json={"incidents": records[:1]}, headers=headers)
    assert r.status_code == 401
    assert client.get("/v1/models", headers=headers).status_code == 401


def test_a_key_travels_as_bearer_or_x_api_key(client, keys):
    assert client.get("/v1/models", headers=bearer(keys["user"])).status_code == 200
    assert client.get("/v1/models", headers={"X-API-Key": keys["user"]}).status_code == 200


def test_a_plain_key_on_an_admin_route_is_a_403(client, keys, records, xgb_run):
    h = bearer(keys["user"])
    assert client.post("/v1/admin/reload", json={"run": str(xgb_run)},
                       headers=h).status_code == 403
    assert client.post("/v1/incidents", json={"incidents": records[:1]},
                       headers=h).status_code == 403


def test_the_key_file_keeps_only_hashes(keys):
    text = keys["file"].read_text()
    assert keys["user"] not in text and keys["admin"] not in text
    assert keys["file"].stat().st_mode & 0o077 == 0


def test_keys_are_on_unless_turned_off(xgb_run, history_store):
    with pytest.raises(ServeError, match="--api-keys"):
        create_app(ServeConfig(run=xgb_run, store=history_store))


# ------------------------------------------------------------------ limits


def test_a_body_over_the_limit_is_a_413(xgb_run, history_store, keys, records):
    with make_client(xgb_run, history_store, keys, max_body=2_000) as c:
        r = c.post("/v1/score", json={"incidents": records[:20]}, headers=bearer(keys["user"]))
        assert r.status_code == 413
        assert c.post("/v1/score", json={"incidents": records[:1]},
                      headers=bearer(keys["user"])).status_code == 200


def test_a_body_over_the_limit_without_a_length_is_a_413(xgb_run, history_store, keys,
                                                          records):
    body = json.dumps({"incidents": records[:20]}).encode()

    def chunks():
        for i in range(0, len(body), 500):
            yield body[i:i + 500]

    with make_client(xgb_run, history_store, keys, max_body=2_000) as c:
        r = c.post("/v1/score", content=chunks(), headers={
            **bearer(keys["user"]), "Content-Type": "application/json"})
        assert r.status_code == 413
        assert "limit" in r.json()["error"]


def test_over_the_rate_limit_is_a_429_with_retry_after(xgb_run, history_store, keys):
    with make_client(xgb_run, history_store, keys, rate_limit=3) as c:
        codes = [c.get("/v1/models", headers=bearer(keys["user"])) for _ in range(5)]
        assert [r.status_code for r in codes][:3] == [200, 200, 200]
        assert codes[-1].status_code == 429
        assert int(codes[-1].headers["Retry-After"]) >= 1
        # another key has its own window
        assert c.get("/v1/models", headers=bearer(keys["admin"])).status_code == 200


# ------------------------------------------------------------------ models


def test_models_lists_the_run(client, keys, xgb_run):
    doc = client.get("/v1/models", headers=bearer(keys["user"])).json()
    assert doc["run_id"] == xgb_run.name
    assert doc["serving"]["name"] == "xgb"
    assert {m["name"] for m in doc["models"]} >= {"xgb", "lr"}
    xgb = next(m for m in doc["models"] if m["name"] == "xgb")
    assert 0 < xgb["threshold"] < 1 and "roc_auc" in xgb["metrics"]
    assert doc["trained_window"]["since"].startswith("2015-01-01")
    assert "hour" in doc["features"]
    assert str(xgb_run.parent) not in json.dumps(doc)  # no internal path


def test_the_model_card(xgb_run, history_store, keys, tmp_path):
    run = tmp_path / xgb_run.name
    shutil.copytree(xgb_run, run)
    with make_client(run, history_store, keys) as c:
        h = bearer(keys["user"])
        assert c.get("/v1/models/xgb/card", headers=h).status_code == 404
        assert c.get("/v1/models/nope/card", headers=h).status_code == 404
        (run / "models" / "xgb" / "model_card.md").write_text("# Model card: xgb\n")
        r = c.get("/v1/models/xgb/card", headers=h)
        assert r.status_code == 200 and r.text.startswith("# Model card: xgb")
        # the intervals that evaluate writes into the run
        (run / "evaluation").mkdir()
        auc = {"value": 0.7, "low": 0.68, "high": 0.72}
        (run / "evaluation" / "evaluation.json").write_text(json.dumps(
            {"models": [{"name": "xgb", "metrics": {"roc_auc": auc}}]}))
        models = c.get("/v1/models", headers=h).json()["models"]
        assert next(m for m in models if m["name"] == "xgb")["intervals"] == {"roc_auc": auc}


def test_reload_switches_and_a_refused_model_keeps_the_old_one(xgb_run, history_store, keys,
                                                               records, tmp_path):
    other = tmp_path / "other-run"
    shutil.copytree(xgb_run, other)
    broken = tmp_path / "broken-run"
    shutil.copytree(xgb_run, broken)
    with (broken / "models" / "xgb" / "pipeline.skops").open("ab") as f:
        f.write(b"altered")
    with make_client(xgb_run, history_store, keys) as c:
        h, a = bearer(keys["user"]), bearer(keys["admin"])
        before = c.post("/v1/score", json={"incidents": records[:3]}, headers=h).json()
        r = c.post("/v1/admin/reload", json={"run": str(broken), "model": "xgb"}, headers=a)
        assert r.status_code == 409 and "Traceback" not in r.text
        assert c.get("/v1/models", headers=h).json()["run_id"] == xgb_run.name
        r = c.post("/v1/admin/reload", json={"run": str(other), "model": "lr"}, headers=a)
        assert r.status_code == 200, r.text
        now = c.post("/v1/score", json={"incidents": records[:3]}, headers=h).json()
        assert now["model"]["name"] == "lr"
        # the logistic regression's reasons: its own terms of the log-odds
        assert len(now["results"][0]["reasons"]) == 3
        assert now["results"][0]["probability"] != before["results"][0]["probability"]


# ------------------------------------------------------------------ history


def _place_and_new_incidents(records: list[dict]) -> tuple[dict, list[dict]]:
    """An incident to score, and three burglaries half an hour before it at its place."""
    import datetime as dt

    def when(r):
        return dt.datetime.strptime(r["date"], "%m/%d/%Y %I:%M:%S %p")

    target = dict(next(r for r in records if when(r).hour >= 1))
    earlier = (when(target) - dt.timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S.000")
    place = {k: target[k] for k in ("block", "location_description", "domestic", "beat",
                                    "district", "ward", "community_area", "x_coordinate",
                                    "y_coordinate", "latitude", "longitude") if k in target}
    new = [{**place, "id": str(90_000_000 + i), "case_number": f"ZZ{i:06d}",
            "date": earlier, "updated_on": "2025-03-01T00:00:00.000", "iucr": "0610",
            "primary_type": "BURGLARY", "description": "FORCIBLE ENTRY", "fbi_code": "05"}
           for i in range(3)]
    return target, new


def test_a_new_incident_changes_the_next_score_at_its_place(xgb_run, store_copy, keys,
                                                            records):
    target, new = _place_and_new_incidents(records)
    with make_client(xgb_run, store_copy, keys) as c:
        h, a = bearer(keys["user"]), bearer(keys["admin"])
        before = c.post("/v1/score", json={"incidents": [target]}, headers=h).json()
        r = c.post("/v1/incidents", json={"incidents": new}, headers=a)
        assert r.status_code == 200, r.text
        assert r.json()["account"]["inserted"] == 3, json.dumps(r.json())
        after = c.post("/v1/score", json={"incidents": [target]}, headers=h).json()
    assert after["results"][0]["probability"] != before["results"][0]["probability"]
    with Store(store_copy, read_only=True) as s:
        assert s.con.execute("SELECT count(*) FROM incidents WHERE id >= 90000000"
                             ).fetchall()[0][0] == 3


def test_incidents_another_process_stores_reach_later_scores(xgb_run, store_copy, keys,
                                                             records, tmp_path):
    """As ``crimeclass sync`` writes the store, from another process: the service follows
    it, no restart."""
    import subprocess
    import sys
    import time

    target, new = _place_and_new_incidents(records)
    path = tmp_path / "new.csv"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=sorted({k for r in new for k in r}))
        w.writeheader()
        w.writerows(new)
    with make_client(xgb_run, store_copy, keys, follow_seconds=0.2) as c:
        h = bearer(keys["user"])
        before = c.post("/v1/score", json={"incidents": [target]}, headers=h).json()
        seen = c.get("/health/ready").json()["history"]["last_ingest"]
        for _ in range(20):  # DuckDB's one writer: a moment the service reads, it waits
            done = subprocess.run([sys.executable, "-m", "crimeclass", "ingest", str(path),
                                   "--store", str(store_copy)], capture_output=True, text=True)
            if done.returncode == 0:
                break
            assert "lock" in done.stderr.lower(), done.stderr
            time.sleep(0.3)
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 20
        while c.get("/health/ready").json()["history"]["last_ingest"] == seen:
            assert time.monotonic() < deadline, "the service did not follow the store"
            time.sleep(0.1)
        after = c.post("/v1/score", json={"incidents": [target]}, headers=h).json()
    assert after["results"][0]["probability"] != before["results"][0]["probability"]


def test_a_posted_incident_is_validated_as_ingest_validates_it(xgb_run, store_copy, keys,
                                                               records):
    bad = dict(records[0], id="91000000", date="not a date",
               updated_on="2025-03-01T00:00:00.000")
    with make_client(xgb_run, store_copy, keys) as c:
        r = c.post("/v1/incidents", json={"incidents": [bad]}, headers=bearer(keys["admin"]))
    account = r.json()["account"]
    assert account["quarantined"] == 1 and account["inserted"] == 0


# ------------------------------------------------------------------ operations


def test_health_metrics_and_docs(client, keys, records):
    assert client.get("/health/live").json() == {"status": "live"}
    ready = client.get("/health/ready").json()
    assert ready["status"] == "ready" and ready["history"]["newest"].startswith("20")
    client.post("/v1/score", json={"incidents": records[:4]}, headers=bearer(keys["user"]))
    text = client.get("/metrics").text
    assert 'crimeclass_requests_total{method="POST",route="/v1/score",status="200"}' in text
    assert "crimeclass_scores_total" in text and "crimeclass_history_age_seconds" in text
    assert "crimeclass_request_seconds_bucket" in text
    assert client.get("/docs").status_code == 200
    assert "/v1/score" in client.get("/openapi.json").json()["paths"]


def test_one_json_log_line_per_request_without_incident_content(client, keys, records,
                                                                caplog):
    with caplog.at_level(logging.INFO, logger="crimeclass.serve"):
        r = client.post("/v1/score", json={"incidents": records[:2]},
                        headers=bearer(keys["user"]))
    lines = [json.loads(m) for m in caplog.messages]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == r.headers["x-request-id"]
    assert line["status"] == 200 and line["key"] == "analyst" and line["incidents"] == 2
    assert line["ids"] == [records[0]["id"], records[1]["id"]]
    assert records[0]["block"] not in caplog.text


def test_a_csv_export_scored_as_json_is(client, keys, new_rows, records, tmp_path):
    path = write_csv(tmp_path / "in.csv", new_rows[:30])
    with path.open("rb") as f:
        r = client.post("/v1/score/csv", files={"file": ("in.csv", f, "text/csv")},
                        headers=bearer(keys["user"]))
    assert r.status_code == 200, r.text
    rows = list(csv.DictReader(io.StringIO(r.text)))
    json_results = client.post("/v1/score", json={"incidents": records[:30]},
                               headers=bearer(keys["user"])).json()["results"]
    assert [float(x["probability"]) for x in rows] == pytest.approx(
        [x["probability"] for x in json_results], abs=1e-12)
    assert rows[0]["line"] == "2" and rows[0]["reason_1"]


def test_a_file_that_is_no_export_is_a_400(client, keys, tmp_path):
    r = client.post("/v1/score/csv", files={"file": ("x.csv", b"a,b\n1,2\n", "text/csv")},
                    headers=bearer(keys["user"]))
    assert r.status_code == 400 and "Traceback" not in r.text
    assert str(Path("/tmp")) not in r.json()["error"]


def test_keys_add_prints_a_key_once_and_refuses_a_second_of_a_name(tmp_path):
    from typer.testing import CliRunner

    from crimeclass.cli import app
    from crimeclass.serve import KeyFile

    path = tmp_path / "keys.json"
    runner = CliRunner()
    first = runner.invoke(app, ["serve", "keys", "add", "a", "--api-keys", str(path)])
    second = runner.invoke(app, ["serve", "keys", "add", "b", "--admin", "--api-keys",
                                 str(path)])
    assert first.exit_code == second.exit_code == 0
    key_a, key_b = first.stdout.strip(), second.stdout.strip()
    keys = KeyFile(path)
    assert keys.check(key_a).name == "a" and not keys.check(key_a).admin
    assert keys.check(key_b).admin and keys.check(key_a + "x") is None
    assert [k["name"] for k in json.loads(path.read_text())["keys"]] == ["a", "b"]
    again = runner.invoke(app, ["serve", "keys", "add", "a", "--api-keys", str(path)])
    assert again.exit_code == 1 and "already" in again.output


def test_serve_without_run_or_keys_ends_in_one_error_line(xgb_run, history_store, tmp_path):
    from typer.testing import CliRunner

    from crimeclass.cli import app

    r = CliRunner().invoke(app, ["serve", "--store", str(history_store)])
    assert r.exit_code != 0 and "--run" in r.output
    r = CliRunner().invoke(app, ["serve", "--run", str(xgb_run), "--store", str(history_store),
                                 "--api-keys", str(tmp_path / "none.json")])
    assert r.exit_code == 1 and "keys add" in r.output and "Traceback" not in r.output


def test_serve_refuses_an_altered_model_before_it_starts(xgb_run, history_store, keys,
                                                         tmp_path):
    from typer.testing import CliRunner

    from crimeclass.cli import app

    broken = tmp_path / "run"
    shutil.copytree(xgb_run, broken)
    with (broken / "models" / "xgb" / "pipeline.skops").open("ab") as f:
        f.write(b"altered")
    r = CliRunner().invoke(app, ["serve", "--run", str(broken), "--store", str(history_store),
                                 "--model", "xgb", "--api-keys", str(keys["file"])])
    assert r.exit_code == 1 and "sha256" in r.output and "Traceback" not in r.output


def test_with_a_verify_key_only_signed_runs_are_served(xgb_run, history_store, keys, tmp_path):
    from crimeclass.models import SignatureError, sign_run
    from tests.models.test_signing import _key_pair

    private, public = _key_pair(tmp_path, "deployer")
    signed, unsigned = tmp_path / "signed", tmp_path / "unsigned"
    shutil.copytree(xgb_run, signed)
    shutil.copytree(xgb_run, unsigned)
    sign_run(signed, private)
    with make_client(signed, history_store, keys, verify_key=public) as c:
        a = bearer(keys["admin"])
        r = c.post("/v1/admin/reload", json={"run": str(unsigned), "model": "lr"}, headers=a)
        assert r.status_code == 409
        served = c.get("/v1/models", headers=a).json()["serving"]
        assert served["name"] == "xgb"
    with pytest.raises(SignatureError):  # the start refuses it
        with make_client(unsigned, history_store, keys, verify_key=public):
            pass
