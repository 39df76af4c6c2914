"""One worker of a distributed crawl (scrapy-redis scheduler and dupefilter, our middleware), run
as its own process by the Redis tests: ``python redis_worker.py <config JSON>``.

Every worker sends the same start requests (the shared dupefilter lets each through once) and
stays open when idle, as scrapy-redis spiders do, until it gets SIGINT (a graceful stop) or
SIGKILL. It appends what happens to a JSON-lines file: ``parked`` (a request the middleware
parked or made follow), ``page`` (a callback with the real page) and ``error`` (an errback); at
its close, its ``ucaptcha/*`` stats.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from typing import Any

from scrapy import Request, Spider, signals
from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.exceptions import DontCloseSpider
from scrapy.http import Response
from twisted.python.failure import Failure

PARK_KEY = "_ucaptcha_park"


class WorkerSpider(Spider):
    name = "cluster"

    def __init__(self, base: str, paths: list[str], out: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base = base
        self.paths = paths
        self.out = open(out, "a", encoding="utf-8")  # noqa: SIM115  (closed at spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WorkerSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.idle, signal=signals.spider_idle)
        crawler.signals.connect(spider.scheduled, signal=signals.request_scheduled)
        return spider

    def write(self, **record: Any) -> None:
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()

    async def start(self) -> AsyncIterator[Request]:
        for path in self.paths:
            yield Request(
                self.base + path,
                callback=self.parse,
                errback=self.errback,
                cb_kwargs={"key": path},
            )

    def parse(self, response: Response, key: str) -> None:
        title = response.css("h1.title::text").get()
        self.write(event="page", key=key, title=title, info=response.meta.get("ucaptcha"))

    def errback(self, failure: Failure) -> None:
        key = failure.request.cb_kwargs["key"]  # type: ignore[attr-defined]
        code = getattr(failure.value, "code", None)
        self.write(event="error", key=key, error=repr(failure.value), code=code)

    def scheduled(self, request: Request, spider: Spider) -> None:
        if PARK_KEY in request.meta:
            self.write(event="parked", key=request.cb_kwargs.get("key"))

    def idle(self, spider: Spider) -> None:
        raise DontCloseSpider


def main() -> None:
    config = json.loads(sys.argv[1])
    process = CrawlerProcess(config["settings"], install_root_handler=True)
    crawler = process.create_crawler(WorkerSpider)
    process.crawl(crawler, base=config["base"], paths=config["paths"], out=config["out"])
    process.start()
    # after every spider_closed handler (the middleware's included) has run
    assert crawler.stats is not None
    stats = crawler.stats.get_stats()
    spider = crawler.spider
    assert isinstance(spider, WorkerSpider)
    ours = {k: v for k, v in stats.items() if k.startswith("ucaptcha/")}
    spider.write(event="closed", reason=stats.get("finish_reason"), stats=ours)
    spider.out.close()


if __name__ == "__main__":
    main()
