"""The compatibility-protocol clients against the simulator (and hand-made servers for the shapes
the simulator does not send): tasks of each kind, errors into the same classes as createTask,
retries, balances, reports, and the key kept out of URLs and logs."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f
from twisted.web.resource import Resource
from twisted.web.server import Request

from scrapy_ucaptcha.client import CaptchaClient, TaskResult
from scrapy_ucaptcha.errors import (
    UCaptchaBadTaskError,
    UCaptchaFatalError,
    UCaptchaRetryableError,
)
from scrapy_ucaptcha.protocols import (
    DeathByCaptchaClient,
    ProtocolClient,
    RiskByPassClient,
    TwoCaptchaLegacyClient,
)
from scrapy_ucaptcha.testing._serving import LoopbackServer
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)
from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET, TokenVerifier, render_captcha_png
from scrapy_ucaptcha.transport import ApiTransport

KEY = DEFAULT_API_KEY
SITEKEY = "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-"
PAGE = "https://shop.example/login"
FAST: dict[str, Any] = {
    "timeout": 2.0,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_deadline": 5.0,
}
CLIENTS: dict[str, type[ProtocolClient]] = {
    "2captcha-legacy": TwoCaptchaLegacyClient,
    "deathbycaptcha": DeathByCaptchaClient,
    "riskbypass": RiskByPassClient,
}
PROTOCOLS = list(CLIENTS)

TASKS: dict[str, dict[str, Any]] = {
    "recaptcha_v2": {"type": "RecaptchaV2TaskProxyless", "websiteURL": PAGE, "websiteKey": SITEKEY},
    "recaptcha_v3": {
        "type": "RecaptchaV3TaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": SITEKEY,
        "pageAction": "login",
        "minScore": 0.7,
    },
    "recaptcha_enterprise": {
        "type": "RecaptchaV2EnterpriseTaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": SITEKEY,
    },
    "hcaptcha": {"type": "HCaptchaTaskProxyless", "websiteURL": PAGE, "websiteKey": SITEKEY},
    "turnstile": {"type": "TurnstileTaskProxyless", "websiteURL": PAGE, "websiteKey": SITEKEY},
}
#: The task type the simulator creates for each kind (RiskByPass sends v2 Enterprise as v2 with
#: ``enterprise``, which the simulator reads as a reCAPTCHA v2 task).
SIM_TYPES = {
    "recaptcha_v2": "RecaptchaV2TaskProxyless",
    "recaptcha_v3": "RecaptchaV3TaskProxyless",
    "recaptcha_enterprise": "RecaptchaV2EnterpriseTaskProxyless",
    "hcaptcha": "HCaptchaTaskProxyless",
    "turnstile": "TurnstileTaskProxyless",
}
COSTS = {"recaptcha": 0.0045, "turnstile": 0.003, "hcaptcha": 0.002, "image": 0.001}


@asynccontextmanager
async def connected(
    protocol: str, key: str = KEY, **kwargs: Any
) -> AsyncIterator[tuple[Simulator, ProtocolClient, list[str]]]:
    sim = Simulator(SimulatorConfig(solve_time={"*": SolveTime.fixed(0.0)}))
    sim.start()
    calls: list[str] = []
    client = CLIENTS[protocol](key, api_url=sim.url, on_call=calls.append, **{**FAST, **kwargs})
    try:
        yield sim, client, calls
    finally:
        await client.close()
        await sim.stop()


async def solve(client: CaptchaClient, task: dict[str, Any]) -> TaskResult:
    result = await client.create_task(task)
    for _ in range(50):
        if not result.is_pending:
            return result
        await asyncio.sleep(0.01)
        result = await client.get_task_result(result.task_id)
    raise AssertionError("the task stayed pending")


def test_clients_share_the_transport_and_the_interface() -> None:
    for cls in CLIENTS.values():
        assert issubclass(cls, ApiTransport)
        client = cls(KEY, api_url="https://api.ucaptcha.net")
        assert KEY not in repr(client)
        for name in ("create_task", "get_task_result", "get_balance", "feedback_task", "close"):
            assert callable(getattr(client, name))
    with pytest.raises(ValueError, match="https"):
        TwoCaptchaLegacyClient(KEY, api_url="http://api.example.com")
    with pytest.raises(ValueError, match="balance_per_usd"):
        DeathByCaptchaClient(KEY, balance_per_usd=0)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", list(TASKS))
@deferred_f_from_coro_f
async def test_each_kind_is_solved_and_charged(protocol: str, kind: str) -> None:
    async with connected(protocol) as (sim, client, calls):
        result = await solve(client, TASKS[kind])
        assert result.is_ready, result
        task = sim.tasks[str(result.task_id)]
        assert task.type == SIM_TYPES[kind]
        assert {c.protocol for c in sim.calls} == {protocol}
        assert result.token is not None
        TokenVerifier(DEFAULT_SECRET).verify(
            result.token, sitekey=SITEKEY, page_url=PAGE, now=sim._now()
        )
        if kind == "recaptcha_v3":
            assert task.action == "login"
        family = kind.split("_", maxsplit=1)[0]
        assert await client.get_balance() == pytest.approx(10.0 - COSTS[family])
        assert calls[0] == "createTask"
        assert calls[-1] == "getBalance"
        assert set(calls[1:-1]) <= {"getTaskResult"}


@pytest.mark.parametrize("protocol", ["2captcha-legacy", "deathbycaptcha"])
@deferred_f_from_coro_f
async def test_image_tasks(protocol: str) -> None:
    async with connected(protocol) as (_, client, _):
        png = render_captcha_png(DEFAULT_SECRET, "K7P2X")
        result = await solve(
            client, {"type": "ImageToTextTask", "body": base64.b64encode(png).decode()}
        )
        assert result.is_ready
        assert dict(result.solution) == {"text": "K7P2X"}


@deferred_f_from_coro_f
async def test_riskbypass_refuses_image_tasks_before_any_call() -> None:
    async with connected("riskbypass") as (sim, client, calls):
        with pytest.raises(UCaptchaBadTaskError) as info:
            await client.create_task({"type": "ImageToTextTask", "body": "iVBORw0KGgo="})
        assert info.value.code == "TASK_NOT_SUPPORTED"
        assert calls == []
        assert sim.calls == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_unknown_task_kinds_are_bad_tasks(protocol: str) -> None:
    async with connected(protocol) as (_, client, calls):
        with pytest.raises(UCaptchaBadTaskError):
            await client.create_task({"type": "DataDomeSliderTask", "websiteURL": PAGE})
        assert calls == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_a_wrong_key_is_fatal(protocol: str) -> None:
    async with connected(protocol, key="ucap_wrongkey0000000000000000000") as (sim, client, _):
        with pytest.raises(UCaptchaFatalError) as info:
            await client.get_balance()
        assert info.value.code == "ERROR_KEY_DOES_NOT_EXIST"
        with pytest.raises(UCaptchaFatalError):
            await client.create_task(TASKS["hcaptcha"])
        assert sim.tasks == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_zero_balance_is_fatal(protocol: str) -> None:
    async with connected(protocol) as (sim, client, _):
        sim.set_balance(KEY, 0.0)
        assert await client.get_balance() == 0.0
        with pytest.raises(UCaptchaFatalError) as info:
            await client.create_task(TASKS["turnstile"])
        assert info.value.code == "ERROR_ZERO_BALANCE"
        assert sim.tasks == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_a_missing_sitekey_is_a_bad_task(protocol: str) -> None:
    async with connected(protocol) as (sim, client, _):
        with pytest.raises(UCaptchaBadTaskError):
            await client.create_task({"type": "HCaptchaTaskProxyless", "websiteURL": PAGE})
        assert sim.tasks == {}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("kind", ["fail", "fail_compat"])
@deferred_f_from_coro_f
async def test_failed_and_unknown_tasks_come_back_failed(protocol: str, kind: str) -> None:
    async with connected(protocol) as (sim, client, _):
        sim.add_fault(Fault(kind, times=1))
        result = await solve(client, TASKS["recaptcha_v2"])
        assert result.is_failed
        assert result.error_code == "ERROR_CAPTCHA_UNSOLVABLE"
        assert sim.balance(KEY) == 10.0  # refunded
        unknown = await client.get_task_result("0b9e2e07-5b43-4c1e-9d1f-000000000000")
        assert unknown.is_failed
        assert unknown.error_code in ("ERROR_WRONG_CAPTCHA_ID", "ERROR_CAPTCHA_UNSOLVABLE")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "http_error", "status": 503},
        {"kind": "malformed_json"},
        {"kind": "truncated_json"},
        {"kind": "html"},
        {"kind": "empty_body"},
        {"kind": "drop"},
        {"kind": "rate_limit"},
        {"kind": "error_code", "code": "ERROR_NO_SLOT_AVAILABLE"},
    ],
)
@deferred_f_from_coro_f
async def test_transient_failures_are_retried(protocol: str, fault: dict[str, Any]) -> None:
    async with connected(protocol) as (sim, client, calls):
        sim.config.rate_window = 0.05  # a 429 waits until the window's reset
        sim.add_fault(Fault(endpoint="getBalance", times=2, **fault))
        assert await client.get_balance() == 10.0
        assert calls == ["getBalance"] * 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_retries_are_bounded(protocol: str) -> None:
    async with connected(protocol, max_retries=2) as (sim, client, calls):
        sim.add_fault(Fault("http_error", endpoint="getBalance", status=502))
        with pytest.raises(UCaptchaRetryableError):
            await client.get_balance()
        assert calls == ["getBalance"] * 3


@deferred_f_from_coro_f
async def test_reports() -> None:
    async with connected("2captcha-legacy") as (sim, client, calls):
        result = await solve(client, TASKS["hcaptcha"])
        await client.feedback_task(result.task_id, invalid=True, message="rejected")
        await client.feedback_task(result.task_id, invalid=False, message="accepted")
        assert await client.report(result.task_id, accepted=False, family="hcaptcha")
        feedback = sim.tasks[str(result.task_id)].feedback
        assert [f["invalid"] for f in feedback] == [True, False, True]
    async with connected("deathbycaptcha") as (sim, client, calls):
        result = await solve(client, TASKS["hcaptcha"])
        assert sim.balance(KEY) == pytest.approx(10.0 - 0.002)
        await client.feedback_task(result.task_id, invalid=False, message="accepted")
        assert "feedbackTask" not in calls  # nothing to send for a good token
        await client.feedback_task(result.task_id, invalid=True, message="rejected")
        assert calls.count("feedbackTask") == 1
        assert sim.tasks[str(result.task_id)].refunded
        assert sim.balance(KEY) == 10.0
        with pytest.raises(Exception, match="not found") as info:
            await client.feedback_task("nope", invalid=True, message="rejected")
        assert calls.count("feedbackTask") == 2  # not retried
        assert info.value.__class__.__name__ == "UCaptchaTaskDeadError"
    async with connected("riskbypass") as (sim, client, calls):
        result = await solve(client, TASKS["hcaptcha"])
        assert not await client.report(result.task_id, accepted=False, family="hcaptcha")
        await client.feedback_task(result.task_id, invalid=True, message="rejected")
        assert "feedbackTask" not in calls


@deferred_f_from_coro_f
async def test_balance_units() -> None:
    async with connected("deathbycaptcha", balance_per_usd=100) as (sim, client, _):
        sim.set_balance(KEY, 1250.0)  # as DeathByCaptcha answers: US cents
        assert await client.get_balance() == 12.5
    async with connected("riskbypass", balance_per_usd=1000) as (sim, client, _):
        sim.set_balance(KEY, 5000.0)  # credits, $1 = 1000
        assert await client.get_balance() == 5.0


@deferred_f_from_coro_f
async def test_dbc_path_styles() -> None:
    for paths in ("ucaptcha", "deathbycaptcha"):
        async with connected("deathbycaptcha", paths=paths) as (_, client, _):
            result = await solve(client, TASKS["turnstile"])
            assert result.is_ready
    with pytest.raises(ValueError, match="paths"):
        DeathByCaptchaClient(KEY, paths="other")


@deferred_f_from_coro_f
async def test_riskbypass_task_type_names_are_configurable() -> None:
    client = RiskByPassClient(KEY, task_types={"recaptcha_v2": "ReCaptchaV2"})
    assert client.task_types["recaptcha_v2"] == "ReCaptchaV2"
    assert client.task_types["hcaptcha"] == "hcaptcha"
    with pytest.raises(ValueError, match="task_types"):
        RiskByPassClient(KEY, task_types={"image": "img"})


# --- shapes the simulator does not send -----------------------------------------------------------


class Canned(Resource):
    """Answers each path with the next of its canned ``(status, body)`` answers."""

    isLeaf = True

    def __init__(self, answers: dict[str, list[tuple[int, bytes]]]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.answers = answers
        self.seen: list[tuple[str, str, bytes]] = []

    def render(self, request: Request) -> bytes:
        path = request.path.decode()
        assert request.content is not None
        self.seen.append((request.method.decode(), request.uri.decode(), request.content.read()))
        status, body = self.answers[path].pop(0)
        request.setResponseCode(status)
        return body


@asynccontextmanager
async def serve(resource: Resource) -> AsyncIterator[str]:
    server = LoopbackServer(not_running="not serving", already_running="serving already")
    try:
        yield server.start(resource, 0, "127.0.0.1")
    finally:
        await server.stop()


@deferred_f_from_coro_f
async def test_legacy_plain_text_answers_and_200_errors() -> None:
    canned = Canned(
        {
            "/in.php": [(200, b"OK|4503599627"), (200, b"ERROR_WRONG_USER_KEY")],
            "/res.php": [(200, b"CAPCHA_NOT_READY"), (200, b"OK|03AGdBq2"), (200, b"12.5000")],
        }
    )
    async with serve(canned) as url:
        client = TwoCaptchaLegacyClient(KEY, api_url=url, **FAST)
        try:
            created = await client.create_task(TASKS["recaptcha_v2"])
            assert created.task_id == "4503599627"
            assert (await client.get_task_result(created.task_id)).is_pending
            ready = await client.get_task_result(created.task_id)
            assert ready.token == "03AGdBq2"
            assert await client.get_balance() == 12.5
            with pytest.raises(UCaptchaFatalError):  # 2captcha's errors come with HTTP 200
                await client.create_task(TASKS["recaptcha_v2"])
        finally:
            await client.close()
    assert all(method == "POST" and KEY not in uri for method, uri, _ in canned.seen)
    assert all(KEY.encode() in body for _, _, body in canned.seen)


@deferred_f_from_coro_f
async def test_dbc_submit_answered_200_and_integer_ids() -> None:
    canned = Canned(
        {
            "/api": [(200, b'{"status":0,"captcha":1234,"is_correct":true,"text":""}')],
            "/api/1234": [
                (200, b'{"status":0,"captcha":1234,"is_correct":true,"text":""}'),
                (200, b'{"status":0,"captcha":1234,"is_correct":true,"text":"tok3n"}'),
            ],
        }
    )
    async with serve(canned) as url:
        client = DeathByCaptchaClient(KEY, api_url=url, **FAST)
        try:
            created = await client.create_task(TASKS["recaptcha_v2"])
            assert created.task_id == 1234
            assert (await client.get_task_result(1234)).is_pending
            assert (await client.get_task_result(1234)).token == "tok3n"
        finally:
            await client.close()
    assert [(m, u) for m, u, _ in canned.seen] == [
        ("POST", "/api"),
        ("GET", "/api/1234"),
        ("GET", "/api/1234"),
    ]
    assert KEY.encode() not in canned.seen[1][2]


# --- the key -------------------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_the_key_is_in_no_url_and_no_log(
    protocol: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    urls: list[str] = []
    original: Callable[..., Any] = ApiTransport._http_call

    async def recording(self: ApiTransport, method: str, url: str, kwargs: Any) -> Any:
        urls.append(url)
        return await original(self, method, url, kwargs)

    monkeypatch.setattr(ApiTransport, "_http_call", recording)
    async with connected(protocol) as (sim, client, _):
        sim.add_fault(Fault("http_error", endpoint="createTask", status=503, times=1))
        sim.add_fault(Fault("fail", times=1))
        result = await solve(client, TASKS["recaptcha_v2"])
        assert result.is_failed
        ready = await solve(client, TASKS["turnstile"])
        await client.feedback_task(ready.task_id, invalid=True, message="rejected")
        await client.get_balance()
        sim.set_balance(KEY, 0.0)
        with pytest.raises(UCaptchaFatalError) as info:
            await client.create_task(TASKS["turnstile"])
    assert urls
    assert all(KEY not in url for url in urls)
    assert KEY not in caplog.text
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
