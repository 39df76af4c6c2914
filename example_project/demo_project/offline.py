"""Runs the example offline: the uCaptcha simulator and the demo site, in this process, on loopback.

Enabled in ``settings.py`` through ``ADDONS``. When no API key is configured (neither the
``UCAPTCHA_API_KEY`` setting nor the environment variable), it starts both servers on free
loopback ports and points ``UCAPTCHA_API_URL``, ``UCAPTCHA_API_KEY`` and ``DEMO_SITE_URL`` at
them. With a key set it does nothing: the same settings then talk to the real API.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from scrapy import signals

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
        if settings.get("UCAPTCHA_API_KEY") or os.environ.get("UCAPTCHA_API_KEY"):
            return
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
        settings.set("UCAPTCHA_API_KEY", DEFAULT_API_KEY, priority="addon")
        settings.set("UCAPTCHA_API_URL", api_url, priority="addon")
        settings.set("DEMO_SITE_URL", site_url, priority="addon")
        # the simulator solves in about a second: poll faster than the real API's 5 s advice
        settings.set("UCAPTCHA_POLL_INTERVAL", 1.0, priority="addon")
        self.crawler.signals.connect(self.stop, signal=signals.engine_stopped)
        logger.info(
            "No UCAPTCHA_API_KEY: running offline against the uCaptcha simulator at %s "
            "and the demo site at %s",
            api_url,
            site_url,
        )

    async def stop(self) -> None:
        if self.site is not None:
            await self.site.stop()
        if self.simulator is not None:
            await self.simulator.stop()
