"""The FastAPI application: its settings, its start (lifespan) and its error answers.

:func:`create_app` builds the app from a :class:`ServeConfig`; the run's model and the
history are loaded once, when the app starts (the lifespan), and a model that is
altered or unsafe (its manifest's hashes, its types, or with a verify key its
signature) stops the start. The routes are in :mod:`._routes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crimeclass.data import CrimeclassError
from crimeclass.serve._batch import Batcher
from crimeclass.serve._errors import ServeError
from crimeclass.serve._incidents import close_connections
from crimeclass.serve._keys import KeyFile
from crimeclass.serve._limits import BodyLimit, RateLimit
from crimeclass.serve._observe import Metrics, Observe, log
from crimeclass.serve._scoring import Serving, load_serving

__all__ = ["ServeConfig", "create_app"]


@dataclass(frozen=True)
class ServeConfig:
    """How the service runs.

    Parameters
    ----------
    run : Path
        The run folder whose model is served.
    store : Path
        The history store.
    model : str, optional
        A model of the run; its best by default.
    api_keys : Path, optional
        The key file (``crimeclass serve keys add``); required unless ``auth`` is off.
    auth : bool
        Whether keys are required (on by default).
    max_body : int
        Bytes of request body at most (8 MB: 10,000 incidents fit).
    rate_limit : int
        Requests per second per key.
    cors_origins : tuple of str
        Origins allowed to call from a browser (none: CORS off).
    verify_key : Path, optional
        A public key: serve only runs signed with its private key.
    follow_seconds : float
        How often to take in incidents another process wrote to the store (0: never).
    listen : str
        Where the server listens, for the line said on start.
    score_threads : int
        Scorers of the queue of JSON requests, and CSV uploads scored at once (0: one
        scorer, and one upload per core).
    """

    run: Path
    store: Path
    model: str | None = None
    api_keys: Path | None = None
    auth: bool = True
    max_body: int = 8 * 1024 * 1024
    rate_limit: int = 2000
    cors_origins: tuple[str, ...] = field(default_factory=tuple)
    verify_key: Path | None = None
    follow_seconds: float = 0.0
    listen: str = ""
    score_threads: int = 0

    def to_json(self) -> str:
        """The settings as JSON (handed to worker processes)."""
        return json.dumps({k: (str(v) if isinstance(v, Path) else v)
                           for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        doc = json.loads(text)
        for k in ("run", "store", "api_keys", "verify_key"):
            doc[k] = None if doc[k] is None else Path(doc[k])
        doc["cors_origins"] = tuple(doc["cors_origins"])
        return cls(**doc)


class State:
    """The app's state: what is served now, the keys, limits and metrics."""

    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.keys = KeyFile(config.api_keys) if config.auth and config.api_keys else None
        if config.auth and self.keys is None:
            raise ServeError("API keys are on: give a key file (--api-keys FILE, made with "
                             "'crimeclass serve keys add'), or turn them off with --no-auth",
                             field="--api-keys")
        self.rate = RateLimit(config.rate_limit)
        self.serving: Serving | None = None
        self.limiter: Any = None  # scoring threads at once (anyio, made in the lifespan)
        self.batcher: Any = None  # the queue of scoring requests (made in the lifespan)
        self.metrics = Metrics(self._history_age)

    def _history_age(self) -> float:
        age = self.serving.history.age_seconds() if self.serving else None
        return float("nan") if age is None else age

    def current(self) -> Serving:
        if self.serving is None:
            raise ServeError("the model is not loaded yet", status=503, retry_after=1)
        return self.serving


async def _follow(state: State, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        serving = state.serving
        if serving is not None:
            taken = await asyncio.to_thread(serving.history.follow)
            if taken:
                log.info('{"event": "follow", "incidents": %d}', taken)


def _lifespan(state: State) -> Any:
    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        import anyio

        c = state.config
        # CSV uploads: as many at once as cores; more threads only contend for the GIL and
        # hold more memory; requests beyond wait their turn in the event loop
        state.limiter = anyio.CapacityLimiter(c.score_threads or os.cpu_count() or 2)
        # one scorer of the queue: a batch's cost is mostly fixed, so a second scorer
        # halves the batches and contends with the first and the event loop for the GIL
        # (on 2 cores, 32 clients of one incident, the 8M-row history: 207.0 requests/s
        # with two, 232.0 with one; bench/results/serve.json); --workers scales across
        # processes, --scorers chooses
        state.batcher = Batcher(c.score_threads or 1)
        state.serving = await asyncio.to_thread(
            load_serving, c.run, c.store, model=c.model, verify_key=c.verify_key)
        _say_started(state)
        task = asyncio.create_task(_follow(state, c.follow_seconds)) \
            if c.follow_seconds > 0 else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            state.batcher.stop()
            close_connections()

    return lifespan


def _say_started(state: State) -> None:
    """Where the service listens, what it serves, and how current its history is."""
    s, c = state.current(), state.config
    h = s.history.info()
    age = h["age_seconds"]
    print(f"crimeclass serve: {c.listen or 'listening'}  run {s.run.run_id}, model "
          f"{s.model.name} (threshold {s.model.threshold:.4f}); history {h['incidents']:,} "
          f"incidents of {s.history.store.name}, newest {h['newest']}"
          + ("" if age is None else f" ({age / 86400:,.1f} days ago)")
          + (", keys on" if state.keys else ", keys OFF"), file=sys.stderr, flush=True)


def _error_body(message: str, request: Any, **extra: Any) -> dict[str, Any]:
    return {"error": message, "request_id": request.scope.get("state", {}).get("request_id"),
            **{k: v for k, v in extra.items() if v is not None}}


def _handlers(app: Any) -> None:
    """Every error answered as JSON: no stack trace, no internal path."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse

    @app.exception_handler(ServeError)
    async def serve_error(request: Any, e: ServeError) -> Any:
        headers = {"Retry-After": str(e.retry_after)} if e.retry_after else None
        return JSONResponse(_error_body(str(e), request, field=e.field), status_code=e.status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Any, e: RequestValidationError) -> Any:
        detail = [{"loc": list(d.get("loc", ())), "msg": d.get("msg"), "type": d.get("type")}
                  for d in e.errors()[:50]]
        return JSONResponse(_error_body("the request does not have the expected shape",
                                        request, detail=detail), status_code=422)

    @app.exception_handler(CrimeclassError)
    async def refused(request: Any, e: CrimeclassError) -> Any:
        return JSONResponse(_error_body(str(e), request, type=type(e).__name__),
                            status_code=409)

    @app.exception_handler(Exception)
    async def internal(request: Any, e: Exception) -> Any:
        log.exception("internal error")
        return JSONResponse(_error_body("internal error (see the service's log)", request),
                            status_code=500)


def create_app(config: ServeConfig) -> Any:
    """The service as an ASGI app (FastAPI), its model loaded when it starts."""
    from fastapi import FastAPI

    from crimeclass.serve._routes import add_routes

    state = State(config)
    app = FastAPI(title="crimeclass scoring service", lifespan=_lifespan(state),
                  description="Scores Chicago crime incidents with a model of a crimeclass "
                              "run: the same numbers as `crimeclass predict`.")
    app.state.serve = state
    _handlers(app)
    add_routes(app, state)
    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "X-API-Key", "Content-Type"])
    app.add_middleware(BodyLimit, max_bytes=config.max_body)
    app.add_middleware(Observe, metrics=state.metrics)
    return app
