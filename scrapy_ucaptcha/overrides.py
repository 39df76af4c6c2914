"""``ucaptcha_task``: one name, as a request meta key and as a spider attribute.

As with Scrapy's ``download_timeout`` or ``handle_httpstatus_list``, a spider attribute gives
every request of the spider a default and a request's meta key overrides it. The value is a
template dict laid over the URL's ``UCAPTCHA_TASKS`` template (``task`` merged key by key, other
keys replaced), or ``False`` never to solve. The layers, from the bottom: the URL's template, the
spider's ``ucaptcha_task``, the request's ``ucaptcha_task`` meta; a ``False`` meta wins over
everything, a dict meta wins over a ``False`` spider attribute.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from scrapy_ucaptcha.config import ConfigError
from scrapy_ucaptcha.templates import Template

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.crawler import Crawler

__all__ = ["TASK_KEY", "Layers", "SpiderTask", "spider_task"]

TASK_KEY = "ucaptcha_task"

#: A spider's ``ucaptcha_task``: absent, ``False``, or a checked template dict.
SpiderTask = Mapping[str, Any] | Literal[False] | None


def spider_task(crawler: Crawler) -> SpiderTask:
    """The crawl's spider's ``ucaptcha_task`` attribute, checked; a bad one raises
    :class:`ConfigError` naming the spider."""
    source: Any = crawler.spider if crawler.spider is not None else crawler.spidercls
    value = getattr(source, TASK_KEY, None)
    if value is None:
        return None
    name = getattr(source, "name", None) or getattr(source, "__name__", type(source).__name__)
    where = f"the {name!r} spider's {TASK_KEY} attribute"
    if value is False:
        return False
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a template dict or False, got {value!r}")
    try:
        Template().merged(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return MappingProxyType(dict(value))


class Layers:
    """Picks the template of a request: URL template, spider attribute, request meta."""

    def __init__(self, spider: SpiderTask) -> None:
        self.spider = spider
        self._with_spider: dict[str, Template] = {}  # URL template pattern → with the spider's

    @property
    def spider_presolves(self) -> bool:
        return isinstance(self.spider, Mapping) and bool(self.spider.get("presolve"))

    def never(self, request: Request) -> bool:
        """Whether the request must never be solved (``False`` meta, or a ``False`` spider
        attribute that no meta dict overrides)."""
        meta = request.meta.get(TASK_KEY)
        if meta is None:  # most requests: no ABC check (Mapping) to pay
            return self.spider is False
        if meta is False:
            return True
        return self.spider is False and not isinstance(meta, Mapping)

    def template(self, base: Template, request: Request) -> Template:
        """``base`` with the spider's and the request's dicts laid over it; raises
        :class:`ValueError` for a bad meta dict."""
        template = base
        if self.spider is not None and self.spider is not False:
            cached = self._with_spider.get(base.pattern)
            if cached is None or cached.pattern != base.pattern:
                cached = self._with_spider[base.pattern] = base.merged(self.spider)
            template = cached
        meta = request.meta.get(TASK_KEY)
        if meta is not None and isinstance(meta, Mapping):
            template = template.merged(meta)
        return template
