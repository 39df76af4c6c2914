"""The uCaptcha API client, against the simulator (and tiny twisted.web servers) on loopback."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from scrapy_ucaptcha.client import (
    RateLimit,
    TaskId,
    TaskResult,
    TaskStatus,
    UCaptchaClient,
    check_api_url,
    redact_key,
    truncate_token,
)
from scrapy_ucaptcha.errors import (
    UCaptchaBadTaskError,
    UCaptchaError,
    UCaptchaFatalError,
    UCaptchaProtocolError,
    UCaptchaRateLimitError,
    UCaptchaRetryableError,
    UCaptchaTimeoutError,
)
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)
from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET, render_captcha_png

#: A key for the hand-made servers below (the simulator has its own).
KEY = "ucap_TestKey0123456789abcdefSECRET"

#: Small timings so that nothing in this file is slow.
FAST = {"timeout": 0.5, "backoff_base": 0.01, "backoff_max": 0.05, "retry_deadline": 5.0}


# --- helpers --------------------------------------------------------------------------------------


class FakeAPI(Resource):
    """A stand-in API: ``handler(endpoint, body)`` returns ``(status, headers, body)``.

    Records every request as ``(endpoint, parsed JSON body)`` in ``requests``.
    """

    isLeaf = True

    def __init__(
        self, handler: Callable[[str, dict[str, Any]], tuple[int, dict[str, str], bytes]]
    ) -> None:
        super().__init__()
        self.handler = handler
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def render_POST(self, request: Request) -> bytes:
        endpoint = request.path.decode().strip("/")
        body = json.loads(request.content.read())
        self.requests.append((endpoint, body))
        status, headers, content = self.handler(endpoint, body)
        request.setResponseCode(status)
        for name, value in headers.items():
            request.setHeader(name, value)
        return content

    def endpoints(self) -> list[str]:
        return [endpoint for endpoint, _ in self.requests]


def json_answer(status: int, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(data).encode()


@asynccontextmanager
async def serve(resource: Resource) -> AsyncIterator[str]:
    """Serve ``resource`` on 127.0.0.1 (a free port) and yield its base URL."""
    from twisted.internet import reactor

    site = Site(resource)
    site.noisy = False
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    try:
        yield f"http://127.0.0.1:{port.getHost().port}"
    finally:
        await maybe_deferred_to_future(port.stopListening())


@asynccontextmanager
async def api_client(url: str, key: str = KEY, **kwargs: Any) -> AsyncIterator[UCaptchaClient]:
    """A client with small timings for ``url``, closed afterwards."""
    client = UCaptchaClient(key, api_url=url, **{**FAST, **kwargs})
    try:
        yield client
    finally:
        await client.close()


def assert_no_key(key: str, *texts: str) -> None:
    for text in texts:
        assert key not in text


# --- check_api_url and the constructor ------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://api.ucaptcha.net", "https://api.ucaptcha.net"),
        ("https://api.ucaptcha.net/", "https://api.ucaptcha.net"),
        ("https://proxy.example.com:8443/ucaptcha/", "https://proxy.example.com:8443/ucaptcha"),
        ("http://127.0.0.1:1", "http://127.0.0.1:1"),
        ("http://127.8.9.10:8080/", "http://127.8.9.10:8080"),
        ("http://[::1]:1", "http://[::1]:1"),
        ("http://localhost", "http://localhost"),
        ("http://localhost:8000/api/", "http://localhost:8000/api"),
    ],
)
def test_check_api_url_accepts_https_and_loopback_http(url: str, expected: str) -> None:
    assert check_api_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://api.ucaptcha.net",
        "http://10.0.0.1:8000",
        "http://192.168.1.10",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
    ],
)
def test_check_api_url_refuses_plain_http_elsewhere(url: str) -> None:
    with pytest.raises(ValueError, match="https://"):
        check_api_url(url)


@pytest.mark.parametrize("url", ["http://example.com", "http://10.0.0.1:8000/api/"])
def test_check_api_url_insecure_opt_in_allows_any_http_host(url: str) -> None:
    assert check_api_url(url, allow_insecure_http=True) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "",
        "api.ucaptcha.net",
        "127.0.0.1:8000",
        "//api.ucaptcha.net",
        "https://",
        "ftp://127.0.0.1",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "not a url",
        "https://user:pass@api.ucaptcha.net",
        "https://api.ucaptcha.net/?key=1",
        "https://api.ucaptcha.net/#top",
    ],
)
@pytest.mark.parametrize("insecure", [False, True])
def test_check_api_url_refuses_junk(url: str, insecure: bool) -> None:
    with pytest.raises(ValueError, match="API URL"):
        check_api_url(url, allow_insecure_http=insecure)


@pytest.mark.parametrize(
    "url",
    [
        "https://api.ucaptcha.net?",  # endpoints would become the query: POST /?/createTask
        "https://api.ucaptcha.net/#",  # endpoints would become the fragment: POST /
        "https://api.ucaptcha.net:99999",
        "https://api.ucaptcha.net:abc",
        "https://api ucaptcha.net",
    ],
)
def test_check_api_url_refuses_subtle_junk(url: str) -> None:
    with pytest.raises(ValueError, match="API URL"):
        check_api_url(url)


def test_constructor_checks_the_url() -> None:
    with pytest.raises(ValueError, match="https://"):
        UCaptchaClient(KEY, api_url="http://example.com")
    client = UCaptchaClient(KEY, api_url="http://example.com/", allow_insecure_http=True)
    assert client.api_url == "http://example.com"
    assert UCaptchaClient(KEY).api_url == "https://api.ucaptcha.net"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"backoff_max": 0},
        {"retry_deadline": 0},
        {"backoff_base": -0.1},
        {"max_retries": -1},
        {"max_connections": 0},
    ],
)
def test_constructor_refuses_bad_settings(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        UCaptchaClient(KEY, **kwargs)


@pytest.mark.parametrize("key", ["", "   ", None, 42])
def test_constructor_requires_a_key(key: Any) -> None:
    with pytest.raises(ValueError, match="API key"):
        UCaptchaClient(key)


def test_client_repr_hides_the_key() -> None:
    text = repr(UCaptchaClient(f"  {KEY}\n", api_url="http://127.0.0.1:1"))
    assert KEY not in text
    assert "http://127.0.0.1:1" in text
    assert redact_key(KEY) in text


# --- redaction, truncation, TaskResult ------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("ucap_a1b2c3d4e5f6g7h8i9", "ucap_…i9"),
        ("0123456789abcdef0123", "01…23"),
        ("short", "***"),
        ("ucap_0123456789", "***"),
        ("", "***"),
    ],
)
def test_redact_key(key: str, shown: str) -> None:
    assert redact_key(key) == shown


def test_redact_key_never_contains_a_long_key() -> None:
    assert KEY not in redact_key(KEY)
    assert len(redact_key(KEY)) < 10


@pytest.mark.parametrize(
    ("token", "keep", "shown"),
    [
        (None, 12, "<none>"),
        ("", 12, "<none>"),
        ("03AGshort", 12, "03AGshort"),
        ("x" * 12, 12, "x" * 12),
        ("03AG" + "y" * 996, 12, "03AGyyyyyyyy…(1000 chars)"),
        ("abcdefgh", 4, "abcd…(8 chars)"),
    ],
)
def test_truncate_token(token: str | None, keep: int, shown: str) -> None:
    assert truncate_token(token, keep) == shown


@pytest.mark.parametrize(
    ("solution", "token"),
    [
        ({"gRecaptchaResponse": "03AGrecaptcha"}, "03AGrecaptcha"),  # reCAPTCHA v2/v3
        ({"token": "P1_hcaptcha"}, "P1_hcaptcha"),  # hCaptcha at uCaptcha
        (
            {"gRecaptchaResponse": "P1_ac", "respKey": "E0_resp", "userAgent": "UA/1"},
            "P1_ac",
        ),  # hCaptcha at Anti-Captcha
        ({"token": "0.turnstile", "userAgent": "UA/1"}, "0.turnstile"),  # Turnstile
        ({"text": "AB12C"}, "AB12C"),  # image to text
        ({"text": "AB12C", "url": "https://img.example/1.png"}, "AB12C"),
        ({"cookie": "datadome=abc"}, "datadome=abc"),  # DataDome
        (
            {"captcha_id": "c", "lot_number": "l", "pass_token": "p", "captcha_output": "out"},
            "out",
        ),  # GeeTest v4
        ({"challenge": "c", "validate": "v", "seccode": "s"}, "v"),  # GeeTest v3: validate
        ({"gRecaptchaResponse": "", "token": "tok_after_empty"}, "tok_after_empty"),
        ({"gRecaptchaResponse": 123, "text": "ANSWER"}, "ANSWER"),
        ({}, None),
    ],
)
def test_task_result_token_per_family(solution: dict[str, Any], token: str | None) -> None:
    result = TaskResult("t-1", TaskStatus.READY, solution=MappingProxyType(solution))
    assert result.token == token


def test_task_result_user_agent() -> None:
    result = TaskResult("t", TaskStatus.READY, solution={"token": "x", "userAgent": "UA/1"})
    assert result.user_agent == "UA/1"
    assert TaskResult("t", TaskStatus.READY, solution={"token": "x"}).user_agent is None


@pytest.mark.parametrize(
    ("status", "ready", "failed", "pending"),
    [
        (TaskStatus.IDLE, False, False, True),
        (TaskStatus.PROCESSING, False, False, True),
        (TaskStatus.READY, True, False, False),
        (TaskStatus.FAILED, False, True, False),
    ],
)
def test_task_result_state_flags(
    status: TaskStatus, ready: bool, failed: bool, pending: bool
) -> None:
    result = TaskResult("t", status)
    assert (result.is_ready, result.is_failed, result.is_pending) == (ready, failed, pending)


def test_task_result_repr_truncates_tokens() -> None:
    token = "03AG" + "Z" * 500
    result = TaskResult(
        "550e8400-e29b",
        TaskStatus.READY,
        solution=MappingProxyType({"gRecaptchaResponse": token, "userAgent": "UA/1"}),
        cost=0.002,
        solve_time_ms=1200,
    )
    text = repr(result)
    assert token not in text
    assert token[:12] in text
    assert "(504 chars)" in text
    assert "'550e8400-e29b'" in text
    assert "'ready'" in text
    assert "cost=0.002" in text
    assert "solve_time_ms=1200" in text


# --- hand-made servers: id types, key echo, redirects, odd answers --------------------------------


@pytest.mark.parametrize("task_id", [12345, "0042", "550e8400-e29b-41d4-a716-446655440000"])
@deferred_f_from_coro_f
async def test_task_ids_pass_through_unchanged(task_id: int | str) -> None:
    def handler(endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if endpoint == "createTask":
            return json_answer(200, {"errorId": 0, "taskId": task_id})
        if endpoint == "getTaskResult":
            ready = {"status": "ready", "solution": {"token": "tok_1"}, "cost": 0.002}
            return json_answer(200, {"errorId": 0, **ready, "solveTime": 1500})
        return json_answer(200, {"errorId": 0, "message": "Feedback recorded"})

    api = FakeAPI(handler)
    async with serve(api) as url, api_client(url) as client:
        created = await client.create_task({"type": "TurnstileTaskProxyless"})
        result = await client.get_task_result(created.task_id)
        await client.feedback_task(created.task_id, invalid=False, message="accepted")

    assert created.task_id == task_id
    assert type(created.task_id) is type(task_id)
    assert created.status is TaskStatus.PROCESSING  # createTask said nothing about the status
    assert (result.task_id, result.status, result.token) == (task_id, TaskStatus.READY, "tok_1")
    assert result.solve_time_ms == 1500
    sent_ids = [body["taskId"] for _, body in api.requests[1:]]
    assert sent_ids == [task_id, task_id]
    assert all(type(sent) is type(task_id) for sent in sent_ids)


@pytest.mark.parametrize(
    "answer",
    [
        {"errorId": 0},
        {"errorId": 0, "taskId": ""},
        {"errorId": 0, "taskId": True},
        {"errorId": 0, "taskId": None},
        {"errorId": 0, "taskId": ["x"]},
        {"errorId": 0, "taskId": 1.5},
    ],
)
@deferred_f_from_coro_f
async def test_create_task_without_a_usable_task_id_is_a_protocol_error(
    answer: dict[str, Any],
) -> None:
    api = FakeAPI(lambda endpoint, body: json_answer(200, answer))
    async with serve(api) as url, api_client(url) as client:
        with pytest.raises(UCaptchaProtocolError, match="taskId"):
            await client.create_task({"type": "TurnstileTaskProxyless"})
    assert api.endpoints() == ["createTask"]  # not repeated: a retry could create a second task


@pytest.mark.parametrize(
    ("answer", "match"),
    [
        ({"errorId": 0, "status": "solved"}, "unknown status"),
        ({"errorId": 0, "status": "ready"}, "without a solution"),
        ({"errorId": 0, "status": "ready", "solution": {}}, "without a solution"),
        ({"errorId": "0", "status": "ready"}, "errorId"),
    ],
)
@deferred_f_from_coro_f
async def test_get_task_result_refuses_malformed_answers(
    answer: dict[str, Any], match: str
) -> None:
    api = FakeAPI(lambda endpoint, body: json_answer(200, answer))
    async with serve(api) as url, api_client(url, max_retries=0) as client:
        with pytest.raises(UCaptchaProtocolError, match=match):
            await client.get_task_result("t-1")


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, UCaptchaFatalError), (400, UCaptchaBadTaskError), (200, UCaptchaRetryableError)],
)
@deferred_f_from_coro_f
async def test_a_key_echoed_by_the_api_is_scrubbed(
    status: int, cls: type[UCaptchaError], caplog: pytest.LogCaptureFixture
) -> None:
    answer = {"errorId": 1, "errorCode": "ERROR_X", "errorDescription": f"bad key {KEY}"}
    api = FakeAPI(lambda endpoint, body: json_answer(status, answer))
    caplog.set_level(logging.DEBUG)
    async with serve(api) as url, api_client(url, max_retries=1) as client:
        with pytest.raises(UCaptchaError) as info:
            await client.get_balance()
        client_repr = repr(client)
    assert api.requests[0][1]["clientKey"] == KEY  # the key did travel, in the body
    exc = info.value
    assert type(exc) is cls
    assert exc.code == "ERROR_X"
    assert exc.http_status == status
    assert "bad key" in exc.description
    assert redact_key(KEY) in exc.description
    assert_no_key(KEY, str(exc), repr(exc), exc.description, client_repr, caplog.text)
    assert_no_key(KEY, *(record.getMessage() for record in caplog.records))


@deferred_f_from_coro_f
async def test_a_key_echoed_in_a_failed_task_description_is_scrubbed() -> None:
    answer = {"errorId": 0, "status": "failed", "errorCode": "ERROR_CAPTCHA_UNSOLVABLE"}
    answer["errorDescription"] = f"provider refused key {KEY}"
    api = FakeAPI(lambda endpoint, body: json_answer(200, answer))
    async with serve(api) as url, api_client(url) as client:
        result = await client.get_task_result("t-1")
    assert result.is_failed
    assert result.error_description is not None
    assert_no_key(KEY, result.error_description, repr(result))


PROXY_PASSWORD = "prx-secret-client9"


@pytest.mark.parametrize(
    "proxy_fields",
    [
        {"proxy": f"http://alice:{PROXY_PASSWORD}@93.184.216.34:3128"},
        {
            "proxyType": "http",
            "proxyAddress": "93.184.216.34",
            "proxyPort": 3128,
            "proxyLogin": "alice",
            "proxyPassword": PROXY_PASSWORD,
        },
    ],
)
@deferred_f_from_coro_f
async def test_proxy_credentials_quoted_back_by_the_api_are_scrubbed(
    proxy_fields: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """An API that quotes the whole task in its error (create and later polls) never gets the
    proxy's credentials into an exception, a result or a log line."""

    def answer(endpoint: str, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if endpoint == "createTask":
            quoted = json.dumps(body["task"])
            error = {"errorId": 1, "errorCode": "ERROR_PROXY_CONNECT_REFUSED"}
            return json_answer(200, {**error, "errorDescription": f"cannot use {quoted}"})
        failed = {"errorId": 0, "status": "failed", "errorCode": "ERROR_BAD_PROXY"}
        return json_answer(200, {**failed, "errorDescription": f"proxy {PROXY_PASSWORD} dead"})

    api = FakeAPI(answer)
    caplog.set_level(logging.DEBUG)
    task = {**RECAPTCHA, "type": "RecaptchaV2Task", **proxy_fields}
    async with serve(api) as url, api_client(url, max_retries=0) as client:
        with pytest.raises(UCaptchaError) as info:
            await client.create_task(task)
        result = await client.get_task_result("t-1")
    assert "cannot use" in info.value.description
    assert "93.184.216.34" in info.value.description  # the address is no secret
    exc = info.value
    texts = [str(exc), repr(exc), exc.description, repr(result), str(result.error_description)]
    texts += [caplog.text, *(record.getMessage() for record in caplog.records)]
    for text in texts:
        assert PROXY_PASSWORD not in text


@deferred_f_from_coro_f
async def test_a_key_echoed_in_a_non_json_answer_is_scrubbed() -> None:
    page = f"<html><body>Proxy error for {KEY}</body></html>".encode()
    api = FakeAPI(lambda endpoint, body: (502, {"Content-Type": "text/html"}, page))
    async with serve(api) as url, api_client(url, max_retries=0) as client:
        with pytest.raises(UCaptchaRetryableError) as info:
            await client.get_balance()
    assert "Proxy error" in str(info.value)
    assert_no_key(KEY, str(info.value), repr(info.value))


@deferred_f_from_coro_f
async def test_a_key_cut_by_the_body_snippet_is_not_shown() -> None:
    page = ("<html>" + "." * 50 + KEY + "</html>").encode()  # the key starts at byte 56
    api = FakeAPI(lambda endpoint, body: (200, {"Content-Type": "text/html"}, page))
    async with serve(api) as url, api_client(url, max_retries=0) as client:
        with pytest.raises(UCaptchaProtocolError) as info:
            await client.get_balance()
    assert_no_key(KEY[:20], str(info.value), repr(info.value))


@deferred_f_from_coro_f
async def test_a_key_echoed_in_the_error_code_is_scrubbed() -> None:
    answer = {"errorId": 1, "errorCode": f"BAD_KEY_{KEY}", "errorDescription": "bad key"}
    api = FakeAPI(lambda endpoint, body: json_answer(401, answer))
    async with serve(api) as url, api_client(url) as client:
        with pytest.raises(UCaptchaFatalError) as info:
            await client.get_balance()
    assert_no_key(KEY, str(info.value), repr(info.value))


@deferred_f_from_coro_f
async def test_redirects_are_not_followed() -> None:
    elsewhere = FakeAPI(lambda endpoint, body: json_answer(200, {"errorId": 0, "balance": 1.0}))
    async with serve(elsewhere) as other_url:
        moved = FakeAPI(lambda endpoint, body: (307, {"Location": f"{other_url}/{endpoint}"}, b""))
        async with serve(moved) as url, api_client(url, max_retries=1) as client:
            with pytest.raises(UCaptchaProtocolError) as info:
                await client.get_balance()
    assert info.value.http_status == 307
    assert moved.endpoints() == ["getBalance", "getBalance"]
    assert elsewhere.requests == []  # the key was never sent to the other URL


@deferred_f_from_coro_f
async def test_a_closed_client_refuses_calls_and_closes_twice() -> None:
    api = FakeAPI(lambda endpoint, body: json_answer(200, {"errorId": 0, "balance": 3.5}))
    async with serve(api) as url:
        client = UCaptchaClient(KEY, api_url=url, **FAST)
        assert await client.get_balance() == 3.5
        await client.close()
        await client.close()
        with pytest.raises(RuntimeError, match="closed"):
            await client.get_balance()
        with pytest.raises(RuntimeError, match="closed"):
            await client.create_task({"type": "TurnstileTaskProxyless"})
    assert api.endpoints() == ["getBalance"]


@deferred_f_from_coro_f
async def test_closing_an_unused_client_is_fine() -> None:
    client = UCaptchaClient(KEY, api_url="http://127.0.0.1:1")
    await client.close()
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_balance()


@pytest.mark.parametrize("task", [{}, {"type": 3}, "RecaptchaV2TaskProxyless", None])
@deferred_f_from_coro_f
async def test_create_task_needs_a_typed_mapping(task: Any) -> None:
    client = UCaptchaClient(KEY, api_url="http://127.0.0.1:1")
    try:
        with pytest.raises(TypeError, match="type"):
            await client.create_task(task)
    finally:
        await client.close()


# --- against the simulator ------------------------------------------------------------------------

RECAPTCHA = {
    "type": "RecaptchaV2TaskProxyless",
    "websiteURL": "https://shop.example/login",
    "websiteKey": "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-",
}
COST = 0.002


@asynccontextmanager
async def simulated(
    *faults: Fault, client: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[tuple[Simulator, UCaptchaClient]]:
    """A running simulator (with ``faults``) and a client for it; both stopped afterwards."""
    settings: dict[str, Any] = {
        "keys": {DEFAULT_API_KEY: 10.0},
        "solve_time": {"*": SolveTime.fixed(0.05)},
        "cost": {"*": COST},
        "seed": 0,
        **config,
    }
    sim = Simulator(SimulatorConfig(**settings))
    url = sim.start(port=0, host="127.0.0.1")
    try:
        for fault in faults:
            sim.add_fault(fault)
        async with api_client(url, DEFAULT_API_KEY, **(client or {})) as api:
            yield sim, api
    finally:
        await sim.stop()


async def wait_ready(client: UCaptchaClient, task_id: TaskId) -> TaskResult:
    for _ in range(200):
        result = await client.get_task_result(task_id)
        if not result.is_pending:
            return result
        await asyncio.sleep(0.02)
    raise AssertionError(f"task {task_id} still pending")


@deferred_f_from_coro_f
async def test_create_task_then_poll_until_ready() -> None:
    async with simulated(solve_time={"*": SolveTime.fixed(0.3)}) as (sim, client):
        created = await client.create_task(RECAPTCHA)
        first = await client.get_task_result(created.task_id)
        result = await wait_ready(client, created.task_id)
    assert created.status is TaskStatus.PROCESSING
    assert isinstance(created.task_id, str)
    assert created.task_id in sim.tasks
    assert first.is_pending
    assert first.token is None
    assert result.status is TaskStatus.READY
    assert result.task_id == created.task_id
    assert result.token == sim.tasks[created.task_id].solution["gRecaptchaResponse"]
    assert result.token.startswith("03AG")
    assert result.cost == pytest.approx(COST)
    assert isinstance(result.solve_time_ms, int)
    assert result.solve_time_ms >= 300
    assert sim.count("createTask") == 1
    assert sim.count("getTaskResult", created.task_id) >= 2


@deferred_f_from_coro_f
async def test_image_task_is_ready_from_create_task() -> None:
    png = render_captcha_png(DEFAULT_SECRET, "AB12C")
    task = {"type": "ImageToTextTask", "body": base64.b64encode(png).decode()}
    async with simulated(sync_types={"ImageToTextTask"}) as (sim, client):
        result = await client.create_task(task)
    assert result.status is TaskStatus.READY
    assert result.token == "AB12C"
    assert result.solution["text"] == "AB12C"
    assert result.cost == pytest.approx(COST)
    assert sim.count("createTask") == 1
    assert sim.count("getTaskResult") == 0


@deferred_f_from_coro_f
async def test_image_task_failing_at_create_task_is_a_failed_result() -> None:
    png = render_captcha_png(DEFAULT_SECRET, "XY7")
    task = {"type": "ImageToTextTask", "body": base64.b64encode(png).decode()}
    fault = Fault(kind="fail", code="ERROR_CAPTCHA_UNSOLVABLE", times=1)
    async with simulated(fault, sync_types={"ImageToTextTask"}) as (sim, client):
        result = await client.create_task(task)
    assert (result.status, result.error_code) == (TaskStatus.FAILED, "ERROR_CAPTCHA_UNSOLVABLE")
    assert result.task_id in sim.tasks
    assert result.token is None


@deferred_f_from_coro_f
async def test_balance_drops_by_the_cost_of_a_solved_task() -> None:
    async with simulated(cost={"*": 0.0125}) as (sim, client):
        before = await client.get_balance()
        created = await client.create_task(RECAPTCHA)
        result = await wait_ready(client, created.task_id)
        after = await client.get_balance()
    assert before == pytest.approx(10.0)
    assert result.cost == pytest.approx(0.0125)
    assert before - after == pytest.approx(result.cost)
    assert after == pytest.approx(sim.balance(DEFAULT_API_KEY))


@deferred_f_from_coro_f
async def test_feedback_is_recorded_on_the_task() -> None:
    async with simulated() as (sim, client):
        created = await client.create_task(RECAPTCHA)
        await wait_ready(client, created.task_id)
        await client.feedback_task(
            created.task_id, invalid=True, message="Token was rejected", code="REJECTED"
        )
        await client.feedback_task(created.task_id, invalid=False, message="accepted")
    feedback = sim.tasks[created.task_id].feedback
    assert [(entry["invalid"], entry["message"]) for entry in feedback] == [
        (True, "Token was rejected"),
        (False, "accepted"),
    ]
    assert [entry["code"] for entry in feedback] == ["REJECTED", None]
    assert sim.count("feedbackTask", created.task_id) == 2


@deferred_f_from_coro_f
async def test_create_task_options_reach_the_api() -> None:
    async with simulated(Fault(kind="no_callback")) as (sim, client):
        created = await client.create_task(
            RECAPTCHA,
            callback_url="https://hooks.example.net/cb",
            selection_mode="autoFastest",
            provider="capsolver",
        )
        plain = await client.create_task(RECAPTCHA)
    task = sim.tasks[created.task_id]
    assert (task.callback_url, task.selection_mode, task.provider) == (
        "https://hooks.example.net/cb",
        "autoFastest",
        "capsolver",
    )
    assert task.website_url == RECAPTCHA["websiteURL"]
    assert task.website_key == RECAPTCHA["websiteKey"]
    other = sim.tasks[plain.task_id]
    assert (other.callback_url, other.selection_mode, other.provider) == (None, None, None)


@pytest.mark.parametrize("kind", ["fail", "fail_compat"])
@pytest.mark.parametrize("code", ["ERROR_CAPTCHA_UNSOLVABLE", "ERROR_PROXY_BANNED"])
@deferred_f_from_coro_f
async def test_failed_task_in_both_shapes(kind: str, code: str) -> None:
    async with simulated(Fault(kind=kind, code=code, times=1)) as (sim, client):
        created = await client.create_task(RECAPTCHA)
        result = await wait_ready(client, created.task_id)
        balance = await client.get_balance()
    assert (result.status, result.error_code) == (TaskStatus.FAILED, code)
    assert result.task_id == created.task_id
    assert result.token is None
    assert sim.tasks[created.task_id].status == "failed"
    assert balance == pytest.approx(10.0)  # refunded


@deferred_f_from_coro_f
async def test_unknown_task_id_is_a_failed_result() -> None:
    async with simulated() as (sim, client):
        result = await client.get_task_result("00000000-0000-0000-0000-000000000000")
    assert (result.status, result.error_code) == (TaskStatus.FAILED, "ERROR_WRONG_CAPTCHA_ID")
    assert sim.count("getTaskResult") == 1  # a dead task is not retried


@deferred_f_from_coro_f
async def test_injected_wrong_captcha_id_is_a_failed_result() -> None:
    fault = Fault(kind="error_code", endpoint="getTaskResult", code="ERROR_WRONG_CAPTCHA_ID")
    async with simulated(fault) as (sim, client):
        created = await client.create_task(RECAPTCHA)
        result = await client.get_task_result(created.task_id)
    assert (result.task_id, result.status) == (created.task_id, TaskStatus.FAILED)
    assert result.error_code == "ERROR_WRONG_CAPTCHA_ID"
    assert result.error_description
    assert sim.count("getTaskResult") == 1


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("ERROR_KEY_DOES_NOT_EXIST", UCaptchaFatalError),
        ("ERROR_ZERO_BALANCE", UCaptchaFatalError),
        ("ERROR_IP_NOT_ALLOWED", UCaptchaFatalError),
        ("ERROR_ACCOUNT_SUSPENDED", UCaptchaFatalError),
        ("ERROR_PAGEURL", UCaptchaBadTaskError),
        ("ERROR_SITEKEY", UCaptchaBadTaskError),
        ("TASK_NOT_SUPPORTED", UCaptchaBadTaskError),
        ("ERROR_BAD_PARAMETERS", UCaptchaBadTaskError),
    ],
)
@pytest.mark.parametrize("status", [None, 400])
@deferred_f_from_coro_f
async def test_error_codes_raise_their_class_without_retries(
    code: str, cls: type[UCaptchaError], status: int | None
) -> None:
    fault = Fault(kind="error_code", endpoint="createTask", code=code, status=status)
    async with simulated(fault) as (sim, client):
        with pytest.raises(UCaptchaError) as info:
            await client.create_task(RECAPTCHA)
    exc = info.value
    assert type(exc) is cls
    assert exc.code == code
    assert exc.http_status == sim.calls[0].http_status
    assert exc.http_status == status or status is None
    assert exc.description.startswith("createTask: ")
    assert len(exc.description) > len("createTask: ")
    assert sim.count("createTask") == 1
    assert sim.tasks == {}


