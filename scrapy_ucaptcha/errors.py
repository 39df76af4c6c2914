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
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final, Literal, TypeGuard, get_args

from scrapy.exceptions import IgnoreRequest

__all__ = [
    "CODE_ACTIONS",
    "SOLVE_ERROR_CODES",
    "TASKS_SURVIVE_CODES",
    "ApiErrorCode",
    "BadTaskCode",
    "CaptchaSolveError",
    "ErrorAction",
    "FatalCode",
    "RetryCode",
    "SolveErrorCode",
    "TaskDeadCode",
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
    "is_known_code",
    "tasks_survive",
]


class ErrorAction(enum.Enum):
    """What a caller should do about an error."""

    FATAL = "fatal"
    BAD_TASK = "bad_task"
    RETRY = "retry"
    TASK_DEAD = "task_dead"


# The API error codes known here (uCaptcha's own and those compatible providers pass through),
# by what a caller should do about them. An answer may carry other codes (:func:`classify`), so
# ``UCaptchaError.code`` is a ``str``.

#: The account or key cannot work: :class:`UCaptchaFatalError`.
FatalCode = Literal[
    # uCaptcha
    "ERROR_KEY_DOES_NOT_EXIST",
    "ERROR_WRONG_USER_KEY",
    "ERROR_ZERO_BALANCE",
    # Anti-Captcha / 2captcha
    "ERROR_IP_NOT_ALLOWED",
    "ERROR_IP_BLOCKED",
    "ERROR_ACCOUNT_SUSPENDED",
    # CapMonster
    "ERROR_IP_BANNED",
    # CapSolver
    "ERROR_KEY_DENIED_ACCESS",
    "ERROR_SETTLEMENT_FAILED",
]
#: The task's parameters are wrong: :class:`UCaptchaBadTaskError`.
BadTaskCode = Literal[
    # uCaptcha
    "ERROR_PAGEURL",
    "ERROR_SITEKEY",
    "ERROR_BAD_PARAMETERS",
    "ERROR_BAD_PROXY",
    "ERROR_PROXY_FORMAT",
    "ERROR_EMPTY_ACTION",
    "TASK_NOT_SUPPORTED",
    # Anti-Captcha / 2captcha
    "ERROR_ZERO_CAPTCHA_FILESIZE",
    "ERROR_TOO_BIG_CAPTCHA_FILESIZE",
    "ERROR_NO_SUCH_METHOD",
    "ERROR_IMAGE_TYPE_NOT_SUPPORTED",
    "ERROR_TASK_ABSENT",
    "ERROR_TASK_NOT_SUPPORTED",
    "ERROR_INCORRECT_SESSION_DATA",
    "ERROR_RECAPTCHA_INVALID_SITEKEY",
    "ERROR_RECAPTCHA_INVALID_DOMAIN",
    "ERROR_RECAPTCHA_OLD_BROWSER",
    "ERROR_INVISIBLE_RECAPTCHA",
    "ERROR_VISIBLE_RECAPTCHA",
    "ERROR_BAD_IMGINSTRUCTIONS",
    # CapMonster
    "ERROR_DOMAIN_NOT_ALLOWED",
    # CapSolver
    "ERROR_INVALID_TASK_DATA",
    "ERROR_UNKNOWN_QUESTION",
    "ERROR_INVALID_IMAGE",
]
#: A transient problem: :class:`UCaptchaRetryableError`.
RetryCode = Literal[
    # uCaptcha
    "CAPCHA_NOT_READY",
    "NO_PROVIDERS_AVAILABLE",
    # Anti-Captcha / 2captcha
    "ERROR_NO_SLOT_AVAILABLE",
    "ERROR_ALL_WORKERS_FILTERED",
    # CapMonster
    "ERROR_TOO_MUCH_REQUESTS",
    # CapSolver
    "ERROR_SERVICE_UNAVALIABLE",
    "ERROR_SERVICE_UNAVAILABLE",
    "ERROR_RATE_LIMIT",
    "ERROR_BAD_REQUEST",
]
#: The task gives no solution any more: :class:`UCaptchaTaskDeadError`.
TaskDeadCode = Literal[
    # uCaptcha
    "ERROR_CAPTCHA_UNSOLVABLE",
    "ERROR_WRONG_CAPTCHA_ID",
    # Anti-Captcha / 2captcha
    "ERROR_BAD_DUPLICATES",
    "ERROR_NO_SUCH_CAPCHA_ID",
    "ERROR_PROXY_CONNECT_REFUSED",
    "ERROR_PROXY_CONNECT_TIMEOUT",
    "ERROR_PROXY_READ_TIMEOUT",
    "ERROR_PROXY_BANNED",
    "ERROR_PROXY_TRANSPARENT",
    "ERROR_PROXY_HAS_NO_IMAGE_SUPPORT",
    "ERROR_PROXY_INCOMPATIBLE_HTTP_VERSION",
    "ERROR_PROXY_NOT_AUTHORISED",
    "ERROR_RECAPTCHA_TIMEOUT",
    "ERROR_TOKEN_EXPIRED",
    "ERROR_FAILED_LOADING_WIDGET",
    "ERROR_PROXY_CONNECTION_FAILED",
    # CapSolver
    "ERROR_TASKID_INVALID",
    "ERROR_TASK_TIMEOUT",
]
ApiErrorCode = FatalCode | BadTaskCode | RetryCode | TaskDeadCode

