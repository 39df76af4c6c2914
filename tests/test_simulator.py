"""Tests of the uCaptcha API simulator, over real loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import logging
import os
import random
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import treq
from crawling import HANG_GUARD, until
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_to_future
from twisted.web.client import HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import Site

import scrapy_ucaptcha
from scrapy_ucaptcha.testing.__main__ import build_parser, config_from_args, main
from scrapy_ucaptcha.testing._sim_api import TASK_TYPES
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    FAULT_KINDS,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)
from scrapy_ucaptcha.testing.tokens import (
    DEFAULT_SECRET,
    InvalidToken,
    TokenVerifier,
    read_image_answer,
    render_captcha_png,
)

KEY = DEFAULT_API_KEY
OTHER_KEY = "ucap_otherkey0000000000000000000"
SITEKEY = "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-"
PAGE = "https://shop.example/login"
PACKAGE_ROOT = str(Path(scrapy_ucaptcha.__file__).resolve().parent.parent)
RECAPTCHA = {"type": "RecaptchaV2TaskProxyless", "websiteURL": PAGE, "websiteKey": SITEKEY}


# --- helpers --------------------------------------------------------------------------------------


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest.fixture(autouse=True)
def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Every test: neither Python logging nor Twisted's log get anything at error level."""
    from twisted.logger import LogLevel, globalLogPublisher

    twisted_errors: list[Any] = []

    def observer(event: Any) -> None:
        level = event.get("log_level")
        if event.get("log_failure") is not None or level in (LogLevel.error, LogLevel.critical):
            twisted_errors.append(event)

    globalLogPublisher.addObserver(observer)  # type: ignore[arg-type]
    try:
        yield
        gc.collect()  # "Unhandled error in Deferred" is logged when the Deferred is collected
    finally:
        globalLogPublisher.removeObserver(observer)  # type: ignore[arg-type]
    assert twisted_errors == []
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert [r.getMessage() for r in records if r.levelno >= logging.ERROR] == []


def fast_config(**kwargs: Any) -> SimulatorConfig:
    kwargs.setdefault("solve_time", {"*": SolveTime.fixed(0.02)})
    kwargs.setdefault("keys", {KEY: 10.0, OTHER_KEY: 1.0})
    return SimulatorConfig(**kwargs)


@asynccontextmanager
async def running(config: SimulatorConfig | None = None) -> AsyncIterator[Simulator]:
    sim = Simulator(config or fast_config())
    sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


async def request(method: str, url: str, *, timeout: float = 10.0, **kwargs: Any) -> Reply:
    pool = HTTPConnectionPool(_reactor(), persistent=False)  # type: ignore[no-untyped-call]
    response = await deferred_to_future(
        treq.request(method, url, pool=pool, timeout=timeout, **kwargs)
    )
    body = await deferred_to_future(treq.content(response))
    return Reply(response.code, response.headers, body)


async def api(sim: Simulator, endpoint: str, payload: Any = None, **kwargs: Any) -> Reply:
    if isinstance(payload, bytes):
        return await request("POST", f"{sim.url}/{endpoint}", data=payload, **kwargs)
    return await request("POST", f"{sim.url}/{endpoint}", json=payload, **kwargs)


async def create(sim: Simulator, task: dict[str, Any] | None = None, **extra: Any) -> Reply:
    return await api(sim, "createTask", {"clientKey": KEY, "task": task or RECAPTCHA, **extra})


async def result(sim: Simulator, task_id: str, key: str = KEY) -> Reply:
    return await api(sim, "getTaskResult", {"clientKey": key, "taskId": task_id})


async def balance(sim: Simulator, key: str = KEY) -> float:
    reply = await api(sim, "getBalance", {"clientKey": key})
    assert reply.status == 200
    return float(reply.json["balance"])


async def wait_for(predicate: Callable[[], object], what: str = "the condition") -> None:
    """Wait until ``predicate`` holds; :data:`HANG_GUARD` only tells a hang from a slow machine."""
    await until(lambda: bool(predicate()), what, poll=0.005)


async def poll(sim: Simulator, task_id: str) -> Reply:
    """Poll getTaskResult until the task is no longer idle/processing (or the test hangs)."""
    give_up = asyncio.get_running_loop().time() + HANG_GUARD
    while True:
        reply = await result(sim, task_id)
        if reply.json.get("status") not in ("idle", "processing"):
            return reply
        assert asyncio.get_running_loop().time() < give_up, f"task {task_id} hung"
        await asyncio.sleep(0.01)


def png_b64(answer: str, secret: str = DEFAULT_SECRET) -> str:
    return base64.b64encode(render_captcha_png(secret, answer)).decode()


class Receiver(Resource):
    """A callback receiver: records the query of every GET."""

    isLeaf = True

    def __init__(self, status: int = 200) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.status = status
        self.hits: list[dict[str, str]] = []

    def render_GET(self, request: Any) -> bytes:
        self.hits.append({k.decode(): v[0].decode() for k, v in request.args.items()})
        request.setResponseCode(self.status)
        return b"ok"


@asynccontextmanager
async def receiver(status: int = 200) -> AsyncIterator[tuple[Receiver, str]]:
    resource = Receiver(status)
    site = Site(resource)  # type: ignore[no-untyped-call]
    site.noisy = False
    port = _reactor().listenTCP(0, site, interface="127.0.0.1")
    try:
        yield resource, f"http://127.0.0.1:{port.getHost().port}/cb"
    finally:
        await deferred_to_future(port.stopListening())


# --- start / stop ---------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_start_gives_url_and_stop_leaves_reactor_clean() -> None:
    before = set(_reactor().getDelayedCalls())
    sim = Simulator(fast_config())
    with pytest.raises(RuntimeError):
        _ = sim.url
    url = sim.start(port=0, host="127.0.0.1")
    assert url == sim.url
    assert url.startswith("http://127.0.0.1:")
    assert not url.endswith("/")
    assert int(url.rsplit(":", 1)[1]) > 0
    with pytest.raises(RuntimeError):
        sim.start()
    # leave work in flight: a stuck task, a slow request, a task being solved
    sim.add_fault(Fault("stuck", times=1))
    assert (await create(sim)).status == 200
    sim.config.solve_time = {"*": SolveTime.fixed(30)}
    assert (await create(sim)).status == 200
    sim.add_fault(Fault("slow", delay=30))
    slow = asyncio.ensure_future(api(sim, "getBalance", {"clientKey": KEY}))
    await wait_for(lambda: sim.count("getBalance") == 1)
    await sim.stop()
    assert not sim.running
    with pytest.raises(Exception):  # noqa: B017, PT011 (the connection is aborted)
        await slow
    await asyncio.sleep(0)
    assert set(_reactor().getDelayedCalls()) - before == set()
    await sim.stop()  # stopping twice is harmless


@deferred_f_from_coro_f
async def test_async_context_manager() -> None:
    async with Simulator(fast_config()) as sim:
        assert sim.running
        assert await balance(sim) == 10.0
    assert not sim.running


# --- createTask / getTaskResult lifecycle ---------------------------------------------------------