@pytest.mark.parametrize(
    ("task", "options", "code"),
    [
        ({**RECAPTCHA, "websiteURL": "shop.example/login"}, {}, "ERROR_PAGEURL"),
        ({k: v for k, v in RECAPTCHA.items() if k != "websiteURL"}, {}, "ERROR_PAGEURL"),
        ({k: v for k, v in RECAPTCHA.items() if k != "websiteKey"}, {}, "ERROR_SITEKEY"),
        ({**RECAPTCHA, "type": "NoSuchCaptchaTask"}, {}, "TASK_NOT_SUPPORTED"),
        (
            {**RECAPTCHA, "type": "RecaptchaV2Task", "proxy": "not a proxy"},
            {},
            "ERROR_PROXY_FORMAT",
        ),
        ({"type": "ImageToTextTask", "body": "%%% not base64"}, {}, "ERROR_BAD_PARAMETERS"),
        (RECAPTCHA, {"selection_mode": "autoWhatever"}, "ERROR_BAD_PARAMETERS"),
    ],
)
@deferred_f_from_coro_f
async def test_invalid_tasks_are_bad_tasks(
    task: dict[str, Any], options: dict[str, Any], code: str
) -> None:
    async with simulated() as (sim, client):
        with pytest.raises(UCaptchaBadTaskError) as info:
            await client.create_task(task, **options)
    assert info.value.code == code
    assert info.value.http_status == 400
    assert sim.count("createTask") == 1
    assert sim.tasks == {}


