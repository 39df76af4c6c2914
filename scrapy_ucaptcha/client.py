"""A non-blocking client for the uCaptcha createTask API (and compatible providers), built on treq.

Every method is a coroutine to be awaited from Scrapy code running on Twisted's asyncio reactor.
Transient failures are retried inside the client with exponential backoff and jitter, bounded in
attempts and in total time; HTTP 429 waits until ``X-RateLimit-Reset``. Every call has a timeout.
The API key travels only in request bodies sent to the API URL, is never logged, and is scrubbed
from any text the API sends back before it reaches an exception or a log line; so are the
credentials of every proxy a task carried (an API may quote the task in an error description).
"""

from __future__ import annotations

import asyncio
import enum
import ipaddress
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast
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
from scrapy_ucaptcha.dialects import Dialect, dialect_for_url, get_dialect
from scrapy_ucaptcha.errors import (
    UCaptchaProtocolError,
    UCaptchaRateLimitError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    UCaptchaTimeoutError,
    error_for,
)
from scrapy_ucaptcha.identity import scrub, task_secrets

if TYPE_CHECKING:
    from treq.client import HTTPClient
    from twisted.web.iweb import IAgent

__all__ = [
    "DEFAULT_API_URL",
    "CaptchaClient",
    "RateLimit",
    "TaskId",
    "TaskResult",
    "TaskStatus",
    "UCaptchaClient",
    "redact_key",
    "truncate_token",
]

logger = logging.getLogger(__name__)

DEFAULT_API_URL = "https://api.ucaptcha.net"

#: Task ids are opaque: UUID strings at uCaptcha, integers at some compatible providers.
TaskId: TypeAlias = "str | int"

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

_HEADERS: dict[bytes | str, bytes | str] = {
    "Accept": "application/json",
    "User-Agent": f"scrapy-ucaptcha/{__version__}",
}

#: Solution fields that hold the token (or answer), in the order they are looked for.
TOKEN_FIELDS = ("gRecaptchaResponse", "token", "text", "cookie", "captcha_output", "code")


def redact_key(key: str) -> str:
    """A form of the API key safe to show: its prefix and last two characters at most."""
    if len(key) < 16:
        return "***"
    head = key[:5] if key.startswith("ucap_") else key[:2]
    return f"{head}…{key[-2:]}"


def truncate_token(token: str | None, keep: int = 12) -> str:
    """A token shortened for logs: enough to recognise it, not enough to use it."""
    if not token:
        return "<none>"
    return token if len(token) <= keep else f"{token[:keep]}…({len(token)} chars)"


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


class TaskStatus(str, enum.Enum):
    """The state of a task at the API."""

    IDLE = "idle"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class RateLimit:
    """The ``X-RateLimit-*`` values of the last API answer that carried them."""

    limit: int | None
    remaining: int | None
    reset: float | None  # Unix timestamp of the window's reset


@dataclass(frozen=True)
class TaskResult:
    """A task as the API last described it."""

    task_id: TaskId
    status: TaskStatus
    solution: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    cost: float | None = None  # USD, on ready; None when the answer gave none (or none readable)
    solve_time_ms: int | None = None  # on ready
    error_code: str | None = None  # on failed
    error_description: str | None = None
    #: On failed: whether the provider keeps the price of this failure (see the dialect).
    charged: bool = False
    #: On ready: the answer had a ``cost`` that is no number (the token is still good).
    cost_unreadable: bool = False

    @property
    def is_ready(self) -> bool:
        return self.status is TaskStatus.READY

    @property
    def is_failed(self) -> bool:
        return self.status is TaskStatus.FAILED

    @property
    def is_pending(self) -> bool:
        return self.status in (TaskStatus.IDLE, TaskStatus.PROCESSING)

    @property
    def token(self) -> str | None:
        """The solution's token or answer text, whichever field the task type uses."""
        for name in TOKEN_FIELDS:
            value = self.solution.get(name)
            if isinstance(value, str) and value:
                return value
        cookies = self.solution.get("cookies")  # a cookie-type solution: {"name": "value"}
        if isinstance(cookies, Mapping):
            for value in cookies.values():
                if isinstance(value, str) and value:
                    return value
        return None

    @property
    def user_agent(self) -> str | None:
        value = self.solution.get("userAgent")
        return value if isinstance(value, str) and value else None

    def __repr__(self) -> str:
        shown = {
            key: truncate_token(value) if isinstance(value, str) else value
            for key, value in self.solution.items()
        }
        return (
            f"TaskResult(task_id={self.task_id!r}, status={self.status.value!r}, "
            f"solution={shown!r}, cost={self.cost!r}, solve_time_ms={self.solve_time_ms!r}, "
            f"error_code={self.error_code!r})"
        )