@deferred_f_from_coro_f
async def test_lifecycle_idle_processing_ready() -> None:
    config = fast_config(idle_time=0.1, solve_time={"*": SolveTime.fixed(0.1)})
    async with running(config) as sim:
        hold = sim.add_fault(Fault("stuck", times=1))  # processing until released, however slow
        reply = await create(sim)
        assert reply.status == 200
        assert reply.header("Content-Type") == "application/json; charset=utf-8"
        body = reply.json
        assert body["errorId"] == 0
        assert body["status"] == "idle"
        task_id = body["taskId"]
        assert len(task_id) == 36
        assert task_id.count("-") == 4
        seen = [body["status"]]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + HANG_GUARD
        while True:
            answer = (await result(sim, task_id)).json
            if answer["status"] != seen[-1]:
                seen.append(answer["status"])
            if answer["status"] == "ready":
                break
            assert loop.time() < give_up, f"the task hung at {seen}"
            assert answer == {"errorId": 0, "status": answer["status"]}
            if answer["status"] == "processing" and hold.fired:
                sim.release()
            await asyncio.sleep(0.01)
        assert seen == ["idle", "processing", "ready"]
        assert answer["errorId"] == 0
        assert set(answer) == {
            "errorId",
            "status",
            "solution",
            "cost",
            "solveTime",
            "createTime",
            "endTime",
        }
        assert answer["cost"] == pytest.approx(0.0045)
        assert isinstance(answer["solveTime"], int)
        assert answer["solveTime"] == 100  # the provider's solve time, not the queue time
        assert answer["createTime"] <= answer["endTime"]
        assert isinstance(answer["solution"]["gRecaptchaResponse"], str)
        task = sim.tasks[task_id]
        assert task.status == "ready"
        assert task.polls == sim.count("getTaskResult", task_id)
        assert task.ready_at is not None
        assert task.processing_at is not None
        assert task.created_at < task.processing_at < task.ready_at


@deferred_f_from_coro_f
async def test_balance_reserved_at_create_and_refunded_on_failure() -> None:
    # solves long enough that a loaded machine still reads the balance before the refund
    async with running(fast_config(solve_time={"*": SolveTime.fixed(1.0)})) as sim:
        start = await balance(sim)
        assert start == 10.0
        task_id = (await create(sim)).json["taskId"]
        assert await balance(sim) == pytest.approx(start - 0.0045)
        assert (await poll(sim, task_id)).json["status"] == "ready"
        assert await balance(sim) == pytest.approx(start - 0.0045)
        assert sim.balance(KEY) == pytest.approx(start - 0.0045)

        sim.add_fault(Fault("fail", times=1))
        sim.add_fault(Fault("stuck", times=1))  # held until released: it cannot fail too soon
        failed_id = (await create(sim)).json["taskId"]
        assert await balance(sim) == pytest.approx(start - 0.009)
        assert sim.release() == [failed_id]
        failed = (await poll(sim, failed_id)).json
        assert failed["status"] == "failed"
        assert await balance(sim) == pytest.approx(start - 0.0045)
        assert sim.tasks[failed_id].refunded
        assert not sim.tasks[task_id].refunded


@deferred_f_from_coro_f
async def test_zero_balance() -> None:
    async with running() as sim:
        sim.set_balance(KEY, 0.004)
        reply = await create(sim)
        assert reply.status == 402
        assert reply.json["errorId"] == 1
        assert reply.json["errorCode"] == "ERROR_ZERO_BALANCE"
        assert sim.tasks == {}
        # a cheaper task still fits
        turnstile = {"type": "TurnstileTaskProxyless", "websiteURL": PAGE, "websiteKey": "0x4A"}
        assert (await create(sim, turnstile)).status == 200
        assert sim.balance(KEY) == pytest.approx(0.001)
        with pytest.raises(KeyError):
            sim.balance("ucap_nobody")


@pytest.mark.parametrize(
    ("task_type", "field", "prefix"),
    [
        ("RecaptchaV2TaskProxyless", "gRecaptchaResponse", "03AG"),
        ("ReCaptchaV2TokenProxyLess", "gRecaptchaResponse", "03AG"),
        ("ReCaptchaV2TaskProxyLess", "gRecaptchaResponse", "03AG"),
        ("RecaptchaV2EnterpriseTaskProxyless", "gRecaptchaResponse", "03AG"),
        ("HCaptchaTaskProxyless", "token", "P1_"),
        ("HardCaptchaTokenProxyLess", "token", "P1_"),
        ("TurnstileTaskProxyless", "token", "0."),
        ("AntiTurnstileTaskProxyLess", "token", "0."),
        ("TurnstileTokenProxyLess", "token", "0."),
    ],
)
@deferred_f_from_coro_f
async def test_tokens_verify_with_token_verifier(task_type: str, field: str, prefix: str) -> None:
    async with running() as sim:
        task = {"type": task_type, "websiteURL": PAGE, "websiteKey": SITEKEY}
        task_id = (await create(sim, task)).json["taskId"]
        solution = (await poll(sim, task_id)).json["solution"]
        token = solution[field]
        assert token.startswith(prefix)
        if task_type.startswith(("HCaptcha", "HardCaptcha")):
            assert solution["gRecaptchaResponse"] == token
        assert "userAgent" not in solution
        verifier = TokenVerifier(DEFAULT_SECRET)
        now = _reactor().seconds()
        claims = verifier.verify(token, sitekey=SITEKEY, page_url=PAGE, now=now)
        assert claims.family == TASK_TYPES[task_type]
        assert claims.host == "shop.example"
        ready_at = sim.tasks[task_id].ready_at
        assert ready_at is not None
        assert claims.expires_at == pytest.approx(ready_at + 120, abs=0.01)
        with pytest.raises(InvalidToken, match="reused"):
            verifier.verify(token, sitekey=SITEKEY, page_url=PAGE, now=now)
        with pytest.raises(InvalidToken, match="wrong-sitekey"):
            TokenVerifier(DEFAULT_SECRET).verify(token, sitekey="other", page_url=PAGE, now=now)


@deferred_f_from_coro_f
async def test_token_action_ttl_user_agent_and_secret() -> None:
    config = fast_config(token_ttl=5.0, user_agent="Mozilla/5.0 Sim", secret="s3cret")
    async with running(config) as sim:
        v3 = {**RECAPTCHA, "type": "RecaptchaV3TaskProxyless", "pageAction": "login"}
        turnstile = {
            "type": "TurnstileTaskProxyless",
            "websiteURL": PAGE,
            "websiteKey": "0x4AAA",
            "metadata": {"action": "signup"},
        }
        v3_id = (await create(sim, v3)).json["taskId"]
        ts_id = (await create(sim, turnstile)).json["taskId"]
        v3_solution = (await poll(sim, v3_id)).json["solution"]
        ts_solution = (await poll(sim, ts_id)).json["solution"]
        assert v3_solution["userAgent"] == "Mozilla/5.0 Sim"
        assert ts_solution["userAgent"] == "Mozilla/5.0 Sim"
        now = _reactor().seconds()
        with pytest.raises(InvalidToken, match="bad-signature"):
            TokenVerifier(DEFAULT_SECRET).verify(
                v3_solution["gRecaptchaResponse"], sitekey=SITEKEY, page_url=PAGE, now=now
            )
        verifier = TokenVerifier("s3cret")
        with pytest.raises(InvalidToken, match="expired"):
            verifier.verify(
                v3_solution["gRecaptchaResponse"],
                sitekey=SITEKEY,
                page_url=PAGE,
                now=now + 6,
                action="login",
            )
        claims = verifier.verify(
            v3_solution["gRecaptchaResponse"],
            sitekey=SITEKEY,
            page_url=PAGE,
            now=now,
            action="login",
        )
        assert claims.action == "login"
        claims = verifier.verify(
            ts_solution["token"], sitekey="0x4AAA", page_url=PAGE, now=now, action="signup"
        )
        assert claims.action == "signup"


