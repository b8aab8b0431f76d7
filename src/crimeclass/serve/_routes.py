"""The routes: scoring, incidents, models, reload, health, metrics and the analyst page.

Scoring and model routes need a key (``Authorization: Bearer KEY`` or ``X-API-Key``);
``/v1/incidents`` and ``/v1/admin/*`` an admin key. Health, metrics, the OpenAPI page
and the analyst page itself are open (the page asks for a key to call the API).
"""

# no ``from __future__ import annotations``: FastAPI reads the routes' annotations, and
# ``Request`` is imported inside the functions (fastapi is imported lazily)

import asyncio
from typing import Any

import anyio

from crimeclass.data._schema import SODA_NAMES, HeaderMapping
from crimeclass.data.sources import BatchSource, soda_batch
from crimeclass.serve._app import State
from crimeclass.serve._errors import ServeError
from crimeclass.serve._schemas import IncidentsRequest, ReloadRequest, ScoreRequest
from crimeclass.serve._scoring import (
    card_text,
    check_model_name,
    json_text,
    jsonable,
    load_serving,
    models_doc,
)

__all__ = ["add_routes"]


def _presented(request: Any) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth[:7].lower() == "bearer ":
        return str(auth[7:].strip())
    key = request.headers.get("x-api-key")
    return str(key) if key else None


def _guard(state: State, *, admin: bool) -> Any:
    """A dependency: the caller's key (401 without a valid one, 403 for admin routes),
    counted against its rate limit (429). A coroutine: a hash and a count, run on the event
    loop (FastAPI hands a plain function to a thread, a hop per request)."""
    from fastapi import Request

    async def check(request: Request) -> None:
        if state.keys is None:
            state.rate.hit("-")
            return
        presented = _presented(request)
        key = state.keys.check(presented) if presented else None
        if key is None:
            raise ServeError("a valid API key is needed (Authorization: Bearer KEY)",
                             status=401)
        request.state.key_name = key.name
        state.rate.hit(key.name)
        if admin and not key.admin:
            raise ServeError("this route needs an admin key", status=403)

    return check


def _note(request: Any, ids: list[Any]) -> None:
    request.state.incidents = len(ids)
    request.state.ids = [i for i in ids[:100] if i is not None]


def _count(state: State, results: list[dict[str, Any]]) -> None:
    decided = [r["decision"] for r in results if "decision" in r]
    positive = sum(decided)
    for label, n in (("positive", positive), ("negative", len(decided) - positive)):
        if n:
            state.metrics.scores.labels(label).inc(n)
    if len(results) > len(decided):
        state.metrics.rejected.inc(len(results) - len(decided))


def _add_scoring(app: Any, state: State) -> None:
    from fastapi import Depends, Request, Response

    user = Depends(_guard(state, admin=False))

    @app.post("/v1/score", dependencies=[user], tags=["scoring"])
    async def score(body: ScoreRequest, request: Request) -> Any:
        """Score 1 to 10,000 incidents, as `crimeclass predict` scores a file of them."""
        recs = body.incidents  # the records as sent (TypedDicts)
        _note(request, [r.get("id") for r in recs])
        serving = state.current()
        answer = {"model": serving.describe(),
                  "results": await state.batcher.score(serving, recs)}
        _count(state, answer["results"])
        # serialized here: FastAPI's encoder walks every value of 10,000 results slowly
        return Response(json_text(answer), media_type="application/json")

    @app.post("/v1/score/csv", dependencies=[user], tags=["scoring"])
    async def score_csv(request: Request) -> Any:
        """Score an uploaded CSV export (multipart field ``file``); answer a scored CSV."""
        from fastapi.responses import Response

        from crimeclass.serve._csv import score_csv_bytes

        async with request.form() as form:
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ServeError("upload a CSV file in the form field 'file'", field="file")
            data = await upload.read()
        text, n = await anyio.to_thread.run_sync(score_csv_bytes, state.current(), data,
                                                 limiter=state.limiter)
        request.state.incidents = n
        return Response(text, media_type="text/csv", headers={
            "Content-Disposition": 'attachment; filename="scored.csv"'})

    @app.get("/v1/places", dependencies=[user], tags=["scoring"])
    def places() -> Any:
        """The kinds of place (location descriptions) the history knows, most common first."""
        return {"places": state.current().history.places}


def _add_models(app: Any, state: State) -> None:
    from fastapi import Depends
    from fastapi.responses import PlainTextResponse

    user, admin = Depends(_guard(state, admin=False)), Depends(_guard(state, admin=True))

    @app.get("/v1/models", dependencies=[user], tags=["models"])
    def models() -> Any:
        """The run served: its models, features, metrics, threshold and windows."""
        return jsonable(models_doc(state.current()))

    @app.get("/v1/models/{name}/card", dependencies=[user], tags=["models"],
             response_class=PlainTextResponse)
    def card(name: str) -> Any:
        """The model card of a model of the run (Markdown; written by evaluate)."""
        serving = state.current()
        check_model_name(serving, name)
        text = card_text(serving.run, name)
        if text is None:
            raise ServeError(f"the model {name!r} has no model card yet (crimeclass "
                             "evaluate writes it)", status=404, field="name")
        return text

    @app.post("/v1/admin/reload", dependencies=[admin], tags=["admin"])
    async def reload(body: ReloadRequest) -> Any:
        """Serve another run; requests in flight finish with the old one. A model that is
        refused leaves the old one serving."""
        old = state.current()
        c = state.config
        new = await asyncio.to_thread(load_serving, body.run, c.store, model=body.model,
                                      verify_key=c.verify_key, history=old.history)
        state.serving = new
        return {"serving": new.describe(), "previous": old.describe()}

    @app.post("/v1/incidents", dependencies=[admin], tags=["admin"])
    def incidents(body: IncidentsRequest) -> Any:
        """Record incidents in the store (validated, labeled and accounted as ingest does)
        and in the history: later scores count them."""
        recs = body.incidents  # the records as sent (TypedDicts)
        serving = state.current()
        batch = soda_batch(recs, first_offset=0, page=0)
        source = BatchSource(batch, name="serve:/v1/incidents",
                             header=HeaderMapping(dict(SODA_NAMES), (), "soda_json"),
                             format="soda")
        account = serving.history.add(batch, source)
        return {"account": jsonable(account.to_dict()),
                "history": jsonable(serving.history.info())}


def _add_health(app: Any, state: State) -> None:
    from fastapi.responses import HTMLResponse, Response

    @app.get("/health/live", tags=["operations"])
    def live() -> Any:
        """The process answers."""
        return {"status": "live"}

    @app.get("/health/ready", tags=["operations"])
    def ready() -> Any:
        """The model and the history are loaded: which, and how current."""
        serving = state.current()
        return jsonable({"status": "ready", "model": serving.describe(),
                         "history": serving.history.info()})

    @app.get("/metrics", tags=["operations"])
    def metrics() -> Any:
        """Prometheus metrics."""
        return Response(state.metrics.text(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    def page() -> Any:
        from crimeclass.serve._page import page_html

        return HTMLResponse(page_html())


def add_routes(app: Any, state: State) -> None:
    """Every route of the service."""
    _add_scoring(app, state)
    _add_models(app, state)
    _add_health(app, state)
