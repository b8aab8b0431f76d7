"""The Data Portal's web API (SODA): where a dataset is, and GET requests with retries.

Transient failures (HTTP 429 and 5xx, a dropped or cut connection, a JSON
answer cut short) are retried by tenacity: exponential backoff between tries,
or, when the server sends ``Retry-After``, exactly the wait it asks for,
whatever its size, as long as the retries of one request stay within the
policy's deadline (``--retry-deadline``). A failure that retrying cannot mend
(403, an expired token, an answer that is not SODA JSON) raises a
:class:`~crimeclass.data.SourceError` that names the URL and what to check.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from crimeclass.data._errors import SourceError

if TYPE_CHECKING:
    import requests
    from tenacity import RetryCallState

__all__ = [
    "APP_TOKEN_ENV",
    "DEFAULT_DATASET",
    "DEFAULT_URL",
    "MAX_PAGE_ROWS",
    "Portal",
    "RetryPolicy",
    "SodaClient",
]

DEFAULT_URL = "https://data.cityofchicago.org"
DEFAULT_DATASET = "ijzp-q8t2"
#: Environment variable holding the optional Socrata app token (higher rate limits).
APP_TOKEN_ENV = "SODA_APP_TOKEN"
#: The most rows a SODA 2.0 endpoint returns per request.
MAX_PAGE_ROWS = 50_000


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures (429, 5xx, dropped connections) are retried.

    Parameters
    ----------
    attempts : int
        Tries per request, the first included.
    backoff : float
        Seconds before the first retry; doubled before each next one.
    max_wait : float
        The longest backoff. A server's ``Retry-After`` is honoured whatever its size.
    deadline : float
        Seconds that one request may take, its retries and waits included: a retry
        that would begin later (a ``Retry-After`` of an hour, say) is not made, and
        the request fails at once, saying so.

        .. versionadded:: 0.1
    """

    attempts: int = 6
    backoff: float = 1.0
    max_wait: float = 60.0
    deadline: float = 900.0

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed try number ``attempt`` (0-based): ``retry_after``
        if the server sent one, else the backoff."""
        if retry_after is not None:
            return max(0.0, retry_after)
        return max(0.0, min(self.backoff * 2 ** attempt, self.max_wait))


@dataclass(frozen=True)
class Portal:
    """Where a SODA dataset is and how to read it.

    Parameters
    ----------
    url : str
        The portal's address.
    dataset : str
        The dataset id (``ijzp-q8t2``: *Crimes - 2001 to Present*).
    app_token : str or None
        Socrata app token, sent as ``X-App-Token``; None reads without one (lower
        rate limits). :meth:`from_env` takes it from ``$SODA_APP_TOKEN``.
    page_rows : int
        Rows per request (``$limit``), at most 50,000.
    timeout : float
        Seconds to wait for the server to connect or to send more data.
    retry : RetryPolicy
        Retries of transient failures.
    """

    url: str = DEFAULT_URL
    dataset: str = DEFAULT_DATASET
    app_token: str | None = field(default=None, repr=False)
    page_rows: int = MAX_PAGE_ROWS
    timeout: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if not 1 <= self.page_rows <= MAX_PAGE_ROWS:
            raise ValueError(f"page_rows must be 1 to {MAX_PAGE_ROWS:,}, not {self.page_rows}")
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the portal URL {self.url!r} must start with https:// (or http://)")

    @classmethod
    def from_env(cls, **kwargs: Any) -> Portal:
        """A portal whose app token is ``$SODA_APP_TOKEN`` (if set and not empty)."""
        return cls(app_token=os.environ.get(APP_TOKEN_ENV) or None, **kwargs)

    @property
    def resource(self) -> str:
        """The dataset's SODA endpoint."""
        return f"{self.url.rstrip('/')}/resource/{self.dataset}.json"


# ------------------------------------------------------------------ client