@deferred_f_from_coro_f
async def test_unknown_key_is_fatal() -> None:
    async with simulated(keys={"ucap_someoneelse0123456789": 5.0}) as (sim, client):
        with pytest.raises(UCaptchaFatalError) as info:
            await client.get_balance()
    assert (info.value.code, info.value.http_status) == ("ERROR_KEY_DOES_NOT_EXIST", 401)
    assert sim.count("getBalance") == 1


@deferred_f_from_coro_f
async def test_zero_balance_is_fatal() -> None:
    async with simulated(keys={DEFAULT_API_KEY: 0.0}) as (sim, client):
        with pytest.raises(UCaptchaFatalError) as info:
            await client.create_task(RECAPTCHA)
        assert await client.get_balance() == 0.0
    assert (info.value.code, info.value.http_status) == ("ERROR_ZERO_BALANCE", 402)
    assert sim.tasks == {}


# Request faults that a retry gets past, and the class raised when retries run out.
TRANSIENT_FAULTS = [
    pytest.param({"kind": "http_error", "status": 500}, UCaptchaRetryableError, id="http-500"),
    pytest.param({"kind": "http_error", "status": 502}, UCaptchaRetryableError, id="http-502"),
    pytest.param({"kind": "http_error", "status": 503}, UCaptchaRetryableError, id="http-503"),
    pytest.param({"kind": "drop"}, UCaptchaRetryableError, id="drop"),
    pytest.param({"kind": "malformed_json"}, UCaptchaProtocolError, id="malformed-json"),
    pytest.param({"kind": "truncated_json"}, UCaptchaProtocolError, id="truncated-json"),
    pytest.param({"kind": "empty_body"}, UCaptchaProtocolError, id="empty-body"),
    pytest.param({"kind": "html"}, UCaptchaProtocolError, id="html"),
    pytest.param(
        {"kind": "error_code", "code": "ERROR_NO_SLOT_AVAILABLE"},
        UCaptchaRetryableError,
        id="no-slot",
    ),
]