#: Each known code and its action.
CODE_ACTIONS: Final[Mapping[ApiErrorCode, ErrorAction]] = MappingProxyType(
    {
        **dict.fromkeys(get_args(FatalCode), ErrorAction.FATAL),
        **dict.fromkeys(get_args(BadTaskCode), ErrorAction.BAD_TASK),
        **dict.fromkeys(get_args(RetryCode), ErrorAction.RETRY),
        **dict.fromkeys(get_args(TaskDeadCode), ErrorAction.TASK_DEAD),
    }
)


def is_known_code(code: str) -> TypeGuard[ApiErrorCode]:
    """Whether ``code`` (as the API spells it) is one of :data:`CODE_ACTIONS`."""
    return code in CODE_ACTIONS


#: Fatal codes that refuse new tasks but leave the tasks already created alive: they were paid for
#: when created and their polls still answer, so they are waited for and their tokens used. Any
#: other fatal error (a key that does not exist or was denied, an IP not allowed or banned, a
#: suspended account) means that no poll can succeed either.
TASKS_SURVIVE_CODES: Final[frozenset[FatalCode]] = frozenset({"ERROR_ZERO_BALANCE"})


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
    upper = code.upper()
    if is_known_code(upper):
        return CODE_ACTIONS[upper]
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


#: The codes of failures that are scrapy-ucaptcha's own, not an API's: in
#: ``CaptchaSolveError.code``, the close reason ``ucaptcha_<code>`` and ``ucaptcha/errors/<code>``.
#: Besides these and the API's codes (:data:`ApiErrorCode`), the clients give ``HTTP_<status>``
#: (``HTTP_502``) to an HTTP error answer that carries no error code of its own.
SolveErrorCode = Literal[
    "max_attempts",  # still challenged after UCAPTCHA_MAX_ATTEMPTS solves, or no task solved
    "solve_timeout",  # no solution within UCAPTCHA_SOLVE_TIMEOUT
    "budget_exhausted",  # UCAPTCHA_BUDGET is spent
    "bad_template",  # the template cannot give a task for the page, or the token cannot go back
    "bad_proxy",  # the request's proxy cannot be passed to the API
    "download_failed",  # the request sent with the token failed to download
    "internal",  # a bug: the request could not be handed back to the engine
    "challenge_download",  # a GeeTest v3 challenge_url did not answer a challenge
    "image_download",  # an image captcha's image could not be fetched
    "ERROR_EMPTY_SOLUTION",  # a ready task whose solution holds no token
    # an API client error that carried no code, by its class
    "fatal",
    "bad_task",
    "task_dead",
    "timeout",
    "network",
]
SOLVE_ERROR_CODES: Final[tuple[SolveErrorCode, ...]] = get_args(SolveErrorCode)


class CaptchaSolveError(IgnoreRequest):
    """A challenged request whose challenge could not be solved.

    Reaches the request's errback. ``reason`` says why in words, ``code`` is the last API error code
    (:data:`ApiErrorCode` lists the known ones; an API may send others) or one of ours
    (:data:`SolveErrorCode`), ``attempts`` the number of solves tried and ``task_ids`` the API tasks
    used.
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