class SodaClient:
    """GET requests to one SODA endpoint, with retries and clear errors.

    requests (with urllib3's connection pool) does the HTTP and tenacity the
    retries: urllib3's ``Retry`` does not cover a body cut off after the headers,
    which is what a dropped connection mid-page looks like.

    Parameters
    ----------
    portal : Portal
        The endpoint, token, timeout and retry policy.
    sleep : callable
        Waits between tries (``time.sleep``).
    """

    def __init__(self, portal: Portal, *, sleep: Callable[[float], None] = time.sleep) -> None:
        import requests

        self.portal = portal
        self.requests = 0
        self.retries = 0
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update({"Accept": "application/json",
                                      "User-Agent": "crimeclass (+sources)"})
        if portal.app_token:
            self._session.headers["X-App-Token"] = portal.app_token

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> SodaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, message: str) -> SourceError:
        """A :class:`SourceError` about this endpoint."""
        return SourceError(self.portal.resource, None, None, message)

    def get(self, params: dict[str, str]) -> list[Any]:
        """The JSON array that the endpoint answers to ``params``.

        Raises
        ------
        SourceError
            When access is refused, the answer is not SODA JSON, or the server
            keeps failing after the retries (or past the deadline).
        """
        from tenacity import (
            Retrying,
            retry_if_exception_type,
            stop_after_attempt,
            stop_before_delay,
        )

        policy = self.portal.retry
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline),
            wait=self._wait, retry=retry_if_exception_type(_Transient), sleep=self._sleep,
            before_sleep=self._count_retry, reraise=True)
        try:
            return retrying(self._try, params)
        except _Transient as e:
            tries = int(retrying.statistics.get("attempt_number", 1))
            problem = e.problem
        hint = ("" if self.portal.app_token else
                f"; an app token in ${APP_TOKEN_ENV} raises the portal's rate limit")
        late = "" if tries >= policy.attempts else (
            f", and the next try would begin past the {policy.deadline:g} s deadline "
            "(--retry-deadline)")
        raise self.error(
            f"gave up after {tries} {'try' if tries == 1 else 'tries'} ({problem}){late}: "
            "the portal is down or limiting requests; try again later (a sync resumes where "
            f"it stopped){hint}")

    def _try(self, params: dict[str, str]) -> list[Any]:
        """One request; a failure worth retrying raises :class:`_Transient`."""
        import requests

        self.requests += 1
        try:
            r = self._session.get(self.portal.resource, params=params,
                                  timeout=self.portal.timeout)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as e:
            raise _Transient(f"connection failed: {type(e).__name__}: {_short(str(e))}"
                             ) from None
        if r.status_code == 429 or r.status_code >= 500:
            raise _Transient(f"HTTP {r.status_code} {r.reason}",
                             _retry_after(r.headers.get("Retry-After")))
        return self._parse(r, params)

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = error.retry_after if isinstance(error, _Transient) else None
        return self.portal.retry.wait(state.attempt_number - 1, retry_after)

    def _count_retry(self, state: RetryCallState) -> None:
        self.retries += 1

    def _parse(self, r: requests.Response, params: dict[str, str]) -> list[Any]:
        status = r.status_code
        message = _server_message(r)
        if status in (401, 403):
            token = (f"the app token in ${APP_TOKEN_ENV} (it may be expired, revoked or "
                     "mistyped; unset it to read without one)" if self.portal.app_token
                     else "whether the dataset needs an app token or a login "
                     f"(set ${APP_TOKEN_ENV})")
            raise self.error(f"access refused (HTTP {status}{message}): check {token}, "
                              f"and that --url and --dataset name a public dataset")
        if status == 404:
            raise self.error(f"not found (HTTP 404{message}): check --url "
                              f"({self.portal.url}) and --dataset ({self.portal.dataset})")
        if status >= 400:
            raise self.error(f"the server rejected the query (HTTP {status}{message}); "
                              f"query: {params}")
        try:
            data = json.loads(r.content)
        except ValueError:
            kind = r.headers.get("Content-Type", "no content type")
            if "json" in kind and r.content.lstrip()[:1] == b"[":
                # a JSON array cut short: the connection dropped without a length to tell
                raise _Transient(f"the JSON answer ends early ({len(r.content):,} bytes)"
                                 ) from None
            raise self.error(
                f"the answer is not SODA JSON (HTTP {status}, {kind}: "
                f"{_short(r.text, 80)!r}): check --url, which should be the portal's "
                f"address (e.g. {DEFAULT_URL}), and any proxy in between") from None
        if isinstance(data, dict) and data.get("error"):
            raise self.error(f"the server answered an error: {_short(str(data))}")
        if not isinstance(data, list):
            raise self.error(f"the answer is JSON but not a list of records "
                              f"({_short(json.dumps(data), 80)}): check --url and --dataset")
        return data


class _Transient(Exception):
    """A failure worth retrying: what went wrong, and the wait the server asked for."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return (when - datetime.now(when.tzinfo)).total_seconds()


def _server_message(r: requests.Response) -> str:
    """``': message'`` from a SODA error body, or ``''``."""
    try:
        body = r.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        msg = body.get("message") or body.get("error") or body.get("code")
        if msg:
            return f": {_short(str(msg))}"
    return ""


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."
