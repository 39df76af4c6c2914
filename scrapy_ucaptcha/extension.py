"""Balance at start and end, an early stop on a refused key, and one summary line in the crawl log.

Solving works with the middleware alone; this extension adds the account view: it asks for the
balance when the spider opens (a bad key, a blocked IP or an empty account closes the spider
before any page is paid for), records ``ucaptcha/balance/start`` and ``ucaptcha/balance/end``,
and logs one summary line at close.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals

from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.config import Config
from scrapy_ucaptcha.errors import UCaptchaError, UCaptchaFatalError

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from typing_extensions import Self

__all__ = ["UCaptchaExtension"]

logger = logging.getLogger(__name__)


class UCaptchaExtension:
    """Checks the balance, stops early on account errors, reports cost and solve time."""

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.crawler = crawler
        self.config = config
        assert crawler.stats is not None
        self.stats = crawler.stats
        self.client = config.make_client(
            on_call=lambda endpoint: self.stats.inc_value(f"{keys.API_CALLS}/{endpoint}"),
            max_connections=1,
        )
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, Config.from_settings(crawler.settings))

    async def spider_opened(self, spider: Spider) -> None:
        if not self.config.check_balance:
            return
        balance = await self._balance(spider, at_start=True)
        if balance is None:
            return
        self.stats.set_value(keys.BALANCE_START, balance)
        budget = self.config.budget
        if budget is not None and balance < budget:
            logger.warning(
                "uCaptcha balance $%.4f is below UCAPTCHA_BUDGET $%.4f",
                balance,
                budget,
                extra={"spider": spider},
            )

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        try:
            if self.config.check_balance and not reason.startswith("ucaptcha_error"):
                balance = await self._balance(spider, at_start=False)
                if balance is not None:
                    self.stats.set_value(keys.BALANCE_END, balance)
        finally:
            await self.client.close()
        logger.info("%s", self.summary(reason), extra={"spider": spider})

    def summary(self, reason: str | None = None) -> str:
        """The one-line crawl report: only figures that mean something (no solve time before
        anything was solved, presolves and abandoned requests when there were any)."""
        get = self.stats.get_value
        start, end = get(keys.BALANCE_START), get(keys.BALANCE_END)
        parts: list[str] = []
        challenges, presolves = get(keys.CHALLENGES, 0), get(keys.PRESOLVED, 0)
        tasks = get(keys.TASKS_CREATED, 0)
        if not (challenges or presolves or tasks):
            parts.append("no challenge met, nothing spent")
        else:
            parts.append(f"{challenges} challenge(s)")
            if presolves:
                parts.append(f"{presolves} presolve(s)")
            parts += [
                f"{get(keys.SOLVED, 0)} solved",
                f"{get(keys.GAVE_UP, 0)} gave up",
                f"{get(keys.UNSOLVABLE, 0)} unsolvable",
            ]
            abandoned = get(keys.ABANDONED, 0)
            if abandoned:
                parts.append(f"{abandoned} abandoned")
            parts += [f"{tasks} task(s)", f"${get(keys.COST, 0.0):.4f} spent"]
            p50, p95 = get(f"{keys.SOLVE_TIME}/p50"), get(f"{keys.SOLVE_TIME}/p95")
            if p50 is not None and p95 is not None:
                parts.append(f"solve time p50 {p50} ms / p95 {p95} ms")
        if start is not None and end is not None:
            parts.append(f"balance ${start:.4f} → ${end:.4f}")
        elif start is not None:
            parts.append(f"balance ${start:.4f} at start")
        line = "uCaptcha: " + ", ".join(parts)
        if reason is not None and reason.startswith("ucaptcha_"):
            line += f"; spider closed by scrapy-ucaptcha: {reason}"
        return line

    async def _balance(self, spider: Spider, *, at_start: bool) -> float | None:
        try:
            return await self.client.get_balance()
        except UCaptchaFatalError as exc:
            code = (exc.code or "fatal").lower()
            self.stats.inc_value(f"{keys.ERRORS}/{code}")
            if at_start:
                logger.error(
                    "uCaptcha refused the account: %s; closing the spider",
                    exc,
                    extra={"spider": spider},
                )
                engine = self.crawler.engine
                if engine is not None:
                    await engine.close_spider_async(reason=f"ucaptcha_{code}")
            return None
        except UCaptchaError as exc:
            logger.warning("uCaptcha balance not available: %s", exc, extra={"spider": spider})
            return None