#: What the cookie-wall task types need besides the page and the proxy.
WALL_FIELDS: dict[str, dict[str, str]] = {
    "datadome": {
        "captchaUrl": "https://geo.captcha-delivery.com/captcha/?initialCid=x&cid=y&t=fe&s=1",
        "userAgent": "Mozilla/5.0 Test",
    },
    "aws_waf": {"iv": "CgAHbCe2GgAAAAAj", "context": "jmYpQ6Wv4mDkB1cLQzR8"},
    # the token kinds whose key has another name, and GeeTest v3's challenge
    "funcaptcha": {"websitePublicKey": SITEKEY},
    "geetest": {"gt": "a" * 32, "challenge": "b" * 32},
}


@deferred_f_from_coro_f
async def test_every_task_type_is_accepted() -> None:
    async with running(fast_config(keys={KEY: 100.0})) as sim:
        for task_type, family in TASK_TYPES.items():
            if family == "image":
                task: dict[str, Any] = {"type": task_type, "body": png_b64("7")}
            else:
                task = {"type": task_type, "websiteURL": PAGE, "websiteKey": SITEKEY}
                if not task_type.lower().endswith("proxyless") or family in ("datadome",):
                    task["proxy"] = "http://user:pass@203.0.113.7:8080"
                task.update(WALL_FIELDS.get(family, {}))
            reply = await create(sim, task)
            assert reply.status == 200, (task_type, reply.json)
            assert reply.json["errorId"] == 0
            assert sim.tasks[reply.json["taskId"]].family == family
        assert len(sim.tasks) == len(TASK_TYPES)
        families = {"recaptcha", "hcaptcha", "turnstile", "image"}
        families |= {
            "funcaptcha",
            "geetest",
            "friendly_captcha",
            "mtcaptcha",
            "yandex_smartcaptcha",
        }
        assert families | {"datadome", "cloudflare", "aws_waf"} == set(TASK_TYPES.values())


@deferred_f_from_coro_f
async def test_options_are_recorded() -> None:
    async with running() as sim:
        reply = await create(
            sim,
            callbackUrl="https://hooks.example.net/cb",
            selectionMode="autoFastest",
            provider="capsolver",
        )
        task = sim.tasks[reply.json["taskId"]]
        assert task.selection_mode == "autoFastest"
        assert task.provider == "capsolver"
        assert task.callback_url == "https://hooks.example.net/cb"
        assert task.type == "RecaptchaV2TaskProxyless"
        assert task.website_key == SITEKEY
        plain = sim.tasks[(await create(sim)).json["taskId"]]
        assert plain.selection_mode is None
        assert plain.provider is None
        assert plain.callback_url is None


# --- image tasks ----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_image_task_is_synchronous() -> None:
    async with running() as sim:
        reply = await create(sim, {"type": "ImageToTextTask", "body": png_b64("W7XK")})
        assert reply.status == 200
        body = reply.json
        assert body["errorId"] == 0
        assert body["status"] == "ready"
        assert body["solution"] == {"text": "W7XK"}
        assert body["cost"] == pytest.approx(0.001)
        assert body["solveTime"] >= 15
        task_id = body["taskId"]
        again = (await result(sim, task_id)).json
        assert again["status"] == "ready"
        assert again["solution"] == {"text": "W7XK"}
        assert await balance(sim) == pytest.approx(10.0 - 0.001)


@deferred_f_from_coro_f
async def test_foreign_image_fails_unsolvable_and_refunds() -> None:
    async with running() as sim:
        foreign = render_captcha_png("another-secret", "AB")  # a PNG, but not ours
        for body in (base64.b64encode(foreign).decode(), base64.b64encode(b"hello").decode()):
            reply = await create(sim, {"type": "ImageToTextTask", "body": body})
            assert reply.status == 200
            assert reply.json["errorId"] == 0
            assert reply.json["status"] == "failed"
            assert reply.json["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE"
            assert "taskId" in reply.json
        assert await balance(sim) == 10.0


def test_images_of_another_secret_never_read() -> None:
    # read_image_answer authenticates the hidden answer: without that, a PNG sealed with another
    # secret decrypted to random ASCII often enough that the simulator "solved" it with garbage.
    for _ in range(200):
        assert read_image_answer(DEFAULT_SECRET, render_captcha_png("another-secret", "AB")) is None
    assert read_image_answer(DEFAULT_SECRET, render_captcha_png(DEFAULT_SECRET, "ab")) == "AB"


@deferred_f_from_coro_f
async def test_async_image_when_not_in_sync_types() -> None:
    async with running(fast_config(sync_types=set())) as sim:
        reply = await create(sim, {"type": "ImageToTextTask", "body": png_b64("42")})
        assert reply.json["status"] == "processing"
        ready = (await poll(sim, reply.json["taskId"])).json
        assert ready["solution"] == {"text": "42"}


# --- validation -----------------------------------------------------------------------------------

_IMAGE = "ImageToTextTask"


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"task": RECAPTCHA}, 401, "ERROR_KEY_DOES_NOT_EXIST"),
        ({"clientKey": "ucap_unknown", "task": RECAPTCHA}, 401, "ERROR_KEY_DOES_NOT_EXIST"),
        ({"clientKey": KEY}, 400, "ERROR_BAD_PARAMETERS"),
        ({"clientKey": KEY, "task": {"websiteURL": PAGE}}, 400, "ERROR_BAD_PARAMETERS"),
        ({"clientKey": KEY, "task": {**RECAPTCHA, "type": "FooTask"}}, 400, "TASK_NOT_SUPPORTED"),
        (
            {"clientKey": KEY, "task": {"type": "RecaptchaV2TaskProxyless", "websiteKey": "k"}},
            400,
            "ERROR_PAGEURL",
        ),
        ({"clientKey": KEY, "task": {**RECAPTCHA, "websiteURL": "/login"}}, 400, "ERROR_PAGEURL"),
        (
            {"clientKey": KEY, "task": {"type": "TurnstileTaskProxyless", "websiteURL": PAGE}},
            400,
            "ERROR_SITEKEY",
        ),
        ({"clientKey": KEY, "task": {**RECAPTCHA, "websiteKey": " "}}, 400, "ERROR_SITEKEY"),
        ({"clientKey": KEY, "task": {"type": _IMAGE}}, 400, "ERROR_BAD_PARAMETERS"),
        ({"clientKey": KEY, "task": {"type": _IMAGE, "body": "%%%"}}, 400, "ERROR_BAD_PARAMETERS"),
        (
            {"clientKey": KEY, "task": {"type": _IMAGE, "body": ""}},
            400,
            "ERROR_ZERO_CAPTCHA_FILESIZE",
        ),
        (
            {"clientKey": KEY, "task": {**RECAPTCHA, "type": "RecaptchaV2Task"}},
            400,
            "ERROR_BAD_PARAMETERS",
        ),
        (
            {"clientKey": KEY, "task": {**RECAPTCHA, "type": "RecaptchaV2Task", "proxy": "bad"}},
            400,
            "ERROR_PROXY_FORMAT",
        ),
        (
            {"clientKey": KEY, "task": RECAPTCHA, "selectionMode": "fastest"},
            400,
            "ERROR_BAD_PARAMETERS",
        ),
        ({"clientKey": KEY, "task": RECAPTCHA, "callbackUrl": "/cb"}, 400, "ERROR_BAD_PARAMETERS"),
        (b"this is not json", 400, "ERROR_BAD_PARAMETERS"),
        (b"[1, 2]", 400, "ERROR_BAD_PARAMETERS"),
    ],
)
@deferred_f_from_coro_f
async def test_create_task_errors(payload: Any, status: int, code: str) -> None:
    async with running() as sim:
        reply = await api(sim, "createTask", payload)
        assert reply.status == status
        assert reply.header("Content-Type") == "application/json; charset=utf-8"
        body = reply.json
        assert body["errorId"] == 1
        assert body["errorCode"] == code
        assert isinstance(body["errorDescription"], str)
        assert body["errorDescription"]
        assert sim.tasks == {}
        assert sim.balance(KEY) == 10.0
        assert sim.calls[-1].http_status == status
        assert sim.calls[-1].error_code == code


