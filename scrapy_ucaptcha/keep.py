"""Requests that wait when the spider closes, kept for the next run of the job.

Scrapy gives no signal before its scheduler closes, so what the middleware still holds at
``spider_closed`` (parked, waiting for a task slot, following a domain-scope solve) cannot be pushed
into the scheduler's queue any more. With ``JOBDIR``, :class:`JobDirKeeper` writes those requests
to the job directory (as Scrapy's ``SpiderState`` extension writes ``spider.state``: at
``spider_closed``) and the next run crawls them again at ``spider_opened``, past the dupefilter that
has already seen them. They are kept as they were before any token: the resumed crawl fetches
them, detects and solves afresh.
"""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.request import request_from_dict

from scrapy_ucaptcha.state import ERROR_KEY, PARK_KEY, STATE_KEY, TICKET_KEY

if TYPE_CHECKING:
    from scrapy import Request, Spider

__all__ = ["FILENAME", "JobDirKeeper", "original"]

logger = logging.getLogger(__name__)

FILENAME = "ucaptcha.requests"
_INTERNAL = (STATE_KEY, ERROR_KEY, PARK_KEY, TICKET_KEY)


def original(request: Request) -> Request:
    """``request`` without the middleware's state, to be crawled afresh past the dupefilter."""
    meta = {k: v for k, v in request.meta.items() if k not in _INTERNAL}
    return request.replace(meta=meta, dont_filter=True)


class JobDirKeeper:
    """Keeps waiting requests in ``<JOBDIR>/ucaptcha.requests`` between runs of a job."""

    def __init__(self, jobdir: str) -> None:
        self.path = Path(jobdir, FILENAME)

    def load(self, spider: Spider) -> list[Request]:
        """The requests the last run kept (the file stays until :meth:`save` replaces it, so a
        run killed before it closes crawls them again next time: none is lost)."""
        if not self.path.exists():
            return []
        try:
            with self.path.open("rb") as f:
                kept = pickle.load(f)  # noqa: S301  (written by this class into the job directory)
            return [request_from_dict(d, spider=spider) for d in kept]
        except Exception:
            broken = self.path.with_suffix(".broken")
            os.replace(self.path, broken)
            logger.exception(
                "the requests kept by the last run cannot be read; moved to %s",
                broken,
                extra={"spider": spider},
            )
            return []

    def save(self, requests: list[Request], spider: Spider) -> tuple[int, list[Request]]:
        """Write ``requests`` for the next run (or remove the file when there are none); return
        how many were written and those that cannot be stored (a callback that is no spider
        method, say)."""
        kept: list[dict[str, Any]] = []
        refused: list[Request] = []
        for request in requests:
            try:
                as_dict = request.to_dict(spider=spider)
                pickle.dumps(as_dict, protocol=4)
            except Exception:
                refused.append(request)
            else:
                kept.append(as_dict)
        if not kept:
            self.path.unlink(missing_ok=True)
            return 0, refused
        partial = self.path.with_suffix(".partial")
        with partial.open("wb") as f:
            pickle.dump(kept, f, protocol=4)
        os.replace(partial, self.path)
        return len(kept), refused
