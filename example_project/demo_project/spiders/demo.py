"""Crawls the demo site: every listing, article, guarded page and API page becomes an item."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlencode, urlsplit

from scrapy import Request, Spider
from scrapy.http import JsonResponse, Response, TextResponse

#: Solve the login form's invisible reCAPTCHA *before* posting it (the site refuses a post without
#: a token): the token is added as the form's g-recaptcha-response field.
LOGIN_CAPTCHA = {
    "presolve": True,
    "task": {
        "type": "RecaptchaV2TaskProxyless",
        "websiteKey": "6Let1r37AAAAA2xN4rmQU_f2wAXVSelb4Ri-DrUA",
        "isInvisible": True,
    },
}


class DemoSpider(Spider):
    name = "demo"

    async def start(self) -> AsyncIterator[Request]:
        base = self.settings.get("DEMO_SITE_URL")
        if not base:
            self.logger.error(
                "DEMO_SITE_URL is not set: set it, or enable demo_project.offline.OfflineDemo "
                "in ADDONS to run offline"
            )
            return
        self.base = base.rstrip("/")
        yield Request(f"{self.base}/", callback=self.parse)
        yield Request(f"{self.base}/api/items?page=1", callback=self.parse_api)
        yield Request(  # a form post; Scrapy 2.16 deprecates FormRequest
            f"{self.base}/login",
            method="POST",
            body=urlencode({"username": "demo", "password": "demo"}),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            meta={"ucaptcha_task": LOGIN_CAPTCHA},
            callback=self.parse,
        )

    def parse(self, response: Response) -> Iterator[dict[str, Any] | Request]:
        if not isinstance(response, TextResponse):
            return
        content = " ".join(response.css("p.content::text").getall()).strip()
        if content:
            yield {
                "url": response.url,
                "kind": _kind(response.url),
                "title": response.css("h1.title::text").get(),
                "content": content,
                "captcha": response.meta.get("ucaptcha"),
            }
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if urlsplit(url).netloc != urlsplit(self.base).netloc:
                continue
            path = urlsplit(url).path
            if path.startswith("/api/"):
                continue  # started separately
            yield Request(url, callback=self.parse)

    def parse_api(self, response: Response) -> Iterator[dict[str, Any] | Request]:
        if not isinstance(response, JsonResponse) or response.status != 200:
            return
        data = response.json()
        yield {
            "url": response.url,
            "kind": "api",
            "title": f"API page {data['page']}",
            "content": ", ".join(item["title"] for item in data["items"]),
            "captcha": response.meta.get("ucaptcha"),
        }
        if data.get("next"):
            yield Request(response.urljoin(data["next"]), callback=self.parse_api)


def _kind(url: str) -> str:
    """A page's kind from its path: ``item``, ``zone``, ``hcaptcha``, ``v3``…"""
    parts = [p for p in urlsplit(url).path.split("/") if p]
    if parts[:1] == ["submit"] and len(parts) > 1:
        return parts[1]  # the result page of the /v3 or /invisible form
    return parts[0] if parts else "index"
