"""The benchmark spider: the demo site's catalogue, or its item pages directly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from scrapy import Request, Spider
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
        yield {
            "url": response.url,
            "title": response.css("h1.title::text").get(),
            "solved": response.meta.get("ucaptcha") is not None,
        }
