"""The add-on, refusals at start, the extension's balance and report, and shutdown."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from crawling import HOST, Env, RecordingSpider, crawl, page, settings_for
from scrapy import Request, Spider
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import (
    Addon,
    ConfigError,
    UCaptchaExtension,
    UCaptchaMiddleware,
)
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY, Fault

RECAPTCHA_COST = 0.0045


def _guarded(env: Any) -> str:
    return f"/item/{min(env.site.guarded_items)}"


@deferred_f_from_coro_f
async def test_addon_alone_enables_solving_and_the_report(env: Env) -> None:
    path = _guarded(env)
    result = await crawl(
        env,
        [page(path)],
        DOWNLOADER_MIDDLEWARES={},
        ADDONS={Addon: 500},
    )
    assert result.only(path).info is not None
    assert result.stats["ucaptcha/solved"] == 1
    assert result.stats["ucaptcha/balance/start"] == 10.0
    assert result.stats["ucaptcha/balance/end"] == pytest.approx(10.0 - RECAPTCHA_COST)
    assert result.stats["ucaptcha/api_calls/getBalance"] == 2


def test_addon_keeps_the_users_priorities() -> None:
    crawler = get_crawler(
        Spider,
        {
            "ADDONS": {Addon: 500},
            "DOWNLOADER_MIDDLEWARES": {UCaptchaMiddleware: 640},
            "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        },
    )
    middlewares = crawler.settings.getdict("DOWNLOADER_MIDDLEWARES")
    extensions = crawler.settings.getdict("EXTENSIONS")
    assert middlewares[UCaptchaMiddleware] == 640
    assert extensions[UCaptchaExtension] == 500


def test_addon_sets_the_documented_priorities() -> None:
    crawler = get_crawler(Spider, {"ADDONS": {Addon: 500}, "UCAPTCHA_API_KEY": DEFAULT_API_KEY})
    assert crawler.settings.getdict("DOWNLOADER_MIDDLEWARES")[UCaptchaMiddleware] == 585
    assert crawler.settings.getdict("EXTENSIONS")[UCaptchaExtension] == 500


@deferred_f_from_coro_f
async def test_enabled_without_a_key_refuses_to_start(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UCAPTCHA_API_KEY", raising=False)
    settings = settings_for(env)
    del settings["UCAPTCHA_API_KEY"]
    crawler = get_crawler(RecordingSpider, settings)
    with pytest.raises(ConfigError, match="UCAPTCHA_API_KEY"):
        await crawler.crawl_async(base=env.site.url, pages=[page("/")])


@deferred_f_from_coro_f
async def test_a_bad_setting_refuses_to_start_naming_it(env: Env) -> None:
    crawler = get_crawler(RecordingSpider, settings_for(env, UCAPTCHA_POLL_INTERVAL="soon"))
    with pytest.raises(ConfigError, match="UCAPTCHA_POLL_INTERVAL"):
        await crawler.crawl_async(base=env.site.url, pages=[page("/")])


@deferred_f_from_coro_f
async def test_disabled_means_not_configured(env: Env) -> None:
    path = _guarded(env)
    result = await crawl(env, [page(path)], UCAPTCHA_ENABLED=False)
    assert result.only(path).info is None
    assert result.stats == {}
    assert env.sim.calls == []


@deferred_f_from_coro_f
async def test_extension_closes_the_spider_on_a_refused_key(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = await crawl(
        env,
        [page("/")],
        expect=(),
        UCAPTCHA_API_KEY="ucap_notakeythesimulatorknows0000",
        EXTENSIONS={UCaptchaExtension: 500},
    )
    assert result.reason == "ucaptcha_error_key_does_not_exist"
    assert result.stats["ucaptcha/errors/error_key_does_not_exist"] == 1
    assert "ucaptcha/balance/end" not in result.stats
    assert env.sim.count("createTask") == 0
    assert "ucap_notakeythesimulatorknows0000" not in caplog.text


@deferred_f_from_coro_f
async def test_extension_logs_one_summary_line(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    path = _guarded(env)
    await crawl(env, [page(path), page("/protected/managed")], EXTENSIONS={UCaptchaExtension: 500})
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("uCaptcha: ")]
    assert lines == [
        "uCaptcha: 2 challenge(s), 1 solved, 0 gave up, 1 unsolvable, 1 task(s), "
        "$0.0045 spent, solve time p50 50 ms / p95 50 ms, balance $10.0000 → $9.9955"
    ]


class StopOnPlainPage(RecordingSpider):
    """Closes the crawl from the callback of a plain page, while challenges are still parked."""

    def parse(self, response: Response, key: str) -> list[Request]:
        followups = super().parse(response, key)
        if key == "plain":
            raise CloseSpider("test_stop")
        return followups


@deferred_f_from_coro_f
async def test_close_with_solves_pending_abandons_them_cleanly(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.sim.add_fault(Fault(kind="stuck"))
    challenged = [f"/item/{i}" for i in sorted(env.site.guarded_items)[:3]]
    plain = next(f"/item/{i}" for i in range(1, 30) if i not in env.site.guarded_items)
    result = await crawl(
        env,
        [page(p) for p in challenged] + [page(plain, "plain", priority=-10)],
        spider_cls=StopOnPlainPage,
        expect=(),
        CONCURRENT_REQUESTS=1,
    )
    assert result.reason == "test_stop"
    assert result.stats["ucaptcha/abandoned"] == 3
    # the spider may close before every createTask answer is in: count what the API made
    created = result.stats.get("ucaptcha/tasks/created", 0)
    assert created == len(env.sim.tasks) <= 3
    assert result.stats.get("ucaptcha/tasks/abandoned", 0) == created
    assert "ucaptcha/gave_up" not in result.stats
    assert all(not result.outcomes.get(p) for p in challenged)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
    middleware = result.crawler.get_downloader_middleware(UCaptchaMiddleware)
    assert middleware is not None
    assert middleware.solver.in_flight == 0  # no poll is left to run after close
    assert middleware.waiting == 0
    assert HOST in env.site.url


# --- callbacks (webhooks) -------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_callbacks_wake_the_poller_before_its_schedule(env: Env) -> None:
    path = _guarded(env)
    result = await crawl(
        env,
        [page(path)],
        UCAPTCHA_CALLBACK_URL=f"http://{HOST}:{{port}}/ucaptcha/callback",
        UCAPTCHA_CALLBACK_LISTEN=f"{HOST}:0",
        UCAPTCHA_FIRST_POLL=30,
        UCAPTCHA_POLL_INTERVAL=30,
    )
    assert result.only(path).info is not None
    (task,) = env.sim.tasks.values()
    assert task.callback_url is not None
    assert task.callback_url.endswith("/ucaptcha/callback")
    (callback,) = env.sim.callbacks
    assert callback.delivered
    polls = [c for c in env.sim.calls if c.endpoint == "getTaskResult"]
    assert len(polls) == 1
    # the one poll answered the callback: it came after it, long before the 30 s schedule
    assert callback.time <= polls[0].time < task.created_at + 30
    assert result.stats["ucaptcha/callbacks/received"] == 1
    assert result.stats["ucaptcha/solved"] == 1


@deferred_f_from_coro_f
async def test_a_lost_callback_falls_back_to_polling(env: Env) -> None:
    env.sim.add_fault(Fault(kind="no_callback"))
    path = _guarded(env)
    result = await crawl(
        env,
        [page(path)],
        UCAPTCHA_CALLBACK_URL=f"http://{HOST}:{{port}}/cb",
        UCAPTCHA_CALLBACK_LISTEN=f"{HOST}:0",
    )
    assert result.only(path).info is not None
    assert [c.delivered for c in env.sim.callbacks] == [False]
    assert "ucaptcha/callbacks/received" not in result.stats
    assert result.stats["ucaptcha/api_calls/getTaskResult"] == 1
