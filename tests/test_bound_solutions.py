"""Solutions bound to the identity that solved them: the simulator signs the proxy exit and the
User-Agent into tokens and cookies, the demo site takes them only from that identity."""

from __future__ import annotations

from typing import Any

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.testing._demo_app import AWS_WAF_KEY, DemoApp
from scrapy_ucaptcha.testing._demo_model import DemoSiteConfig, Incoming
from scrapy_ucaptcha.testing.proxy import exit_for
from scrapy_ucaptcha.testing.tokens import (
    DEFAULT_SECRET,
    InvalidToken,
    TokenVerifier,
    identity_string,
    sign_token,
)
from tests.test_simulator import KEY, create, fast_config, poll, running

PAGE = "http://127.0.0.1:8000/dd/1"
UA = "Mozilla/5.0 (X11; Linux x86_64) Test/1.0"
PROXY = "http://alice:prx-secret-bound1@93.184.216.34:3128"
CAPTCHA_URL = "https://geo.captcha-delivery.com/captcha/?initialCid=abc&hash=H&cid=c&t=fe&s=43337"


async def solved(task: dict[str, Any]) -> dict[str, Any]:
    async with running(fast_config(keys={KEY: 10.0})) as sim:
        reply = await create(sim, task)
        assert reply.json["errorId"] == 0, reply.json
        done = await poll(sim, reply.json["taskId"])
    assert done.json["status"] == "ready"
    solution: dict[str, Any] = done.json["solution"]
    return solution


@deferred_f_from_coro_f
async def test_a_proxied_token_is_bound_to_the_proxy_exit_and_user_agent() -> None:
    task = {
        "type": "RecaptchaV2Task",
        "websiteURL": PAGE,
        "websiteKey": "6Le-wTctAAAAApcOTD0Yc95R_VpQ17tGszgxE2Am",
        "proxy": PROXY,
        "userAgent": UA,
    }
    solution = await solved(task)
    assert solution["userAgent"] == UA  # the User-Agent it was solved with comes back
    verifier = TokenVerifier()
    claims = verifier.verify(
        solution["gRecaptchaResponse"],
        sitekey=task["websiteKey"],
        page_url=PAGE,
        now=0,
        identity=identity_string(exit_for("alice"), UA),
    )
    assert claims.identity == identity_string(exit_for("alice"), UA)


@pytest.mark.parametrize(
    "split",
    [
        {"proxyType": "http", "proxyAddress": "93.184.216.34", "proxyPort": 3128},
        {"proxy": "http:93.184.216.34:3128"},
    ],
)
@deferred_f_from_coro_f
async def test_split_fields_and_colon_format(split: dict[str, Any]) -> None:
    fields = {**split}
    if "proxy" in fields:
        fields["proxy"] += ":alice:prx-secret-bound1"
    else:
        fields.update(proxyLogin="alice", proxyPassword="prx-secret-bound1")
    task = {"type": "AntiCloudflareTask", "websiteURL": PAGE, **fields, "userAgent": UA}
    solution = await solved(task)
    token = solution["cookies"]["cf_clearance"]
    identity = identity_string(exit_for("alice"), UA)
    claims = TokenVerifier().verify(
        token, sitekey="cloudflare", page_url=PAGE, now=0, identity=identity, single_use=False
    )
    assert claims.family == "cloudflare"


@deferred_f_from_coro_f
async def test_cookie_wall_solutions() -> None:
    datadome = await solved(
        {
            "type": "DatadomeSliderTask",
            "websiteURL": PAGE,
            "captchaUrl": CAPTCHA_URL,
            "proxy": PROXY,
            "userAgent": UA,
        }
    )
    assert datadome["cookie"].startswith("datadome=")
    assert datadome["userAgent"] == UA
    aws = await solved(
        {
            "type": "AmazonTask",
            "websiteURL": PAGE,
            "websiteKey": AWS_WAF_KEY,
            "iv": "CgAHbCe2GgAAAAAj",
            "context": "jmYpQ6Wv4m",
            "proxy": PROXY,
        }
    )
    assert set(aws["cookies"]) == {"aws-waf-token"}


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"captchaUrl": CAPTCHA_URL.replace("t=fe", "t=bv")}, "only t=fe"),
        ({"userAgent": None}, "userAgent is required"),
        ({"proxy": None}, "needs a proxy"),
        ({"captchaUrl": None}, "captchaUrl is required"),
    ],
)
@deferred_f_from_coro_f
async def test_datadome_tasks_are_checked(change: dict[str, Any], description: str) -> None:
    task = {
        "type": "DatadomeSliderTask",
        "websiteURL": PAGE,
        "captchaUrl": CAPTCHA_URL,
        "proxy": PROXY,
        "userAgent": UA,
    }
    task.update(change)
    task = {k: v for k, v in task.items() if v is not None}
    async with running(fast_config()) as sim:
        reply = await create(sim, task)
    assert reply.json["errorId"] == 1
    assert description in reply.json["errorDescription"]
    assert sim.tasks == {}


