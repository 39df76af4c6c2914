"""Full crawls against the simulator and the demo site, both on loopback: the one crawl harness
of the suite.

Tests get the servers from the ``env`` fixture (tests/conftest.py, built on the pytest plugin's
``ucaptcha_simulator`` and ``ucaptcha_demo_site``) and crawl with :func:`crawl`: a
:class:`RecordingSpider` sends the given pages, records how each ended, and can send more pages
from a callback; a crawl that does not close is stopped after :data:`HANG_GUARD` seconds and
fails the test.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
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
from scrapy_ucaptcha.testing.pytest_plugin import FAST_SOLVE
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

#: The simulator's solve time (ms) in the default configuration: the plugin's.
SOLVE_MS = round(FAST_SOLVE * 1000)
HOST = "127.0.0.1"
#: Seconds after which a crawl counts as hung and is stopped. Only a guard against hanging the
#: suite: no test depends on how fast anything runs (a loaded machine may be slow).
HANG_GUARD = 120.0


def default_sim_config() -> SimulatorConfig:
    """Every task solved in :data:`SOLVE_MS` (the ``ucaptcha_simulator_config`` default)."""
    return SimulatorConfig(solve_time={"*": SolveTime.fixed(FAST_SOLVE)})


def default_site_config() -> DemoSiteConfig:
    """20 pages, a quarter of them challenged (the ``ucaptcha_demo_site_config`` default)."""
    return DemoSiteConfig(pages=20, challenge_share=0.25)


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
    """The simulator and the demo site, started; for the few set-ups the ``env`` fixture does
    not fit (servers started inside a test, more than one of each)."""
    sim = Simulator(sim_config or default_sim_config())
    site = DemoSite(site_config or default_site_config())
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
    """Sends the pages it is given; records, per key, every callback and errback call.

    ``followups`` (key → pages): what the callback of ``key`` sends next. ``on_parsed``: called
    with the key after each callback. ``ended[key]`` is set once ``key`` reached its callback or
    its errback.
    """

    name = "recording"

    def __init__(
        self,
        base: str = "",
        pages: Iterable[Page] = (),
        on_parsed: Callable[[str], object] | None = None,
        followups: Mapping[str, Iterable[Page]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.pages = list(pages)
        self.outcomes: defaultdict[str, list[Outcome]] = defaultdict(list)
        self.parsed_at: dict[str, float] = {}
        self.on_parsed = on_parsed
        self.followups = {key: list(specs) for key, specs in (followups or {}).items()}
        self.ended: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def request_for(self, spec: Page) -> Request:
        return spec.cls(
            self.base + spec.path,
            callback=self.parse,
            errback=self.errback,
            cb_kwargs={"key": spec.key},
            **spec.kwargs,
        )

    async def start(self) -> AsyncIterator[Request]:
        for spec in self.pages:
            yield self.request_for(spec)

    def parse(self, response: Response, key: str) -> list[Request]:
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
        self.ended[key].set()
        return [self.request_for(spec) for spec in self.followups.get(key, ())]

    def errback(self, failure: Failure) -> None:
        key = failure.request.cb_kwargs["key"]  # type: ignore[attr-defined]
        self.outcomes[key].append(Outcome(error=failure.value))
        self.ended[key].set()


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


async def until(
    condition: Callable[[], bool], what: str, *, guard: float = HANG_GUARD, poll: float = 0.01
) -> None:
    """Wait (on the reactor's loop) until ``condition`` holds, checking every ``poll`` seconds;
    after ``guard`` seconds it counts as hung and fails the test with ``what``."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + guard
    while not condition():
        assert loop.time() < give_up, f"never happened: {what}"
        await asyncio.sleep(poll)


def start_crawl(
    env: Env,
    pages: Iterable[Page],
    *,
    spider_cls: type[RecordingSpider] = RecordingSpider,
    spider_kwargs: Mapping[str, Any] | None = None,
    **settings: Any,
) -> tuple[Crawler, asyncio.Future[None]]:
    """Start crawling ``pages`` with :func:`settings_for` ``env``; the crawler, and the crawl to
    await with :func:`finish`."""
    crawler = get_crawler(spider_cls, settings_for(env, **settings))
    job = asyncio.ensure_future(
        crawler.crawl_async(base=env.site.url, pages=list(pages), **(spider_kwargs or {}))
    )
    return crawler, job


async def finish(crawler: Crawler, job: asyncio.Future[None]) -> Result:
    """Wait for the crawl to end; one that has not after :data:`HANG_GUARD` seconds is stopped
    and fails the test."""
    done, _ = await asyncio.wait({job}, timeout=HANG_GUARD)
    if done:
        job.result()  # a crawl that failed (a ConfigError, say) raises its own error
    else:
        await crawler.stop_async()
        await job
    result = result_of(crawler)
    assert done, f"the spider did not close within {HANG_GUARD:g} s (it hung)"
    return result


def result_of(crawler: Crawler) -> Result:
    """What the crawl of ``crawler`` (a :class:`RecordingSpider`) produced so far."""
    spider = crawler.spider
    assert isinstance(spider, RecordingSpider)
    assert crawler.stats is not None
    all_stats = crawler.stats.get_stats()
    return Result(
        stats={k: v for k, v in all_stats.items() if k.startswith("ucaptcha/")},
        outcomes=dict(spider.outcomes),
        reason=str(all_stats.get("finish_reason")),
        spider=spider,
        crawler=crawler,
        all_stats=all_stats,
    )


async def crawl(
    env: Env,
    pages: Iterable[Page],
    *,
    spider_cls: type[RecordingSpider] = RecordingSpider,
    expect: Iterable[str] | None = None,
    spider_kwargs: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Result:
    """Crawl ``pages`` to the end (see :func:`finish`); check that each key of ``expect`` (by
    default: every page) ended exactly once."""
    pages = list(pages)
    crawler, job = start_crawl(
        env, pages, spider_cls=spider_cls, spider_kwargs=spider_kwargs, **settings
    )
    result = await finish(crawler, job)
    for key in [spec.key for spec in pages] if expect is None else expect:
        result.only(key)
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
        # the accepted token is reported (feedbackTask, invalid: false)
        "ucaptcha/feedback/valid": 1,
        "ucaptcha/api_calls/feedbackTask": 1,
        **{f"ucaptcha/solve_time_ms/{s}": SOLVE_MS for s in ("min", "max", "mean", "p50", "p95")},
    }
    if polls:
        stats["ucaptcha/api_calls/getTaskResult"] = polls
    return stats
