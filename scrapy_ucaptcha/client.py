"""A non-blocking client for the uCaptcha createTask API (and compatible providers), built on treq.

Every method is a coroutine to be awaited from Scrapy code running on Twisted's asyncio reactor.
Retries, timeouts, the https rule and key scrubbing are the shared transport's
(:mod:`scrapy_ucaptcha.transport`). The API key travels only in request bodies sent to the API URL,
is never logged, and is scrubbed from any text the API sends back before it reaches an exception or
a log line.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol, TypeAlias

from scrapy_ucaptcha.errors import (
    UCaptchaProtocolError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    error_for,
)
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
    "ApiClient",
    "RateLimit",
    "TaskId",
    "TaskResult",
    "TaskStatus",
    "UCaptchaClient",
    "check_api_url",
    "redact_key",
    "truncate_token",
]

#: Task ids are opaque: UUID strings at uCaptcha, integers at some compatible providers.
TaskId: TypeAlias = "str | int"

#: Solution fields that hold the token (or answer), in the order they are looked for.
TOKEN_FIELDS = ("gRecaptchaResponse", "token", "text", "cookie", "captcha_output", "code")


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
    cost: float | None = None  # USD, on ready
    solve_time_ms: int | None = None  # on ready
    error_code: str | None = None  # on failed
    error_description: str | None = None

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


class ApiClient(Protocol):
    """What the middleware needs of a client: :class:`UCaptchaClient` for the createTask API, or
    a compatibility protocol's client (:mod:`scrapy_ucaptcha.protocols`)."""

    api_url: str
    #: Whether the protocol can tell the API that a token was rejected.
    supports_feedback: bool

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

    async def feedback_task(
        self, task_id: TaskId, *, invalid: bool, message: str, code: str | None = None
    ) -> None: ...

    async def close(self) -> None: ...


class UCaptchaClient(ApiTransport):
    """Talks to the uCaptcha API (or any createTask-compatible provider at ``api_url``).

    The constructor's arguments are :class:`~scrapy_ucaptcha.transport.ApiTransport`'s: the key
    (never logged, never shown in ``repr``), the API URL, timeouts, retries, backoff, connections
    and the ``on_call`` counter.
    """

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
        data.setdefault("status", TaskStatus.PROCESSING.value)
        return self._task_result(task_id, data)

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Ask for a task's state.

        A failed task comes back as a ``failed`` :class:`TaskResult` whether the API says so with
        ``errorId: 0, status: "failed"`` (uCaptcha) or with ``errorId: 1`` and a task-dead code
        such as ``ERROR_CAPTCHA_UNSOLVABLE`` or an unknown/expired id (compatible providers).
        """
        try:
            data = await self._call("getTaskResult", {"taskId": task_id})
        except UCaptchaTaskDeadError as exc:
            return TaskResult(
                task_id=task_id,
                status=TaskStatus.FAILED,
                error_code=exc.code,
                error_description=exc.description,
            )
        return self._task_result(task_id, data)

    async def get_balance(self) -> float:
        """The account's balance in USD."""
        data = await self._call("getBalance", {})
        return self._number(data, "balance", "getBalance", required=True)  # type: ignore[return-value]

    async def feedback_task(
        self, task_id: TaskId, *, invalid: bool, message: str, code: str | None = None
    ) -> None:
        """Tell the API whether the target site accepted a task's solution."""
        result: dict[str, Any] = {"invalid": bool(invalid), "message": message}
        if code is not None:
            result["code"] = code
        await self._call("feedbackTask", {"taskId": task_id, "result": result})

    # --- calls and answers ------------------------------------------------------------------

    async def _call(self, endpoint: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"clientKey": self._key, **payload}
        return await self._request(
            endpoint, "POST", f"/{endpoint}", lambda ans: self._parse(endpoint, ans), json=body
        )

    def _parse(self, endpoint: str, answer: HttpAnswer) -> dict[str, Any]:
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
        cost = self._number(data, "cost", f"task {task_id}")
        solve_time = self._number(data, "solveTime", f"task {task_id}")
        return TaskResult(
            task_id=task_id,
            status=status,
            solution=MappingProxyType(dict(solution)),
            cost=cost,
            solve_time_ms=None if solve_time is None else round(solve_time),
        )


def _code_of(data: Any) -> str | None:
    code = data.get("errorCode") if isinstance(data, dict) else None
    return code if isinstance(code, str) else None
