"""Reading the crawl's identity from a request, writing proxies into tasks, keeping secrets."""

from __future__ import annotations

import base64

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware

from scrapy_ucaptcha.dialects import DIALECTS, dialect_for_url
from scrapy_ucaptcha.identity import (
    Identity,
    Proxy,
    ProxyError,
    check_reachable,
    identity_of,
    is_proxied_type,
    proxied_type,
    proxy_task_fields,
    scrub,
    task_secrets,
)

PASSWORD = "prx-secret-unit7"


def test_parse_url_with_credentials() -> None:
    proxy = Proxy.parse(f"http://alice:{PASSWORD}@93.184.216.34:3128")
    assert (proxy.scheme, proxy.host, proxy.port) == ("http", "93.184.216.34", 3128)
    assert (proxy.login, proxy.password) == ("alice", PASSWORD)
    assert proxy.is_ip


@pytest.mark.parametrize(
    ("raw", "scheme", "host", "port"),
    [
        (
            "93.184.216.34:8080",
            "http",
            "93.184.216.34",
            8080,
        ),  # no scheme: http, as Scrapy reads it
        ("https://proxy.example.net", "https", "proxy.example.net", 443),
        ("http://proxy.example.net", "http", "proxy.example.net", 80),
        ("socks5://45.33.32.156:1080", "socks5", "45.33.32.156", 1080),
        ("SOCKS4://45.33.32.156", "socks4", "45.33.32.156", 1080),
        ("http://[2001:db8::1]:8000", "http", "2001:db8::1", 8000),
    ],
)
def test_parse_schemes_hosts_ports(raw: str, scheme: str, host: str, port: int) -> None:
    proxy = Proxy.parse(raw)
    assert (proxy.scheme, proxy.host, proxy.port) == (scheme, host, port)
    assert proxy.login is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "empty"),
        ("ftp://93.184.216.34:21", "scheme 'ftp'"),
        (f"http://bob:{PASSWORD}@93.184.216.34:99999", "invalid port"),
        (f"http://bob:{PASSWORD}@:8080", "no host"),
    ],
)
def test_parse_refusals_never_show_the_password(raw: str, message: str) -> None:
    with pytest.raises(ProxyError, match=message) as info:
        Proxy.parse(raw)
    assert PASSWORD not in str(info.value)
    assert PASSWORD not in repr(info.value)


def test_reprs_hide_credentials() -> None:
    proxy = Proxy.parse(f"http://alice:{PASSWORD}@93.184.216.34:3128")
    for text in (repr(proxy), str(proxy), proxy.redacted, repr(Identity(proxy, "UA/1", "a=b"))):
        assert PASSWORD not in text
        assert "alice" not in text
    assert proxy.redacted == "http://***@93.184.216.34:3128"
    assert proxy.url == f"http://alice:{PASSWORD}@93.184.216.34:3128"


def test_url_quotes_credentials() -> None:
    proxy = Proxy("http", "93.184.216.34", 8080, "user@corp", "p:w/d")
    assert proxy.url == "http://user%40corp:p%3Aw%2Fd@93.184.216.34:8080"
    assert Proxy.parse(proxy.url) == proxy


def _after_httpproxy(request: Request) -> Request:
    HttpProxyMiddleware().process_request(request)
    return request


def test_identity_before_and_after_httpproxy_middleware() -> None:
    """Credentials in the URL (as the spider set them) or in Proxy-Authorization (once Scrapy's
    middleware moved them there): the same identity."""
    meta = {"proxy": f"http://alice:{PASSWORD}@93.184.216.34:3128"}
    headers = {"User-Agent": "Mozilla/5.0 Test", "Cookie": "a=1; b=2"}
    before = identity_of(Request("http://example.com/", meta=dict(meta), headers=headers))
    after_request = _after_httpproxy(
        Request("http://example.com/", meta=dict(meta), headers=headers)
    )
    assert after_request.meta["proxy"] == "http://93.184.216.34:3128"
    assert b"Proxy-Authorization" in after_request.headers
    after = identity_of(after_request)
    assert before == after
    assert after.proxy is not None
    assert after.proxy.password == PASSWORD
    assert after.user_agent == "Mozilla/5.0 Test"
    assert after.cookies == "a=1; b=2"
    assert before.key == after.key
    assert PASSWORD not in after.key


def test_identity_without_proxy() -> None:
    assert identity_of(Request("http://example.com/")) == Identity()
    assert identity_of(Request("http://example.com/", meta={"proxy": None})).proxy is None
    assert Identity().key == "direct|"


def test_identity_keys_differ_per_login_and_user_agent() -> None:
    a = Identity(Proxy("http", "93.184.216.34", 80, "a", "x"), "UA/1")
    b = Identity(Proxy("http", "93.184.216.34", 80, "b", "x"), "UA/1")
    c = Identity(Proxy("http", "93.184.216.34", 80, "a", "x"), "UA/2")
    assert len({a.key, b.key, c.key}) == 3


