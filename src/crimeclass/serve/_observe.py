"""What the service says of itself: Prometheus metrics and one JSON log line per request.

The metrics live in a registry of the app's own (several apps in one process, as in
tests, do not share counts). The log line names the request (its id, also sent back as
``X-Request-ID``), the route, the status, the time taken, the key's name and the ids of
the incidents scored: never any other content of an incident.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["Metrics", "Observe", "log"]

log = logging.getLogger("crimeclass.serve")


class Metrics:
    """The service's Prometheus metrics."""

    def __init__(self, history_age: Callable[[], float]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("crimeclass_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("crimeclass_request_seconds", "Time to answer a request",
                                 ["route"], registry=r, buckets=(
                                     .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10))
        self.scores = Counter("crimeclass_scores", "Incidents scored, by decision",
                              ["decision"], registry=r)
        self.rejected = Counter("crimeclass_incidents_rejected",
                                "Incidents that failed validation", registry=r)
        age = Gauge("crimeclass_history_age_seconds",
                    "Seconds since the newest incident the history holds", registry=r)
        age.set_function(history_age)

    def text(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


class Observe:
    """ASGI middleware: a request id, the metrics and the log line of every request."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        request_id = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = request_id
        status = [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self._record(scope, request_id, status[0], time.perf_counter() - t0)

    def _record(self, scope: Any, request_id: str, status: int, seconds: float) -> None:
        route = scope.get("route")
        path = getattr(route, "path", None) or "unmatched"
        self.metrics.requests.labels(path, scope["method"], str(status)).inc()
        self.metrics.latency.labels(path).observe(seconds)
        state = scope.get("state", {})
        line = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "request_id": request_id,
                "method": scope["method"], "route": path, "status": status,
                "ms": round(seconds * 1000, 2), "key": state.get("key_name"),
                "incidents": state.get("incidents"), "ids": state.get("ids")}
        log.info(json.dumps({k: v for k, v in line.items() if v is not None}))
