"""A progress line while requests wait for their tokens, on Scrapy's ``LOGSTATS_INTERVAL`` rhythm.

Scrapy's LogStats says ``Crawled 123 pages (at 0 pages/min)`` while a hundred solves are pending;
this line says what is going on, in the same style::

    uCaptcha: 12 request(s) waiting, 8 task(s) in flight, 40 solved (at 12/min), 1 gave up,
    $0.1800 spent

(one line in the log)
and keeps two gauges in the stats, ``ucaptcha/waiting`` and ``ucaptcha/tasks/in_flight``, which
Scrapy's PeriodicLog extension (``PERIODIC_LOG_STATS``) shows too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from scrapy_ucaptcha import stats as keys

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.statscollectors import StatsCollector

__all__ = ["Progress"]

logger = logging.getLogger(__name__)

#: ``(requests waiting, tasks in flight)`` now.
Counts = Callable[[], tuple[int, int]]


class Progress:
    """Every ``interval`` seconds: the gauges, and a log line while anything waits."""

    def __init__(self, stats: StatsCollector, interval: float, counts: Counts) -> None:
        self.stats = stats
        self.interval = interval
        self.counts = counts
        self._solved = 0
        self._task: asyncio.Task[None] | None = None
        self._ticked = False

    def start(self, spider: Spider | None = None) -> None:
        """Start ticking (nothing when ``interval`` is 0, as LogStats)."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.ensure_future(self._run(spider))

    async def stop(self) -> None:
        """Stop ticking; gauges that were ever set show the state at close."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._ticked:
            self._gauges(*self.counts())

    async def _run(self, spider: Spider | None) -> None:
        while True:
            await asyncio.sleep(self.interval)
            self.tick(spider)

    def _gauges(self, waiting: int, in_flight: int) -> None:
        self.stats.set_value(keys.WAITING, waiting)
        self.stats.set_value(keys.TASKS_IN_FLIGHT, in_flight)

    def tick(self, spider: Spider | None = None) -> str | None:
        """Set the gauges; log (and return) the progress line when anything waits."""
        waiting, in_flight = self.counts()
        self._ticked = True
        self._gauges(waiting, in_flight)
        get = self.stats.get_value
        solved = get(keys.SOLVED, 0)
        rate = round((solved - self._solved) * 60.0 / self.interval) if self.interval > 0 else 0
        self._solved = solved
        if not (waiting or in_flight):
            return None
        line = (
            f"uCaptcha: {waiting} request(s) waiting, {in_flight} task(s) in flight, "
            f"{solved} solved (at {rate}/min), {get(keys.GAVE_UP, 0)} gave up, "
            f"${get(keys.COST, 0.0):.4f} spent"
        )
        logger.info("%s", line, extra={"spider": spider})
        return line
