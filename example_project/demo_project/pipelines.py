"""Checks every item has content, and counts items per page kind for the crawl log."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from itemadapter import ItemAdapter
from scrapy import Spider
from scrapy.exceptions import DropItem

logger = logging.getLogger(__name__)


class CheckContentPipeline:
    """Drops items without content (a challenge page that slipped through would have none)."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def process_item(self, item: Any) -> Any:
        adapter = ItemAdapter(item)
        if not adapter.get("content"):
            raise DropItem(f"no content at {adapter.get('url')}")
        self.kinds[str(adapter.get("kind"))] += 1
        return item

    def close_spider(self, spider: Spider | None = None) -> None:
        logger.info("items per page kind: %s", dict(sorted(self.kinds.items())))
