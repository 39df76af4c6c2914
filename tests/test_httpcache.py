"""HttpCache on: challenge pages are never stored nor replayed; a second run costs nothing."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, ClassVar

import pytest
from crawling import HOST, Env, RecordingSpider, crawl, page
from scrapy import Request, Spider
from scrapy.extensions.httpcache import DummyPolicy, RFC2616Policy
from scrapy.http import HtmlResponse
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import Addon, ConfigError, UCaptchaCachePolicy
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

WALL = b"""<html><body><form method="post" action="/item/3">
<div class="g-recaptcha" data-sitekey="6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"></div>
<input type="hidden" name="g-recaptcha-response"><button>Go</button></form></body></html>"""
PLAIN = b"<html><body><h1>Item 3</h1><p>content</p></body></html>"
URL = f"http://{HOST}/item/3"


def _policy(**settings: Any) -> UCaptchaCachePolicy:
    return UCaptchaCachePolicy(Settings({"UCAPTCHA_API_KEY": DEFAULT_API_KEY, **settings}))


def _response(body: bytes, status: int = 200, **headers: str) -> HtmlResponse:
    return HtmlResponse(URL, status=status, body=body, headers=headers)


@pytest.mark.parametrize("status", [200, 403])
def test_a_wall_is_not_stored(status: int) -> None:
    policy = _policy()
    request = Request(URL)
    assert not policy.should_cache_response(_response(WALL, status), request)
    assert policy.should_cache_response(_response(PLAIN), request)


def test_a_compressed_wall_is_judged_decoded() -> None:
    policy = _policy()
    compressed = _response(gzip.compress(WALL), 200, **{"Content-Encoding": "gzip"})
    assert not policy.should_cache_response(compressed, Request(URL))
    broken = _response(b"not gzip at all", 200, **{"Content-Encoding": "gzip"})
    assert policy.should_cache_response(broken, Request(URL))  # undecodable: the inner decides


def test_a_stored_wall_is_never_replayed() -> None:
    policy = _policy()
    request = Request(URL)
    assert not policy.is_cached_response_fresh(_response(WALL), request)
    assert not policy.is_cached_response_valid(_response(WALL), _response(PLAIN), request)
    assert policy.is_cached_response_fresh(_response(PLAIN), request)


def test_the_wrapped_policy_decides_the_rest() -> None:
    policy = _policy(HTTPCACHE_IGNORE_HTTP_CODES=[500])
    assert isinstance(policy.inner, DummyPolicy)
    assert not policy.should_cache_response(_response(PLAIN, 500), Request(URL))
    rfc = _policy(UCAPTCHA_HTTPCACHE_POLICY="scrapy.extensions.httpcache.RFC2616Policy")
    assert isinstance(rfc.inner, RFC2616Policy)
    no_store = _response(PLAIN, 200, **{"Cache-Control": "no-store"})
    assert not rfc.should_cache_response(no_store, Request(URL))


def test_opted_out_requests_are_left_to_the_wrapped_policy() -> None:
    policy = _policy()
    request = Request(URL, meta={"ucaptcha_task": False})
    assert policy.should_cache_response(_response(WALL), request)


def test_a_policy_that_wraps_itself_is_refused() -> None:
    with pytest.raises(ConfigError, match="UCAPTCHA_HTTPCACHE_POLICY"):
        _policy(UCAPTCHA_HTTPCACHE_POLICY="scrapy_ucaptcha.UCaptchaCachePolicy")
    with pytest.raises(ConfigError, match="UCAPTCHA_HTTPCACHE_POLICY"):
        _policy(UCAPTCHA_HTTPCACHE_POLICY="nowhere.Policy")


def test_the_addon_wraps_the_configured_policy() -> None:
    settings = {
        "ADDONS": {Addon: 500},
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_POLICY": "scrapy.extensions.httpcache.RFC2616Policy",
    }
    crawler = get_crawler(Spider, settings)
    assert crawler.settings["HTTPCACHE_POLICY"] == "scrapy_ucaptcha.UCaptchaCachePolicy"
    assert crawler.settings["UCAPTCHA_HTTPCACHE_POLICY"] == (
        "scrapy.extensions.httpcache.RFC2616Policy"
    )
    off = get_crawler(Spider, {**settings, "HTTPCACHE_ENABLED": False})
    assert off.settings["HTTPCACHE_POLICY"] == "scrapy.extensions.httpcache.RFC2616Policy"
    default = get_crawler(Spider, {**settings, "HTTPCACHE_POLICY": None})
    assert default.settings["HTTPCACHE_POLICY"] == "scrapy_ucaptcha.UCaptchaCachePolicy"


@pytest.mark.parametrize("status", [200, 403])
@pytest.mark.demo_site(
    from_params=lambda status: DemoSiteConfig(
        pages=12, challenge_share=0.5, challenge_status=status
    )
)
@deferred_f_from_coro_f
async def test_crawl_with_httpcache_solves_each_page_once(
    env: Env, tmp_path: Path, status: int
) -> None:
    guarded = sorted(env.site.guarded_items)
    assert len(guarded) >= 3
    pages = [page(f"/item/{n}") for n in range(1, 13)]
    settings: dict[str, Any] = {
        "DOWNLOADER_MIDDLEWARES": {},
        "ADDONS": {Addon: 500},
        "UCAPTCHA_CHECK_BALANCE": False,
        "HTTPCACHE_ENABLED": True,
        "HTTPCACHE_DIR": str(tmp_path / "cache"),
        # what the README used to advise: not enough on its own when walls answer 200
        "HTTPCACHE_IGNORE_HTTP_CODES": [429, 503],
    }
    first = await crawl(env, pages, **settings)
    assert first.reason == "finished"
    for spec in pages:
        outcome = first.only(spec.key)
        assert outcome.error is None
        assert outcome.status == 200
        assert outcome.content
    assert first.stats["ucaptcha/challenges"] == len(guarded)
    assert first.stats["ucaptcha/solved"] == len(guarded)
    assert first.stats["ucaptcha/tasks/created"] == len(guarded)
    assert "ucaptcha/tokens/rejected" not in first.stats
    assert env.sim.count("createTask") == len(guarded)

    second = await crawl(env, pages, **settings)
    assert second.reason == "finished"
    for spec in pages:
        outcome = second.only(spec.key)
        assert outcome.status == 200
        assert outcome.content
    assert second.stats == {}
    assert second.all_stats["httpcache/hit"] == len(pages)
    assert "httpcache/miss" not in second.all_stats
    assert env.sim.count("createTask") == len(guarded)


class NeverSolves(RecordingSpider):
    ucaptcha_task: ClassVar[Any] = False


@deferred_f_from_coro_f
async def test_the_policy_judges_with_the_spiders_templates(env: Env, tmp_path: Path) -> None:
    """A spider that never solves keeps its pages, walls included, in the cache as they are."""
    path = f"/item/{min(env.site.guarded_items)}"
    result = await crawl(
        env,
        [page(path)],
        spider_cls=NeverSolves,
        DOWNLOADER_MIDDLEWARES={},
        ADDONS={Addon: 500},
        UCAPTCHA_CHECK_BALANCE=False,
        HTTPCACHE_ENABLED=True,
        HTTPCACHE_DIR=str(tmp_path / "cache"),
    )
    assert result.only(path).info is None
    assert result.all_stats["httpcache/store"] == 1
    assert "httpcache/uncacheable" not in result.all_stats
