"""The one-line crawl report: only figures that mean something."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Spider
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import UCaptchaExtension
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY


async def _summary(stats: dict[str, Any], reason: str | None = None) -> str:
    crawler = get_crawler(Spider, {"UCAPTCHA_API_KEY": DEFAULT_API_KEY})
    extension = UCaptchaExtension.from_crawler(crawler)
    try:
        assert crawler.stats is not None
        for key, value in stats.items():
            crawler.stats.set_value(key, value)
        return extension.summary(reason)
    finally:
        await extension.client.close()


SOLVED_ONE = {
    "ucaptcha/tasks/created": 1,
    "ucaptcha/solved": 1,
    "ucaptcha/cost_usd": 0.0045,
    "ucaptcha/solve_time_ms/p50": 50,
    "ucaptcha/solve_time_ms/p95": 50,
}

CASES = [
    ({}, None, "uCaptcha: no challenge met, nothing spent"),
    (
        {"ucaptcha/balance/start": 5.0},
        "ucaptcha_error_zero_balance",
        "uCaptcha: no challenge met, nothing spent, balance $5.0000 at start; "
        "spider closed by scrapy-ucaptcha: ucaptcha_error_zero_balance",
    ),
    (
        {"ucaptcha/presolve": 1, **SOLVED_ONE},
        "finished",
        "uCaptcha: 0 challenge(s), 1 presolve(s), 1 solved, 0 gave up, 0 unsolvable, 1 task(s), "
        "$0.0045 spent, solve time p50 50 ms / p95 50 ms",
    ),
    (
        {"ucaptcha/challenges": 2, "ucaptcha/gave_up": 2, "ucaptcha/tasks/created": 6},
        None,
        "uCaptcha: 2 challenge(s), 0 solved, 2 gave up, 0 unsolvable, 6 task(s), $0.0000 spent",
    ),
    (
        {"ucaptcha/challenges": 3, "ucaptcha/abandoned": 2, **SOLVED_ONE},
        "shutdown",
        "uCaptcha: 3 challenge(s), 1 solved, 0 gave up, 0 unsolvable, 2 abandoned, 1 task(s), "
        "$0.0045 spent, solve time p50 50 ms / p95 50 ms",
    ),
    (
        {"ucaptcha/challenges": 1, "ucaptcha/unsolvable": 1},
        "finished",
        "uCaptcha: 1 challenge(s), 0 solved, 0 gave up, 1 unsolvable, 0 task(s), $0.0000 spent",
    ),
]


@pytest.mark.parametrize(("stats", "reason", "line"), CASES)
@deferred_f_from_coro_f
async def test_summary(stats: dict[str, Any], reason: str | None, line: str) -> None:
    assert await _summary(stats, reason) == line
