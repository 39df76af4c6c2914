"""Provider dialects: the table, the client in each dialect, and full crawls against each
provider as the simulator imitates it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from crawling import HOST, Env, crawl, page
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_ucaptcha import CaptchaSolveError, Config
from scrapy_ucaptcha.client import TaskStatus, UCaptchaClient
from scrapy_ucaptcha.config import ConfigError
from scrapy_ucaptcha.dialects import DIALECTS, KINDS, dialect_for_url, get_dialect
from scrapy_ucaptcha.errors import UCaptchaFatalError
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

NAMES = ["ucaptcha", "2captcha", "anticaptcha", "capsolver", "capmonster"]
FAST: dict[str, Any] = {
    "timeout": 2.0,
    "backoff_base": 0.01,
    "backoff_max": 0.05,
    "retry_deadline": 5.0,
}


# --- the table ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("https://api.ucaptcha.net", "ucaptcha"),
        ("https://api.2captcha.com", "2captcha"),
        ("https://api.anti-captcha.com/", "anticaptcha"),
        ("https://API.CapSolver.com", "capsolver"),
        ("https://api.capmonster.cloud", "capmonster"),
        ("http://127.0.0.1:8765", "ucaptcha"),
        ("https://captcha-proxy.example.net", "ucaptcha"),
    ],
)
def test_the_dialect_follows_the_api_host(url: str, name: str) -> None:
    assert dialect_for_url(url).name == name


def test_every_dialect_names_every_kind() -> None:
    assert sorted(DIALECTS) == sorted(NAMES)
    for dialect in DIALECTS.values():
        assert set(dialect.task_types) == KINDS, dialect.name


def test_an_unknown_dialect_is_refused_with_the_names() -> None:
    with pytest.raises(ValueError, match="capmonster"):
        get_dialect("deathbycaptcha")


def _config(**settings: Any) -> Config:
    return Config.from_settings(Settings({"UCAPTCHA_API_KEY": DEFAULT_API_KEY, **settings}))


def test_the_config_takes_the_dialect_and_its_type_names() -> None:
    config = _config(UCAPTCHA_API_URL="https://api.capsolver.com")
    assert config.dialect.name == "capsolver"
    assert config.task_types["recaptcha_v2"] == "ReCaptchaV2TaskProxyLess"
    assert config.task_types["turnstile"] == "AntiTurnstileTaskProxyLess"
    assert config.make_client().dialect.name == "capsolver"
    forced = _config(UCAPTCHA_API_URL="http://127.0.0.1:1", UCAPTCHA_DIALECT="CapMonster")
    assert forced.dialect.name == "capmonster"
    assert forced.task_types["recaptcha_v2"] == "RecaptchaV2TaskProxyless"
    overridden = _config(
        UCAPTCHA_API_URL="https://api.capsolver.com", UCAPTCHA_TASK_TYPES={"hcaptcha": "Mine"}
    )
    assert overridden.task_types["hcaptcha"] == "Mine"
    assert overridden.task_types["recaptcha_v3"] == "ReCaptchaV3TaskProxyLess"


def test_a_bad_dialect_setting_names_the_setting() -> None:
    with pytest.raises(ConfigError, match="UCAPTCHA_DIALECT"):
        _config(UCAPTCHA_DIALECT="nope")


# --- the client in each dialect -------------------------------------------------------------------

RECAPTCHA = {"websiteURL": "https://shop.example/login", "websiteKey": "6Le-wvkSAAAAAPBMRTvw0Q4M"}


@asynccontextmanager
async def simulated(dialect: str, **config: Any) -> AsyncIterator[tuple[Simulator, UCaptchaClient]]:
    settings: dict[str, Any] = {
        "solve_time": {"*": SolveTime.fixed(0.05)},
        "seed": 0,
        "dialect": dialect,
        **config,
    }
    sim = Simulator(SimulatorConfig(**settings))
    url = sim.start()
    client = UCaptchaClient(DEFAULT_API_KEY, api_url=url, dialect=dialect, **FAST)
    try:
        yield sim, client
    finally:
        await client.close()
        await sim.stop()


def _task(dialect: str, kind: str = "recaptcha_v2") -> dict[str, Any]:
    return {"type": DIALECTS[dialect].task_types[kind], **RECAPTCHA}


async def _wait_until_solved(sim: Simulator) -> None:
    """Until the simulator finished every task (without polling it: polls are counted)."""
    for _ in range(500):
        if all(t.status in ("ready", "failed") for t in sim.tasks.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the simulator did not finish its tasks")


@pytest.mark.parametrize("dialect", NAMES)
@deferred_f_from_coro_f
async def test_a_task_is_created_polled_and_priced_in_each_dialect(dialect: str) -> None:
    async with simulated(dialect) as (sim, client):
        sim.add_fault(Fault(kind="stuck", times=1))  # pending until released, however slow
        created = await client.create_task(_task(dialect))
        assert created.status is TaskStatus.PROCESSING  # CapSolver: "status": null
        expected_id = int if DIALECTS[dialect].id_type is int else str
        assert isinstance(created.task_id, expected_id)
        pending = await client.get_task_result(created.task_id)
        assert pending.is_pending  # CapMonster: errorId 1 CAPTCHA_NOT_READY
        assert sim.count("getTaskResult") == 1  # one HTTP call per poll, no retries
        assert sim.release() == [str(created.task_id)]
        await _wait_until_solved(sim)
        ready = await client.get_task_result(created.task_id)
        assert ready.is_ready
        assert ready.token
        price = sim.tasks[str(created.task_id)].cost
        if DIALECTS[dialect].cost_in_result:
            assert ready.cost == pytest.approx(price)  # a number or a numeric string
        else:
            assert ready.cost is None
        assert sim.count("getTaskResult") == 2
        assert await client.get_balance() == pytest.approx(10.0 - price)


@pytest.mark.parametrize("dialect", NAMES)
@deferred_f_from_coro_f
async def test_an_unsolvable_task_fails_and_says_whether_it_is_charged(dialect: str) -> None:
    async with simulated(dialect) as (sim, client):
        sim.add_fault(Fault(kind="fail", times=1))
        created = await client.create_task(_task(dialect))
        await _wait_until_solved(sim)
        failed = await client.get_task_result(created.task_id)
        assert failed.is_failed
        assert failed.error_code == "ERROR_CAPTCHA_UNSOLVABLE"
        assert failed.charged is (dialect == "anticaptcha")
        kept = sim.charged()
        assert kept == (sim.tasks[str(created.task_id)].cost if failed.charged else 0.0)


@pytest.mark.parametrize("dialect", NAMES)
@deferred_f_from_coro_f
async def test_a_wrong_key_is_fatal_in_each_dialect(dialect: str) -> None:
    async with simulated(dialect) as (_sim, client):
        client._key = "ucap_not-a-key-of-this-simulator"
        with pytest.raises(UCaptchaFatalError):
            await client.get_balance()
        with pytest.raises(UCaptchaFatalError):
            await client.create_task(_task(dialect))


@pytest.mark.parametrize("dialect", NAMES)
@deferred_f_from_coro_f
async def test_zero_balance_is_fatal_in_each_dialect(dialect: str) -> None:
    async with simulated(dialect, keys={DEFAULT_API_KEY: 0.0}) as (_sim, client):
        with pytest.raises(UCaptchaFatalError) as info:
            await client.create_task(_task(dialect))
        assert info.value.code == "ERROR_ZERO_BALANCE"


REPORTS = {
    # dialect: (recaptcha rejected, hcaptcha rejected, turnstile rejected, recaptcha accepted)
    "ucaptcha": ("feedbackTask", "feedbackTask", "feedbackTask", "feedbackTask"),
    "2captcha": ("reportIncorrect", "reportIncorrect", "reportIncorrect", "reportCorrect"),
    "anticaptcha": (
        "reportIncorrectRecaptcha",
        "reportIncorrectHcaptcha",
        None,
        "reportCorrectRecaptcha",
    ),
    "capsolver": ("feedbackTask", "feedbackTask", "feedbackTask", "feedbackTask"),
    "capmonster": (
        "reportIncorrectTokenCaptcha",
        "reportIncorrectTokenCaptcha",
        "reportIncorrectTokenCaptcha",
        None,
    ),
}


@pytest.mark.parametrize("dialect", NAMES)
@deferred_f_from_coro_f
async def test_reports_reach_the_endpoint_of_the_dialect(dialect: str) -> None:
    async with simulated(dialect) as (sim, client):
        cases = [
            ("recaptcha_v2", "recaptcha", False),
            ("hcaptcha", "hcaptcha", False),
            ("turnstile", "turnstile", False),
            ("recaptcha_v2", "recaptcha", True),
        ]
        for (kind, family, accepted), endpoint in zip(cases, REPORTS[dialect], strict=True):
            created = await client.create_task(_task(dialect, kind))
            await _wait_until_solved(sim)
            sent = await client.report(created.task_id, accepted=accepted, family=family)
            assert sent is (endpoint is not None)
            feedback = sim.tasks[str(created.task_id)].feedback
            if endpoint is None:
                assert feedback == []
                continue
            assert [(f["endpoint"], f["invalid"]) for f in feedback] == [(endpoint, not accepted)]


# --- crawls against each provider -----------------------------------------------------------------


def _sim_config(dialect: str) -> SimulatorConfig:
    return SimulatorConfig(solve_time={"*": SolveTime.fixed(0.05)}, dialect=dialect, seed=0)


def _account_sim_config(dialect: str, case: str) -> SimulatorConfig:
    config = _sim_config(dialect)
    if case == "zero_balance":
        config.keys = {DEFAULT_API_KEY: 0.0}
    return config


@pytest.mark.parametrize("dialect", NAMES)
@pytest.mark.simulator(from_params=_sim_config)
@deferred_f_from_coro_f
async def test_a_crawl_solves_each_kind_and_reports_a_rejected_token(
    env: Env, dialect: str
) -> None:
    recaptcha = DIALECTS[dialect].task_types["recaptcha_v2"]
    env.sim.add_fault(Fault(kind="bad_token", task_type=recaptcha, times=1))
    item = min(env.site.guarded_items)
    paths = [f"/item/{item}", "/hcaptcha", "/turnstile", "/enterprise"]
    result = await crawl(env, [page(p) for p in paths], UCAPTCHA_DIALECT=dialect)
    for path in paths:
        outcome = result.only(path)
        assert outcome.error is None, outcome.error
        assert outcome.status == 200
        assert outcome.content
    types = DIALECTS[dialect].task_types
    assert sorted(t.type for t in env.sim.tasks.values()) == sorted(
        [types["recaptcha_v2"]] * 2
        + [types["hcaptcha"], types["turnstile"], types["recaptcha_enterprise"]]
    )
    rejected = next(t for t in env.sim.tasks.values() if t.bad_token)
    endpoint = REPORTS[dialect][0]
    assert [(f["endpoint"], f["invalid"]) for f in rejected.feedback] == [(endpoint, True)]
    stats = result.stats
    assert stats["ucaptcha/solved"] == 4
    assert stats["ucaptcha/tasks/created"] == 5
    assert stats["ucaptcha/tokens/rejected"] == 1
    assert stats["ucaptcha/feedback/invalid"] == 1
    accepted = [
        f["endpoint"] for t in env.sim.tasks.values() for f in t.feedback if not f["invalid"]
    ]
    assert stats.get(f"ucaptcha/api_calls/{endpoint}") == 1 + accepted.count(endpoint)
    assert result.reason == "finished"
    assert f"ucaptcha/cost_usd/{HOST}" in stats


ACCEPTED: dict[str, dict[str, str | None]] = {
    # dialect: where an accepted token of each page's task is reported (None: nowhere)
    "ucaptcha": {p: "feedbackTask" for p in ("item", "hcaptcha", "turnstile", "enterprise")},
    "2captcha": {p: "reportCorrect" for p in ("item", "hcaptcha", "turnstile", "enterprise")},
    "anticaptcha": {
        "item": "reportCorrectRecaptcha",
        "hcaptcha": None,
        "turnstile": None,
        "enterprise": "reportCorrectRecaptcha",
    },
    "capsolver": {p: "feedbackTask" for p in ("item", "hcaptcha", "turnstile", "enterprise")},
    "capmonster": {p: None for p in ("item", "hcaptcha", "turnstile", "enterprise")},
}


@pytest.mark.parametrize("dialect", NAMES)
@pytest.mark.simulator(from_params=_sim_config)
@deferred_f_from_coro_f
async def test_an_accepted_token_is_reported_where_the_provider_takes_it(
    env: Env, dialect: str
) -> None:
    types = DIALECTS[dialect].task_types
    pages = {
        "item": (f"/item/{min(env.site.guarded_items)}", types["recaptcha_v2"]),
        "hcaptcha": ("/hcaptcha", types["hcaptcha"]),
        "turnstile": ("/turnstile", types["turnstile"]),
        "enterprise": ("/enterprise", types["recaptcha_enterprise"]),
    }
    result = await crawl(env, [page(p) for p, _ in pages.values()], UCAPTCHA_DIALECT=dialect)
    expected = ACCEPTED[dialect]
    by_type = {task.type: task for task in env.sim.tasks.values()}
    assert sorted(by_type) == sorted(t for _, t in pages.values())
    for name, (path, task_type) in pages.items():
        assert result.only(path).status == 200
        endpoint = expected[name]
        reports = [(f["endpoint"], f["invalid"]) for f in by_type[task_type].feedback]
        assert reports == ([] if endpoint is None else [(endpoint, False)]), name
    sent = [e for e in expected.values() if e is not None]
    stats = result.stats
    assert stats.get("ucaptcha/feedback/valid") == (len(sent) or None)
    for endpoint in set(sent):
        assert stats[f"ucaptcha/api_calls/{endpoint}"] == sent.count(endpoint)
    assert "ucaptcha/feedback/not_supported" not in stats
    assert "ucaptcha/feedback/invalid" not in stats


@pytest.mark.simulator(_sim_config("2captcha"))
@deferred_f_from_coro_f
async def test_accepted_tokens_are_not_reported_when_the_setting_says_so(env: Env) -> None:
    paths = [f"/item/{min(env.site.guarded_items)}", "/hcaptcha"]
    result = await crawl(
        env,
        [page(p) for p in paths],
        UCAPTCHA_DIALECT="2captcha",
        UCAPTCHA_FEEDBACK_ACCEPTED=False,
    )
    assert [result.only(p).status for p in paths] == [200, 200]
    assert result.stats["ucaptcha/solved"] == 2
    assert [t.feedback for t in env.sim.tasks.values()] == [[], []]
    assert "ucaptcha/feedback/valid" not in result.stats
    assert "ucaptcha/api_calls/reportCorrect" not in result.stats


@pytest.mark.simulator(_sim_config("ucaptcha"))
@deferred_f_from_coro_f
async def test_no_report_at_all_without_feedback(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    path = f"/item/{min(env.site.guarded_items)}"
    result = await crawl(env, [page(path)], UCAPTCHA_FEEDBACK=False)
    assert result.only(path).status == 200
    assert result.stats["ucaptcha/tokens/rejected"] == 1
    assert [t.feedback for t in env.sim.tasks.values()] == [[], []]
    assert env.sim.count("feedbackTask") == 0


@pytest.mark.simulator(_sim_config("capsolver"))
@deferred_f_from_coro_f
async def test_capsolver_type_names_are_needed_at_capsolver(env: Env) -> None:
    """Anti-Captcha's spelling is refused by the imitated CapSolver: the dialect's names are what
    make the crawl work, not luck."""
    item = min(env.site.guarded_items)
    result = await crawl(
        env,
        [page(f"/item/{item}")],
        UCAPTCHA_DIALECT="capsolver",
        UCAPTCHA_TASK_TYPES={"recaptcha_v2": "RecaptchaV2TaskProxyless"},
    )
    assert result.only(f"/item/{item}").error is not None
    assert result.stats["ucaptcha/errors/error_invalid_task_data"] == 1
    assert env.sim.tasks == {}


ACCOUNT_CASES = [
    ("wrong_key", {"UCAPTCHA_API_KEY": "ucap_not-a-key-of-this-simulator"}),
    ("zero_balance", {}),
]


@pytest.mark.parametrize("dialect", NAMES)
@pytest.mark.parametrize(("case", "settings"), ACCOUNT_CASES)
@pytest.mark.simulator(from_params=_account_sim_config)
@deferred_f_from_coro_f
async def test_a_refused_account_closes_the_crawl_before_any_task_in_each_dialect(
    env: Env, dialect: str, case: str, settings: dict[str, Any]
) -> None:
    """As on uCaptcha: the request ends in its errback, the spider closes with the code, and
    nothing is paid."""
    item = min(env.site.guarded_items)
    result = await crawl(
        env,
        [page(f"/item/{item}")],
        CONCURRENT_REQUESTS=1,
        UCAPTCHA_DIALECT=dialect,
        **settings,
    )
    error = result.only(f"/item/{item}").error
    assert isinstance(error, CaptchaSolveError)
    expected = {
        "wrong_key": (
            "ERROR_KEY_DENIED_ACCESS" if dialect == "capsolver" else "ERROR_KEY_DOES_NOT_EXIST"
        ),
        "zero_balance": "ERROR_ZERO_BALANCE",
    }[case]
    assert error.code == expected
    assert result.reason == f"ucaptcha_{expected.lower()}"
    assert env.sim.tasks == {}
    assert env.sim.charged() == 0.0
    assert "ucaptcha/cost_usd" not in result.stats


@pytest.mark.parametrize(
    ("body", "content_type", "query"),
    [
        (b'{"errorId":0,"taskId":74372499132,"status":"ready"}', b"application/json", ""),
        (b'{"taskId":"9f1c-uuid","status":"ready","solution":{}}', b"application/json", ""),
        (b"id=74372499132&code=03AG", b"application/x-www-form-urlencoded", ""),
        (b"", b"text/plain", "?captcha_id=74372499132&status=1"),
    ],
)
@deferred_f_from_coro_f
async def test_posted_callbacks_of_the_compatible_providers_are_understood(
    body: bytes, content_type: bytes, query: str
) -> None:
    import treq

    from scrapy_ucaptcha.callbacks import CallbackListener

    listener = CallbackListener("127.0.0.1", 0, "http://127.0.0.1:{port}/cb")
    url = listener.start()
    task_id = "9f1c-uuid" if b"uuid" in body else 74372499132
    try:
        listener.expect(task_id)
        headers: dict[bytes | str, bytes | str] = {b"Content-Type": content_type}
        response = await maybe_deferred_to_future(
            treq.post(url + query, data=body, headers=headers)
        )
        await maybe_deferred_to_future(treq.content(response))
        assert response.code == 200
        assert await listener.wait(task_id, 5.0)
        assert listener.unknown == 0
    finally:
        await listener.stop()


def test_the_simulator_command_takes_a_dialect() -> None:
    from scrapy_ucaptcha.testing.__main__ import build_parser, config_from_args

    args = build_parser().parse_args(["simulator", "--dialect", "capmonster"])
    assert config_from_args(args).dialect == "capmonster"
    assert config_from_args(build_parser().parse_args(["simulator"])).dialect == "ucaptcha"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["simulator", "--dialect", "deathbycaptcha"])
    with pytest.raises(ValueError, match="dialect must be one of"):
        SimulatorConfig(dialect="nope")


@pytest.mark.simulator(_sim_config("ucaptcha"))
@deferred_f_from_coro_f
async def test_a_report_that_fails_loses_nothing(env: Env) -> None:
    env.sim.add_fault(
        Fault(kind="error_code", endpoint="feedbackTask", code="ERROR_NO_SUCH_METHOD")
    )
    path = f"/item/{min(env.site.guarded_items)}"
    result = await crawl(env, [page(path)])
    assert result.only(path).status == 200
    assert result.reason == "finished"
    assert result.stats["ucaptcha/solved"] == 1
    assert env.sim.count("feedbackTask") == 1
    assert "ucaptcha/feedback/valid" not in result.stats