def test_a_proxyless_token_is_good_only_without_a_proxy() -> None:
    token = sign_token(
        DEFAULT_SECRET, family="turnstile", sitekey="k", page_url=PAGE, expires_at=10
    )
    verifier = TokenVerifier()
    with pytest.raises(InvalidToken, match="wrong-identity"):
        verifier.verify(
            token, sitekey="k", page_url=PAGE, now=0, identity=identity_string("exit-1", UA)
        )
    verifier.verify(
        token, sitekey="k", page_url=PAGE, now=0, identity=identity_string("direct", UA)
    )


# --- the demo site's cookie walls -----------------------------------------------------------------


def incoming(path: str, *, exit_name: str | None, ua: str = UA, **cookies: str) -> Incoming:
    headers = {"user-agent": ua}
    if exit_name is not None:
        headers["forwarded"] = f'for="_{exit_name}";by="_ucaptcha-test-proxy"'
    return Incoming(
        method="GET",
        path=path,
        query="",
        args={},
        headers=headers,
        cookies=cookies,
        origin="http://127.0.0.1:8000",
        now=0.0,
    )


def wall_cookie(kind: str, identity: str, path: str) -> str:
    return sign_token(
        DEFAULT_SECRET,
        family=kind,
        sitekey=kind,
        page_url="http://127.0.0.1:8000" + path,
        expires_at=100,
        identity=identity,
    )


@pytest.mark.parametrize(
    ("path", "kind", "cookie", "status"),
    [
        ("/dd/1", "datadome", "datadome", 403),
        ("/cf/2", "cloudflare", "cf_clearance", 403),
        ("/aws/3", "aws_waf", "aws-waf-token", 202),
    ],
)
def test_cookie_walls_take_cookies_only_from_their_identity(
    path: str, kind: str, cookie: str, status: int
) -> None:
    app = DemoApp(DemoSiteConfig())
    alice = exit_for("alice")
    blocked = app.handle(incoming(path, exit_name=alice))
    assert (blocked.status, blocked.kind, blocked.outcome) == (status, kind, "challenge_shown")
    good = wall_cookie(kind, identity_string(alice, UA), path)
    for _ in range(2):  # a cookie, unlike a token, is good again and again
        passed = app.handle(incoming(path, exit_name=alice, **{cookie: good}))
        assert (passed.status, passed.outcome) == (200, "token_accepted")
    for other in (
        incoming(path, exit_name=exit_for("bob"), **{cookie: good}),
        incoming(path, exit_name=alice, ua="Other/2.0", **{cookie: good}),
        incoming(path, exit_name=None, **{cookie: good}),
    ):
        refused = app.handle(other)
        assert (refused.status, refused.outcome) == (status, "token_rejected:wrong-identity")


def test_the_datadome_ban_page_is_never_passed() -> None:
    app = DemoApp(DemoSiteConfig())
    reply = app.handle(incoming("/dd-banned/1", exit_name=exit_for("alice")))
    assert (reply.status, reply.kind) == (403, "datadome_banned")
    assert b"'t':'bv'" in reply.body


def test_bound_token_walls() -> None:
    """With ``bind_identity`` the token walls check the identity too."""
    bound = DemoApp(DemoSiteConfig(bind_identity=True))
    free = DemoApp(DemoSiteConfig())
    key = bound.config.sitekeys["turnstile"]
    proxyless = sign_token(
        DEFAULT_SECRET,
        family="turnstile",
        sitekey=key,
        page_url="http://127.0.0.1:8000/api/items?page=1",
        expires_at=100,
    )

    def api(app: DemoApp, exit_name: str | None, token: str) -> str:
        req = incoming("/api/items", exit_name=exit_name)
        req = Incoming(**{**req.__dict__, "query": "page=1", "args": {"page": ["1"]}})
        req = Incoming(**{**req.__dict__, "headers": {**req.headers, "x-captcha-token": token}})
        return app.handle(req).outcome

    assert api(bound, exit_for("alice"), proxyless) == "token_rejected:wrong-identity"
    assert api(free, exit_for("alice"), proxyless) == "token_accepted"
    assert api(bound, None, proxyless) == "token_accepted"