@deferred_f_from_coro_f
async def test_proxy_task_with_proxy_fields() -> None:
    async with running() as sim:
        task: dict[str, Any] = {**RECAPTCHA, "type": "HCaptchaTask", "proxyType": "http"}
        task.update(proxyAddress="203.0.113.7", proxyPort=3128)
        assert (await create(sim, task)).status == 200
        colon = {**RECAPTCHA, "type": "TurnstileTask", "proxy": "socks5:203.0.113.7:1080:u:p"}
        assert (await create(sim, colon)).status == 200
        bad_port = {**task, "proxyPort": "x"}
        assert (await create(sim, bad_port)).json["errorCode"] == "ERROR_PROXY_FORMAT"


@deferred_f_from_coro_f
async def test_get_task_result_errors() -> None:
    async with running() as sim:
        task_id = (await create(sim)).json["taskId"]
        unknown = await result(sim, "550e8400-e29b-41d4-a716-446655440000")
        assert unknown.status == 404
        assert unknown.json["errorId"] == 1
        assert unknown.json["errorCode"] == "ERROR_WRONG_CAPTCHA_ID"
        foreign = await result(sim, task_id, key=OTHER_KEY)
        assert foreign.status == 404
        assert foreign.json["errorCode"] == "ERROR_WRONG_CAPTCHA_ID"
        missing = await api(sim, "getTaskResult", {"clientKey": KEY})
        assert missing.status == 400
        assert missing.json["errorCode"] == "ERROR_BAD_PARAMETERS"
        bad_key = await result(sim, task_id, key="ucap_nope")
        assert bad_key.status == 401
        assert bad_key.json["errorCode"] == "ERROR_KEY_DOES_NOT_EXIST"
        assert (await result(sim, task_id)).status == 200
        assert sim.tasks[task_id].polls == 1


@deferred_f_from_coro_f
async def test_result_ttl_expiry() -> None:
    async with running(fast_config(result_ttl=0.1)) as sim:
        task_id = (await create(sim)).json["taskId"]
        assert (await poll(sim, task_id)).json["status"] == "ready"
        loop = asyncio.get_running_loop()
        give_up = loop.time() + HANG_GUARD
        while (reply := await result(sim, task_id)).status == 200:
            assert loop.time() < give_up, "the result never expired (hung)"
            await asyncio.sleep(0.02)
        assert reply.status == 404
        assert reply.json["errorCode"] == "ERROR_WRONG_CAPTCHA_ID"
        ready_at = sim.tasks[task_id].ready_at
        assert ready_at is not None
        assert _reactor().seconds() > ready_at + 0.1
        feedback = await api(
            sim,
            "feedbackTask",
            {"clientKey": KEY, "taskId": task_id, "result": {"invalid": False, "message": "ok"}},
        )
        assert feedback.status == 404


@deferred_f_from_coro_f
async def test_get_balance() -> None:
    async with running() as sim:
        reply = await api(sim, "getBalance", {"clientKey": OTHER_KEY})
        assert reply.status == 200
        assert reply.json == {"errorId": 0, "balance": 1.0}
        sim.set_balance(OTHER_KEY, 50.25)
        assert await balance(sim, OTHER_KEY) == 50.25
        bad = await api(sim, "getBalance", {"clientKey": "ucap_nope"})
        assert bad.status == 401
        assert bad.json["errorCode"] == "ERROR_KEY_DOES_NOT_EXIST"
        sim.set_balance("ucap_new", 3.0)  # set_balance adds a key
        assert await balance(sim, "ucap_new") == 3.0


@deferred_f_from_coro_f
async def test_feedback_task() -> None:
    async with running() as sim:
        task_id = (await create(sim)).json["taskId"]
        await poll(sim, task_id)
        good = {"invalid": True, "code": "REJECTED", "message": "Token was rejected"}
        reply = await api(
            sim, "feedbackTask", {"clientKey": KEY, "taskId": task_id, "result": good}
        )
        assert reply.status == 200
        assert reply.json == {"errorId": 0, "message": "Feedback recorded"}
        positive = {"invalid": False, "message": "Solution accepted successfully"}
        reply = await api(
            sim, "feedbackTask", {"clientKey": KEY, "taskId": task_id, "result": positive}
        )
        assert reply.status == 200
        feedback = sim.tasks[task_id].feedback
        assert [f["invalid"] for f in feedback] == [True, False]
        assert feedback[0]["code"] == "REJECTED"
        assert feedback[1]["code"] is None
        assert feedback[1]["message"] == "Solution accepted successfully"
        for bad in ({"message": "x"}, {"invalid": "yes", "message": "x"}, {"invalid": True}):
            reply = await api(
                sim, "feedbackTask", {"clientKey": KEY, "taskId": task_id, "result": bad}
            )
            assert reply.status == 400
            assert reply.json["errorCode"] == "ERROR_BAD_PARAMETERS"
        reply = await api(sim, "feedbackTask", {"clientKey": KEY, "taskId": task_id})
        assert reply.status == 400
        unknown = {"clientKey": KEY, "taskId": "nope", "result": positive}
        reply = await api(sim, "feedbackTask", unknown)
        assert reply.status == 404
        assert reply.json["errorCode"] == "ERROR_WRONG_CAPTCHA_ID"
        other = {"clientKey": OTHER_KEY, "taskId": task_id, "result": positive}
        assert (await api(sim, "feedbackTask", other)).status == 404
        assert len(sim.tasks[task_id].feedback) == 2


