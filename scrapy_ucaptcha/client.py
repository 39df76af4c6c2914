"""A non-blocking client for the uCaptcha createTask API (and compatible providers), built on treq.

Every method is a coroutine to be awaited from Scrapy code running on Twisted's asyncio reactor.
Retries, timeouts, the https rule and key scrubbing are the shared transport's
(:mod:`scrapy_ucaptcha.transport`). The API key travels only in request bodies sent to the API URL,
is never logged, and is scrubbed from any text the API sends back before it reaches an exception or
a log line; so are the credentials of every proxy a task carried (an API may quote the task in an
error description).
"""

from __future__ import annotations

import enum
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias

from scrapy_ucaptcha.dialects import Dialect, dialect_for_url, get_dialect
from scrapy_ucaptcha.errors import (
    UCaptchaProtocolError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    error_for,
)
from scrapy_ucaptcha.fields import SOLUTION_TOKEN_KEYS
from scrapy_ucaptcha.identity import task_secrets
from scrapy_ucaptcha.transport import (
    DEFAULT_API_URL,
    ApiTransport,
    HttpAnswer,
    RateLimit,
    check_api_url,
    redact_key,
)

__all__ = [
    "DEFAULT_API_URL",
    "CaptchaClient",
    "RateLimit",
    "TaskId",
    "TaskResult",
    "TaskStatus",
    "UCaptchaClient",
    "check_api_url",
    "redact_key",
    "truncate_token",
]

logger = logging.getLogger(__name__)

#: Task ids are opaque: UUID strings at uCaptcha, integers at some compatible providers.
TaskId: TypeAlias = "str | int"


def truncate_token(token: str | None, keep: int = 12) -> str:
    """A token shortened for logs: enough to recognise it, not enough to use it."""
    if not token:
        return "<none>"
    return token if len(token) <= keep else f"{token[:keep]}…({len(token)} chars)"


class TaskStatus(str, enum.Enum):
    """The state of a task at the API."""

    IDLE = "idle"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


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
        for name in SOLUTION_TOKEN_KEYS:
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


class UCaptchaClient(ApiTransport):
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
        super().__init__(
            api_key,
            api_url=api_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            retry_deadline=retry_deadline,
            allow_insecure_http=allow_insecure_http,
            max_connections=max_connections,
            on_call=on_call,
        )
        if isinstance(dialect, str):
            dialect = get_dialect(dialect)
        self.dialect: Dialect = dialect if dialect is not None else dialect_for_url(self.api_url)

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

    # --- calls and answers ------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        payload: dict[str, Any],
        *,
        pending_codes: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """One call with retries; an error answer whose code is in ``pending_codes`` is returned
        as data, not raised (nor retried)."""
        body = {"clientKey": self._key, **payload}
        return await self._request(
            endpoint,
            "POST",
            f"/{endpoint}",
            lambda answer: self._parse(endpoint, answer, pending_codes),
            json=body,
        )

    def _parse(
        self, endpoint: str, answer: HttpAnswer, pending_codes: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        status = answer.status
        try:
            data: Any = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
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