class CaptchaClient(Protocol):
    """What the solver needs from a client of a CAPTCHA-solving API.

    :class:`UCaptchaClient` speaks the createTask protocol (in every :mod:`dialect
    <scrapy_ucaptcha.dialects>`); a client of another protocol implements the same five
    coroutines and ``dialect`` and works with the solver, the budget and the accounting unchanged:

    * ``create_task(task, *, callback_url=None, selection_mode=None, provider=None)`` → a
      :class:`TaskResult`, ``processing`` (or ``ready`` when solved at once);
    * ``get_task_result(task_id)`` → a :class:`TaskResult`; a dead task is a ``failed`` result
      (``charged`` says whether its price is kept), not an exception;
    * ``get_balance()`` → USD as a float;
    * ``report(task_id, *, accepted, family, message)`` → whether a report was sent (False when
      the provider takes none for that family);
    * ``close()``.

    Errors are :class:`~scrapy_ucaptcha.errors.UCaptchaError` subclasses, by action. A protocol
    whose answers carry no price returns ``cost=None``, and the solver's accounting prices the
    task (a user price table, balance reconciliation, estimates).
    """

    dialect: Dialect

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult: ...

    async def get_task_result(self, task_id: TaskId) -> TaskResult: ...

    async def get_balance(self) -> float: ...

    async def report(
        self, task_id: TaskId, *, accepted: bool, family: str, message: str
    ) -> bool: ...

    async def close(self) -> None: ...


