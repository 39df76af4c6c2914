"""Pause and resume with JOBDIR: a stop while solves are pending keeps the waiting requests in the
job directory, and the next run crawls them again; every page is delivered exactly once across
both runs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
import scrapy
from crawling import (
    HOST,
    Env,
    Page,
    RecordingSpider,
    Result,
    crawl,
    finish,
    page,
    start_crawl,
    until,
)
from packaging.version import Version
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.keep import FILENAME
from scrapy_ucaptcha.state import PARK_KEY
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import Fault

if Version(scrapy.__version__) < Version("2.17"):
    # Scrapy before 2.17 opens a disk queue for each empty start-request priority when a JOBDIR
    # crawl resumes and never closes it (its init_prios): a ResourceWarning when collected
    pytestmark = pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
    )

ZONE = [f"/zone/{n}" for n in range(1, 6)]
HANG_GUARD = 20.0  # seconds a condition of these tests may take before it counts as hung


class MarkingSpider(RecordingSpider):
    """Counts the requests the middleware parked or made follow (their markers)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.markers = 0

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> MarkingSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.scheduled, signal=signals.request_scheduled)
        return spider

    def scheduled(self, request: Request, spider: Any) -> None:
        if PARK_KEY in request.meta:
            self.markers += 1


async def run_until_stopped(
    env: Env,
    pages: Iterable[Page],
    ready: Callable[[Crawler, MarkingSpider], bool],
    stop: str,
    **settings: Any,
) -> Result:
    """Crawl until ``ready`` holds, then stop as Ctrl-C (``shutdown``) or ``CloseSpider`` does."""
    crawler, job = start_crawl(env, pages, spider_cls=MarkingSpider, **settings)
    await until(lambda: crawler.spider is not None, "the spider opened", guard=HANG_GUARD)
    spider = crawler.spider
    assert isinstance(spider, MarkingSpider)
    await until(lambda: ready(crawler, spider), "the waits to stop at", guard=HANG_GUARD)
    if stop == "shutdown":
        await crawler.stop_async()
    else:
        assert crawler.engine is not None
        await crawler.engine.close_spider_async(reason="closespider_test")
    return await finish(crawler, job)


async def run_to_the_end(env: Env, pages: Iterable[Page], **settings: Any) -> Result:
    return await crawl(env, pages, spider_cls=MarkingSpider, expect=(), **settings)


def created(crawler: Crawler) -> int:
    assert crawler.stats is not None
    return int(crawler.stats.get_value("ucaptcha/tasks/created", 0))


@pytest.mark.parametrize("stop", ["shutdown", "closespider"])
@pytest.mark.demo_site(DemoSiteConfig(pages=40, challenge_share=0.5))
@deferred_f_from_coro_f
async def test_stop_with_pending_solves_then_resume_delivers_every_page_once(
    env: Env, tmp_path: Path, stop: str, caplog: pytest.LogCaptureFixture
) -> None:
    jobdir = str(tmp_path / "job")
    guarded = [f"/item/{i}" for i in sorted(env.site.guarded_items)]
    plain = [f"/item/{i}" for i in range(1, 41) if i not in env.site.guarded_items]
    pages = [page(p) for p in guarded + ZONE + plain]
    settings: dict[str, Any] = {
        "JOBDIR": jobdir,
        "UCAPTCHA_TASKS": {f"{HOST}/zone/*": {"scope": "domain"}},
        "UCAPTCHA_MAX_CONCURRENT_TASKS": 3,
        "LOG_LEVEL": "INFO",
    }
    challenged = len(guarded) + len(ZONE)
    held = env.sim.add_fault(Fault(kind="stuck"))  # every task is held until the stop

    first = await run_until_stopped(
        env,
        pages,
        lambda crawler, spider: spider.markers == challenged and created(crawler) == 3,
        stop,
        **settings,
    )
    # every challenged page waited: 3 with a task, the others for a task slot, 4 zone pages
    # following their leader's solve; all kept in the job directory, none abandoned
    assert first.stats["ucaptcha/kept"] == challenged
    assert first.stats["ucaptcha/tasks/created"] == 3
    assert first.stats["ucaptcha/tasks/abandoned"] == 3
    assert "ucaptcha/abandoned" not in first.stats
    assert "ucaptcha/solved" not in first.stats
    assert first.all_stats.get("scheduler/unserializable", 0) == 0
    assert all(not first.outcomes.get(p) for p in guarded + ZONE)
    assert (Path(jobdir) / FILENAME).exists()
    stop_lines = [r.message for r in caplog.records if "kept for the next run" in r.message]
    assert stop_lines == [
        f"closed with {challenged} request(s) waiting for a CAPTCHA solve and 0 sent back to "
        f"the scheduler: {challenged} kept for the next run, 0 abandoned; 3 task(s) in flight "
        "abandoned, 0 of them already solved and charged ($0.0000), 3 still solving"
    ]

    env.sim.remove_fault(held)
    second = await run_to_the_end(env, pages, **settings)
    assert second.reason == "finished"
    assert second.stats["ucaptcha/resumed"] == challenged
    assert "ucaptcha/kept" not in second.stats
    assert "ucaptcha/abandoned" not in second.stats
    assert not (Path(jobdir) / FILENAME).exists()

    for spec in pages:
        delivered = first.outcomes.get(spec.key, []) + second.outcomes.get(spec.key, [])
        assert len(delivered) == 1, f"{spec.key} delivered {len(delivered)} times"
        assert delivered[0].error is None
        assert delivered[0].title
        assert delivered[0].content
    assert second.stats["ucaptcha/solved"] == challenged
    # a task per guarded page and one for the whole zone, solved afresh
    assert second.stats["ucaptcha/tasks/created"] == len(guarded) + 1


@deferred_f_from_coro_f
async def test_tasks_solved_but_unused_at_the_stop_are_counted_as_charged(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobdir = str(tmp_path / "job")
    guarded = [f"/item/{i}" for i in sorted(env.site.guarded_items)[:3]]
    env.sim.add_fault(Fault(kind="stuck"))
    settings = {"JOBDIR": jobdir, "UCAPTCHA_FIRST_POLL": 60.0}
    released: list[list[str]] = []

    def ready(crawler: Crawler, spider: MarkingSpider) -> bool:
        if created(crawler) < 3:
            return False
        if not released:  # the tasks are solved, nobody has asked yet
            released.append(env.sim.release())
        return True

    caplog.set_level(logging.WARNING)
    first = await run_until_stopped(env, [page(p) for p in guarded], ready, "shutdown", **settings)
    assert [len(ids) for ids in released] == [3]
    assert first.stats["ucaptcha/tasks/abandoned"] == 3
    assert first.stats["ucaptcha/tasks/abandoned/charged"] == 3
    assert first.stats["ucaptcha/cost_usd"] == pytest.approx(3 * 0.0045)
    assert first.stats["ucaptcha/kept"] == 3
    charged = sum(t.cost for t in env.sim.tasks.values() if t.status == "ready")
    assert first.stats["ucaptcha/cost_usd"] == pytest.approx(charged)
    said = "3 of them already solved and charged ($0.0135)"
    assert any(said in r.message for r in caplog.records)

    env.sim.clear_faults()
    second = await run_to_the_end(
        env, [page(p) for p in guarded], JOBDIR=jobdir, UCAPTCHA_FIRST_POLL=0.2
    )
    for path in guarded:
        assert [o.title is not None for o in second.outcomes[path]] == [True]
