"""The pytest plugin of scrapy-ucaptcha: loopback servers and a crawl function for spider tests.

Installed with the package (entry point ``pytest11``, name ``ucaptcha``), so a project that has
scrapy-ucaptcha and pytest-twisted installed gets these fixtures without any import:

* ``ucaptcha_simulator`` -- a running :class:`~scrapy_ucaptcha.testing.simulator.Simulator` on a
  free loopback port (its configuration: the ``ucaptcha_simulator_config`` fixture);
* ``ucaptcha_demo_site`` -- a running :class:`~scrapy_ucaptcha.testing.demo_site.DemoSite` (its
  configuration: ``ucaptcha_demo_site_config``);
* ``ucaptcha_settings`` -- Scrapy settings that point the middleware at the simulator;
* ``ucaptcha_crawl`` -- ``await ucaptcha_crawl(SpiderClass, **spider_kwargs)`` runs one crawl with
  those settings (plus ``settings=``) and returns a :class:`CrawlResult` (items, stats, the
  crawler); :func:`crawl` does the same with settings of your own.

Tests that crawl are coroutines run on the reactor: ``async def`` decorated with Scrapy's
``scrapy.utils.defer.deferred_f_from_coro_f``.

It also makes ``--reactor=asyncio`` work on every supported Python: it installs the asyncio
reactor on a new event loop before pytest-twisted asks for the current one (which Python 3.12+
warns about, and Twisted before 26 does).
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler

__all__ = ["Crawl", "CrawlResult", "crawl", "crawl_settings"]

#: The simulator's solve time in the default ``ucaptcha_simulator_config`` (seconds).
FAST_SOLVE = 0.05


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Install the asyncio reactor on a fresh event loop when pytest-twisted is asked for it."""
    try:
        reactor_name = config.getoption("reactor")
    except ValueError:  # pytest-twisted is not installed: it is the one that runs the reactor
        return
    if reactor_name != "asyncio":
        return
    from scrapy.utils.reactor import install_reactor  # noqa: PLC0415  (imports asyncio support)

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")


def _wait(awaitable: Awaitable[Any]) -> Any:
    """Run ``awaitable`` on the reactor and wait for it (from a fixture, outside the reactor)."""
    try:
        import pytest_twisted  # noqa: PLC0415  (optional: only these fixtures need it)
    except ImportError:  # pragma: no cover - depends on the environment
        raise pytest.UsageError(
            "the ucaptcha fixtures need pytest-twisted: pip install pytest-twisted, and run"
            " pytest with --reactor=asyncio"
        ) from None
    from scrapy.utils.defer import deferred_from_coro  # noqa: PLC0415

    return pytest_twisted.blockon(deferred_from_coro(awaitable))


@pytest.fixture
def ucaptcha_simulator_config() -> SimulatorConfig:
    """Override to configure ``ucaptcha_simulator``; default: every task solved in 50 ms."""
    return SimulatorConfig(solve_time={"*": SolveTime.fixed(FAST_SOLVE)})


@pytest.fixture
def ucaptcha_simulator(ucaptcha_simulator_config: SimulatorConfig) -> Iterator[Simulator]:
    """A running uCaptcha API simulator on a free 127.0.0.1 port, stopped after the test."""
    sim = Simulator(ucaptcha_simulator_config)
    sim.start()
    try:
        yield sim
    finally:
        _wait(sim.stop())


@pytest.fixture
def ucaptcha_demo_site_config() -> DemoSiteConfig:
    """Override to configure ``ucaptcha_demo_site``; default: 20 pages, a quarter challenged."""
    return DemoSiteConfig(pages=20, challenge_share=0.25)


@pytest.fixture
def ucaptcha_demo_site(ucaptcha_demo_site_config: DemoSiteConfig) -> Iterator[DemoSite]:
    """The running demo challenge site on a free 127.0.0.1 port, stopped after the test."""
    site = DemoSite(ucaptcha_demo_site_config)
    site.start()
    try:
        yield site
    finally:
        _wait(site.stop())


def crawl_settings(simulator: Simulator, **overrides: Any) -> dict[str, Any]:
    """Settings that enable scrapy-ucaptcha (the add-on) against ``simulator``, plus ``overrides``.

    Polls are quick (the simulator solves in milliseconds) and the telnet console is off (it
    listens on fixed ports).
    """
    settings: dict[str, Any] = {
        "ADDONS": {"scrapy_ucaptcha.Addon": 500},
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "UCAPTCHA_API_URL": simulator.url,
        "UCAPTCHA_FIRST_POLL": 0.2,
        "UCAPTCHA_POLL_INTERVAL": 0.2,
        "UCAPTCHA_BACKOFF_BASE": 0.01,
        "UCAPTCHA_BACKOFF_MAX": 0.05,
        "TELNETCONSOLE_ENABLED": False,
    }
    settings.update(overrides)
    return settings


@pytest.fixture
def ucaptcha_settings(ucaptcha_simulator: Simulator) -> dict[str, Any]:
    """:func:`crawl_settings` for ``ucaptcha_simulator``; a test may change the dict."""
    return crawl_settings(ucaptcha_simulator)


@dataclass
class CrawlResult:
    """What one crawl produced."""

    crawler: Crawler
    items: list[Any] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def ucaptcha_stats(self) -> dict[str, Any]:
        """The ``ucaptcha/...`` stats only."""
        return {k: v for k, v in self.stats.items() if k.startswith("ucaptcha/")}

    @property
    def finish_reason(self) -> str | None:
        reason = self.stats.get("finish_reason")
        return None if reason is None else str(reason)


async def crawl(
    spider_cls: type[Spider], settings: Mapping[str, Any], **spider_kwargs: Any
) -> CrawlResult:
    """Run one crawl of ``spider_cls`` with ``settings``; collect its items and stats."""
    from scrapy import signals  # noqa: PLC0415  (keeps the plugin's import light)
    from scrapy.utils.test import get_crawler  # noqa: PLC0415

    crawler = get_crawler(spider_cls, dict(settings))
    result = CrawlResult(crawler)

    def scraped(item: Any) -> None:  # signals keep weak references: this one lives in result
        result.items.append(item)

    crawler.signals.connect(scraped, signal=signals.item_scraped, weak=False)
    await crawler.crawl_async(**spider_kwargs)
    assert crawler.stats is not None
    result.stats = crawler.stats.get_stats()
    return result


class Crawl(Protocol):
    """The type of the ``ucaptcha_crawl`` fixture."""

    def __call__(
        self,
        spider_cls: type[Spider],
        *,
        settings: Mapping[str, Any] | None = None,
        **spider_kwargs: Any,
    ) -> Awaitable[CrawlResult]: ...


@pytest.fixture
def ucaptcha_crawl(ucaptcha_settings: dict[str, Any]) -> Crawl:
    """``await ucaptcha_crawl(SpiderClass, settings={...}, **spider_kwargs)``: one crawl with
    ``ucaptcha_settings`` (updated with ``settings``); returns a :class:`CrawlResult`.
    """

    def run(
        spider_cls: type[Spider],
        *,
        settings: Mapping[str, Any] | None = None,
        **spider_kwargs: Any,
    ) -> Awaitable[CrawlResult]:
        return crawl(spider_cls, {**ucaptcha_settings, **(settings or {})}, **spider_kwargs)

    return run