@dataclass
class _Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class UCaptchaClient:
    """Talks to the uCaptcha API (or any createTask-compatible provider at ``api_url``).

    :param api_key: the ``clientKey``; never logged, never shown in ``repr``.
    :param api_url: base URL; must be ``https://`` unless the host is loopback or
        ``allow_insecure_http`` is set.
    :param timeout: seconds one HTTP call may take, connection to last byte.
    :param max_retries: retries of one call after a transient failure (so ``max_retries + 1``
        attempts at most).
    :param backoff_base: first backoff delay in seconds; doubles per retry, with full jitter.
    :param backoff_max: the longest single backoff delay.
    :param retry_deadline: total seconds one call may spend, retries and waits included.
    :param max_connections: persistent connections kept to the API host.
    :param on_call: called with the endpoint name before every HTTP call, retries included (for
        counting API usage).
    :param dialect: the provider's :class:`~scrapy_ucaptcha.dialects.Dialect` (or its name);
        by default the one of ``api_url``'s host.
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
        dialect: Dialect | str | None = None,
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
        if isinstance(dialect, str):
            dialect = get_dialect(dialect)
        self.dialect: Dialect = dialect if dialect is not None else dialect_for_url(self.api_url)
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
        return (
            f"UCaptchaClient(api_url={self.api_url!r}, dialect={self.dialect.name!r}, "
            f"api_key={redact_key(self._key)!r})"
        )

    # --- public API ---------------------------------------------------------------------------

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult:
        """Create a task; return it ``processing``, or ``ready`` when the API solved it at once.

        A retry after a timeout may create a second task if the first request did reach the API.
        """
        if not isinstance(task, Mapping) or not isinstance(task.get("type"), str):
            raise TypeError("task must be a mapping with a string 'type'")
        self._secrets.update(task_secrets(task))  # the API may quote the task in an error
        payload: dict[str, Any] = {"task": dict(task)}
        if callback_url:
            payload["callbackUrl"] = callback_url
        if selection_mode:
            payload["selectionMode"] = selection_mode
        if provider:
            payload["provider"] = provider
        data = await self._call("createTask", payload)
        task_id = data.get("taskId")
        if isinstance(task_id, bool) or not isinstance(task_id, (str, int)) or task_id == "":
            raise UCaptchaProtocolError(
                f"createTask answered without a usable taskId (got {type(task_id).__name__})"
            )
        if data.get("status") is None:
            # no status, or null (CapSolver): the task is being solved
            data["status"] = TaskStatus.PROCESSING.value
        return self._task_result(task_id, data)

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Ask for a task's state.

        A failed task comes back as a ``failed`` :class:`TaskResult` whether the API says so with
        ``errorId: 0, status: "failed"`` (uCaptcha) or with ``errorId: 1`` and a task-dead code
        such as ``ERROR_CAPTCHA_UNSOLVABLE`` or an unknown/expired id (compatible providers).
        A "not ready" error code of the dialect (``CAPTCHA_NOT_READY``…) is a pending task.
        """
        dialect = self.dialect
        try:
            data = await self._call(
                "getTaskResult", {"taskId": task_id}, pending_codes=dialect.pending_codes
            )
        except UCaptchaTaskDeadError as exc:
            return TaskResult(
                task_id=task_id,
                status=TaskStatus.FAILED,
                error_code=exc.code,
                error_description=exc.description,
                charged=(exc.code or "") in dialect.charged_failures,
            )
        if data.get("errorCode") in dialect.pending_codes and data.get("status") != "ready":
            return TaskResult(task_id=task_id, status=TaskStatus.PROCESSING)
        return self._task_result(task_id, data)

    async def get_balance(self) -> float:
        """The account's balance in USD."""
        data = await self._call("getBalance", {})
        field_name = self.dialect.balance_field
        return self._number(data, field_name, "getBalance", required=True)  # type: ignore[return-value]

    async def report(
        self,
        task_id: TaskId,
        *,
        accepted: bool,
        family: str = "*",
        message: str | None = None,
        code: str | None = None,
    ) -> bool:
        """Tell the provider whether the target site accepted a task's solution, at the endpoint
        its dialect has for tokens of ``family``; False (nothing sent) when it has none."""
        dialect = self.dialect
        endpoint = dialect.report_endpoint(family, accepted=accepted)
        if endpoint is None:
            return False
        payload: dict[str, Any] = {"taskId": task_id}
        if dialect.report_style == "feedback":
            if message is None:
                message = (
                    "Solution accepted successfully"
                    if accepted
                    else "Token was rejected by the target site"
                )
            result: dict[str, Any] = {"invalid": not accepted, "message": message}
            if code is not None:
                result["code"] = code
            payload["result"] = result
        await self._call(endpoint, payload)
        return True

    async def feedback_task(
        self, task_id: TaskId, *, invalid: bool, message: str, code: str | None = None
    ) -> None:
        """Tell the API whether the target site accepted a task's solution (:meth:`report` for
        any family)."""
        await self.report(task_id, accepted=not invalid, message=message, code=code)

    async def close(self) -> None:
        """Close the client's persistent connections. The client cannot be used afterwards."""
        self._closed = True
        pool, self._pool, self._http = self._pool, None, None
        if pool is not None:
            await deferred_to_future(pool.closeCachedConnections())  # type: ignore[no-untyped-call]

    # --- one call, with retries ---------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        payload: dict[str, Any],
        *,
        pending_codes: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One call with retries; an error answer whose code is in ``pending_codes`` is returned
        as data, not raised (nor retried)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_deadline
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._call_once(
                    endpoint, payload, deadline - loop.time(), pending_codes=pending_codes
                )
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

    async def _call_once(
        self,
        endpoint: str,
        payload: dict[str, Any],
        deadline: float | None = None,
        *,
        pending_codes: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One HTTP call; ``deadline``: seconds left of the whole call's retry budget."""
        if self._closed:
            raise RuntimeError("the uCaptcha client is closed")
        url = f"{self.api_url}/{endpoint}"
        body = {"clientKey": self._key, **payload}
        if self._on_call is not None:
            self._on_call(endpoint)
        timeout = self.timeout if deadline is None else min(self.timeout, deadline)
        try:
            answer = await asyncio.wait_for(self._post(url, body), max(timeout, 0.001))
        except asyncio.TimeoutError:
            raise UCaptchaTimeoutError(f"{endpoint} did not answer within {timeout:g} s") from None
        except _NETWORK_ERRORS as exc:
            raise UCaptchaRetryableError(
                f"{endpoint}: network error: {self._scrub(_describe(exc))}"
            ) from None
        self._note_rate_limit(answer.headers)
        data = self._parse(endpoint, answer, pending_codes)
        logger.debug("uCaptcha %s -> HTTP %d", endpoint, answer.status)
        return data

    async def _post(self, url: str, body: dict[str, Any]) -> _Answer:
        http = self._client()
        response = await deferred_to_future(
            http.post(
                url,
                json=body,
                headers=_HEADERS,
                allow_redirects=False,
            )
        )
        content = await deferred_to_future(response.content())
        headers = {
            name.decode("latin-1").lower(): values[-1].decode("latin-1")
            for name, values in response.headers.getAllRawHeaders()
        }
        return _Answer(status=response.code, headers=headers, body=content)

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

    # --- answers ------------------------------------------------------------------------------

    def _parse(
        self, endpoint: str, answer: _Answer, pending_codes: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        status = answer.status
        try:
            data: Any = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        if status == 429:
            exc = UCaptchaRateLimitError(
                f"{endpoint}: rate limit exceeded", code=_code_of(data), http_status=status
            )
            exc.retry_after = self._retry_after(answer.headers)
            raise exc
        if not isinstance(data, dict):
            what = "an empty body" if not answer.body.strip() else self._snippet(answer.body)
            message = f"{endpoint}: expected a JSON object, got {what}"
            if status >= 500:
                raise UCaptchaRetryableError(message, http_status=status)
            raise UCaptchaProtocolError(message, http_status=status)
        error_id = data.get("errorId")
        if error_id is None:
            error_id = 0 if status < 400 else 1
        if isinstance(error_id, bool) or not isinstance(error_id, int):
            raise UCaptchaProtocolError(
                f"{endpoint}: errorId has the wrong type ({type(error_id).__name__})",
                http_status=status,
            )
        if error_id == 0 and status < 400:
            return data
        code = data.get("errorCode")
        if code in pending_codes:
            return data
        code = self._scrub(code)[:100] if isinstance(code, str) and code else f"HTTP_{status}"
        description = data.get("errorDescription")
        description = self._scrub(
            description if isinstance(description, str) and description else code
        )
        if status >= 500 and code.startswith("HTTP_"):
            raise UCaptchaRetryableError(f"{endpoint}: {description}", http_status=status)
        raise error_for(code, f"{endpoint}: {description}", status)

    def _task_result(self, task_id: TaskId, data: dict[str, Any]) -> TaskResult:
        raw_status = data.get("status")
        if raw_status in self.dialect.pending_statuses:
            raw_status = "idle" if raw_status == "idle" else "processing"
        try:
            status = TaskStatus(raw_status)
        except ValueError:
            raise UCaptchaProtocolError(
                f"task {task_id}: unknown status {str(raw_status)[:40]!r}"
            ) from None
        if status is TaskStatus.FAILED:
            code = data.get("errorCode")
            description = data.get("errorDescription")
            return TaskResult(
                task_id=task_id,
                status=status,
                error_code=code if isinstance(code, str) else "ERROR_CAPTCHA_UNSOLVABLE",
                error_description=self._scrub(description)
                if isinstance(description, str)
                else None,
            )
        if status is not TaskStatus.READY:
            return TaskResult(task_id=task_id, status=status)
        solution = data.get("solution")
        if not isinstance(solution, dict) or not solution:
            raise UCaptchaProtocolError(f"task {task_id}: ready without a solution object")
        cost, unreadable = self._optional_number(data, "cost")
        if unreadable:
            logger.warning(
                "uCaptcha task %s is ready but its cost %r is no number: the token is used, "
                "its cost counted as unknown",
                task_id,
                str(data.get("cost"))[:40],
            )
        solve_time, _ = self._optional_number(data, "solveTime")
        return TaskResult(
            task_id=task_id,
            status=status,
            solution=MappingProxyType(dict(solution)),
            cost=cost,
            solve_time_ms=None if solve_time is None else round(solve_time),
            cost_unreadable=unreadable,
        )

    @classmethod
    def _optional_number(cls, data: dict[str, Any], name: str) -> tuple[float | None, bool]:
        """``data[name]`` as a non-negative finite float, or None; and whether it was present but
        unreadable (a ready answer is never thrown away for a figure)."""
        if data.get(name) is None:
            return None, False
        try:
            value = cls._number(data, name, name)
        except UCaptchaProtocolError:
            return None, True
        if value is None or not math.isfinite(value) or value < 0:
            return None, True
        return value, False

    @staticmethod
    def _number(
        data: dict[str, Any], name: str, where: str, *, required: bool = False
    ) -> float | None:
        value = data.get(name)
        if value is None and not required:
            return None
        if isinstance(value, str):
            value = _to_float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
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
        return float(value)
    except ValueError:
        return None


def _code_of(data: Any) -> str | None:
    code = data.get("errorCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, (ResponseFailed, ResponseNeverReceived)) and exc.reasons:
        inner = exc.reasons[0].value
        return f"{type(exc).__name__}({type(inner).__name__}: {inner})"
    return f"{type(exc).__name__}: {exc}"
