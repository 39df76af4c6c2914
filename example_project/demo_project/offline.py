"""Runs the example offline: the uCaptcha simulator and the demo site, in this process, on loopback.

Enabled in ``settings.py`` through ``ADDONS``. Unless ``DEMO_SITE_URL`` names a demo site of yours,
it starts both servers on free loopback ports and points ``UCAPTCHA_API_URL``, ``UCAPTCHA_API_KEY``
and ``DEMO_SITE_URL`` at them, even when a real ``UCAPTCHA_API_KEY`` is exported: the real API is
used only when you ask for it by setting ``DEMO_SITE_URL``. Offline, the Public Suffix List that
Scrapy's cookie handling needs comes from tldextract's bundled snapshot instead of the network.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.settings import SETTINGS_PRIORITIES

from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import (
    DEFAULT_API_KEY,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings

logger = logging.getLogger(__name__)


class OfflineDemo:
    """Starts the simulator and the demo site when the crawl has no uCaptcha API key."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.simulator: Simulator | None = None
        self.site: DemoSite | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> OfflineDemo:
        return cls(crawler)

    def update_settings(self, settings: BaseSettings) -> None:
        if settings.get("DEMO_SITE_URL"):
            return  # your demo site, and the API your settings name
        if settings.get("UCAPTCHA_API_KEY") or os.environ.get("UCAPTCHA_API_KEY"):
            logger.info(
                "UCAPTCHA_API_KEY is set, but DEMO_SITE_URL is not: running offline anyway; "
                "the real API is used only with DEMO_SITE_URL"
            )
        # no network: tldextract reads the Public Suffix List it bundles instead of fetching it
        # (Scrapy's cookie middleware builds its extractor after this, when the crawl starts)
        os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
        self.simulator = Simulator(
            SimulatorConfig(
                # realistic spread, scaled down so that the demo finishes in seconds
                solve_time={"*": SolveTime.lognormal(0.8, 0.4)},
                keys={DEFAULT_API_KEY: 5.0},
                seed=7,
            )
        )
        self.site = DemoSite(
            DemoSiteConfig(pages=settings.getint("DEMO_PAGES", 40), challenge_share=0.2)
        )
        api_url = self.simulator.start()
        site_url = self.site.start()
        # above any key or URL of the settings: a real key must never reach the simulator
        for name, value in (
            ("UCAPTCHA_API_KEY", DEFAULT_API_KEY),
            ("UCAPTCHA_API_URL", api_url),
            ("DEMO_SITE_URL", site_url),
        ):
            priority = max(settings.getpriority(name) or 0, SETTINGS_PRIORITIES["addon"])
            settings.set(name, value, priority=priority)
        # the simulator solves in about a second: poll faster than the real API's 5 s advice
        settings.set("UCAPTCHA_POLL_INTERVAL", 1.0, priority="addon")
        self.crawler.signals.connect(self.stop, signal=signals.engine_stopped)
        logger.info(
            "Running offline against the uCaptcha simulator at %s and the demo site at %s",
            api_url,
            site_url,
        )

    async def stop(self) -> None:
        if self.site is not None:
            await self.site.stop()
        if self.simulator is not None:
            await self.simulator.stop()
