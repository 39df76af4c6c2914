"""The progress line and the waiting / in-flight gauges."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from crawling import Env, crawl, page
from scrapy import Spider
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha.progress import Progress
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import SimulatorConfig, SolveTime

LINE = re.compile(
    r"uCaptcha: (\d+) request\(s\) waiting, (\d+) task\(s\) in flight, (\d+) solved "
    r"\(at (\d+)/min\), (\d+) gave up, \$(\d+\.\d{4}) spent"
)


def _progress(counts: list[tuple[int, int]], interval: float = 30.0) -> tuple[Progress, Any]:
    crawler = get_crawler(Spider)
    assert crawler.stats is not None
    return Progress(crawler.stats, interval, lambda: counts[-1]), crawler.stats


def test_a_line_while_anything_waits_and_gauges_always() -> None:
    counts = [(12, 8)]
    progress, stats = _progress(counts)
    stats.set_value("ucaptcha/solved", 40)
    stats.set_value("ucaptcha/gave_up", 1)
    stats.set_value("ucaptcha/cost_usd", 0.18)
    assert progress.tick() == (
        "uCaptcha: 12 request(s) waiting, 8 task(s) in flight, 40 solved (at 80/min), "
        "1 gave up, $0.1800 spent"
    )
    assert stats.get_value("ucaptcha/waiting") == 12
    assert stats.get_value("ucaptcha/tasks/in_flight") == 8
    stats.set_value("ucaptcha/solved", 46)
    counts.append((3, 0))
    line = progress.tick()
    assert line is not None
    assert "3 request(s) waiting, 0 task(s) in flight, 46 solved (at 12/min)" in line
    counts.append((0, 0))
    assert progress.tick() is None  # nothing waits: no line
    assert stats.get_value("ucaptcha/waiting") == 0
    assert stats.get_value("ucaptcha/tasks/in_flight") == 0


@deferred_f_from_coro_f
async def test_no_gauges_before_the_first_tick() -> None:
    progress, stats = _progress([(5, 5)])
    progress.start()
    await progress.stop()
    assert stats.get_value("ucaptcha/waiting") is None
    disabled, _ = _progress([(5, 5)], interval=0)
    disabled.start()
    await disabled.stop()


@pytest.mark.simulator(SimulatorConfig(solve_time={"*": SolveTime.fixed(1.0)}))
@pytest.mark.demo_site(DemoSiteConfig(pages=12, challenge_share=0.5))
@deferred_f_from_coro_f
async def test_progress_during_a_crawl_with_pending_solves(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Solves slower than the log interval: lines while requests wait, none once all is done;
    the gauges end at zero."""
    guarded = sorted(env.site.guarded_items)
    result = await crawl(
        env,
        [page(f"/item/{n}") for n in range(1, 13)],
        LOGSTATS_INTERVAL=0.2,
        UCAPTCHA_FIRST_POLL=0.2,
        UCAPTCHA_POLL_INTERVAL=0.2,
        LOG_LEVEL="INFO",
    )
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "scrapy_ucaptcha.progress" and r.levelno == logging.INFO
    ]
    parsed = [tuple(int(g) for g in LINE.fullmatch(line).groups()[:5]) for line in lines]  # type: ignore[union-attr]
    assert parsed, "no progress line while solves were pending"
    waiting = [p[0] for p in parsed]
    in_flight = [p[1] for p in parsed]
    solved = [p[2] for p in parsed]
    assert max(waiting) == len(guarded)  # every challenged request waited at once
    assert max(in_flight) == len(guarded)
    assert all(w or f for w, f in zip(waiting, in_flight, strict=True))
    assert solved == sorted(solved)
    assert all(p[4] == 0 for p in parsed)
    assert result.stats["ucaptcha/solved"] == len(guarded)
    assert result.stats["ucaptcha/waiting"] == 0
    assert result.stats["ucaptcha/tasks/in_flight"] == 0
