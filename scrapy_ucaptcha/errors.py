"""Exceptions, and the table that says what a caller should do with each API error code.

Every API error is a :class:`UCaptchaError` carrying ``code``, ``description`` and ``http_status``;
its class tells the caller what to do:

* :class:`UCaptchaFatalError` — the account or key cannot work (bad key, no balance, IP not allowed,
  suspended): stop solving for the whole crawl.
* :class:`UCaptchaBadTaskError` — this task's parameters are wrong: retrying it unchanged is
  pointless.
* :class:`UCaptchaRetryableError` — a transient problem (network, timeout, HTTP 5xx or 429, no free
  worker): the client already retried it within its bounds before raising.
* :class:`UCaptchaTaskDeadError` — the task cannot give a solution any more (unsolvable, unknown or
  expired id): create a new task if the token is still needed.

:class:`CaptchaSolveError` is what a spider sees: it reaches the errback of a request whose
challenge could not be solved.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from scrapy.exceptions import IgnoreRequest

__all__ = [
    "TASKS_SURVIVE_CODES",
    "CaptchaSolveError",
    "ErrorAction",
    "UCaptchaBadTaskError",
    "UCaptchaError",
    "UCaptchaFatalError",
    "UCaptchaProtocolError",
    "UCaptchaRateLimitError",
    "UCaptchaRetryableError",
    "UCaptchaTaskDeadError",
    "UCaptchaTimeoutError",
    "classify",
    "error_for",
    "tasks_survive",
]


class ErrorAction(enum.Enum):
    """What a caller should do about an error."""

    FATAL = "fatal"
    BAD_TASK = "bad_task"
    RETRY = "retry"
    TASK_DEAD = "task_dead"


_F, _B, _R, _D = ErrorAction.FATAL, ErrorAction.BAD_TASK, ErrorAction.RETRY, ErrorAction.TASK_DEAD

#: Known codes (uCaptcha's own and those compatible providers pass through) and their action.
CODE_ACTIONS: dict[str, ErrorAction] = {
    # uCaptcha
    "ERROR_KEY_DOES_NOT_EXIST": _F,
    "ERROR_WRONG_USER_KEY": _F,
    "ERROR_ZERO_BALANCE": _F,
    "ERROR_PAGEURL": _B,
    "ERROR_SITEKEY": _B,
    "ERROR_BAD_PARAMETERS": _B,
    "ERROR_BAD_PROXY": _B,
    "ERROR_PROXY_FORMAT": _B,
    "ERROR_CAPTCHA_UNSOLVABLE": _D,
    "ERROR_WRONG_CAPTCHA_ID": _D,
    "ERROR_EMPTY_ACTION": _B,
    "CAPCHA_NOT_READY": _R,
    "TASK_NOT_SUPPORTED": _B,
    "NO_PROVIDERS_AVAILABLE": _R,
    # Anti-Captcha / 2captcha
    "ERROR_NO_SLOT_AVAILABLE": _R,
    "ERROR_ZERO_CAPTCHA_FILESIZE": _B,
    "ERROR_TOO_BIG_CAPTCHA_FILESIZE": _B,
    "ERROR_IP_NOT_ALLOWED": _F,
    "ERROR_BAD_DUPLICATES": _D,
    "ERROR_NO_SUCH_METHOD": _B,
    "ERROR_IMAGE_TYPE_NOT_SUPPORTED": _B,
    "ERROR_NO_SUCH_CAPCHA_ID": _D,
    "ERROR_IP_BLOCKED": _F,
    "ERROR_TASK_ABSENT": _B,
    "ERROR_TASK_NOT_SUPPORTED": _B,
    "ERROR_INCORRECT_SESSION_DATA": _B,
    "ERROR_PROXY_CONNECT_REFUSED": _D,
    "ERROR_PROXY_CONNECT_TIMEOUT": _D,
    "ERROR_PROXY_READ_TIMEOUT": _D,
    "ERROR_PROXY_BANNED": _D,
    "ERROR_PROXY_TRANSPARENT": _D,
    "ERROR_PROXY_HAS_NO_IMAGE_SUPPORT": _D,
    "ERROR_PROXY_INCOMPATIBLE_HTTP_VERSION": _D,
    "ERROR_PROXY_NOT_AUTHORISED": _D,
    "ERROR_RECAPTCHA_TIMEOUT": _D,
    "ERROR_RECAPTCHA_INVALID_SITEKEY": _B,
    "ERROR_RECAPTCHA_INVALID_DOMAIN": _B,
    "ERROR_RECAPTCHA_OLD_BROWSER": _B,
    "ERROR_TOKEN_EXPIRED": _D,
    "ERROR_INVISIBLE_RECAPTCHA": _B,
    "ERROR_VISIBLE_RECAPTCHA": _B,
    "ERROR_FAILED_LOADING_WIDGET": _D,
    "ERROR_ALL_WORKERS_FILTERED": _R,
    "ERROR_ACCOUNT_SUSPENDED": _F,
    "ERROR_PROXY_CONNECTION_FAILED": _D,
    "ERROR_BAD_IMGINSTRUCTIONS": _B,
    # CapMonster
    "ERROR_TOO_MUCH_REQUESTS": _R,
    "ERROR_DOMAIN_NOT_ALLOWED": _B,
    "ERROR_IP_BANNED": _F,
    # CapSolver
    "ERROR_SERVICE_UNAVALIABLE": _R,
    "ERROR_SERVICE_UNAVAILABLE": _R,
    "ERROR_RATE_LIMIT": _R,
    "ERROR_BAD_REQUEST": _R,
    "ERROR_INVALID_TASK_DATA": _B,
    "ERROR_UNKNOWN_QUESTION": _B,
    "ERROR_INVALID_IMAGE": _B,
    "ERROR_TASKID_INVALID": _D,
    "ERROR_TASK_TIMEOUT": _D,
    "ERROR_KEY_DENIED_ACCESS": _F,
    "ERROR_SETTLEMENT_FAILED": _F,
}


#: Fatal codes that refuse new tasks but leave the tasks already created alive: they were paid for
#: when created and their polls still answer, so they are waited for and their tokens used. Any
#: other fatal error (a key that does not exist or was denied, an IP not allowed or banned, a
#: suspended account) means that no poll can succeed either.
TASKS_SURVIVE_CODES: frozenset[str] = frozenset({"ERROR_ZERO_BALANCE"})


def tasks_survive(code: str | None) -> bool:
    """Whether the tasks already created outlive a fatal error of ``code``
    (:data:`TASKS_SURVIVE_CODES`)."""
    return code is not None and code.upper() in TASKS_SURVIVE_CODES


def classify(
    code: str, http_status: int | None = None, *, task_failed: bool = False
) -> ErrorAction:
    """Return what to do about ``code``.

    Unknown codes get the safe default of the API reference: a failed task is dead (create a new
    one, within the caller's bound); otherwise HTTP 401/402/403 is fatal, 400 (and other 4xx) is a
    bad task, and 5xx, 429 or no status at all is worth retrying.
    """
    known = CODE_ACTIONS.get(code.upper())
    if known is not None:
        return known
    if task_failed:
        return ErrorAction.TASK_DEAD
    if http_status in (401, 402, 403):
        return ErrorAction.FATAL
    if http_status == 404:
        return ErrorAction.TASK_DEAD
    if http_status is None or http_status == 429 or http_status >= 500:
        return ErrorAction.RETRY
    if 400 <= http_status < 500:
        return ErrorAction.BAD_TASK
    return ErrorAction.RETRY


class UCaptchaError(Exception):
    """An error from the uCaptcha API or from talking to it.

    Never carries the API key: the client scrubs it from every description it passes on.
    """

    action: ErrorAction = ErrorAction.RETRY

    def __init__(
        self, description: str, *, code: str | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.http_status = http_status

    def __str__(self) -> str:
        parts = [self.code] if self.code else []
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        prefix = f"[{', '.join(parts)}] " if parts else ""
        return f"{prefix}{self.description}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"description={self.description!r})"
        )


class UCaptchaFatalError(UCaptchaError):
    """The key or account cannot work: stop solving for the whole crawl."""

    action = ErrorAction.FATAL


class UCaptchaBadTaskError(UCaptchaError):
    """The task's parameters are wrong: do not retry it unchanged."""

    action = ErrorAction.BAD_TASK


class UCaptchaRetryableError(UCaptchaError):
    """A transient failure that outlived the client's retries."""

    action = ErrorAction.RETRY


class UCaptchaTimeoutError(UCaptchaRetryableError):
    """An API call did not answer within its timeout."""


class UCaptchaRateLimitError(UCaptchaRetryableError):
    """HTTP 429: the rate limit is exhausted.

    ``retry_after`` is how many seconds remain until ``X-RateLimit-Reset`` (or ``Retry-After``),
    when the API said.
    """

    retry_after: float | None = None


class UCaptchaProtocolError(UCaptchaRetryableError):
    """The API answered something that is no valid API response (HTML, broken JSON, wrong types)."""


class UCaptchaTaskDeadError(UCaptchaError):
    """The task cannot give a solution any more: create a new one if the token is still needed."""

    action = ErrorAction.TASK_DEAD


_CLASSES: dict[ErrorAction, type[UCaptchaError]] = {
    ErrorAction.FATAL: UCaptchaFatalError,
    ErrorAction.BAD_TASK: UCaptchaBadTaskError,
    ErrorAction.RETRY: UCaptchaRetryableError,
    ErrorAction.TASK_DEAD: UCaptchaTaskDeadError,
}


def error_for(
    code: str, description: str, http_status: int | None = None, *, task_failed: bool = False
) -> UCaptchaError:
    """Build the exception of the right class for an API error code."""
    action = classify(code, http_status, task_failed=task_failed)
    return _CLASSES[action](description, code=code, http_status=http_status)


class CaptchaSolveError(IgnoreRequest):
    """A challenged request whose challenge could not be solved.

    Reaches the request's errback. ``reason`` says why in words, ``code`` is the last API error code
    (or one of ours such as ``"max_attempts"``, ``"solve_timeout"``, ``"budget_exhausted"``,
    ``"closing"``), ``attempts`` the number of solves tried and ``task_ids`` the API tasks used.
    """

    def __init__(
        self,
        reason: str,
        *,
        code: str | None = None,
        attempts: int = 0,
        task_ids: Sequence[Any] = (),
        url: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.attempts = attempts
        self.task_ids = tuple(task_ids)
        self.url = url

    def __str__(self) -> str:
        where = f" for {self.url}" if self.url else ""
        return (
            f"CAPTCHA not solved{where}: {self.reason} "
            f"(code={self.code}, attempts={self.attempts}, tasks={list(self.task_ids)})"
        )
