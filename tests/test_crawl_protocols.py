"""Full crawls on each compatibility protocol (``UCAPTCHA_PROTOCOL``) against the simulator and
the demo site: pages delivered, tasks and cost counted, rejected tokens reported (or solved again
where the protocol has no report), account errors closing the crawl, giving up within
``UCAPTCHA_MAX_ATTEMPTS``, and the key in no log line."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from crawling import HOST, Env, Result, crawl, page
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha import CaptchaSolveError, UCaptchaExtension
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY, Fault

PROTOCOLS = ["2captcha-legacy", "deathbycaptcha", "riskbypass"]
RECAPTCHA = "RecaptchaV2TaskProxyless"

#: The time figures of a protocol's answers are measured by the client (none of these protocols
#: sends a solve time), so crawls check that they are there, not their values.
TIME_KEYS = {f"ucaptcha/solve_time_ms/{s}" for s in ("min", "max", "mean", "p50", "p95")}


def counted(result: Result) -> dict[str, Any]:
    """The ``ucaptcha/*`` stats but the measured solve times, which must all be there."""
    timed = {k for k in result.stats if k.startswith("ucaptcha/solve_time_ms/")}
    assert timed in (set(), TIME_KEYS), timed
    return {k: v for k, v in result.stats.items() if k not in TIME_KEYS}


def guarded(env: Env) -> str:
    return f"/item/{min(env.site.guarded_items)}"


def charged(env: Env) -> float:
    """What the simulator kept of the balance: the tasks' cost, refunds deducted."""
    return round(10.0 - env.sim.balance(DEFAULT_API_KEY), 8)


def reconciled(cost: float) -> dict[str, Any]:
    """The stats of a cost none of the answers gave: the balance at the crawl's first task and
    at its close tell it (the budget's estimates are replaced by then)."""
    return {
        "ucaptcha/api_calls/getBalance": 2,
        "ucaptcha/cost_source/balance": cost,
        "ucaptcha/cost_source/estimate": 0.0,
    }


KINDS = [
    ("item", "recaptcha_v2", RECAPTCHA),
    ("/v3", "recaptcha_v3", "RecaptchaV3TaskProxyless"),
    ("/enterprise", "recaptcha_enterprise", "RecaptchaV2EnterpriseTaskProxyless"),
    ("/hcaptcha", "hcaptcha", "HCaptchaTaskProxyless"),
    ("/turnstile", "turnstile", "TurnstileTaskProxyless"),
]
FORM_TEMPLATES = {f"{HOST}/v3": {"detect": {"css": "form#search-form"}}}
IMAGE_TEMPLATES = {f"{HOST}/image": {"detect": {"image": {"css": "img#captcha-image"}}}}


#: Protocols with an endpoint for accepted tokens (2captcha legacy: ``reportgood``).
REPORTS_ACCEPTED = frozenset({"2captcha-legacy"})


def accepted_report(protocol: str) -> dict[str, int]:
    """The stats of one accepted-token report, where the protocol takes them."""
    if protocol not in REPORTS_ACCEPTED:
        return {}
    return {"ucaptcha/feedback/valid": 1, "ucaptcha/api_calls/feedbackTask": 1}


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize(("path", "kind", "task_type"), KINDS)
@deferred_f_from_coro_f
async def test_each_kind_is_solved(
    env: Env, protocol: str, path: str, kind: str, task_type: str
) -> None:
    path = guarded(env) if path == "item" else path
    result = await crawl(
        env, [page(path)], UCAPTCHA_PROTOCOL=protocol, UCAPTCHA_TASKS=FORM_TEMPLATES
    )
    outcome = result.only(path)
    assert outcome.error is None, outcome.error
    assert outcome.title
    assert outcome.content
    assert outcome.info is not None
    assert outcome.info["type"] == task_type
    assert outcome.info["attempts"] == 1
    assert outcome.info["task_id"] in env.sim.tasks
    assert {c.protocol for c in env.sim.calls} == {protocol}
    cost = charged(env)
    assert cost > 0
    assert counted(result) == {
        "ucaptcha/challenges": 1,
        f"ucaptcha/challenges/{kind}": 1,
        "ucaptcha/tasks/created": 1,
        "ucaptcha/tasks/ready": 1,
        f"ucaptcha/tasks/ready/{task_type}": 1,
        "ucaptcha/solved": 1,
        "ucaptcha/cost_usd": cost,
        f"ucaptcha/cost_usd/{HOST}": cost,
        "ucaptcha/api_calls/createTask": 1,
        "ucaptcha/api_calls/getTaskResult": 1,
        **reconciled(cost),
        **accepted_report(protocol),
    }
    assert result.reason == "finished"


@pytest.mark.parametrize("protocol", ["2captcha-legacy", "deathbycaptcha"])
@deferred_f_from_coro_f
async def test_image_captcha(env: Env, protocol: str) -> None:
    result = await crawl(
        env, [page("/image")], UCAPTCHA_PROTOCOL=protocol, UCAPTCHA_TASKS=IMAGE_TEMPLATES
    )
    outcome = result.only("/image")
    assert outcome.error is None, outcome.error
    assert outcome.info is not None
    assert outcome.info["type"] == "ImageToTextTask"
    assert counted(result)["ucaptcha/solved"] == 1


@deferred_f_from_coro_f
async def test_riskbypass_has_no_image_captchas(env: Env) -> None:
    result = await crawl(
        env, [page("/image")], UCAPTCHA_PROTOCOL="riskbypass", UCAPTCHA_TASKS=IMAGE_TEMPLATES
    )
    error = result.only("/image").error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "TASK_NOT_SUPPORTED"
    assert env.sim.count("createTask") == 0  # refused before any call
    assert env.sim.tasks == {}
    assert counted(result)["ucaptcha/gave_up"] == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_a_rejected_token_is_reported_or_solved_again(env: Env, protocol: str) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    path = guarded(env)
    result = await crawl(env, [page(path)], UCAPTCHA_PROTOCOL=protocol)
    outcome = result.only(path)
    assert outcome.error is None, outcome.error
    assert outcome.info is not None
    assert outcome.info["attempts"] == 2
    first = next(t for t in env.sim.tasks.values() if t.bad_token)
    reported = protocol != "riskbypass"
    assert [f["invalid"] for f in first.feedback] == ([True] if reported else [])
    # DeathByCaptcha's report refunds the rejected token
    assert first.refunded is (protocol == "deathbycaptcha")
    cost = charged(env)
    expected: dict[str, Any] = {
        "ucaptcha/challenges": 2,
        "ucaptcha/challenges/recaptcha_v2": 2,
        "ucaptcha/tasks/created": 2,
        "ucaptcha/tasks/ready": 2,
        f"ucaptcha/tasks/ready/{RECAPTCHA}": 2,
        "ucaptcha/tokens/rejected": 1,
        "ucaptcha/solved": 1,
        "ucaptcha/cost_usd": cost,
        f"ucaptcha/cost_usd/{HOST}": cost,
        "ucaptcha/api_calls/createTask": 2,
        "ucaptcha/api_calls/getTaskResult": 2,
        **reconciled(cost),
        **accepted_report(protocol),
    }
    if reported:
        expected["ucaptcha/feedback/invalid"] = 1
        # the rejected token's report, and the accepted one's where the protocol takes it
        expected["ucaptcha/api_calls/feedbackTask"] = 1 + (protocol in REPORTS_ACCEPTED)
    else:  # counted, and solved again
        expected["ucaptcha/feedback/not_supported"] = 1
    assert counted(result) == expected
    reports = int(reported) + (protocol in REPORTS_ACCEPTED)
    assert [c.endpoint for c in env.sim.calls].count("feedbackTask") == reports


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_a_wrong_key_closes_before_any_task(
    env: Env, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = "ucap_notakeythesimulatorknows0000"
    result = await crawl(
        env,
        [page(guarded(env))],
        expect=(),
        UCAPTCHA_PROTOCOL=protocol,
        UCAPTCHA_API_KEY=key,
        EXTENSIONS={UCaptchaExtension: 500},
    )
    assert result.reason == "ucaptcha_error_key_does_not_exist"
    assert env.sim.tasks == {}
    assert env.sim.count("createTask") == 0
    assert [(c.protocol, c.endpoint) for c in env.sim.calls] == [(protocol, "getBalance")]
    assert result.stats["ucaptcha/errors/error_key_does_not_exist"] == 1
    assert key not in caplog.text


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_zero_balance_closes(env: Env, protocol: str) -> None:
    env.sim.set_balance(DEFAULT_API_KEY, 0.0)
    paths = [f"/item/{i}" for i in sorted(env.site.guarded_items)[:3]]
    result = await crawl(
        env,
        [page(p) for p in paths],
        expect=(),
        UCAPTCHA_PROTOCOL=protocol,
        CONCURRENT_REQUESTS=1,
        UCAPTCHA_MAX_CONCURRENT_TASKS=1,
    )
    assert result.reason == "ucaptcha_error_zero_balance"
    assert env.sim.tasks == {}
    assert env.sim.count("createTask") == 1
    errors = [result.only(p).error for p in paths if result.outcomes.get(p)]
    assert errors
    assert all(isinstance(e, CaptchaSolveError) for e in errors)
    assert {e.code for e in errors} == {"ERROR_ZERO_BALANCE"}  # type: ignore[union-attr]
    assert result.stats["ucaptcha/errors/error_zero_balance"] == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_unsolvable_ends_in_the_errback_within_max_attempts(env: Env, protocol: str) -> None:
    env.sim.add_fault(Fault(kind="fail"))
    path = guarded(env)
    result = await crawl(env, [page(path)], UCAPTCHA_PROTOCOL=protocol, UCAPTCHA_MAX_ATTEMPTS=2)
    error = result.only(path).error
    assert isinstance(error, CaptchaSolveError)
    assert error.attempts == 2
    assert set(error.task_ids) == set(env.sim.tasks)
    assert len(env.sim.tasks) == 2
    assert all(t.refunded for t in env.sim.tasks.values())
    assert counted(result) == {
        "ucaptcha/challenges": 1,
        "ucaptcha/challenges/recaptcha_v2": 1,
        "ucaptcha/tasks/created": 2,
        "ucaptcha/tasks/failed": 2,
        "ucaptcha/errors/error_captcha_unsolvable": 2,
        "ucaptcha/gave_up": 1,
        "ucaptcha/api_calls/createTask": 2,
        "ucaptcha/api_calls/getTaskResult": 2,
        # the balance before the first task; refunded failures leave nothing to reconcile
        "ucaptcha/api_calls/getBalance": 1,
    }
    assert charged(env) == 0.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
@deferred_f_from_coro_f
async def test_the_key_is_never_logged(
    env: Env, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    env.sim.add_fault(Fault(kind="http_error", endpoint="getTaskResult", times=1))
    env.sim.add_fault(Fault(kind="fail", times=1))
    result = await crawl(
        env,
        [page(guarded(env)), page("/hcaptcha"), page("/turnstile")],
        UCAPTCHA_PROTOCOL=protocol,
        EXTENSIONS={UCaptchaExtension: 500},
    )
    assert result.stats["ucaptcha/solved"] == 3
    assert DEFAULT_API_KEY not in caplog.text
    assert all(DEFAULT_API_KEY not in str(v) for v in result.all_stats.values())


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("priced", [True, False])
@deferred_f_from_coro_f
async def test_the_budget_holds(env: Env, protocol: str, priced: bool) -> None:
    """With a price table, or with nothing but the balance (tasks reserved at their estimate)."""
    paths = [f"/item/{i}" for i in sorted(env.site.guarded_items)[:3]]
    prices: dict[str, Any] = {"UCAPTCHA_PRICES": {"recaptcha_v2": 0.0045}} if priced else {}
    result = await crawl(
        env,
        [page(p) for p in paths],
        expect=(),
        UCAPTCHA_PROTOCOL=protocol,
        UCAPTCHA_BUDGET=0.006,
        UCAPTCHA_MAX_CONCURRENT_TASKS=1,
        **prices,
    )
    assert result.reason == "ucaptcha_budget_exhausted"
    assert env.sim.count("createTask") == 1
    delivered = [p for p in paths if result.outcomes.get(p) and result.outcomes[p][0].info]
    assert len(delivered) == 1
    assert result.stats["ucaptcha/gave_up"] == 2
    assert result.stats["ucaptcha/cost_usd"] == charged(env) == 0.0045
    source = "price_table" if priced else "balance"
    assert result.stats[f"ucaptcha/cost_source/{source}"] == 0.0045
