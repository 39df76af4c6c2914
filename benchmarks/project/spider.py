"""The benchmark spider: the demo site's catalogue, or its item pages directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import suppress
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request, Spider
from scrapy.downloadermiddlewares.cookies import CookiesMiddleware
from scrapy.http import Response


class BenchSpider(Spider):
    """``-a base=URL -a pages=N``; ``-a mode=items`` requests ``/item/1..N`` without listings."""

    name = "bench"

    def __init__(
        self, base: str = "", pages: str = "0", per_list: str = "25", mode: str = "catalogue"
    ) -> None:
        super().__init__()
        self.base = base.rstrip("/")
        self.pages = int(pages)
        self.per_list = int(per_list)
        self.mode = mode

    async def start(self) -> AsyncIterator[Any]:
        if self.mode == "items":
            for number in range(1, self.pages + 1):
                yield Request(f"{self.base}/item/{number}", callback=self.parse_item)
            return
        lists = -(-self.pages // self.per_list)
        for number in range(1, lists + 1):
            yield Request(f"{self.base}/list/{number}", callback=self.parse_list)

    def parse_list(self, response: Response) -> Iterator[Request]:
        for href in response.css("ul.products a::attr(href)").getall():
            yield response.follow(href, callback=self.parse_item)

    def parse_item(self, response: Response) -> Iterator[dict[str, Any]]:
        self._forget_clearance(response)
        yield {
            "url": response.url,
            "title": response.css("h1.title::text").get(),
            "solved": response.meta.get("ucaptcha") is not None,
        }

    @cached_property
    def _cookies(self) -> CookiesMiddleware | None:
        """The crawl's cookie middleware, looked up once rather than for every item."""
        return self.crawler.get_downloader_middleware(CookiesMiddleware)

    def _forget_clearance(self, response: Response) -> None:
        """Drop the item's clearance cookie once the item is fetched.

        The demo site clears each challenged item with a cookie of its own, scoped to the item's
        path, and Scrapy's cookie jar looks at every path of a host on every request: kept, the
        cookies of 20,000 challenged items make each request of a 100,000-page crawl cost tens of
        milliseconds of CPU in ``CookiesMiddleware``, with or without scrapy-ucaptcha. Sites clear
        a visitor once, not page by page; forgetting the cookie keeps the jar as small as theirs.
        """
        cookies = self._cookies
        if cookies is None or None not in cookies.jars:
            return
        url = urlsplit(response.url)
        # by path: a cookie cleared by name leaves its path behind, which the jar still visits
        with suppress(KeyError):  # not challenged, or already forgotten
            cookies.jars[None].jar.clear(url.hostname, url.path)