@pytest.mark.parametrize(("fault", "cls"), TRANSIENT_FAULTS)
@deferred_f_from_coro_f
async def test_transient_failure_is_retried_until_success(
    fault: dict[str, Any], cls: type[UCaptchaError]
) -> None:
    seen: list[str] = []
    options = {"max_retries": 3, "on_call": seen.append}
    async with simulated(Fault(endpoint="getBalance", times=2, **fault), client=options) as (
        sim,
        client,
    ):
        balance = await client.get_balance()
    assert balance == pytest.approx(10.0)
    assert sim.count("getBalance") == 3
    assert [call.fault for call in sim.calls] == [fault["kind"], fault["kind"], None]
    assert seen == ["getBalance"] * 3


@pytest.mark.parametrize(("fault", "cls"), TRANSIENT_FAULTS)
@deferred_f_from_coro_f
async def test_transient_failure_raises_after_max_retries(
    fault: dict[str, Any], cls: type[UCaptchaError], caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[str] = []
    options = {"max_retries": 2, "on_call": seen.append}
    caplog.set_level(logging.DEBUG)
    async with simulated(Fault(endpoint="getBalance", **fault), client=options) as (sim, client):
        with pytest.raises(UCaptchaError) as info:
            await client.get_balance()
    assert type(info.value) is cls
    assert sim.count("getBalance") == 3
    assert seen == ["getBalance"] * 3
    if "status" in fault:
        assert info.value.http_status == fault["status"]
    assert "getBalance failed after 3 attempt(s)" in caplog.text
    assert_no_key(DEFAULT_API_KEY, caplog.text, str(info.value), repr(info.value))


@deferred_f_from_coro_f
async def test_retry_deadline_bounds_the_time_spent() -> None:
    options = {"max_retries": 1000, "backoff_base": 0.05, "backoff_max": 0.05}
    options["retry_deadline"] = 0.3
    fault = Fault(kind="http_error", status=503)
    async with simulated(fault, client=options) as (sim, client):
        with pytest.raises(UCaptchaRetryableError):
            await client.get_balance()
    # each wait is at least half the 0.05 s backoff: 0.3 s hold 12 waits at most, so 13 attempts
    # (a slow machine makes fewer, never more); without the deadline there would be 1001
    assert 2 <= sim.count("getBalance") <= 13


@deferred_f_from_coro_f
async def test_retry_deadline_also_cuts_the_last_attempt() -> None:
    # the first attempt fails at once, the second hangs: it gets what is left of the 1 s deadline,
    # not the 5 s timeout of one call (time passing only makes what is left smaller)
    options = {"timeout": 5.0, "max_retries": 5, "retry_deadline": 1.0, "backoff_base": 0.01}
    faults = [Fault(kind="http_error", status=503, times=1), Fault(kind="slow", delay=30.0)]
    async with simulated(*faults, client=options) as (sim, client):
        with pytest.raises(UCaptchaTimeoutError) as info:
            await client.get_balance()
    left = re.fullmatch(r"getBalance did not answer within (\S+) s", str(info.value))
    assert left is not None, str(info.value)
    assert 0 < float(left.group(1)) <= 1.0
    assert sim.count("getBalance") == 2


@deferred_f_from_coro_f
async def test_a_hung_call_times_out_after_retries() -> None:
    options = {"timeout": 0.3, "max_retries": 1}
    async with simulated(Fault(kind="slow", delay=5.0), client=options) as (sim, client):
        with pytest.raises(UCaptchaTimeoutError) as info:
            await client.create_task(RECAPTCHA)
    assert "createTask did not answer within 0.3 s" in str(info.value)
    assert sim.count("createTask") == 2
    assert sim.tasks == {}  # the client left before the simulator processed either request


@deferred_f_from_coro_f
async def test_a_slow_call_succeeds_on_retry() -> None:
    options = {"timeout": 0.3, "max_retries": 1}
    fault = Fault(kind="slow", delay=5.0, times=1)
    async with simulated(fault, client=options) as (sim, client):
        created = await client.create_task(RECAPTCHA)
    assert created.status is TaskStatus.PROCESSING
    assert sim.count("createTask") == 2
    assert list(sim.tasks) == [created.task_id]


@deferred_f_from_coro_f
async def test_rate_limit_fault_waits_until_the_reset() -> None:
    limits: list[RateLimit | None] = []
    holder: list[UCaptchaClient] = []
    options = {"on_call": lambda endpoint: limits.append(holder[0].rate_limit)}
    fault = Fault(kind="rate_limit", endpoint="getBalance", times=1)
    async with simulated(fault, rate_window=0.3, client=options) as (sim, client):
        holder.append(client)
        balance = await client.get_balance()
        after = client.rate_limit
    assert balance == pytest.approx(10.0)
    assert [call.http_status for call in sim.calls] == [429, 200]
    announced = limits[1]  # what the 429 said, as the client knew it before retrying
    assert announced is not None
    assert announced.remaining == 0
    assert announced.reset is not None
    assert sim.calls[1].time >= announced.reset
    assert after is not None
    assert after.limit == 10_000


@deferred_f_from_coro_f
async def test_real_rate_limit_waits_for_the_next_window() -> None:
    limits: list[RateLimit | None] = []
    holder: list[UCaptchaClient] = []
    options = {"on_call": lambda endpoint: limits.append(holder[0].rate_limit)}
    async with simulated(rate_limit=2, rate_window=0.3, client=options) as (sim, client):
        holder.append(client)
        balances = [await client.get_balance() for _ in range(3)]
    assert balances == [pytest.approx(10.0)] * 3
    statuses = [call.http_status for call in sim.calls]
    assert statuses[:3] == [200, 200, 429]
    assert statuses[-1] == 200
    announced = limits[3]
    assert announced is not None
    assert (announced.limit, announced.remaining) == (2, 0)
    assert announced.reset is not None
    assert sim.calls[3].time >= announced.reset


@deferred_f_from_coro_f
async def test_rate_limit_that_never_lifts_raises_a_rate_limit_error() -> None:
    fault = Fault(kind="rate_limit", endpoint="getBalance")
    options = {"max_retries": 2}
    async with simulated(fault, rate_window=0.1, client=options) as (sim, client):
        with pytest.raises(UCaptchaRateLimitError) as info:
            await client.get_balance()
    assert (info.value.code, info.value.http_status) == ("ERROR_RATE_LIMIT", 429)
    assert info.value.retry_after is not None
    assert [call.http_status for call in sim.calls] == [429, 429, 429]


@deferred_f_from_coro_f
async def test_rate_limit_headers_are_exposed() -> None:
    async with simulated(rate_limit=50, rate_window=10.0) as (sim, client):
        assert client.rate_limit is None
        await client.get_balance()
        first = client.rate_limit
        await client.get_balance()
        second = client.rate_limit
    assert first is not None
    assert second is not None
    assert (first.limit, first.remaining) == (50, 49)
    assert (second.limit, second.remaining) == (50, 48)
    assert first.reset is not None
    assert first.reset >= sim.calls[0].time


@deferred_f_from_coro_f
async def test_the_key_never_leaks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    errors: list[BaseException] = []
    faults = [
        Fault(kind="error_code", endpoint="getBalance", code="ERROR_KEY_DOES_NOT_EXIST", times=1),
        Fault(kind="html", endpoint="getBalance", status=403, times=1),
        Fault(kind="drop", endpoint="getBalance", times=1),
        Fault(kind="slow", delay=5.0, endpoint="getBalance", times=1),
        Fault(kind="malformed_json", endpoint="getBalance", times=1),
        Fault(kind="fail", code="ERROR_CAPTCHA_UNSOLVABLE", times=1),
    ]
    options = {"max_retries": 0, "timeout": 0.3}
    async with simulated(*faults, client=options) as (_, client):
        for _ in range(5):
            try:
                await client.get_balance()
            except UCaptchaError as exc:
                errors.append(exc)
        failed = await wait_ready(client, (await client.create_task(RECAPTCHA)).task_id)
        ready = await wait_ready(client, (await client.create_task(RECAPTCHA)).task_id)
        await client.feedback_task(ready.task_id, invalid=False, message="ok")
        assert await client.get_balance() > 0
        client_repr = repr(client)
    assert [type(exc) for exc in errors] == [
        UCaptchaFatalError,
        UCaptchaProtocolError,
        UCaptchaRetryableError,
        UCaptchaTimeoutError,
        UCaptchaProtocolError,
    ]
    assert caplog.records  # the client did log
    texts = [caplog.text, client_repr, repr(failed), repr(ready)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [text for exc in errors for text in (str(exc), repr(exc))]
    assert_no_key(DEFAULT_API_KEY, *texts)
