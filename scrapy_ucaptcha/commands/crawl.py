"""``scrapy crawl`` with an exit status a job runner can trust, and start refusals in one line.

Enabled with ``COMMANDS_MODULE = "scrapy_ucaptcha.commands"`` in the project's settings. It runs
the spider exactly as Scrapy's own ``crawl`` command does, then:

- exits with :data:`EXIT_UCAPTCHA` (3) when scrapy-ucaptcha closed the spider (a close reason
  starting with ``ucaptcha_``: a refused key, an empty balance, the budget spent);
- exits with 1, as Scrapy does, when the crawl could not start; a :class:`ConfigError` is then
  logged as one line instead of a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.commands.crawl import Command as ScrapyCrawlCommand
from scrapy.exceptions import UsageError
from scrapy.extensions.feedexport import FeedExporter
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from scrapy_ucaptcha.config import ConfigError

if TYPE_CHECKING:
    import argparse

    from scrapy.crawler import Crawler

__all__ = ["EXIT_UCAPTCHA", "Command", "closed_by_ucaptcha"]

logger = logging.getLogger(__name__)

#: Exit status of a crawl that scrapy-ucaptcha closed (a ``ucaptcha_*`` close reason).
EXIT_UCAPTCHA = 3


def closed_by_ucaptcha(reason: object) -> bool:
    """Whether a close reason (``finish_reason`` in the stats) is one of scrapy-ucaptcha's."""
    return isinstance(reason, str) and reason.startswith("ucaptcha_")


class Command(ScrapyCrawlCommand):
    def short_desc(self) -> str:
        return "Run a spider; exit status 3 when scrapy-ucaptcha closed it"

    def long_desc(self) -> str:
        return (
            "Run a spider of the current project, by name, as Scrapy's crawl command does. "
            f"Exit status {EXIT_UCAPTCHA} when scrapy-ucaptcha closed the spider (a ucaptcha_* "
            "close reason: refused key, empty balance, budget spent); 1 when it could not start."
        )

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) < 1:
            raise UsageError
        if len(args) > 1:
            raise UsageError("running 'scrapy crawl' with more than one spider is not supported")
        process = self.crawler_process
        assert process is not None
        crawler = process.create_crawler(args[0])
        crawler.signals.connect(_warn_if_feeds_unused, signal=signals.engine_started)
        failures: list[BaseException] = []
        _report_refusals(process.crawl(crawler, **opts.spargs), failures)
        process.start()
        # Scrapy 2.14 sets bootstrap_failed only when no spider was created, and the spider is
        # created before the components, so a refusal by one of them is counted here too
        if process.bootstrap_failed or failures:
            self.exitcode = 1
            return
        reason = crawler.stats.get_value("finish_reason") if crawler.stats is not None else None
        if closed_by_ucaptcha(reason):
            logger.error(
                "Spider closed by scrapy-ucaptcha (%s): exit status %d", reason, EXIT_UCAPTCHA
            )
            self.exitcode = EXIT_UCAPTCHA


def _warn_if_feeds_unused(sender: Crawler, **kwargs: Any) -> None:
    if sender.settings.getdict("FEEDS") and sender.get_extension(FeedExporter) is None:
        logger.warning(
            "The FeedExporter extension is not enabled, so no item will be exported to the "
            "configured feeds (FEEDS, -o, -O)."
        )


def _report_refusals(outcome: object, failures: list[BaseException]) -> None:
    """Record the exception that ended the crawl in ``failures``; log a :class:`ConfigError` as
    one line, and leave any other failure to the usual report."""
    if isinstance(outcome, asyncio.Future):
        outcome.add_done_callback(lambda task: _task_done(task, failures))
    elif isinstance(outcome, Deferred):
        outcome.addErrback(_deferred_failed, failures)


def _refused(exc: BaseException) -> None:
    logger.error("scrapy-ucaptcha refused to start: %s", exc)


def _task_done(task: asyncio.Future[Any], failures: list[BaseException]) -> None:
    if task.cancelled():
        return
    exc = task.exception()  # retrieved: asyncio no longer reports it as never retrieved
    if exc is None:
        return
    failures.append(exc)
    if isinstance(exc, ConfigError):
        _refused(exc)
        return
    task.get_loop().call_exception_handler(
        {"message": "Task exception was never retrieved", "exception": exc, "future": task}
    )


def _deferred_failed(failure: Failure, failures: list[BaseException]) -> Failure | None:
    if failure.value is not None:
        failures.append(failure.value)
    if isinstance(failure.value, ConfigError):
        _refused(failure.value)
        return None
    return failure
