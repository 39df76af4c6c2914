"""The error-code table, its defaults for unknown codes, and the exception classes."""

from __future__ import annotations

import pytest
from scrapy.exceptions import IgnoreRequest

from scrapy_ucaptcha.errors import (
    CODE_ACTIONS,
    CaptchaSolveError,
    ErrorAction,
    UCaptchaBadTaskError,
    UCaptchaError,
    UCaptchaFatalError,
    UCaptchaProtocolError,
    UCaptchaRateLimitError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    UCaptchaTimeoutError,
    classify,
    error_for,
    tasks_survive,
)

FATAL, BAD_TASK, RETRY, TASK_DEAD = (
    ErrorAction.FATAL,
    ErrorAction.BAD_TASK,
    ErrorAction.RETRY,
    ErrorAction.TASK_DEAD,
)

# The expected action of each code, written from the API reference (§3), not copied from the table.
REFERENCE_ACTIONS = {
    FATAL: [
        "ERROR_KEY_DOES_NOT_EXIST",
        "ERROR_WRONG_USER_KEY",
        "ERROR_ZERO_BALANCE",
        "ERROR_IP_NOT_ALLOWED",
        "ERROR_IP_BLOCKED",
        "ERROR_ACCOUNT_SUSPENDED",
        "ERROR_IP_BANNED",
        "ERROR_KEY_DENIED_ACCESS",
        "ERROR_SETTLEMENT_FAILED",
    ],
    BAD_TASK: [
        "ERROR_PAGEURL",
        "ERROR_SITEKEY",
        "ERROR_BAD_PARAMETERS",
        "ERROR_BAD_PROXY",
        "ERROR_PROXY_FORMAT",
        "ERROR_EMPTY_ACTION",
        "TASK_NOT_SUPPORTED",
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
        "ERROR_BAD_IMGINSTRUCTIONS",
        "ERROR_DOMAIN_NOT_ALLOWED",
        "ERROR_INVALID_TASK_DATA",
        "ERROR_UNKNOWN_QUESTION",
        "ERROR_INVALID_IMAGE",
    ],
    RETRY: [
        "CAPCHA_NOT_READY",
        "NO_PROVIDERS_AVAILABLE",
        "ERROR_NO_SLOT_AVAILABLE",
        "ERROR_ALL_WORKERS_FILTERED",
        "ERROR_TOO_MUCH_REQUESTS",
        "ERROR_SERVICE_UNAVALIABLE",
        "ERROR_RATE_LIMIT",
        "ERROR_BAD_REQUEST",
    ],
    TASK_DEAD: [
        "ERROR_CAPTCHA_UNSOLVABLE",
        "ERROR_WRONG_CAPTCHA_ID",
        "ERROR_NO_SUCH_CAPCHA_ID",
        "ERROR_BAD_DUPLICATES",
        "ERROR_PROXY_CONNECT_REFUSED",
        "ERROR_PROXY_CONNECT_TIMEOUT",
        "ERROR_PROXY_READ_TIMEOUT",
        "ERROR_PROXY_BANNED",
        "ERROR_PROXY_TRANSPARENT",
        "ERROR_PROXY_HAS_NO_IMAGE_SUPPORT",
        "ERROR_PROXY_INCOMPATIBLE_HTTP_VERSION",
        "ERROR_PROXY_NOT_AUTHORISED",
        "ERROR_PROXY_CONNECTION_FAILED",
        "ERROR_RECAPTCHA_TIMEOUT",
        "ERROR_TOKEN_EXPIRED",
        "ERROR_FAILED_LOADING_WIDGET",
        "ERROR_TASKID_INVALID",
        "ERROR_TASK_TIMEOUT",
    ],
}
KNOWN_CODES = [(code, action) for action, codes in REFERENCE_ACTIONS.items() for code in codes]

CLASS_OF = {
    FATAL: UCaptchaFatalError,
    BAD_TASK: UCaptchaBadTaskError,
    RETRY: UCaptchaRetryableError,
    TASK_DEAD: UCaptchaTaskDeadError,
}


@pytest.mark.parametrize(("code", "action"), KNOWN_CODES)
def test_classify_known_code(code: str, action: ErrorAction) -> None:
    assert classify(code) is action


@pytest.mark.parametrize(("code", "action"), KNOWN_CODES)
def test_known_code_wins_over_http_status_and_task_state(code: str, action: ErrorAction) -> None:
    for status in (200, 400, 401, 404, 429, 500):
        assert classify(code, status) is action
    assert classify(code, 200, task_failed=True) is action


def test_only_an_empty_balance_lets_the_tasks_in_flight_finish() -> None:
    fatal = sorted(code for code, action in CODE_ACTIONS.items() if action is FATAL)
    assert [code for code in fatal if tasks_survive(code)] == ["ERROR_ZERO_BALANCE"]
    assert tasks_survive("error_zero_balance")
    assert not tasks_survive(None)
    assert not tasks_survive("ERROR_KEY_DOES_NOT_EXIST")


