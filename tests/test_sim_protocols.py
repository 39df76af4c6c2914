"""The simulator's compatibility protocols (2captcha legacy, DeathByCaptcha, RiskByPass) over HTTP:
the same tasks, tokens, balances and faults as its JSON API, in each protocol's own shapes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import treq
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_to_future
from twisted.web.client import HTTPConnectionPool

from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)
from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET, TokenVerifier, render_captcha_png

KEY = DEFAULT_API_KEY
SITEKEY = "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-"
PAGE = "https://shop.example/login"
RECAPTCHA_COST = 0.0045


@dataclass
class Reply:
    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()

    def header(self, name: str) -> str | None:
        values = self.headers.getRawHeaders(name)
        return values[0] if values else None


async def request(method: str, url: str, **kwargs: Any) -> Reply:
    from twisted.internet import reactor

    pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call]
    response = await deferred_to_future(
        treq.request(method, url, pool=pool, timeout=10, allow_redirects=False, **kwargs)
    )
    body = await deferred_to_future(treq.content(response))
    return Reply(response.code, response.headers, body)


@asynccontextmanager
async def simulator(solve: float = 0.0, **config: Any) -> AsyncIterator[Simulator]:
    sim = Simulator(SimulatorConfig(solve_time={"*": SolveTime.fixed(solve)}, **config))
    sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def settle() -> None:
    """Let tasks with a solve time of 0 complete (they do on the next reactor turns)."""
    for _ in range(3):
        await asyncio.sleep(0.01)


def verify(token: str, sim: Simulator) -> None:
    TokenVerifier(DEFAULT_SECRET).verify(
        token, sitekey=SITEKEY, page_url=PAGE, now=sim._now(), action=None
    )


# --- 2captcha legacy ------------------------------------------------------------------------------


async def legacy(sim: Simulator, path: str, verb: str = "POST", **fields: str) -> Reply:
    if verb == "GET":
        return await request("GET", f"{sim.url}/{path}", params=fields)
    return await request("POST", f"{sim.url}/{path}", data=fields)


@pytest.mark.parametrize("method", ["GET", "POST"])
@deferred_f_from_coro_f
async def test_legacy_plain_text_round_trip(method: str) -> None:
    async with simulator() as sim:
        submit = await legacy(
            sim,
            "in.php",
            method,
            key=KEY,
            method="userrecaptcha",
            googlekey=SITEKEY,
            pageurl=PAGE,
        )
        assert submit.status == 200
        assert submit.text.startswith("OK|")
        task_id = submit.text[3:]
        assert sim.tasks[task_id].type == "RecaptchaV2TaskProxyless"
        await settle()
        got = await legacy(sim, "res.php", method, key=KEY, action="get", id=task_id)
        assert got.status == 200
        assert got.text.startswith("OK|")
        verify(got.text[3:], sim)
        balance = await legacy(sim, "res.php", method, key=KEY, action="getbalance")
        assert balance.text == f"{10.0 - RECAPTCHA_COST:.4f}"
        report = await legacy(sim, "res.php", method, key=KEY, action="reportbad", id=task_id)
        assert report.text == "OK_REPORT_RECORDED"
        assert [f["invalid"] for f in sim.tasks[task_id].feedback] == [True]
        assert [(c.protocol, c.endpoint) for c in sim.calls] == [
            ("2captcha-legacy", "createTask"),
            ("2captcha-legacy", "getTaskResult"),
            ("2captcha-legacy", "getBalance"),
            ("2captcha-legacy", "feedbackTask"),
        ]


@deferred_f_from_coro_f
async def test_legacy_json_answers() -> None:
    async with simulator(solve=60.0) as sim:
        submit = await legacy(
            sim,
            "in.php",
            key=KEY,
            method="userrecaptcha",
            version="v3",
            action="login",
            min_score="0.7",
            googlekey=SITEKEY,
            pageurl=PAGE,
            json="1",
        )
        assert submit.json["status"] == 1
        task_id = submit.json["request"]
        task = sim.tasks[task_id]
        assert (task.type, task.action) == ("RecaptchaV3TaskProxyless", "login")
        waiting = await legacy(sim, "res.php", key=KEY, action="get", id=task_id, json="1")
        assert waiting.json == {"status": 0, "request": "CAPCHA_NOT_READY"}
        balance = await legacy(sim, "res.php", key=KEY, action="getbalance", json="1")
        assert balance.json == {"status": 1, "request": "9.9955"}
        good = await legacy(sim, "res.php", key=KEY, action="reportgood", id=task_id, json="1")
        assert good.json == {"status": 1, "request": "OK_REPORT_RECORDED"}


@deferred_f_from_coro_f
async def test_legacy_kinds_map_to_json_api_tasks() -> None:
    async with simulator() as sim:
        cases = [
            ({"method": "hcaptcha", "sitekey": SITEKEY}, "HCaptchaTaskProxyless"),
            ({"method": "turnstile", "sitekey": SITEKEY}, "TurnstileTaskProxyless"),
            (
                {"method": "userrecaptcha", "googlekey": SITEKEY, "enterprise": "1"},
                "RecaptchaV2EnterpriseTaskProxyless",
            ),
            (
                {
                    "method": "userrecaptcha",
                    "googlekey": SITEKEY,
                    "proxy": "user:pw@203.0.113.5:3128",
                    "proxytype": "HTTP",
                },
                "RecaptchaV2Task",
            ),
        ]
        for fields, task_type in cases:
            submit = await legacy(sim, "in.php", key=KEY, pageurl=PAGE, **fields)
            assert submit.text.startswith("OK|"), submit.text
            assert sim.tasks[submit.text[3:]].type == task_type
        png = render_captcha_png(DEFAULT_SECRET, "K7P2X")
        image = await legacy(
            sim, "in.php", key=KEY, method="base64", body=base64.b64encode(png).decode()
        )
        assert image.text.startswith("OK|")
        await settle()
        answer = await legacy(sim, "res.php", key=KEY, action="get", id=image.text[3:])
        assert answer.text == "OK|K7P2X"


@deferred_f_from_coro_f
async def test_legacy_errors_are_codes_with_the_api_statuses() -> None:
    async with simulator() as sim:
        bad_key = await legacy(
            sim, "in.php", key="ucap_wrong", method="hcaptcha", sitekey=SITEKEY, pageurl=PAGE
        )
        assert (bad_key.status, bad_key.text) == (401, "ERROR_KEY_DOES_NOT_EXIST")
        no_googlekey = await legacy(sim, "in.php", key=KEY, method="userrecaptcha", pageurl=PAGE)
        assert (no_googlekey.status, no_googlekey.text) == (400, "ERROR_GOOGLEKEY")
        no_action = await legacy(sim, "res.php", key=KEY, id="x", json="1")
        assert no_action.status == 400
        assert no_action.json["request"] == "ERROR_EMPTY_ACTION"
        unknown = await legacy(sim, "res.php", key=KEY, action="get", id="nope")
        assert (unknown.status, unknown.text) == (404, "ERROR_WRONG_CAPTCHA_ID")
        sim.set_balance(KEY, 0.0)
        broke = await legacy(
            sim, "in.php", key=KEY, method="hcaptcha", sitekey=SITEKEY, pageurl=PAGE
        )
        assert (broke.status, broke.text) == (402, "ERROR_ZERO_BALANCE")
        assert sim.tasks == {}


@deferred_f_from_coro_f
async def test_legacy_failed_task_is_unsolvable_and_refunded() -> None:
    async with simulator() as sim:
        sim.add_fault(Fault("fail", times=1))
        submit = await legacy(
            sim, "in.php", key=KEY, method="hcaptcha", sitekey=SITEKEY, pageurl=PAGE
        )
        await settle()
        got = await legacy(sim, "res.php", key=KEY, action="get", id=submit.text[3:])
        assert (got.status, got.text) == (200, "ERROR_CAPTCHA_UNSOLVABLE")
        assert sim.balance(KEY) == 10.0


@deferred_f_from_coro_f
async def test_request_faults_take_the_protocols_shape() -> None:
    async with simulator() as sim:
        sim.add_fault(Fault("error_code", endpoint="createTask", code="ERROR_NO_SLOT_AVAILABLE"))
        sim.add_fault(Fault("http_error", endpoint="getBalance", status=502, times=1))
        sim.add_fault(Fault("rate_limit", endpoint="getTaskResult", times=1))
        fields = {"key": KEY, "method": "hcaptcha", "sitekey": SITEKEY, "pageurl": PAGE}
        slot = await legacy(sim, "in.php", **fields)
        assert (slot.status, slot.text) == (200, "ERROR_NO_SLOT_AVAILABLE")
        down = await legacy(sim, "res.php", key=KEY, action="getbalance")
        assert down.status == 502
        assert b"<html>" in down.body
        limited = await legacy(sim, "res.php", key=KEY, action="get", id="x")
        assert (limited.status, limited.text) == (429, "ERROR_RATE_LIMIT")
        assert limited.header("x-ratelimit-remaining") == "0"
        assert [c.fault for c in sim.calls] == ["error_code", "http_error", "rate_limit"]


# --- DeathByCaptcha -------------------------------------------------------------------------------


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.mark.parametrize("submit_path", ["/api", "/api/captcha"])
@deferred_f_from_coro_f
async def test_dbc_round_trip(submit_path: str) -> None:
    async with simulator() as sim:
        params = json.dumps({"googlekey": SITEKEY, "pageurl": PAGE})
        submit = await request(
            "POST",
            sim.url + submit_path,
            data={"authtoken": KEY, "type": "4", "token_params": params},
        )
        assert submit.status == 303
        task_id = submit.json["captcha"]
        assert submit.header("location") == f"/api/captcha/{task_id}"
        assert submit.json["is_correct"] is True
        assert sim.tasks[task_id].type == "RecaptchaV2TaskProxyless"
        await settle()
        poll_path = "/api/" if submit_path == "/api" else "/api/captcha/"
        got = await request("GET", f"{sim.url}{poll_path}{task_id}")  # no key needed
        assert got.status == 200
        assert got.json["solved"] is True
        assert got.json["is_correct"] is True
        verify(got.json["text"], sim)
        user = await request("POST", f"{sim.url}/api/user", headers=basic(KEY))
        assert user.json == {"user": 0, "rate": 0, "balance": 9.9955, "is_banned": False}
        report = await request(
            "POST", f"{sim.url}/api/captcha/{task_id}/report", data={"authtoken": KEY}
        )
        assert report.status == 200
        assert report.json["is_correct"] is False
        assert sim.tasks[task_id].refunded
        assert sim.balance(KEY) == 10.0
        again = await request(
            "POST", f"{sim.url}/api/captcha/{task_id}/report", data={"authtoken": KEY}
        )
        assert again.status == 200
        assert sim.balance(KEY) == 10.0  # refunded once


@deferred_f_from_coro_f
async def test_dbc_types_map_to_json_api_tasks() -> None:
    async with simulator(solve=60.0) as sim:
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("5", "token_params", {"googlekey": SITEKEY, "action": "a", "min_score": 0.3}),
            ("25", "token_enterprise_params", {"googlekey": SITEKEY}),
            ("7", "hcaptcha_params", {"sitekey": SITEKEY}),
            ("12", "turnstile_params", {"sitekey": SITEKEY}),
        ]
        types = []
        for kind, field, params in cases:
            submit = await request(
                "POST",
                f"{sim.url}/api/captcha",
                data={
                    "authtoken": KEY,
                    "type": kind,
                    field: json.dumps({"pageurl": PAGE, **params}),
                },
            )
            assert submit.status == 303, submit.body
            types.append(sim.tasks[submit.json["captcha"]].type)
            pending = await request("GET", f"{sim.url}/api/captcha/{submit.json['captcha']}")
            assert (pending.json["is_correct"], pending.json["solved"]) == (True, False)
        assert types == [
            "RecaptchaV3TaskProxyless",
            "RecaptchaV2EnterpriseTaskProxyless",
            "HCaptchaTaskProxyless",
            "TurnstileTaskProxyless",
        ]
        png = render_captcha_png(DEFAULT_SECRET, "M3X9Y")
        image = await request(
            "POST",
            f"{sim.url}/api/captcha",
            data={"authtoken": KEY, "captchafile": "base64:" + base64.b64encode(png).decode()},
        )
        assert sim.tasks[image.json["captcha"]].type == "ImageToTextTask"


@deferred_f_from_coro_f
async def test_dbc_errors() -> None:
    async with simulator() as sim:
        params = json.dumps({"sitekey": SITEKEY, "pageurl": PAGE})
        form = {"type": "7", "hcaptcha_params": params}
        bad_key = await request("POST", f"{sim.url}/api", data={"authtoken": "nope", **form})
        assert (bad_key.status, bad_key.json["error"]) == (403, "not-logged-in")
        no_key = await request("POST", f"{sim.url}/api/user")
        assert no_key.status == 403
        bad_type = await request("POST", f"{sim.url}/api", data={"authtoken": KEY, "type": "99"})
        assert (bad_type.status, bad_type.json["error"]) == (400, "invalid-captcha")
        unknown = await request("GET", f"{sim.url}/api/captcha/nope")
        assert unknown.status == 200
        assert (unknown.json["is_correct"], unknown.json["solved"]) == (False, False)
        report = await request(
            "POST", f"{sim.url}/api/captcha/nope/report", data={"authtoken": KEY}
        )
        assert report.status == 503
        assert "not found" in report.json["error"]
        sim.add_fault(Fault("fail", times=1))
        failing = await request("POST", f"{sim.url}/api", data={"authtoken": KEY, **form})
        await settle()
        failed = await request("GET", f"{sim.url}/api/{failing.json['captcha']}")
        assert failed.json["error"] == "Task failed"
        assert (failed.json["is_correct"], failed.json["solved"]) == (False, True)
        sim.set_balance(KEY, 0.0)
        broke = await request("POST", f"{sim.url}/api", data={"authtoken": KEY, **form})
        assert (broke.status, broke.json["error"]) == (403, "insufficient-funds")
        sim.add_fault(Fault("http_error", endpoint="createTask", status=503, times=1))
        sim.set_balance(KEY, 1.0)
        overload = await request("POST", f"{sim.url}/api", data={"authtoken": KEY, **form})
        assert overload.status == 503


# --- RiskByPass -----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_riskbypass_round_trip() -> None:
    async with simulator(user_agent="Mozilla/5.0 (sim)") as sim:
        headers = {"x-api-key": KEY}
        submit = await request(
            "POST",
            f"{sim.url}/task/submit",
            json={"task_type": "recaptchav2", "target_url": PAGE, "site_key": SITEKEY},
            headers=headers,
        )
        assert submit.status == 200
        assert submit.json["ok"] is True
        task_id = submit.json["task_id"]
        await settle()
        got = await request("GET", f"{sim.url}/task/result/{task_id}", headers=headers)
        assert got.json["status"] == "SUCCESS"
        assert got.json["result"]["ua"] == "Mozilla/5.0 (sim)"
        verify(got.json["result"]["token"], sim)
        by_body = await request("POST", f"{sim.url}/api/user/balance", json={"token": KEY})
        assert by_body.json == {"ok": True, "balance": 9.9955}
        by_query = await request("POST", f"{sim.url}/api/user/balance", params={"token": KEY})
        assert by_query.json["balance"] == 9.9955
        no_report = await request("POST", f"{sim.url}/task/report/{task_id}", headers=headers)
        assert no_report.status == 404
        assert no_report.json["ok"] is False


@deferred_f_from_coro_f
async def test_riskbypass_states_and_errors() -> None:
    async with simulator(solve=60.0, idle_time=30.0) as sim:
        headers = {"x-api-key": KEY}
        body = {"task_type": "turnstile", "target_url": PAGE, "site_key": SITEKEY}
        submit = await request("POST", f"{sim.url}/task/submit", json=body, headers=headers)
        task_id = submit.json["task_id"]
        queued = await request("GET", f"{sim.url}/task/result/{task_id}")
        assert queued.json == {"status": "QUEUED"}
        sim.tasks[task_id].status = "processing"
        running = await request("GET", f"{sim.url}/task/result/{task_id}")
        assert running.json == {"status": "RUNNING"}
        unknown = await request("GET", f"{sim.url}/task/result/nope", headers=headers)
        assert unknown.json == {"status": "NOT_FOUND"}
        bad_key = await request(
            "POST", f"{sim.url}/task/submit", json=body, headers={"x-api-key": "nope"}
        )
        assert bad_key.status == 401
        assert bad_key.json["ok"] is False
        assert bad_key.json["code"] == "ERROR_KEY_DOES_NOT_EXIST"
        image = await request(
            "POST", f"{sim.url}/task/submit", json={"task_type": "image"}, headers=headers
        )
        assert (image.status, image.json["code"]) == (400, "TASK_NOT_SUPPORTED")
        sim.set_balance(KEY, 0.0)
        broke = await request("POST", f"{sim.url}/task/submit", json=body, headers=headers)
        assert (broke.status, broke.json["code"]) == (402, "ERROR_ZERO_BALANCE")
        assert len(sim.tasks) == 1


# --- which protocols are served -------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_only_the_configured_protocols_are_served() -> None:
    async with simulator(protocols={"deathbycaptcha"}) as sim:
        legacy_answer = await legacy(sim, "res.php", key=KEY, action="getbalance")
        assert legacy_answer.status == 404
        json_api = await request("POST", f"{sim.url}/getBalance", json={"clientKey": KEY})
        assert json_api.status == 404
        assert json_api.json["errorCode"] == "ERROR_NO_SUCH_METHOD"
        user = await request("POST", f"{sim.url}/api/user", data={"authtoken": KEY})
        assert user.status == 200
        sim.configure({"protocols": ["createTask"]})
        assert (await request("POST", f"{sim.url}/getBalance", json={"clientKey": KEY})).json[
            "balance"
        ] == 10.0
        assert sim.config.to_dict()["protocols"] == ["createTask"]
        with pytest.raises(ValueError, match="protocols"):
            sim.configure({"protocols": ["soap"]})


def test_the_cli_option_picks_the_protocols() -> None:
    from scrapy_ucaptcha.testing.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(
        ["simulator", "--protocol", "riskbypass", "--protocol", "2captcha-legacy"]
    )
    assert config_from_args(args).protocols == {"riskbypass", "2captcha-legacy"}
    default = build_parser().parse_args(["simulator"])
    assert config_from_args(default).protocols == {
        "createTask",
        "2captcha-legacy",
        "deathbycaptcha",
        "riskbypass",
    }
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulator", "--protocol", "soap"])


@deferred_f_from_coro_f
async def test_the_protocols_are_ucaptchas_not_other_dialects() -> None:
    async with simulator(dialect="capsolver") as sim:
        answer = await legacy(sim, "res.php", key=KEY, action="getbalance")
        assert answer.status == 404
        assert [c.protocol for c in sim.calls] == ["2captcha-legacy"]
