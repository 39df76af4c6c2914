"""The pieces of passthrough without a crawl: a task as the request, the pin, cookie walls."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy import Request
from scrapy.downloadermiddlewares.httpproxy import HttpProxyMiddleware

from scrapy_ucaptcha.detection import Challenge
from scrapy_ucaptcha.identity import (
    PIN_KEY,
    Identity,
    Proxy,
    ProxyError,
    ProxyPolicy,
    apply_pin,
    pin,
    pin_kept,
    pin_of,
    with_identity,
)
from scrapy_ucaptcha.templates import Template
from scrapy_ucaptcha.walls import (
    COOKIE_WALLS,
    cookie_value,
    opted_in,
    wall_for,
    wall_task,
    with_cookie,
)

PASSWORD = "prx-secret-units3"
PROXY = Proxy("http", "93.184.216.34", 3128, "alice", PASSWORD)
ALICE = Identity(PROXY, "UA/1", "sid=1; theme=dark")
URL_STYLE = ProxyPolicy("url")
FIELDS = ProxyPolicy("fields", needs_ip=True)
RECAPTCHA: dict[str, Any] = {
    "type": "RecaptchaV2TaskProxyless",
    "websiteURL": "https://shop.example.com/",
    "websiteKey": "6Le-wTctAAAAApcOTD0Yc95R_VpQ17tGszgxE2Am",
}


def solve_as(task: dict[str, Any], who: Identity, **options: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "type_pinned": False,
        "passthrough": True,
        "policy": URL_STYLE,
        "allow_private": False,
    }
    settings.update(options)
    return with_identity(task, who, **settings)


def test_a_task_solved_as_the_request() -> None:
    task = solve_as(RECAPTCHA, ALICE)
    assert task == {
        **RECAPTCHA,
        "type": "RecaptchaV2Task",
        "proxy": f"http://alice:{PASSWORD}@93.184.216.34:3128",
        "userAgent": "UA/1",
        "cookies": "sid=1; theme=dark",
    }
    fields = solve_as(RECAPTCHA, ALICE, policy=FIELDS)
    assert fields["proxyAddress"] == "93.184.216.34"
    assert fields["proxyPassword"] == PASSWORD
    assert "proxy" not in fields


def test_a_pinned_type_is_kept_and_the_templates_fields_win() -> None:
    task = solve_as({**RECAPTCHA, "userAgent": "Template/UA"}, ALICE, type_pinned=True)
    assert task["type"] == "RecaptchaV2TaskProxyless"
    assert "proxy" not in task  # a proxyless type takes no proxy
    assert task["userAgent"] == "Template/UA"
    own = {**RECAPTCHA, "type": "RecaptchaV2Task", "proxy": "http://93.184.216.35:80"}
    assert solve_as(own, ALICE)["proxy"] == "http://93.184.216.35:80"  # the template's proxy


@pytest.mark.parametrize(
    ("task_type", "agent"),
    [
        ("RecaptchaV3TaskProxyless", True),  # no proxied variant everywhere
        ("ImageToTextTask", False),
    ],
)
def test_types_that_stay_proxyless(task_type: str, agent: bool) -> None:
    task = solve_as({**RECAPTCHA, "type": task_type}, ALICE)
    assert task["type"] == task_type
    assert "proxy" not in task
    assert ("userAgent" in task) is agent


def test_turnstile_gets_the_user_agent_but_no_cookies() -> None:
    task = solve_as({**RECAPTCHA, "type": "TurnstileTaskProxyless"}, ALICE)
    assert task["type"] == "TurnstileTask"
    assert task["userAgent"] == "UA/1"
    assert "cookies" not in task


def test_passthrough_off_and_no_proxy() -> None:
    off = solve_as(RECAPTCHA, ALICE, passthrough=False)
    assert off["type"] == "RecaptchaV2TaskProxyless"
    assert "proxy" not in off
    assert off["userAgent"] == "UA/1"
    direct = solve_as(RECAPTCHA, Identity(None, "UA/1"))
    assert direct == {**RECAPTCHA, "userAgent": "UA/1"}


def test_refusals() -> None:
    private = Identity(Proxy("http", "10.0.0.5", 3128, "alice", PASSWORD))
    with pytest.raises(ProxyError, match="private"):
        solve_as(RECAPTCHA, private)
    assert solve_as(RECAPTCHA, private, allow_private=True)["type"] == "RecaptchaV2Task"
    named = Identity(Proxy("http", "proxy.example.net", 3128, "alice", PASSWORD))
    with pytest.raises(ProxyError, match="host name") as info:
        solve_as(RECAPTCHA, named, policy=FIELDS)
    assert PASSWORD not in str(info.value)
    assert solve_as(RECAPTCHA, named)["proxy"].endswith("@proxy.example.net:3128")


# --- the pin -------------------------------------------------------------------------------------


def _sent(meta_proxy: str | None, agent: str = "UA/1") -> Request:
    request = Request(
        "http://shop.example.com/", meta={"proxy": meta_proxy}, headers={"User-Agent": agent}
    )
    HttpProxyMiddleware().process_request(request)
    return request


def proxy_authorization(request: Request) -> str:
    value = request.headers.get(b"Proxy-Authorization")
    assert value is not None
    return value.decode()


def test_pin_of_a_request_as_it_came_back() -> None:
    request = _sent(f"http://alice:{PASSWORD}@93.184.216.34:3128")
    assert pin_of(request, None) == {
        "proxy": "http://93.184.216.34:3128",
        "proxy_authorization": proxy_authorization(request),
        "user_agent": "UA/1",
    }
    assert pin_of(request, "Solver/UA")["user_agent"] == "Solver/UA"


def test_pin_of_a_presolved_request_has_no_credentials_in_the_url() -> None:
    request = Request(
        "http://shop.example.com/", meta={"proxy": f"http://alice:{PASSWORD}@93.184.216.34:3128"}
    )
    pinned = pin_of(request, None)
    assert pinned["proxy"] == "http://93.184.216.34:3128"
    assert pinned["proxy_authorization"] == proxy_authorization(_sent(request.meta["proxy"]))


def test_the_pin_undoes_a_rotator_and_a_user_agent_middleware() -> None:
    request = _sent(f"http://alice:{PASSWORD}@93.184.216.34:3128")
    pin(request, "Solver/UA")
    assert request.headers[b"User-Agent"] == b"Solver/UA"
    original_auth = request.headers[b"Proxy-Authorization"]
    # a rotator and HttpProxyMiddleware put bob's proxy on it, a UA middleware another UA
    request.meta["proxy"] = f"http://bob:{PASSWORD}x@93.184.216.35:3128"
    request.headers[b"User-Agent"] = b"Random/9"
    HttpProxyMiddleware().process_request(request)
    assert not pin_kept(request)
    assert apply_pin(request)
    assert request.meta["proxy"] == "http://93.184.216.34:3128"
    assert request.headers[b"Proxy-Authorization"] == original_auth
    assert request.headers[b"User-Agent"] == b"Solver/UA"
    assert pin_kept(request)


def test_a_direct_request_stays_direct() -> None:
    request = _sent(None)
    pin(request, None)
    request.meta["proxy"] = "http://93.184.216.35:3128"
    assert not pin_kept(request)
    apply_pin(request)
    assert request.meta["proxy"] is None
    assert pin_kept(request)
    assert not apply_pin(Request("http://shop.example.com/"))  # nothing pinned: untouched
    assert pin_kept(Request("http://shop.example.com/"))
    assert PIN_KEY not in Request("http://shop.example.com/").meta


# --- cookie walls --------------------------------------------------------------------------------

DD_URL = "https://geo.captcha-delivery.com/captcha/?initialCid=a&hash=h&cid=c&t=fe&s=1"


@pytest.mark.parametrize(
    ("challenge", "wall"),
    [
        (Challenge("datadome", False, params={"banned": False, "captcha_url": DD_URL}), "datadome"),
        (Challenge("datadome", False, params={"banned": True}), None),
        (Challenge("datadome", False, params={"banned": False}), None),  # no URL to solve
        (Challenge("cloudflare_challenge", False), "cloudflare_challenge"),
        (Challenge("cloudflare_iuam", False), None),
        (
            Challenge(
                "aws_waf",
                False,
                sitekey="k",
                params={"waf_action": "challenge", "iv": "i", "context": "c"},
            ),
            "aws_waf",
        ),
        (
            Challenge(
                "aws_waf",
                False,
                sitekey="k",
                params={"waf_action": "captcha", "iv": "i", "context": "c"},
            ),
            None,  # the captcha variant is a token task
        ),
        (Challenge("aws_waf", False, params={"waf_action": "challenge"}), None),
        (Challenge("perimeterx", False), None),
    ],
)
def test_wall_for(challenge: Challenge, wall: str | None) -> None:
    found = wall_for(challenge)
    assert (found.kind if found is not None else None) == wall


def test_wall_tasks() -> None:
    template = Template()
    dd = wall_task(
        COOKIE_WALLS["datadome"],
        Challenge("datadome", True, params={"captcha_url": DD_URL}),
        "https://shop.example.com/p",
        template,
    )
    assert dd == {
        "type": "DatadomeSliderTask",
        "websiteURL": "https://shop.example.com/p",
        "captchaUrl": DD_URL,
    }
    aws = wall_task(
        COOKIE_WALLS["aws_waf"],
        Challenge(
            "aws_waf",
            True,
            sitekey="k",
            params={"iv": "i", "context": "c", "challenge_script": "https://x/challenge.js"},
        ),
        "https://shop.example.com/p",
        Template.parse("*", {"task": {"type": "AntiAwsWafTask"}}),
    )
    assert aws == {
        "type": "AntiAwsWafTask",
        "websiteURL": "https://shop.example.com/p",
        "websiteKey": "k",
        "iv": "i",
        "context": "c",
        "challengeScript": "https://x/challenge.js",
    }


def test_opting_in_without_a_proxy() -> None:
    aws = COOKIE_WALLS["aws_waf"]
    assert opted_in(aws, Template.parse("*", {"task": {"type": "AmazonTaskProxyless"}}))
    assert not opted_in(aws, Template.parse("*", {"task": {"type": "AmazonTask"}}))
    assert not opted_in(COOKIE_WALLS["datadome"], Template())
    assert opted_in(
        COOKIE_WALLS["datadome"],
        Template.parse("*", {"task": {"proxy": "http://93.184.216.34:80"}}),
    )


@pytest.mark.parametrize(
    ("kind", "solution", "token", "value"),
    [
        ("aws_waf", {"cookies": {"aws-waf-token": "v1", "other": "x"}}, "x", "v1"),
        ("datadome", {"cookie": "datadome=v2; Max-Age=31536000; Path=/"}, "datadome=v2", "v2"),
        ("cloudflare_challenge", {"cf_clearance": "v3", "token": "t"}, "t", "v3"),
        ("cloudflare_challenge", {"token": "v4"}, "v4", "v4"),
    ],
)
def test_cookie_values(kind: str, solution: dict[str, Any], token: str, value: str) -> None:
    assert cookie_value(COOKIE_WALLS[kind], solution, token) == value


def test_with_cookie_replaces_the_walls_own() -> None:
    request = Request("http://shop.example.com/", cookies={"datadome": "junk", "sid": "1"})
    new = with_cookie(request, "datadome", "good")
    assert isinstance(new.cookies, list)
    assert sorted((c["name"], c["value"], c.get("path")) for c in new.cookies) == [
        ("datadome", "good", "/"),
        ("sid", "1", None),
    ]
