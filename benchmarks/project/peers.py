"""What users run instead of scrapy-ucaptcha: an official SDK called from ``process_response``.

Both use 2captcha-python, the most used solving SDK, the way its README and the Scrapy tutorials
built on it show: find the sitekey with a CSS selector, ask the SDK for a token, submit the
wall's form with it. It speaks 2captcha's legacy API (``/in.php``, ``/res.php``) over https, which
uCaptcha (and so the simulator, behind the benchmark's TLS front) serves.

* :class:`TwoCaptchaSync`: ``TwoCaptcha.recaptcha()``, synchronous: it blocks the reactor, so the
  whole crawl waits for every solve, one after another.
* :class:`TwoCaptchaAsync`: ``AsyncTwoCaptcha.recaptcha()`` awaited in an ``async def``
  ``process_response``: the request keeps its ``CONCURRENT_REQUESTS`` unit while it waits.

``BENCH_PEER_SERVER`` is the SDK's ``server`` (``host:port`` of the TLS front) and
``BENCH_PEER_POLL`` its ``pollingInterval`` (whole seconds, as the SDK takes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from form2request import form2request
from scrapy.exceptions import IgnoreRequest

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

INFO_KEY = "ucaptcha"  # the meta key the spider reads to tell a solved page
SITEKEY = ".g-recaptcha::attr(data-sitekey)"


def _options(crawler: Crawler) -> dict[str, Any]:
    settings = crawler.settings
    return {
        "apiKey": settings["UCAPTCHA_API_KEY"],
        "server": settings["BENCH_PEER_SERVER"],
        "pollingInterval": settings.getint("BENCH_PEER_POLL", 10),
        "defaultTimeout": 300,
        "recaptchaTimeout": 300,
    }


def _sitekey(request: Request, response: Response) -> str | None:
    if INFO_KEY in request.meta or not hasattr(response, "css"):
        return None
    sitekey = response.css(SITEKEY).get()
    return sitekey.strip() if sitekey else None


def _with_token(request: Request, response: Response, token: str, task_id: str) -> Request:
    form = response.css("form")[0]
    data = form2request(form, {"g-recaptcha-response": token}, click=False)
    reissued: Request = data.to_scrapy(
        callback=request.callback,
        errback=request.errback,
        meta={**request.meta, INFO_KEY: {"task_id": task_id}},
        dont_filter=True,
        priority=request.priority + 100,
    )
    return reissued


class TwoCaptchaSync:
    """``TwoCaptcha.recaptcha()`` in a plain ``process_response``."""

    def __init__(self, crawler: Crawler) -> None:
        from twocaptcha import TwoCaptcha  # noqa: PLC0415 (only in the benchmark's peer crawls)

        self.solver = TwoCaptcha(**_options(crawler))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        sitekey = _sitekey(request, response)
        if sitekey is None:
            return response
        try:
            result = self.solver.recaptcha(sitekey=sitekey, url=response.url)
        except Exception as exc:  # the SDK's own errors
            raise IgnoreRequest(f"no token for {request.url}: {exc}") from exc
        return _with_token(request, response, result["code"], result["captchaId"])


class TwoCaptchaAsync:
    """``AsyncTwoCaptcha.recaptcha()`` awaited in an ``async def process_response``."""

    def __init__(self, crawler: Crawler) -> None:
        from twocaptcha import AsyncTwoCaptcha  # noqa: PLC0415

        self.solver = AsyncTwoCaptcha(**_options(crawler))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        sitekey = _sitekey(request, response)
        if sitekey is None:
            return response
        try:
            result = await self.solver.recaptcha(sitekey=sitekey, url=response.url)
        except Exception as exc:
            raise IgnoreRequest(f"no token for {request.url}: {exc}") from exc
        return _with_token(request, response, result["code"], result["captchaId"])