@deferred_f_from_coro_f
async def test_unknown_endpoint_and_wrong_method() -> None:
    async with running() as sim:
        reply = await api(sim, "createTaskz", {"clientKey": KEY})
        assert reply.status == 404
        assert reply.json["errorId"] == 1
        assert reply.json["errorCode"] == "ERROR_NO_SUCH_METHOD"
        get = await request("GET", f"{sim.url}/getBalance")
        assert get.status == 405
        assert get.json["errorId"] == 1
        assert sim.count("createTaskz") == 1


# --- records --------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_calls_are_recorded_without_the_key() -> None:
    async with running() as sim:
        task_id = (await create(sim)).json["taskId"]
        await poll(sim, task_id)
        await api(sim, "getBalance", {"clientKey": "ucap_wrong_key_123456"})
        create_call = sim.calls[0]
        assert create_call.endpoint == "createTask"
        assert create_call.task_id == task_id
        assert create_call.task_type == "RecaptchaV2TaskProxyless"
        assert create_call.http_status == 200
        assert create_call.key_valid
        assert create_call.fault is None
        assert create_call.time <= _reactor().seconds()
        poll_calls = [c for c in sim.calls if c.endpoint == "getTaskResult"]
        assert poll_calls
        assert all(c.task_id == task_id for c in poll_calls)
        assert all(c.task_type == "RecaptchaV2TaskProxyless" for c in poll_calls)
        last = sim.calls[-1]
        assert last.endpoint == "getBalance"
        assert not last.key_valid
        assert last.http_status == 401
        assert sim.count("createTask") == 1
        assert sim.count("/getTaskResult", task_id) == len(poll_calls)
        assert sim.count("getTaskResult", "other") == 0
        dump = repr(sim.calls) + json.dumps([c.to_dict() for c in sim.calls])
        assert KEY not in dump
        assert "ucap_wrong_key_123456" not in dump


@deferred_f_from_coro_f
async def test_seeded_solve_times_are_reproducible() -> None:
    config = {"solve_time": {"*": SolveTime.lognormal(0.02, 0.5)}, "seed": 7}
    times: list[list[float]] = []
    for _ in range(2):
        async with running(fast_config(**config)) as sim:
            for _ in range(3):
                await create(sim)
            times.append([t.solve_time for t in sim.tasks.values()])
    assert times[0] == times[1]
    assert len(set(times[0])) == 3


# --- rate limit -----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_rate_limit_headers_and_429() -> None:
    async with running(fast_config(rate_limit=3, rate_window=0.5)) as sim:
        now = _reactor().seconds()
        remaining = []
        for _ in range(3):
            reply = await api(sim, "getBalance", {"clientKey": KEY})
            assert reply.status == 200
            assert reply.header("X-RateLimit-Limit") == "3"
            remaining.append(reply.header("X-RateLimit-Remaining"))
        assert remaining == ["2", "1", "0"]
        reset_text = reply.header("X-RateLimit-Reset")
        assert reset_text is not None
        assert len(reset_text.split(".")[1]) == 3
        reset = float(reset_text)
        assert now < reset <= now + 0.6
        limited = await api(sim, "createTask", {"clientKey": KEY, "task": RECAPTCHA})
        assert limited.status == 429
        assert limited.json["errorId"] == 1
        assert limited.json["errorCode"] == "ERROR_RATE_LIMIT"
        assert limited.header("X-RateLimit-Remaining") == "0"
        assert limited.header("X-RateLimit-Reset") == reset_text
        assert sim.tasks == {}  # the limited request was not processed
        assert sim.calls[-1].http_status == 429
        # control endpoints are not limited
        assert (await request("GET", f"{sim.url}/_simulator/health")).status == 200
        await asyncio.sleep(max(0.0, reset - _reactor().seconds()) + 0.02)
        again = await api(sim, "getBalance", {"clientKey": KEY})
        assert again.status == 200
        assert again.header("X-RateLimit-Remaining") == "2"
        assert float(again.header("X-RateLimit-Reset") or 0) > reset


# --- callbacks ------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_callbacks_on_success_and_failure() -> None:
    async with running() as sim, receiver() as (resource, cb_url):
        ok_id = (await create(sim, callbackUrl=cb_url + "?source=test")).json["taskId"]
        sim.add_fault(Fault("fail", times=1))
        failed_id = (await create(sim, callbackUrl=cb_url)).json["taskId"]
        await wait_for(lambda: len(resource.hits) == 2)
        hits = {hit["captcha_id"]: hit for hit in resource.hits}
        ok = hits[ok_id]
        assert ok["status"] == "1"
        assert ok["source"] == "test"  # the callback URL's own query is kept
        token = sim.tasks[ok_id].solution
        assert token is not None
        assert ok["code"] == token["gRecaptchaResponse"]
        assert hits[failed_id] == {"captcha_id": failed_id, "status": "0"}
        await wait_for(lambda: all(a.delivered for a in sim.callbacks))
        assert {a.task_id for a in sim.callbacks} == {ok_id, failed_id}
        assert all(a.http_status == 200 for a in sim.callbacks)


@deferred_f_from_coro_f
async def test_callback_with_image_text() -> None:
    async with running() as sim, receiver() as (resource, cb_url):
        task = {"type": "ImageToTextTask", "body": png_b64("K9")}
        task_id = (await create(sim, task, callbackUrl=cb_url)).json["taskId"]
        await wait_for(lambda: resource.hits)
        assert resource.hits[0] == {"captcha_id": task_id, "status": "1", "code": "K9"}


@deferred_f_from_coro_f
async def test_undeliverable_callbacks_are_recorded() -> None:
    async with running() as sim, receiver(status=500) as (resource, cb_url):
        await create(sim, callbackUrl=cb_url)
        await wait_for(lambda: sim.callbacks and sim.callbacks[0].http_status is not None)
        assert resource.hits
        assert not sim.callbacks[0].delivered
        assert sim.callbacks[0].http_status == 500
        closed_url = cb_url
    # the receiver is gone now: connection refused
    async with running() as sim:
        await create(sim, callbackUrl=closed_url)
        await wait_for(lambda: sim.callbacks and sim.callbacks[0].error)
        attempt = sim.callbacks[0]
        assert not attempt.delivered
        assert attempt.http_status is None
        assert attempt.error


@deferred_f_from_coro_f
async def test_no_callback_fault() -> None:
    async with running() as sim, receiver() as (resource, cb_url):
        sim.add_fault(Fault("no_callback", times=1))
        quiet_id = (await create(sim, callbackUrl=cb_url)).json["taskId"]
        loud_id = (await create(sim, callbackUrl=cb_url)).json["taskId"]
        await wait_for(lambda: len(sim.callbacks) == 2 and resource.hits)
        await poll(sim, quiet_id)
        await asyncio.sleep(0.05)
        assert [hit["captcha_id"] for hit in resource.hits] == [loud_id]
        quiet = next(a for a in sim.callbacks if a.task_id == quiet_id)
        assert not quiet.delivered
        assert quiet.error is not None
        assert "no_callback" in quiet.error
        assert sim.tasks[quiet_id].callback_suppressed


