"""Clearance cookies that travel with a request from one worker of a distributed crawl to another.

A site that accepts a token usually answers with a redirect that sets a clearance cookie. In one
process, Scrapy's cookie jar keeps it for the redirected request. With scrapy-redis the redirected
request goes through the shared queue and may be downloaded by another worker, whose jar lacks
the cookie: the page would show the challenge again and the paid token would look rejected.

:class:`UCaptchaCookieCarrier` (a downloader middleware between RedirectMiddleware and
CookiesMiddleware) copies the ``Set-Cookie`` values of such a redirect into the request's meta,
which RedirectMiddleware copies into the redirected request; the worker that downloads it sets
them in its own jar first (:func:`carried_cookies`). It is on only in a distributed crawl
(``UCAPTCHA_REDIS_URL`` or ``REDIS_URL`` set); the add-on installs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any, cast

from scrapy.exceptions import NotConfigured

from scrapy_ucaptcha.config import Config
from scrapy_ucaptcha.state import STATE_KEY

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

__all__ = ["CARRIER_PRIORITY", "CARRY_KEY", "UCaptchaCookieCarrier", "apply_carried_cookies"]

CARRY_KEY = "_ucaptcha_cookies"
#: Between RedirectMiddleware (600) and CookiesMiddleware (700): it sees the redirect's response
#: before RedirectMiddleware builds the next request from the same request object.
CARRIER_PRIORITY = 650


class UCaptchaCookieCarrier:
    """Keeps the cookies a redirect sets on the way to a solved page in the request's meta."""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        if Config.from_settings(crawler.settings).redis_url is None:
            raise NotConfigured("only a distributed crawl (UCAPTCHA_REDIS_URL) needs it")
        return cls()

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if 300 <= response.status < 400 and STATE_KEY in request.meta:
            values = [v.decode("latin-1") for v in response.headers.getlist(b"Set-Cookie")]
            if values:
                request.meta[CARRY_KEY] = [*request.meta.get(CARRY_KEY, ()), *values]
        return response


def apply_carried_cookies(request: Request) -> None:
    """Put the cookies carried in ``request``'s meta into its ``cookies`` (CookiesMiddleware then
    stores them in this worker's jar and sends them)."""
    carried = request.meta.get(CARRY_KEY)  # kept: the page's answer may publish them
    if not isinstance(carried, list) or not carried:
        return
    cookies: list[dict[str, Any]] = []
    for value in carried:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(str(value))
        except CookieError:
            continue
        for name, morsel in jar.items():
            cookie: dict[str, Any] = {"name": name, "value": morsel.value}
            for attribute in ("domain", "path"):
                if morsel[attribute]:
                    cookie[attribute] = morsel[attribute]
            cookies.append(cookie)
    if not cookies:
        return
    existing: Any = request.cookies
    if isinstance(existing, Mapping):
        merged: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in existing.items()]
    else:
        merged = [dict(c) for c in existing]
    names = {c["name"] for c in cookies}
    kept = [c for c in merged if c.get("name") not in names]
    request.cookies = cast("Any", kept + cookies)