def test_classify_ignores_the_case_of_codes() -> None:
    assert classify("error_zero_balance") is FATAL
    assert classify("Task_Not_Supported") is BAD_TASK


@pytest.mark.parametrize("status", [None, 200, 400, 401, 402, 403, 404, 429, 500, 503])
def test_unknown_code_of_a_failed_task_is_task_dead(status: int | None) -> None:
    assert classify("ERROR_SOMETHING_NEW", status, task_failed=True) is TASK_DEAD


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (401, FATAL),
        (402, FATAL),
        (403, FATAL),
        (400, BAD_TASK),
        (409, BAD_TASK),
        (422, BAD_TASK),
        (404, TASK_DEAD),
        (429, RETRY),
        (500, RETRY),
        (502, RETRY),
        (503, RETRY),
        (504, RETRY),
        (None, RETRY),
    ],
)
def test_unknown_code_defaults_by_http_status(status: int | None, action: ErrorAction) -> None:
    assert classify("ERROR_SOMETHING_NEW", status) is action


@pytest.mark.parametrize(("code", "action"), KNOWN_CODES)
def test_error_for_builds_the_class_of_the_action(code: str, action: ErrorAction) -> None:
    exc = error_for(code, f"createTask: {code.lower()}", 400)
    assert type(exc) is CLASS_OF[action]
    assert exc.action is action
    assert (exc.code, exc.description, exc.http_status) == (
        code,
        f"createTask: {code.lower()}",
        400,
    )


@pytest.mark.parametrize(
    ("status", "task_failed", "cls"),
    [
        (401, False, UCaptchaFatalError),
        (400, False, UCaptchaBadTaskError),
        (503, False, UCaptchaRetryableError),
        (None, False, UCaptchaRetryableError),
        (200, True, UCaptchaTaskDeadError),
    ],
)
def test_error_for_unknown_codes_follows_the_defaults(
    status: int | None, task_failed: bool, cls: type[UCaptchaError]
) -> None:
    exc = error_for("ERROR_NEW", "something new", status, task_failed=task_failed)
    assert type(exc) is cls
    assert exc.code == "ERROR_NEW"
    assert exc.http_status == status


@pytest.mark.parametrize(
    ("cls", "action"),
    [
        (UCaptchaFatalError, FATAL),
        (UCaptchaBadTaskError, BAD_TASK),
        (UCaptchaRetryableError, RETRY),
        (UCaptchaTimeoutError, RETRY),
        (UCaptchaRateLimitError, RETRY),
        (UCaptchaProtocolError, RETRY),
        (UCaptchaTaskDeadError, TASK_DEAD),
    ],
)
def test_every_class_is_a_ucaptcha_error_with_its_action(
    cls: type[UCaptchaError], action: ErrorAction
) -> None:
    assert issubclass(cls, UCaptchaError)
    assert cls.action is action


def test_transient_classes_are_retryable() -> None:
    for cls in (UCaptchaTimeoutError, UCaptchaRateLimitError, UCaptchaProtocolError):
        assert issubclass(cls, UCaptchaRetryableError)
    assert UCaptchaRateLimitError("slow down").retry_after is None


def test_error_str_and_repr_show_code_status_and_description() -> None:
    exc = UCaptchaFatalError(
        "createTask: key unknown", code="ERROR_KEY_DOES_NOT_EXIST", http_status=401
    )
    assert str(exc) == "[ERROR_KEY_DOES_NOT_EXIST, HTTP 401] createTask: key unknown"
    assert repr(exc) == (
        "UCaptchaFatalError(code='ERROR_KEY_DOES_NOT_EXIST', http_status=401, "
        "description='createTask: key unknown')"
    )


def test_error_str_without_code_or_status_is_the_description() -> None:
    assert str(UCaptchaTimeoutError("getBalance did not answer within 1 s")) == (
        "getBalance did not answer within 1 s"
    )
    assert str(UCaptchaRetryableError("boom", http_status=502)) == "[HTTP 502] boom"


def test_captcha_solve_error_is_an_ignore_request_with_its_details() -> None:
    exc = CaptchaSolveError(
        "the task failed twice",
        code="ERROR_CAPTCHA_UNSOLVABLE",
        attempts=2,
        task_ids=["a-1", 17],
        url="https://example.com/login",
    )
    assert isinstance(exc, IgnoreRequest)
    assert (exc.reason, exc.code, exc.attempts, exc.task_ids, exc.url) == (
        "the task failed twice",
        "ERROR_CAPTCHA_UNSOLVABLE",
        2,
        ("a-1", 17),
        "https://example.com/login",
    )
    text = str(exc)
    assert "https://example.com/login" in text
    assert "the task failed twice" in text
    assert "code=ERROR_CAPTCHA_UNSOLVABLE" in text
    assert "attempts=2" in text
    assert "tasks=['a-1', 17]" in text


def test_captcha_solve_error_defaults() -> None:
    exc = CaptchaSolveError("closing")
    assert (exc.code, exc.attempts, exc.task_ids, exc.url) == (None, 0, (), None)
    assert str(exc) == "CAPTCHA not solved: closing (code=None, attempts=0, tasks=[])"