# --- faults ---------------------------------------------------------------------------------------


def test_fault_kinds_and_validation() -> None:
    assert set(FAULT_KINDS) == {
        "http_error",
        "html",
        "malformed_json",
        "truncated_json",
        "empty_body",
        "slow",
        "drop",
        "error_code",
        "rate_limit",
        "late_answer",
        "stuck",
        "fail",
        "fail_compat",
        "no_callback",
        "bad_token",
        "bad_cost",
    }
    with pytest.raises(ValueError, match="unknown fault kind"):
        Fault("explode")
    with pytest.raises(ValueError, match="createTask"):
        Fault("stuck", endpoint="getTaskResult")
    with pytest.raises(ValueError, match="endpoint"):
        Fault("drop", endpoint="nowhere")
    with pytest.raises(ValueError, match="code"):
        Fault("error_code")
    with pytest.raises(ValueError, match="times"):
        Fault("drop", times=0)
    assert Fault("drop", endpoint="/createTask").endpoint == "createTask"
    fault = Fault.from_dict({"kind": "slow", "delay": 2, "times": 1, "endpoint": "getBalance"})
    assert (fault.kind, fault.delay, fault.times, fault.endpoint) == ("slow", 2.0, 1, "getBalance")
    with pytest.raises(ValueError, match="unknown fault field"):
        Fault.from_dict({"kind": "slow", "sleep": 2})


@pytest.mark.parametrize("status", [500, 502, 503])
@deferred_f_from_coro_f
async def test_http_error_fault(status: int) -> None:
    async with running() as sim:
        fault = sim.add_fault(Fault("http_error", status=status, times=1))
        reply = await create(sim)
        assert reply.status == status
        assert (reply.header("Content-Type") or "").startswith("text/html")
        assert b"<html>" in reply.body
        assert str(status).encode() in reply.body
        assert sim.tasks == {}  # not processed
        assert sim.calls[-1].fault == "http_error"
        assert sim.calls[-1].http_status == status
        assert fault.fired == 1
        assert fault not in sim.faults  # used up
        assert (await create(sim)).status == 200
        assert sim.calls[-1].fault is None


@pytest.mark.parametrize("kind", ["html", "malformed_json", "empty_body"])
@deferred_f_from_coro_f
async def test_broken_body_faults(kind: str) -> None:
    async with running() as sim:
        sim.add_fault(Fault(kind, endpoint="getBalance"))
        for _ in range(2):  # times=None: fires every time
            reply = await api(sim, "getBalance", {"clientKey": KEY})
            assert reply.status == 200
            if kind == "empty_body":
                assert reply.body == b""
            else:
                with pytest.raises(ValueError):  # noqa: PT011 (json.JSONDecodeError)
                    json.loads(reply.body)
            if kind == "html":
                assert (reply.header("Content-Type") or "").startswith("text/html")
                assert b"<html" in reply.body
            else:
                assert (reply.header("Content-Type") or "").startswith("application/json")
        # only getBalance is affected
        assert (await create(sim)).status == 200
        assert [c.fault for c in sim.calls] == [kind, kind, None]


@deferred_f_from_coro_f
async def test_truncated_json_fault_processes_the_request() -> None:
    async with running() as sim:
        sim.add_fault(Fault("truncated_json", endpoint="createTask", times=1))
        reply = await create(sim)
        assert reply.status == 200
        with pytest.raises(ValueError):  # noqa: PT011
            json.loads(reply.body)
        assert reply.body.startswith(b'{"errorId":0,"taskId":"')
        assert len(sim.tasks) == 1  # the task exists: an orphan the client never learnt about
        task_id = next(iter(sim.tasks))
        assert task_id.encode()[:4] in reply.body or len(reply.body) < 30
        assert sim.balance(KEY) == pytest.approx(10.0 - 0.0045)


@deferred_f_from_coro_f
async def test_slow_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("slow", endpoint="getBalance", delay=0.2, times=1))
        before = set(sim._delayed)
        asking = asyncio.ensure_future(api(sim, "getBalance", {"clientKey": KEY}))
        await wait_for(lambda: sim._delayed - before, "the slow answer's timer")
        (timer,) = sim._delayed - before
        assert timer.active()
        assert not asking.done()  # no answer while the timer waits
        fired_before_reply: list[bool] = []
        asking.add_done_callback(lambda _: fired_before_reply.append(not timer.active()))
        reply = await asking
        assert fired_before_reply == [True]  # the answer came after the timer fired
        assert reply.status == 200
        assert reply.json == {"errorId": 0, "balance": 10.0}
        assert sim.calls[-1].fault == "slow"
        assert sim.calls[-1].http_status == 200


@deferred_f_from_coro_f
async def test_slow_fault_is_cancelled_when_the_client_leaves() -> None:
    async with running() as sim:
        sim.add_fault(Fault("slow", endpoint="createTask", delay=0.4, times=1))
        with pytest.raises(Exception):  # noqa: B017, PT011 (treq's timeout)
            await api(sim, "createTask", {"clientKey": KEY, "task": RECAPTCHA}, timeout=0.05)
        await wait_for(lambda: not sim._delayed)  # the timer was cancelled
        await asyncio.sleep(0.45)
        assert sim.tasks == {}  # never processed
        assert sim.calls[-1].http_status is None
        assert sim.balance(KEY) == 10.0


@deferred_f_from_coro_f
async def test_drop_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("drop", times=1))
        with pytest.raises(Exception) as raised:  # noqa: PT011
            await create(sim)
        assert "Response" in type(raised.value).__name__ or "Connection" in repr(raised.value)
        assert sim.tasks == {}
        assert sim.calls[-1].fault == "drop"
        assert sim.calls[-1].http_status is None
        assert (await create(sim)).status == 200


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ERROR_ZERO_BALANCE", None, 402),
        ("ERROR_KEY_DOES_NOT_EXIST", None, 401),
        ("ERROR_WRONG_CAPTCHA_ID", None, 404),
        ("ERROR_NO_SLOT_AVAILABLE", None, 200),
        ("NO_PROVIDERS_AVAILABLE", None, 503),
        ("ERROR_IP_BLOCKED", 403, 403),
    ],
)
@deferred_f_from_coro_f
async def test_error_code_fault(code: str, status: int | None, expected: int) -> None:
    async with running() as sim:
        sim.add_fault(Fault("error_code", code=code, status=status, times=1))
        reply = await create(sim)
        assert reply.status == expected
        assert reply.json["errorId"] == 1
        assert reply.json["errorCode"] == code
        assert isinstance(reply.json["errorDescription"], str)
        assert sim.tasks == {}
        assert sim.calls[-1].error_code == code


@deferred_f_from_coro_f
async def test_rate_limit_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("rate_limit", endpoint="getTaskResult", times=2))
        task_id = (await create(sim)).json["taskId"]
        for _ in range(2):
            reply = await result(sim, task_id)
            assert reply.status == 429
            assert reply.json["errorCode"] == "ERROR_RATE_LIMIT"
            assert reply.header("X-RateLimit-Remaining") == "0"
            assert reply.header("X-RateLimit-Limit") == "10000"
            assert float(reply.header("X-RateLimit-Reset") or 0) > _reactor().seconds()
        assert (await poll(sim, task_id)).json["status"] == "ready"


