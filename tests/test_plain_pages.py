"""What the middleware does to a crawl's plain pages, counted: nothing beyond the byte pre-scan.

Every request of a crawl is scheduled and every response goes through the middleware, so the work
per plain page is what the middleware costs a crawl. Counted here, never timed: the marker handler
on ``request_scheduled`` is connected only while a parked request's marker is on its way to the
scheduler, and a plain page is not decoded, parsed nor looked at by any detector.
"""

from __future__ import annotations

from collections import Counter
from functools import cached_property
from typing import Any

import pytest
from crawling import Env, crawl, page
from scrapy import Request, Spider
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha._detectors import _core
from scrapy_ucaptcha.middleware import UCaptchaMiddleware


class Calls:
    """Counts the calls of the middleware's marker handler, and the pages decoded or parsed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        handler = UCaptchaMiddleware._request_scheduled
        decode, selector = _core.Page.text, _core.Page.sel

        def counting_handler(mw: UCaptchaMiddleware, request: Request, spider: Spider) -> None:
            self.counts["marker handler"] += 1
            handler(mw, request, spider)

        def counting(attribute: str, name: str, prop: Any) -> None:
            def compute(page: _core.Page) -> Any:
                self.counts[name] += 1
                return prop.func(page)

            counted = cached_property(compute)  # computed once per page, as before
            counted.__set_name__(_core.Page, attribute)
            monkeypatch.setattr(_core.Page, attribute, counted)

        monkeypatch.setattr(UCaptchaMiddleware, "_request_scheduled", counting_handler)
        counting("text", "decode", decode)
        counting("sel", "parse", selector)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch)


def plain_items(env: Env, n: int) -> list[int]:
    items = [i for i in range(1, env.site.config.pages + 1) if i not in env.site.guarded_items]
    assert len(items) >= n
    return items[:n]


def listening(result: Any) -> bool:
    mw = result.crawler.get_downloader_middleware(UCaptchaMiddleware)
    assert isinstance(mw, UCaptchaMiddleware)
    return bool(mw._listening)


@deferred_f_from_coro_f
async def test_plain_pages_cost_no_signal_handler_and_no_parse(env: Env, calls: Calls) -> None:
    """The demo site's pages say "captcha" (a link to its article): still nothing is parsed."""
    paths = [f"/item/{i}" for i in plain_items(env, 6)] + ["/list/1"]
    result = await crawl(env, [page(path) for path in paths])
    assert all(result.only(path).status == 200 for path in paths)
    assert result.stats == {}
    assert calls.counts == {}  # no handler call, no decoding, no parse, for 7 pages
    assert not listening(result)


@deferred_f_from_coro_f
async def test_the_marker_handler_is_connected_only_while_a_marker_is_out(
    env: Env, calls: Calls
) -> None:
    guarded = sorted(env.site.guarded_items)[:2]
    paths = [f"/item/{i}" for i in guarded]
    result = await crawl(env, [page(path) for path in paths])
    for path in paths:
        outcome = result.only(path)
        assert outcome.error is None
        assert outcome.info is not None  # solved, after its marker was dropped
    assert result.stats["ucaptcha/solved"] == 2
    # each marker reached the handler, which was gone again once no marker was out
    assert calls.counts["marker handler"] >= 2
    assert not listening(result)
    # the two challenge pages were parsed; the pages the tokens opened have no marker: not them
    assert calls.counts["parse"] == calls.counts["decode"] == 2
