"""Limits: the body size, counted on the stream, and the requests per second of each key.

The body limit is an ASGI wrapper: a declared ``Content-Length`` over the limit is
answered 413 at once; otherwise every chunk the server receives is counted (a chunked
body declares no length) and the read fails with 413 as soon as the count passes the
limit, before the rest is read or parsed.

The rate limit is the ``limits`` library's moving window (in memory, per process), one
window of one second per key: a request over it is answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from crimeclass.serve._errors import ServeError

__all__ = ["BodyLimit", "RateLimit"]


class BodyLimit:
    """ASGI middleware: at most ``max_bytes`` of request body, counted as it arrives."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        state = {"seen": 0, "over": False, "started": False}

        async def counted() -> Any:
            message = await receive()
            if message["type"] == "http.request":
                state["seen"] += len(message.get("body", b""))
                if state["seen"] > self.max_bytes:
                    state["over"] = True
                    raise ServeError(f"the request body is over the limit of "
                                     f"{self.max_bytes:,} bytes", status=413)
            return message

        async def sending(message: Any) -> None:
            if state["over"]:  # whatever the app made of the failed read: a 413 instead
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await _too_large(send, self.max_bytes)
                return
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except Exception:
            if not state["over"]:
                raise
            if not state["started"]:
                await _too_large(send, self.max_bytes)


async def _too_large(send: Any, limit: int) -> None:
    body = json.dumps({"error": f"the request body is over the limit of {limit:,} bytes"}
                      ).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class RateLimit:
    """At most ``per_second`` requests per key in any second."""

    def __init__(self, per_second: int) -> None:
        from limits import RateLimitItemPerSecond
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.item = RateLimitItemPerSecond(per_second)
        self.limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, key: str) -> None:
        """Count a request of ``key``; raise 429 (with Retry-After) over the limit."""
        if self.limiter.hit(self.item, key):
            return
        reset = self.limiter.get_window_stats(self.item, key).reset_time
        raise ServeError(f"over the rate limit of {self.item.amount} requests per second "
                         "for this key", status=429,
                         retry_after=max(1, math.ceil(reset - time.time())))