@deferred_f_from_coro_f
async def test_stuck_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("stuck", task_type="recaptcha", times=1))
        stuck_id = (await create(sim)).json["taskId"]
        image = await create(sim, {"type": "ImageToTextTask", "body": png_b64("1")})
        assert image.json["status"] == "ready"  # the fault matches reCAPTCHA only
        normal_id = (await create(sim)).json["taskId"]  # times=1: used up
        await poll(sim, normal_id)
        await asyncio.sleep(0.1)  # five solve times
        assert (await result(sim, stuck_id)).json == {"errorId": 0, "status": "processing"}
        assert sim.tasks[stuck_id].stuck
        # a stuck synchronous task answers "processing" at once
        sim.add_fault(Fault("stuck", task_type="ImageToTextTask", times=1))
        sync = await create(sim, {"type": "ImageToTextTask", "body": png_b64("2")})
        assert sync.json["status"] == "processing"
        assert "taskId" in sync.json


@deferred_f_from_coro_f
async def test_fail_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("fail", code="ERROR_RECAPTCHA_TIMEOUT", times=1))
        task_id = (await create(sim)).json["taskId"]
        reply = await poll(sim, task_id)
        assert reply.status == 200
        assert reply.json == {
            "errorId": 0,
            "status": "failed",
            "errorCode": "ERROR_RECAPTCHA_TIMEOUT",
            "errorDescription": "ERROR_RECAPTCHA_TIMEOUT",
        }
        assert sim.tasks[task_id].status == "failed"
        assert sim.tasks[task_id].error_code == "ERROR_RECAPTCHA_TIMEOUT"
        assert sim.tasks[task_id].solution is None
        assert sim.balance(KEY) == 10.0


@deferred_f_from_coro_f
async def test_fail_compat_fault() -> None:
    async with running() as sim:
        sim.add_fault(Fault("fail_compat", times=1))
        task_id = (await create(sim)).json["taskId"]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + HANG_GUARD
        while (reply := await result(sim, task_id)).json["errorId"] == 0:
            assert reply.json["status"] == "processing"
            assert loop.time() < give_up, "the task never failed (hung)"
            await asyncio.sleep(0.01)
        assert reply.status == 200
        assert reply.json["errorId"] == 1
        assert reply.json["errorCode"] == "ERROR_CAPTCHA_UNSOLVABLE"
        assert "status" not in reply.json
        assert sim.balance(KEY) == 10.0


@deferred_f_from_coro_f
async def test_fault_matching_by_endpoint_key_and_task_type() -> None:
    async with running() as sim:
        fault = sim.add_fault(
            Fault(
                "error_code",
                endpoint="getTaskResult",
                task_type="turnstile",
                code="ERROR_NO_SLOT_AVAILABLE",
            )
        )
        turnstile = {"type": "TurnstileTokenProxyLess", "websiteURL": PAGE, "websiteKey": "0x4"}
        ts_id = (await create(sim, turnstile)).json["taskId"]
        rc_id = (await create(sim)).json["taskId"]
        assert (await poll(sim, rc_id)).json["status"] == "ready"
        blocked = await result(sim, ts_id)
        assert blocked.json["errorCode"] == "ERROR_NO_SLOT_AVAILABLE"
        assert fault.fired == 1
        sim.remove_fault(fault)
        assert (await poll(sim, ts_id)).json["status"] == "ready"

        sim.add_fault(Fault("http_error", key=OTHER_KEY))
        assert (await balance(sim)) > 0  # KEY is not affected
        other = await api(sim, "getBalance", {"clientKey": OTHER_KEY})
        assert other.status == 503
        sim.clear_faults()
        assert sim.faults == []
        assert (await api(sim, "getBalance", {"clientKey": OTHER_KEY})).status == 200


# --- control endpoints ----------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_control_endpoints() -> None:
    async with running() as sim:
        base = f"{sim.url}/_simulator"
        health = await request("GET", f"{base}/health")
        assert health.status == 200
        assert health.json["status"] == "ok"
        assert health.json["url"] == sim.url

        fault = {"kind": "error_code", "code": "ERROR_NO_SLOT_AVAILABLE", "endpoint": "createTask"}
        added = await request("POST", f"{base}/faults", json={**fault, "times": 1})
        assert added.status == 201
        assert added.json["kind"] == "error_code"
        listed = await request("GET", f"{base}/faults")
        assert [f["code"] for f in listed.json] == ["ERROR_NO_SLOT_AVAILABLE"]
        assert (await create(sim)).json["errorCode"] == "ERROR_NO_SLOT_AVAILABLE"
        assert sim.faults == []

        await request("POST", f"{base}/faults", json={"kind": "drop"})
        assert len(sim.faults) == 1
        cleared = await request("DELETE", f"{base}/faults")
        assert cleared.json == {"removed": 1}
        assert sim.faults == []
        bad = await request("POST", f"{base}/faults", json={"kind": "explode"})
        assert bad.status == 400
        assert "explode" in bad.json["error"]

        patch = {"solve_time": {"*": "fixed:0.01", "recaptcha": "lognormal:0.02:0.1"}}
        patched = await request("POST", f"{base}/config", json={**patch, "rate_limit": 500})
        assert patched.status == 200
        assert patched.json["rate_limit"] == 500
        assert sim.config.rate_limit == 500
        assert sim.config.solve_time["recaptcha"] == SolveTime.lognormal(0.02, 0.1)
        assert sim.config.solve_time["*"] == SolveTime.fixed(0.01)
        patched = await request("POST", f"{base}/config", json={"keys": {"ucap_new": 2.5}})
        assert sim.balance("ucap_new") == 2.5
        for bad_patch in ({"rate_limit": "many"}, {"nope": 1}, {"solve_time": {"*": "weird"}}):
            reply = await request("POST", f"{base}/config", json=bad_patch)
            assert reply.status == 400
        assert sim.config.rate_limit == 500
        config = await request("GET", f"{base}/config")
        assert config.json["solve_time"]["recaptcha"] == "lognormal:0.02:0.1"
        assert KEY not in config.body.decode()

        task_id = (await create(sim)).json["taskId"]
        await poll(sim, task_id)
        tasks = await request("GET", f"{base}/tasks")
        assert [t["id"] for t in tasks.json] == [task_id]
        assert tasks.json[0]["status"] == "ready"
        calls = await request("GET", f"{base}/calls")
        assert calls.json[0]["endpoint"] == "createTask"
        assert all(not c["endpoint"].startswith("_simulator") for c in calls.json)
        assert len(calls.json) == len(sim.calls)
        assert (await request("DELETE", f"{base}/calls")).json["cleared"] == len(calls.json)
        assert sim.calls == []
        assert (await request("GET", f"{base}/callbacks")).json == []
        assert (await request("GET", f"{base}/nothing")).status == 404
        assert (await request("PUT", f"{base}/tasks")).status == 405
        assert (await request("POST", f"{base}/config", data=b"{")).status == 400


