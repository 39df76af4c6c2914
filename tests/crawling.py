"""Full crawls against the simulator and the demo site, both on loopback: the shared harness."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from scrapy import Request, Spider
from scrapy.crawler import Crawler
from scrapy.http import Response, TextResponse
from scrapy.utils.test import get_crawler
from twisted.python.failure import Failure

from scrapy_ucaptcha.testing._serving import get_reactor
from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

SOLVE_MS = 50
HOST = "127.0.0.1"


@dataclass
class Env:
    sim: Simulator
    site: DemoSite

    def url(self, path: str) -> str:
        return self.site.url + path


@asynccontextmanager
async def environment(
    sim_config: SimulatorConfig | None = None, site_config: DemoSiteConfig | None = None
) -> AsyncIterator[Env]:
    sim = Simulator(
        sim_config or SimulatorConfig(solve_time={"*": SolveTime.fixed(SOLVE_MS / 1000)})
    )
    site = DemoSite(site_config or DemoSiteConfig(pages=20, challenge_share=0.25))
    sim.start()
    site.start()
    try:
        yield Env(sim, site)
    finally:
        await site.stop()
        await sim.stop()


def settings_for(env: Env, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "UCAPTCHA_API_URL": env.sim.url,
        "DOWNLOADER_MIDDLEWARES": {"scrapy_ucaptcha.UCaptchaMiddleware": 585},
        # solves take 50 ms in the simulator: one poll at 200 ms finds every task ready
        "UCAPTCHA_FIRST_POLL": 0.2,
        "UCAPTCHA_POLL_INTERVAL": 0.2,
        "UCAPTCHA_BACKOFF_BASE": 0.01,
        "UCAPTCHA_BACKOFF_MAX": 0.05,
        "HTTPERROR_ALLOW_ALL": True,
        "LOG_LEVEL": "DEBUG",
        # the telnet console listens on fixed ports (6023-6073): tests listen on free ports only
        "TELNETCONSOLE_ENABLED": False,
    }
    settings.update(overrides)
    return settings


@dataclass
class Outcome:
    """How one request of the spider ended: its callback got a page, or its errback a failure."""

    status: int | None = None
    title: str | None = None
    content: str | None = None
    info: dict[str, Any] | None = None
    error: BaseException | None = None
    url: str | None = None


@dataclass(frozen=True)
class Page:
    """A request the spider will send: ``path`` on the demo site, filed under ``key``."""

    path: str
    key: str
    cls: type[Request] = Request
    kwargs: dict[str, Any] = field(default_factory=dict)


def page(path: str, key: str | None = None, *, cls: type[Request] = Request, **kwargs: Any) -> Page:
    return Page(path, key or path, cls, kwargs)


class RecordingSpider(Spider):
    """Sends the pages it is given; records, per key, every callback and errback call."""

    name = "recording"

    def __init__(
        self,
        base: str = "",
        pages: Iterable[Page] = (),
        on_parsed: Callable[[str], object] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.pages = list(pages)
        self.outcomes: defaultdict[str, list[Outcome]] = defaultdict(list)
        self.parsed_at: dict[str, float] = {}
        self.on_parsed = on_parsed

    async def start(self) -> AsyncIterator[Request]:
        for spec in self.pages:
            yield spec.cls(
                self.base + spec.path,
                callback=self.parse,
                errback=self.errback,
                cb_kwargs={"key": spec.key},
                **spec.kwargs,
            )

    def parse(self, response: Response, key: str) -> None:
        self.parsed_at[key] = get_reactor().seconds()
        is_text = isinstance(response, TextResponse) and b"html" in (
            response.headers.get(b"Content-Type") or b""
        )
        self.outcomes[key].append(
            Outcome(
                status=response.status,
                title=response.css("h1.title::text").get() if is_text else None,
                content=" ".join(response.css("p.content::text").getall()) if is_text else None,
                info=response.meta.get("ucaptcha"),
                url=response.url,
            )
        )

        if self.on_parsed is not None:
            self.on_parsed(key)

    def errback(self, failure: Failure) -> None:
        key = failure.request.cb_kwargs["key"]  # type: ignore[attr-defined]
        self.outcomes[key].append(Outcome(error=failure.value))


class HeldSolves:
    """Holds every task of the simulator (a ``stuck`` fault) until the spider has parsed all of
    ``keys``, then releases them: "X happens while solves are pending" without racing a clock.

    Pass :meth:`parsed` as the spider's ``on_parsed``. Should the keys never all be parsed, a
    guard releases the tasks after ``guard`` seconds so that the crawl ends; ``in_order`` is then
    false and the test fails instead of hanging.
    """

    def __init__(self, env: Env, keys: Iterable[str], guard: float = 60.0) -> None:
        self.sim = env.sim
        self.waiting = set(keys)
        self.fault = env.sim.add_fault(Fault(kind="stuck"))
        self.released = False
        self.in_order = False
        self._reactor = get_reactor()
        self._guard = self._reactor.callLater(guard, self.release)

    def parsed(self, key: str) -> None:
        self.waiting.discard(key)
        if not self.waiting and not self.released:
            self.in_order = True
            self._reactor.callLater(0, self.release)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        if self._guard.active():
            self._guard.cancel()
        self.sim.remove_fault(self.fault)
        self.sim.release()


@dataclass
class Result:
    stats: dict[str, Any]
    outcomes: dict[str, list[Outcome]]
    reason: str
    spider: RecordingSpider
    crawler: Crawler
    all_stats: dict[str, Any] = field(repr=False, default_factory=dict)

    def only(self, key: str) -> Outcome:
        """The single outcome of ``key``: each request ends exactly once."""
        outcomes = self.outcomes.get(key, [])
        assert len(outcomes) == 1, f"{key} ended {len(outcomes)} times: {outcomes}"
        return outcomes[0]


async def crawl(
    env: Env,
    pages: Iterable[Page],
    *,
    spider_cls: type[RecordingSpider] = RecordingSpider,
    expect_all: bool = True,
    spider_kwargs: dict[str, Any] | None = None,
    **settings: Any,
) -> Result:
    """Crawl ``pages``; unless ``expect_all`` is off, check each ended exactly once."""
    pages = list(pages)
    crawler = get_crawler(spider_cls, settings_for(env, **settings))
    await crawler.crawl_async(base=env.site.url, pages=pages, **(spider_kwargs or {}))
    spider = crawler.spider
    assert isinstance(spider, RecordingSpider)
    assert crawler.stats is not None
    all_stats = crawler.stats.get_stats()
    result = Result(
        stats={k: v for k, v in all_stats.items() if k.startswith("ucaptcha/")},
        outcomes=dict(spider.outcomes),
        reason=str(all_stats.get("finish_reason")),
        spider=spider,
        crawler=crawler,
        all_stats=all_stats,
    )
    if expect_all:
        for spec in pages:
            result.only(spec.key)
    return result


def solved_stats(*, kind: str, task_type: str, cost: float, polls: int = 1) -> dict[str, Any]:
    """The exact ``ucaptcha/`` stats of a crawl that solved one challenge with one task."""
    stats: dict[str, Any] = {
        "ucaptcha/challenges": 1,
        f"ucaptcha/challenges/{kind}": 1,
        "ucaptcha/tasks/created": 1,
        "ucaptcha/tasks/ready": 1,
        f"ucaptcha/tasks/ready/{task_type}": 1,
        "ucaptcha/solved": 1,
        "ucaptcha/cost_usd": cost,
        f"ucaptcha/cost_usd/{HOST}": cost,
        "ucaptcha/api_calls/createTask": 1,
        **{f"ucaptcha/solve_time_ms/{s}": SOLVE_MS for s in ("min", "max", "mean", "p50", "p95")},
    }
    if polls:
        stats["ucaptcha/api_calls/getTaskResult"] = polls
    return stats
