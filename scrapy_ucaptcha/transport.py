"""The HTTP side every API client shares: one call with retries, timeouts, https and key scrubbing.

:class:`ApiTransport` is the base of the createTask client and of the compatibility-protocol
clients. Transient failures are retried with exponential backoff and jitter, bounded in attempts
and in total time; HTTP 429 waits until ``X-RateLimit-Reset``; every call has a timeout. The API
key is scrubbed from any text an answer or a network error carries before it reaches an exception
or a log line, and no log line ever shows a request URL (some protocols carry the key in it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit

from scrapy.utils.defer import deferred_to_future
from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError
from twisted.web.client import (
    Agent,
    HTTPConnectionPool,
    ResponseFailed,
    ResponseNeverReceived,
)

from scrapy_ucaptcha._version import __version__
from scrapy_ucaptcha.errors import (
    UCaptchaProtocolError,
    UCaptchaRateLimitError,
    UCaptchaRetryableError,
    UCaptchaTimeoutError,
)
from scrapy_ucaptcha.identity import scrub

if TYPE_CHECKING:
    from treq.client import HTTPClient
    from twisted.web.iweb import IAgent

__all__ = [
    "DEFAULT_API_URL",
    "ApiTransport",
    "HttpAnswer",
    "RateLimit",
    "check_api_url",
    "redact_key",
]

logger = logging.getLogger("scrapy_ucaptcha.client")

DEFAULT_API_URL = "https://api.ucaptcha.net"

T = TypeVar("T")

_NETWORK_ERRORS = (
    net_error.ConnectError,
    net_error.ConnectionLost,
    net_error.ConnectionDone,
    net_error.TimeoutError,
    ResponseFailed,
    ResponseNeverReceived,
    CancelledError,
    OSError,
)

USER_AGENT = f"scrapy-ucaptcha/{__version__}"


def redact_key(key: str) -> str:
    """A form of the API key safe to show: its prefix and last two characters at most."""
    if len(key) < 16:
        return "***"
    head = key[:5] if key.startswith("ucap_") else key[:2]
    return f"{head}…{key[-2:]}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_api_url(url: str, *, allow_insecure_http: bool = False) -> str:
    """Return ``url`` without a trailing slash; raise :class:`ValueError` saying what is wrong."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018  (raises ValueError on a bad port)
    except ValueError:
        raise ValueError(f"the API URL has an invalid port: {url!r}") from None
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
        raise ValueError(f"the API URL must be an absolute http(s) URL, got {url!r}")
    if "?" in url or "#" in url or parts.username or parts.password:
        raise ValueError("the API URL must not carry credentials, a query or a fragment")
    if parts.scheme == "http" and not allow_insecure_http and not _is_loopback(host):
        raise ValueError(
            f"the API URL must use https:// (the API key travels in every request); plain http "
            f"is allowed only for loopback hosts or with the insecure-http opt-in, got {url!r}"
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` values of the last API answer that carried them."""

    limit: int | None
    remaining: int | None
    reset: float | None  # Unix timestamp of the window's reset


@dataclass
class HttpAnswer:
    """One HTTP answer: status, headers (lower-case names, last value) and body."""

    status: int
    headers: dict[str, str]
    body: bytes


class ApiTransport:
    """Sends API calls to ``api_url`` with the key, timeouts and retries of the configuration.

    :param api_key: never logged, never shown in ``repr``, scrubbed from every error text.
    :param api_url: base URL; must be ``https://`` unless the host is loopback or
        ``allow_insecure_http`` is set.
    :param timeout: seconds one HTTP call may take, connection to last byte.
    :param max_retries: retries of one call after a transient failure (so ``max_retries + 1``
        attempts at most).
    :param backoff_base: first backoff delay in seconds; doubles per retry, with full jitter.
    :param backoff_max: the longest single backoff delay.
    :param retry_deadline: total seconds one call may spend, retries and waits included.
    :param max_connections: persistent connections kept to the API host.
    :param on_call: called with the call's name before every HTTP call, retries included (for
        counting API usage). Every protocol names its calls after the createTask API's
        ``createTask``, ``getTaskResult``, ``getBalance`` and ``feedbackTask``.
    """

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        timeout: float = 30.0,
        max_retries: int = 4,
        backoff_base: float = 1.0,
        backoff_max: float = 30.0,
        retry_deadline: float = 120.0,
        allow_insecure_http: bool = False,
        max_connections: int = 10,
        on_call: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError("an API key is required")
        for name, value in (
            ("timeout", timeout),
            ("backoff_max", backoff_max),
            ("retry_deadline", retry_deadline),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, got {value!r}")
        if backoff_base < 0 or max_retries < 0 or max_connections < 1:
            raise ValueError("backoff_base and max_retries must be >= 0, max_connections >= 1")
        self._key = api_key.strip()
        self.api_url = check_api_url(api_url, allow_insecure_http=allow_insecure_http)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.retry_deadline = retry_deadline
        self.max_connections = max_connections
        self.rate_limit: RateLimit | None = None
        self._on_call = on_call
        self._pool: HTTPConnectionPool | None = None
        self._http: HTTPClient | None = None
        self._closed = False
        self._secrets: set[str] = set()  # proxy credentials of the tasks sent

    def __repr__(self) -> str:
        return f"{type(self).__name__}(api_url={self.api_url!r}, api_key={redact_key(self._key)!r})"

    async def close(self) -> None:
        """Close the client's persistent connections. The client cannot be used afterwards."""
        self._closed = True
        pool, self._pool, self._http = self._pool, None, None
        if pool is not None:
            await deferred_to_future(pool.closeCachedConnections())  # type: ignore[no-untyped-call]

    # --- one call, with retries ---------------------------------------------------------------

    async def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        parse: Callable[[HttpAnswer], T],
        **kwargs: Any,
    ) -> T:
        """Send ``method path`` (``kwargs`` go to treq: ``json``, ``data``, ``headers``...) and
        return what ``parse`` reads from the answer, retrying transient failures.

        ``endpoint`` names the call in logs, errors and ``on_call``; the URL is never logged.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                answer = await self._send(endpoint, method, path, deadline - loop.time(), kwargs)
                return parse(answer)
            except UCaptchaRetryableError as exc:
                delay = self._retry_delay(exc, attempt)
                if attempt > self.max_retries or loop.time() + delay > deadline:
                    logger.warning(
                        "uCaptcha %s failed after %d attempt(s): %s", endpoint, attempt, exc
                    )
                    raise
                logger.info(
                    "uCaptcha %s failed (%s), retry %d/%d in %.2f s",
                    endpoint,
                    exc,
                    attempt,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)

    def _retry_delay(self, exc: UCaptchaRetryableError, attempt: int) -> float:
        if isinstance(exc, UCaptchaRateLimitError) and exc.retry_after is not None:
            return exc.retry_after
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    async def _send(
        self, endpoint: str, method: str, path: str, left: float | None, kwargs: dict[str, Any]
    ) -> HttpAnswer:
        """One HTTP call; ``left``: seconds left of the whole call's retry budget."""
        if self._closed:
            raise RuntimeError("the uCaptcha client is closed")
        if self._on_call is not None:
            self._on_call(endpoint)
        timeout = self.timeout if left is None else min(self.timeout, left)
        try:
            answer = await asyncio.wait_for(
                self._http_call(method, f"{self.api_url}{path}", kwargs), max(timeout, 0.001)
            )
        except asyncio.TimeoutError:
            raise UCaptchaTimeoutError(f"{endpoint} did not answer within {timeout:g} s") from None
        except _NETWORK_ERRORS as exc:
            raise UCaptchaRetryableError(
                f"{endpoint}: network error: {self._scrub(_describe(exc))}"
            ) from None
        self._note_rate_limit(answer.headers)
        logger.debug("uCaptcha %s -> HTTP %d", endpoint, answer.status)
        if answer.status == 429:
            limited = UCaptchaRateLimitError(
                f"{endpoint}: rate limit exceeded", code=_code_of(answer.body), http_status=429
            )
            limited.retry_after = self._retry_after(answer.headers)
            raise limited
        return answer

    async def _http_call(self, method: str, url: str, kwargs: dict[str, Any]) -> HttpAnswer:
        kwargs = dict(kwargs)  # the same arguments serve every retry
        headers: dict[str, str] = {"Accept": "application/json", "User-Agent": USER_AGENT}
        headers.update(kwargs.pop("headers", None) or {})
        response = await deferred_to_future(
            self._client().request(
                method,
                url,
                headers=cast("Any", headers),
                allow_redirects=False,
                **kwargs,
            )
        )
        content = await deferred_to_future(response.content())
        answer_headers = {
            name.decode("latin-1").lower(): values[-1].decode("latin-1")
            for name, values in response.headers.getAllRawHeaders()
        }
        return HttpAnswer(status=response.code, headers=answer_headers, body=content)

    def _client(self) -> HTTPClient:
        if self._http is None:
            from treq.client import HTTPClient  # noqa: PLC0415  (imports the reactor)
            from twisted.internet import reactor

            self._pool = HTTPConnectionPool(reactor, persistent=True)  # type: ignore[no-untyped-call]
            self._pool.maxPersistentPerHost = self.max_connections
            self._pool.retryAutomatically = False
            agent = Agent(reactor, pool=self._pool, connectTimeout=self.timeout)  # type: ignore[no-untyped-call]
            self._http = HTTPClient(cast("IAgent", agent))
        return self._http

    # --- reading answers ----------------------------------------------------------------------

    @staticmethod
    def _number(
        data: Mapping[str, Any], name: str, where: str, *, required: bool = False
    ) -> float | None:
        value = data.get(name)
        if value is None and not required:
            return None
        if isinstance(value, str):
            value = _to_float(value)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or math.isnan(value)
            or math.isinf(value)
        ):
            raise UCaptchaProtocolError(f"{where}: {name} is not a number ({str(value)[:40]!r})")
        return float(value)

    def _note_rate_limit(self, headers: dict[str, str]) -> None:
        limit = _to_float(headers.get("x-ratelimit-limit"))
        remaining = _to_float(headers.get("x-ratelimit-remaining"))
        reset = _to_float(headers.get("x-ratelimit-reset"))
        if limit is None and remaining is None and reset is None:
            return
        self.rate_limit = RateLimit(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset=reset,
        )

    def _retry_after(self, headers: dict[str, str]) -> float | None:
        reset = _to_float(headers.get("x-ratelimit-reset"))
        if reset is not None:
            return max(0.0, reset - time.time())
        retry_after = _to_float(headers.get("retry-after"))
        return None if retry_after is None else max(0.0, retry_after)

    def _snippet(self, body: bytes) -> str:
        text = self._scrub(body.decode("utf-8", "replace"))[:80].replace("\n", " ")
        return f"{len(body)} bytes starting {text!r}"

    def _scrub(self, text: str) -> str:
        """``text`` without the API key or the credentials of any proxy a task carried."""
        if self._key in text:
            text = text.replace(self._key, redact_key(self._key))
        return scrub(text, self._secrets) if self._secrets else text


def _to_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _code_of(body: bytes) -> str | None:
    """The error code a rate-limit answer names, in any protocol's shape, if it has one."""
    try:
        data: Any = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        text = body.decode("utf-8", "replace").strip()
        return text[:60] if text.startswith("ERROR_") and " " not in text else None
    if isinstance(data, dict):
        for name in ("errorCode", "request", "error"):
            value = data.get(name)
            if isinstance(value, str) and value.startswith("ERROR_"):
                return value[:60]
    return None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ResponseFailed, ResponseNeverReceived)) and exc.reasons:
        inner = exc.reasons[0].value
        return f"{type(exc).__name__}({type(inner).__name__}: {inner})"
    return f"{type(exc).__name__}: {exc}"