# --- configuration --------------------------------------------------------------------------------


def test_solve_time_specs() -> None:
    rng = random.Random(1)
    assert SolveTime.parse("fixed:0.1") == SolveTime.fixed(0.1)
    assert SolveTime.parse("0.25") == SolveTime.fixed(0.25)
    assert SolveTime.parse(2) == SolveTime.fixed(2)
    uniform = SolveTime.parse("uniform:1:3")
    assert uniform == SolveTime.uniform(1, 3)
    assert all(1 <= uniform.sample(rng) <= 3 for _ in range(100))
    lognormal = SolveTime.parse("lognormal:2.0:0.5")
    assert lognormal == SolveTime.lognormal(2.0, 0.5)
    samples = sorted(lognormal.sample(rng) for _ in range(401))
    assert 1.6 < samples[200] < 2.5  # the median
    assert SolveTime.fixed(0.3).sample(rng) == 0.3
    for spec in ("fixed:0.1", "uniform:1:3", "lognormal:2:0.5"):
        assert str(SolveTime.parse(spec)) == spec
    for bad in ("gauss:1:2", "fixed:1:2", "uniform:3:1", "lognormal:x:1", "fixed:-1", ""):
        with pytest.raises(ValueError):  # noqa: PT011
            SolveTime.parse(bad)


def test_config_lookups() -> None:
    config = SimulatorConfig()
    assert config.keys == {DEFAULT_API_KEY: 10.0}
    assert config.solve_time_for("RecaptchaV2TaskProxyless", "recaptcha") == SolveTime.fixed(0.05)
    assert config.cost_for("RecaptchaV2TaskProxyless", "recaptcha") == 0.0045
    assert config.cost_for("TurnstileTaskProxyless", "turnstile") == 0.003
    assert config.cost_for("ImageToTextTask", "image") == 0.001
    assert config.cost_for("HCaptchaTaskProxyless", "hcaptcha") == 0.002
    config.cost["RecaptchaV3TaskProxyless"] = 0.01
    assert config.cost_for("RecaptchaV3TaskProxyless", "recaptcha") == 0.01
    assert config.sync_types == {"ImageToTextTask"}
    assert (config.rate_limit, config.rate_window) == (10_000, 10.0)
    assert (config.token_ttl, config.result_ttl, config.callback_timeout) == (120.0, 300.0, 10.0)


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    assert "simulator" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exited:
        main(["simulator", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for option in ("--port", "--key", "--solve-time", "--cost", "--rate-limit", "--fault"):
        assert option in out


def test_cli_arguments_build_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(
        [
            "simulator",
            "--key",
            "ucap_a=5",
            "--key",
            "ucap_b",
            "--solve-time",
            "recaptcha=lognormal:2:0.5",
            "--solve-time",
            "fixed:0.1",
            "--cost",
            "ImageToTextTask=0.002",
            "--rate-limit",
            "5",
            "--rate-window",
            "2",
            "--seed",
            "3",
            "--fault",
            '{"kind": "http_error", "status": 502, "times": 2}',
        ]
    )
    config = config_from_args(args)
    assert config.keys == {"ucap_a": 5.0, "ucap_b": 10.0}
    assert config.solve_time["recaptcha"] == SolveTime.lognormal(2, 0.5)
    assert config.solve_time["*"] == SolveTime.fixed(0.1)
    assert config.cost["ImageToTextTask"] == 0.002
    assert (config.rate_limit, config.rate_window, config.seed) == (5, 2.0, 3)
    assert args.host == "127.0.0.1"
    assert args.port == 0
    [fault] = args.fault
    assert (fault.kind, fault.status, fault.times) == ("http_error", 502, 2)
    for bad in (["--fault", "{not json"], ["--solve-time", "bogus:1"], ["--key", "=3"]):
        with pytest.raises(SystemExit) as exited:
            build_parser().parse_args(["simulator", *bad])
        assert exited.value.code == 2
    assert "error" in capsys.readouterr().err
    default = config_from_args(build_parser().parse_args(["simulator"]))
    assert default.keys == {DEFAULT_API_KEY: 10.0}


@deferred_f_from_coro_f
async def test_cli_runs_a_simulator() -> None:
    env = dict(os.environ)
    root = PACKAGE_ROOT
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    fault = (
        '{"kind": "error_code", "endpoint": "getBalance", "code": "ERROR_IP_BLOCKED", "times": 1}'
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scrapy_ucaptcha.testing",
        "simulator",
        "--port",
        "0",
        "--key",
        "ucap_cli=2",
        "--solve-time",
        "fixed:0.02",
        "--fault",
        fault,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), HANG_GUARD)).decode()
        assert line.startswith("uCaptcha simulator: http://127.0.0.1:")
        url = line.split(": ", 1)[1].strip()
        blocked = await request("POST", f"{url}/getBalance", json={"clientKey": "ucap_cli"})
        assert blocked.json["errorCode"] == "ERROR_IP_BLOCKED"
        created = await request(
            "POST", f"{url}/createTask", json={"clientKey": "ucap_cli", "task": RECAPTCHA}
        )
        assert created.status == 200
        task_id = created.json["taskId"]
        loop = asyncio.get_running_loop()
        give_up = loop.time() + HANG_GUARD
        while True:
            reply = await request(
                "POST", f"{url}/getTaskResult", json={"clientKey": "ucap_cli", "taskId": task_id}
            )
            if reply.json["status"] == "ready":
                break
            assert loop.time() < give_up, "the task never became ready (hung)"
            await asyncio.sleep(0.02)
        assert reply.json["status"] == "ready"
        TokenVerifier().verify(
            reply.json["solution"]["gRecaptchaResponse"],
            sitekey=SITEKEY,
            page_url=PAGE,
            now=_reactor().seconds(),
        )
        tasks = await request("GET", f"{url}/_simulator/tasks")
        assert [t["id"] for t in tasks.json] == [task_id]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), HANG_GUARD)
    assert proc.returncode == 0, stderr.decode()
    assert b"Traceback" not in stderr


@deferred_f_from_coro_f
async def test_bad_token_fault_gives_a_token_the_site_refuses() -> None:
    async with running() as sim:
        sim.add_fault(Fault("bad_token", times=1))
        ids = []
        for _ in range(2):
            ids.append((await create(sim)).json["taskId"])
        await asyncio.sleep(0.1)  # both tasks take 0.02 s
        assert [sim.tasks[task_id].status for task_id in ids] == ["ready", "ready"]
        verifier = TokenVerifier(DEFAULT_SECRET)
        tokens = [
            (await result(sim, task_id)).json["solution"]["gRecaptchaResponse"] for task_id in ids
        ]
        with pytest.raises(InvalidToken, match="bad-signature"):
            verifier.verify(
                tokens[0], sitekey=RECAPTCHA["websiteKey"], page_url=RECAPTCHA["websiteURL"], now=0
            )
        claims = verifier.verify(
            tokens[1], sitekey=RECAPTCHA["websiteKey"], page_url=RECAPTCHA["websiteURL"], now=0
        )
        assert claims.family == "recaptcha"
