"""The loopback forward proxy: crawls really go through it, with Basic authentication."""

from __future__ import annotations

import pytest
from crawling import Env, crawl, page
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.testing.proxy import DIRECT, ForwardProxy, exit_for, exit_of_headers

PASSWORDS = {"alice": "prx-secret-alice1", "bob": "prx-secret-bob2"}


@deferred_f_from_coro_f
async def test_crawl_goes_through_the_proxy_with_credentials(env: Env) -> None:
    async with ForwardProxy(PASSWORDS) as proxy:
        pages = [
            page("/", "alice", meta={"proxy": proxy.proxy_url("alice")}),
            page("/list/1", "bob", meta={"proxy": proxy.proxy_url("bob")}),
            page("/contact", "wrong", meta={"proxy": proxy.proxy_url("alice", "nope")}),
            page("/articles/captchas", "none", meta={"proxy": proxy.url}),
        ]
        result = await crawl(env, pages, UCAPTCHA_ENABLED=False)
    assert result.only("alice").status == 200
    assert result.only("bob").status == 200
    assert result.only("wrong").status == 407
    assert result.only("none").status == 407
    assert sorted(proxy.counts().items(), key=str) == sorted(
        {("alice", 200): 1, ("bob", 200): 1, (None, 407): 2}.items(), key=str
    )
    # the site saw only the two authenticated requests, with the proxy headers removed
    assert sorted(hit.path for hit in env.site.log) == ["/", "/list/1"]


def test_exits() -> None:
    assert exit_for("alice") == exit_for("alice") != exit_for("bob")
    assert exit_of_headers(f'for="_{exit_for("alice")}";by="_ucaptcha-test-proxy"') == exit_for(
        "alice"
    )
    assert exit_of_headers(None) == DIRECT
    assert exit_of_headers('for="192.0.2.60";proto=http') == DIRECT


def test_proxy_needs_users() -> None:
    with pytest.raises(ValueError, match="at least one login"):
        ForwardProxy({})


def test_the_suite_log_check_sees_proxy_passwords() -> None:
    """The check every test runs on its DEBUG log (tests/conftest.py) finds a password shown
    plainly or inside Basic credentials, and nothing in redacted forms."""
    import base64

    from conftest import _shows_proxy_password

    basic = base64.b64encode(b"alice:prx-secret-alice1").decode()
    assert _shows_proxy_password("proxy http://alice:prx-secret-alice1@127.0.0.1:80")
    assert _shows_proxy_password(f"Proxy-Authorization: Basic {basic}")
    assert not _shows_proxy_password("proxy http://***@127.0.0.1:80, Basic ***")