def test_bad_proxy_authorization() -> None:
    request = Request(
        "http://example.com/",
        meta={"proxy": "http://93.184.216.34:3128"},
        headers={"Proxy-Authorization": "Digest abc"},
    )
    with pytest.raises(ProxyError, match="not Basic"):
        identity_of(request)
    with pytest.raises(ProxyError, match="must be a string"):
        identity_of(Request("http://example.com/", meta={"proxy": 5}))


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.0.10",
        "172.16.5.4",
        "169.254.1.1",
        "::1",
        "fd00::1",
        "localhost",
        "proxy.local",
        "intranet",
        "0.0.0.0",  # noqa: S104
        "::ffff:10.0.0.1",
    ],
)
def test_private_addresses_refused(host: str) -> None:
    proxy = Proxy("http", host, 8080, "alice", PASSWORD)
    with pytest.raises(ProxyError, match="private or local network") as info:
        check_reachable(proxy, needs_ip=False, allow_private=False)
    assert PASSWORD not in str(info.value)
    check_reachable(proxy, needs_ip=False, allow_private=True)


def test_public_addresses_and_host_names() -> None:
    check_reachable(Proxy("http", "93.184.216.34", 80), needs_ip=True, allow_private=False)
    named = Proxy("http", "proxy.example.net", 80)
    check_reachable(named, needs_ip=False, allow_private=False)
    with pytest.raises(ProxyError, match="host name"):
        check_reachable(named, needs_ip=True, allow_private=False)


@pytest.mark.parametrize(
    ("proxyless", "proxied"),
    [
        ("RecaptchaV2TaskProxyless", "RecaptchaV2Task"),  # Anti-Captcha, 2captcha
        ("ReCaptchaV2TaskProxyLess", "ReCaptchaV2Task"),  # CapSolver
        ("ReCaptchaV2TokenProxyLess", "ReCaptchaV2Token"),  # uCaptcha native
        ("AntiTurnstileTaskProxyLess", "AntiTurnstileTask"),
        ("HCaptchaTaskProxyless", "HCaptchaTask"),
        ("AmazonTaskProxyless", "AmazonTask"),
        ("AntiAwsWafTaskProxyLess", "AntiAwsWafTask"),
        ("RecaptchaV2Task", "RecaptchaV2Task"),
    ],
)
def test_proxied_type_names(proxyless: str, proxied: str) -> None:
    assert proxied_type(proxyless) == proxied
    assert is_proxied_type(proxied)


def test_types_that_take_no_proxy() -> None:
    assert not is_proxied_type("RecaptchaV3TaskProxyless")
    assert not is_proxied_type("ImageToTextTask")


def test_task_fields_per_style() -> None:
    proxy = Proxy("socks5", "93.184.216.34", 1080, "alice", PASSWORD)
    assert proxy_task_fields(proxy, "url") == {
        "proxy": f"socks5://alice:{PASSWORD}@93.184.216.34:1080"
    }
    assert proxy_task_fields(proxy, "fields") == {
        "proxyType": "socks5",
        "proxyAddress": "93.184.216.34",
        "proxyPort": 1080,
        "proxyLogin": "alice",
        "proxyPassword": PASSWORD,
    }
    bare = Proxy("http", "93.184.216.34", 8080)
    assert proxy_task_fields(bare, "fields") == {
        "proxyType": "http",
        "proxyAddress": "93.184.216.34",
        "proxyPort": 8080,
    }


def test_proxy_style_per_dialect() -> None:
    styles = {
        name: (dialect.proxy_style, dialect.proxy_needs_ip) for name, dialect in DIALECTS.items()
    }
    assert styles == {
        "ucaptcha": ("url", False),
        "capsolver": ("url", False),
        "2captcha": ("fields", False),
        "anticaptcha": ("fields", True),
        "capmonster": ("fields", True),
    }
    assert dialect_for_url("http://127.0.0.1:8000").proxy_style == "url"


def test_secrets_and_scrub() -> None:
    proxy = Proxy("http", "93.184.216.34", 8080, "alice", PASSWORD)
    basic = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    text = f"proxy http://alice:{PASSWORD}@93.184.216.34:8080 failed; auth Basic {basic}"
    cleaned = scrub(text, proxy.secrets())
    assert PASSWORD not in cleaned
    assert basic not in cleaned
    assert "93.184.216.34:8080" in cleaned
    for task in (
        proxy_task_fields(proxy, "url"),
        proxy_task_fields(proxy, "fields"),
    ):
        assert PASSWORD not in scrub(text, task_secrets(task))
    assert task_secrets({"type": "RecaptchaV2TaskProxyless"}) == ()
