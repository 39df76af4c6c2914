"""The demo challenge site over real loopback HTTP (treq); tokens made here with sign_token."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any, NamedTuple, cast

import pytest
import treq
from scrapy import Selector
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_to_future
from twisted.internet.error import ConnectionRefusedError
from twisted.web.client import HTTPConnectionPool

from scrapy_ucaptcha.testing.demo_site import SITEKEYS, DemoSite, DemoSiteConfig, Hit
from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET, read_image_answer, sign_token

FAMILIES = {
    "recaptcha_v2": "recaptcha",
    "recaptcha_invisible": "recaptcha",
    "recaptcha_v3": "recaptcha",
    "recaptcha_enterprise": "recaptcha",
    "hcaptcha": "hcaptcha",
    "turnstile": "turnstile",
}
WIDGET_SCRIPTS = (
    "recaptcha/api.js",
    "recaptcha/enterprise.js",
    "hcaptcha.com/1/api.js",
    "turnstile/v0/api.js",
)


def _now() -> float:
    from twisted.internet import reactor

    return float(cast("Any", reactor).seconds())


@dataclass
class Page:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def sel(self) -> Selector:
        return Selector(text=self.text)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name.lower())
        return values[-1] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Browser:
    """A tiny HTTP client: cookies kept by hand (name → value, path), redirects never followed."""

    site: DemoSite
    pool: HTTPConnectionPool
    cookies: dict[str, tuple[str, str]] = field(default_factory=dict)
    set_cookies: list[str] = field(default_factory=list)

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Page:
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, data: dict[str, str]) -> Page:
        return await self.request("POST", path, data=data)

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Page:
        sent: dict[str | bytes, str | bytes] = {}
        sent.update((name, value) for name, value in (headers or {}).items())
        bare = path.partition("?")[0]
        jar = [
            f"{name}={value}"
            for name, (value, cookie_path) in self.cookies.items()
            if bare == cookie_path or bare.startswith(cookie_path.rstrip("/") + "/")
        ]
        if jar:
            sent["Cookie"] = "; ".join(jar)
        response = await deferred_to_future(
            treq.request(
                method,
                self.site.url + path,
                data=data,
                headers=sent,
                pool=self.pool,
                allow_redirects=False,
            )
        )
        body = await deferred_to_future(treq.content(response))
        headers_out = {
            name.decode().lower(): [value.decode() for value in values]
            for name, values in response.headers.getAllRawHeaders()
        }
        self.set_cookies = headers_out.get("set-cookie", [])
        for raw in self.set_cookies:
            for name, morsel in SimpleCookie(raw).items():
                self.cookies[name] = (morsel.value, morsel["path"] or "/")
        return Page(response.code, headers_out, body)


@asynccontextmanager
async def running(
    config: DemoSiteConfig | None = None, *, persistent: bool = False
) -> AsyncIterator[tuple[DemoSite, Browser]]:
    from twisted.internet import reactor

    site = DemoSite(config)
    url = site.start(port=0, host="127.0.0.1")
    assert url == site.url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
    pool = HTTPConnectionPool(reactor, persistent=persistent)  # type: ignore[no-untyped-call]
    try:
        yield site, Browser(site, pool)
    finally:
        await site.stop()
        await deferred_to_future(pool.closeCachedConnections())  # type: ignore[no-untyped-call]


def make_token(
    site: DemoSite,
    kind: str,
    *,
    action: str = "",
    expires_in: float = 120.0,
    secret: str = DEFAULT_SECRET,
    sitekey: str | None = None,
    page_url: str | None = None,
) -> str:
    """What the solver would hand back for the widget ``kind`` on the demo site."""
    return sign_token(
        secret,
        family=FAMILIES[kind],
        sitekey=sitekey if sitekey is not None else SITEKEYS[kind],
        page_url=page_url if page_url is not None else site.url + "/",
        expires_at=_now() + expires_in,
        action=action,
    )


def assert_content(page: Page) -> tuple[str, str]:
    assert page.status == 200, page.text
    title = page.sel.css("h1.title::text").get()
    content = page.sel.css("p.content::text").get()
    assert title
    assert content
    return title, content


def assert_no_widget(page: Page) -> None:
    assert "data-sitekey" not in page.text
    assert not any(script in page.text for script in WIDGET_SCRIPTS)
    assert not page.sel.css('[name$="-response"]')


# --- walls that set a clearance cookie ------------------------------------------------------------


class Wall(NamedTuple):
    page: str  # "" = the first guarded item
    verify: str
    field: str
    kind: str
    action: str
    widget: str  # CSS of the widget div
    script: str
    cookie: str


WALLS = {
    "item": Wall(
        "",
        "/verify/recaptcha",
        "g-recaptcha-response",
        "recaptcha_v2",
        "",
        "div.g-recaptcha",
        "https://www.google.com/recaptcha/api.js",
        "clearance_item_",
    ),
    "enterprise": Wall(
        "/enterprise",
        "/verify/enterprise",
        "g-recaptcha-response",
        "recaptcha_enterprise",
        "LOGIN",
        'div.g-recaptcha[data-action="LOGIN"]',
        "https://www.google.com/recaptcha/enterprise.js",
        "clearance_enterprise",
    ),
    "hcaptcha": Wall(
        "/hcaptcha",
        "/verify/hcaptcha",
        "h-captcha-response",
        "hcaptcha",
        "",
        "div.h-captcha",
        "https://js.hcaptcha.com/1/api.js",
        "clearance_hcaptcha",
    ),
    "turnstile": Wall(
        "/turnstile",
        "/verify/turnstile",
        "cf-turnstile-response",
        "turnstile",
        "checkout",
        'div.cf-turnstile[data-action="checkout"][data-cdata]',
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "clearance_turnstile",
    ),
    "zone": Wall(
        "/zone/3",
        "/zone/verify",
        "cf-turnstile-response",
        "turnstile",
        "",
        "div.cf-turnstile",
        "https://challenges.cloudflare.com/turnstile/v0/api.js",
        "zone_clearance",
    ),
}


def wall_page(site: DemoSite, wall: Wall) -> str:
    return wall.page or f"/item/{min(site.guarded_items)}"


def assert_wall(page: Page, site: DemoSite, wall: Wall, path: str) -> None:
    """The challenge of ``wall`` is shown for ``path``, with its parts inside the form."""
    assert page.status == site.config.challenge_status
    assert page.sel.css("title::text").get()
    assert page.sel.css(f'script[src="{wall.script}"]')
    assert not page.sel.css("h1.title")
    form = page.sel.css(f'form[action="{wall.verify}"][method="POST"]')
    assert len(form) == 1
    assert form.css('input[name="next"]::attr(value)').get() == path
    assert form.css(f'[name="{wall.field}"]')
    sitekey = form.css(f"{wall.widget}::attr(data-sitekey)").get()
    assert sitekey is not None
    assert sitekey.strip() == SITEKEYS[wall.kind]


@pytest.mark.parametrize("name", sorted(WALLS))
@deferred_f_from_coro_f
async def test_wall_challenge_then_valid_token_passes(name: str) -> None:
    wall = WALLS[name]
    async with running(DemoSiteConfig(challenge_status=403)) as (site, web):
        path = wall_page(site, wall)
        first = await web.get(path)
        assert_wall(first, site, wall, path)

        token = make_token(site, wall.kind, action=wall.action, page_url=site.url + path)
        passed = await web.post(wall.verify, {"next": path, wall.field: token})
        assert passed.status == 302
        assert passed.header("location") == path
        cookie = SimpleCookie(web.set_cookies[0])
        (cookie_name,) = cookie
        assert cookie_name.startswith(wall.cookie)
        assert cookie[cookie_name]["httponly"]

        title, _ = assert_content(await web.get(path))
        assert title
        web.cookies.clear()
        assert (await web.get(path)).status == 403  # no cookie: the wall again
        outcomes = [hit.outcome for hit in site.log]
        assert outcomes == ["challenge_shown", "token_accepted", "content", "challenge_shown"]
        kind = site.log[0].kind
        assert site.counts() == {
            f"challenge_shown/{kind}": 2,
            f"token_accepted/{kind}": 1,
            f"content/{kind}": 1,
        }


def _rejections() -> list[Any]:
    cases = []
    for name, wall in sorted(WALLS.items()):
        reasons = ["bad-signature", "expired", "wrong-sitekey", "wrong-host", "reused", "missing"]
        if wall.action:
            reasons.append("wrong-action")
        cases += [pytest.param(name, reason, id=f"{name}-{reason}") for reason in reasons]
    return cases


def bad_token(site: DemoSite, wall: Wall, reason: str, page_url: str) -> str:
    """A token the wall must refuse for ``reason`` ("reused": a good one, to be sent twice)."""
    other_kind = "hcaptcha" if wall.kind != "hcaptcha" else "turnstile"
    action, sitekey, secret, expires_in = wall.action, SITEKEYS[wall.kind], DEFAULT_SECRET, 120.0
    if reason == "missing":
        return ""
    if reason == "bad-signature":
        secret = "another-secret"
    elif reason == "expired":
        expires_in = -1.0
    elif reason == "wrong-sitekey":
        sitekey = SITEKEYS[other_kind]
    elif reason == "wrong-host":
        page_url = page_url.replace("127.0.0.1", "localhost")
    elif reason == "wrong-action":
        action = "other"
    return make_token(
        site,
        wall.kind,
        action=action,
        expires_in=expires_in,
        secret=secret,
        sitekey=sitekey,
        page_url=page_url,
    )


@pytest.mark.parametrize(("name", "reason"), _rejections())
@deferred_f_from_coro_f
async def test_wall_rejects_bad_token(name: str, reason: str) -> None:
    wall = WALLS[name]
    async with running() as (site, web):
        path = wall_page(site, wall)
        page_url = site.url + path
        token = bad_token(site, wall, reason, page_url)
        if reason == "reused":
            accepted = await web.post(wall.verify, {"next": path, wall.field: token})
            assert accepted.status == 302
            web.cookies.clear()

        rejected = await web.post(wall.verify, {"next": path, wall.field: token})
        assert_wall(rejected, site, wall, path)
        assert not web.set_cookies
        assert site.log[-1].outcome == f"token_rejected:{reason}"
        assert site.counts()[f"token_rejected/{reason}"] == 1
        assert (await web.get(path)).status == site.config.challenge_status


@deferred_f_from_coro_f
async def test_item_clearance_is_per_page_and_signed() -> None:
    async with running(DemoSiteConfig(pages=10, challenge_share=0.5)) as (site, web):
        first, second = sorted(site.guarded_items)[:2]
        token = make_token(site, "recaptcha_v2")
        await web.post(
            "/verify/recaptcha", {"next": f"/item/{first}", "g-recaptcha-response": token}
        )
        value, cookie_path = web.cookies[f"clearance_item_{first}"]
        assert cookie_path == f"/item/{first}"
        assert_content(await web.get(f"/item/{first}"))
        # The same value under another item's name, or a tampered value, opens nothing.
        web.cookies[f"clearance_item_{second}"] = (value, f"/item/{second}")
        assert (await web.get(f"/item/{second}")).sel.css("#challenge-form")
        web.cookies[f"clearance_item_{first}"] = (
            value[:-1] + ("1" if value.endswith("0") else "0"),
            f"/item/{first}",
        )
        assert (await web.get(f"/item/{first}")).sel.css("#challenge-form")


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
@deferred_f_from_coro_f
async def test_verify_redirects_only_to_local_paths(target: str) -> None:
    async with running() as (site, web):
        token = make_token(site, "recaptcha_v2")
        page = await web.post("/verify/recaptcha", {"next": target, "g-recaptcha-response": token})
        assert page.status == 302
        assert page.header("location") == "/"


@deferred_f_from_coro_f
async def test_item_interstitial_markup_is_realistic() -> None:
    async with running() as (site, web):
        page = await web.get(f"/item/{min(site.guarded_items)}")
        # Real pages put a leading space in the attribute; the form has the response textarea.
        assert f'data-sitekey=" {SITEKEYS["recaptcha_v2"]}"' in page.text
        form = page.sel.css("form#challenge-form")
        assert form.css('textarea[name="g-recaptcha-response"]')
        assert form.css('button[type="submit"], input[type="submit"]')
        assert page.sel.css("title::text").get()


# --- forms that carry the token ------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_invisible_recaptcha_form() -> None:
    async with running() as (site, web):
        page = await web.get("/invisible")
        assert page.status == 200
        form = page.sel.css('form[action="/submit/invisible"]')
        assert "grecaptcha.execute()" in (form.attrib.get("onsubmit") or "")
        widget = form.css('div.g-recaptcha[data-size="invisible"]')
        assert widget.attrib["data-sitekey"] == SITEKEYS["recaptcha_invisible"]
        assert form.css('[name="g-recaptcha-response"]')
        assert page.sel.css(f'script[src="{"https://www.google.com/recaptcha/api.js"}"]')

        v2_token = make_token(site, "recaptcha_v2")
        wrong = await web.post("/submit/invisible", {"g-recaptcha-response": v2_token})
        assert wrong.status == 200
        assert wrong.sel.css('form[action="/submit/invisible"] div.g-recaptcha')
        assert not wrong.sel.css("h1.title")

        token = make_token(site, "recaptcha_invisible")
        assert_content(await web.post("/submit/invisible", {"g-recaptcha-response": token}))
        assert [hit.outcome for hit in site.log] == [
            "challenge_shown",
            "token_rejected:wrong-sitekey",
            "token_accepted",
        ]


@deferred_f_from_coro_f
async def test_recaptcha_v3_search_needs_the_search_action() -> None:
    async with running() as (site, web):
        key = SITEKEYS["recaptcha_v3"]
        page = await web.get("/v3")
        assert page.sel.css(f'script[src="https://www.google.com/recaptcha/api.js?render={key}"]')
        assert f"grecaptcha.execute('{key}', {{action: 'search'}})" in page.text
        form = page.sel.css('form[action="/submit/v3"]')
        assert form.css('input[name="g-recaptcha-response"]')

        login_token = make_token(site, "recaptcha_v3", action="login")
        wrong = await web.post("/submit/v3", {"q": "kettle", "g-recaptcha-response": login_token})
        assert wrong.sel.css('form[action="/submit/v3"]')
        assert site.log[-1].outcome == "token_rejected:wrong-action"

        token = make_token(site, "recaptcha_v3", action="search")
        title, _ = assert_content(
            await web.post("/submit/v3", {"q": "kettle", "g-recaptcha-response": token})
        )
        assert "kettle" in title


@deferred_f_from_coro_f
async def test_login_with_a_presolved_token() -> None:
    async with running() as (site, web):
        form = (await web.get("/login")).sel.css('form[action="/login"][method="POST"]')
        sitekey = form.css('div.g-recaptcha[data-size="invisible"]::attr(data-sitekey)').get()
        assert sitekey == SITEKEYS["recaptcha_invisible"]
        assert {"username", "password", "g-recaptcha-response"} <= set(
            form.css("[name]::attr(name)").getall()
        )

        creds = {"username": "ada", "password": "secret"}
        missing = await web.post("/login", creds)
        assert missing.status == 403
        assert missing.sel.css('form[action="/login"] div.g-recaptcha')
        expired = make_token(
            site, "recaptcha_invisible", expires_in=-5, page_url=site.url + "/login"
        )
        assert (await web.post("/login", {**creds, "g-recaptcha-response": expired})).status == 403

        token = make_token(site, "recaptcha_invisible", page_url=site.url + "/login")
        title, _ = assert_content(
            await web.post("/login", {**creds, "g-recaptcha-response": token})
        )
        assert title == "Welcome, ada"
        assert [hit.outcome for hit in site.log] == [
            "challenge_shown",
            "token_rejected:missing",
            "token_rejected:expired",
            "token_accepted",
        ]


# --- image captcha -------------------------------------------------------------------------------


async def _image_challenge(web: Browser) -> tuple[Page, str, bytes]:
    page = await web.get("/image")
    form = page.sel.css('form[action="/verify/image"]')
    cid = form.css('input[name="cid"]::attr(value)').get()
    assert cid
    img = form.css("img#captcha-image")
    assert img.attrib["alt"] == "captcha"
    assert img.attrib["src"] == f"/captcha.png?cid={cid}"
    assert form.css('input[name="captcha_answer"]')
    png = await web.get(img.attrib["src"])
    assert png.status == 200
    assert png.header("content-type") == "image/png"
    return page, cid, png.body


@deferred_f_from_coro_f
async def test_image_captcha_flow() -> None:
    async with running() as (site, web):
        page, cid, png = await _image_challenge(web)
        assert page.status == site.config.challenge_status
        answer = read_image_answer(DEFAULT_SECRET, png)
        assert answer is not None
        assert len(answer) == 5
        passed = await web.post("/verify/image", {"cid": cid, "captcha_answer": answer.lower()})
        assert passed.status == 302
        assert passed.header("location") == "/image"
        assert "clearance_image" in web.cookies
        assert_content(await web.get("/image"))
        # A cid answers once.
        again = await web.post("/verify/image", {"cid": cid, "captcha_answer": answer})
        assert again.sel.css("img#captcha-image")
        assert site.log[-1].outcome == "token_rejected:unknown-cid"


@deferred_f_from_coro_f
async def test_image_captcha_wrong_answer_gets_a_fresh_image() -> None:
    async with running() as (site, web):
        _, cid, png = await _image_challenge(web)
        answer = read_image_answer(DEFAULT_SECRET, png)
        assert answer is not None
        wrong = "".join("0" if ch != "0" else "1" for ch in answer)
        fresh = await web.post("/verify/image", {"cid": cid, "captcha_answer": wrong})
        assert fresh.status == site.config.challenge_status
        new_cid = fresh.sel.css('input[name="cid"]::attr(value)').get()
        assert new_cid
        assert new_cid != cid
        assert site.log[-1].outcome == "token_rejected:wrong-answer"
        assert (await web.get(f"/captcha.png?cid={cid}")).status == 404  # the old cid is spent
        assert "clearance_image" not in web.cookies
        assert (await web.get("/image")).sel.css("img#captcha-image")


# --- JSON API ------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_api_needs_a_turnstile_token_per_page() -> None:
    async with running(DemoSiteConfig(pages=30, per_list=25)) as (site, web):
        refused = await web.get("/api/items?page=1")
        assert refused.status == 403
        assert refused.header("content-type") == "application/json"
        assert refused.json() == {
            "error": "captcha_required",
            "captcha": {
                "type": "turnstile",
                "sitekey": SITEKEYS["turnstile"],
                "url": site.url + "/api/items?page=1",
            },
        }
        token = make_token(site, "turnstile", action="whatever")
        page = await web.get("/api/items?page=1", headers={"X-Captcha-Token": token})
        assert page.status == 200
        data = page.json()
        assert data["page"] == 1
        assert [item["id"] for item in data["items"]] == list(range(1, 26))
        assert data["next"] == "/api/items?page=2"

        reused = await web.get("/api/items?page=2", headers={"X-Captcha-Token": token})
        assert reused.status == 403
        assert reused.json()["reason"] == "reused"
        second = make_token(site, "turnstile")
        last = (await web.get("/api/items?page=2", headers={"X-Captcha-Token": second})).json()
        assert [item["id"] for item in last["items"]] == list(range(26, 31))
        assert last["next"] is None
        assert (await web.get("/api/items?page=x")).status == 400
        assert [hit.outcome for hit in site.log] == [
            "challenge_shown",
            "token_accepted",
            "token_rejected:reused",
            "token_accepted",
            "bad_request",
        ]
        assert {hit.kind for hit in site.log} == {"api"}


@deferred_f_from_coro_f
async def test_api_rejects_a_token_for_another_sitekey() -> None:
    async with running() as (site, web):
        token = make_token(site, "turnstile", sitekey=SITEKEYS["hcaptcha"])
        page = await web.get("/api/items?page=1", headers={"X-Captcha-Token": token})
        assert page.status == 403
        assert page.json()["reason"] == "wrong-sitekey"


# --- zone clearance ------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_one_zone_solve_opens_every_zone_page() -> None:
    async with running() as (site, web):
        index = await web.get("/zone/")
        links = index.sel.css("main a::attr(href)").getall()
        assert [f"/zone/{n}" for n in range(1, 6)] == [
            link for link in links if link.startswith("/zone/")
        ]
        for n in range(1, 6):
            assert_wall(await web.get(f"/zone/{n}"), site, WALLS["zone"], f"/zone/{n}")

        token = make_token(site, "turnstile")
        passed = await web.post("/zone/verify", {"next": "/zone/4", "cf-turnstile-response": token})
        assert passed.status == 302
        assert passed.header("location") == "/zone/4"
        assert web.cookies["zone_clearance"][1] == "/"
        titles = {assert_content(await web.get(f"/zone/{n}"))[0] for n in range(1, 6)}
        assert len(titles) == 5
        assert (await web.get("/zone/6")).status == 404
        assert (await web.get("/turnstile")).sel.css("div.cf-turnstile")  # another wall
        assert site.counts()["challenge_shown/zone"] == 5
        assert site.counts()["content/zone"] == 6  # the index and the five pages


# --- unsolvable and negative pages ---------------------------------------------------------------


@deferred_f_from_coro_f
async def test_cloudflare_managed_challenge() -> None:
    async with running() as (site, web):
        page = await web.get("/protected/managed")
        assert page.status == 403
        assert page.header("cf-mitigated") == "challenge"
        assert page.header("server") == "cloudflare"
        assert page.sel.css("title::text").get() == "Just a moment..."
        assert "window._cf_chl_opt={" in page.text
        script = re.search(
            r"/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1\?ray=([0-9a-f]+)", page.text
        )
        assert script is not None
        assert page.header("cf-ray") == f"{script[1]}-AMS"
        assert page.sel.css("#challenge-error-text")
        assert_no_widget(page)
        # Nothing passes it.
        token = make_token(site, "turnstile", page_url=site.url + "/protected/managed")
        post = await web.post("/protected/managed", {"cf-turnstile-response": token})
        assert post.status == 403
        assert site.counts() == {"challenge_shown/managed": 2}


@pytest.mark.parametrize(
    ("path", "title"),
    [
        ("/articles/just-a-moment", "Just a moment..."),
        ("/articles/captchas", "How CAPTCHAs work (and why you see them) | Demo Shop"),
    ],
)
@deferred_f_from_coro_f
async def test_negative_articles_are_plain_pages(path: str, title: str) -> None:
    async with running() as (site, web):
        page = await web.get(path)
        assert_content(page)
        assert page.sel.css("title::text").get() == title
        assert page.header("cf-mitigated") is None
        assert "_cf_chl_opt" not in page.text
        assert "/cdn-cgi/" not in page.text
        assert_no_widget(page)
        assert site.log[-1].kind == "negative"
        assert site.log[-1].outcome == "content"


@deferred_f_from_coro_f
async def test_captcha_article_links_recaptcha_docs() -> None:
    async with running() as (_, web):
        page = await web.get("/articles/captchas")
        assert "CAPTCHA" in page.sel.css("p.content::text").get("")
        hrefs = page.sel.css("a::attr(href)").getall()
        assert "https://developers.google.com/recaptcha/docs/display" in hrefs


@deferred_f_from_coro_f
async def test_contact_form_has_a_widget_but_is_a_plain_page() -> None:
    async with running() as (site, web):
        page = await web.get("/contact")
        assert page.status == 200
        assert page.sel.css("title::text").get()
        form = page.sel.css('form[action="/contact"]')
        assert form.css("div.g-recaptcha::attr(data-sitekey)").get() == SITEKEYS["recaptcha_v2"]
        assert page.sel.css('script[src="https://www.google.com/recaptcha/api.js"]')
        assert (site.log[-1].kind, site.log[-1].outcome) == ("negative", "content")


# --- catalogue -----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_index_links_the_catalogue_and_every_special_page() -> None:
    async with running() as (_, web):
        page = await web.get("/")
        assert page.status == 200
        assert page.sel.css("title::text").get()
        hrefs = set(page.sel.css("a::attr(href)").getall())
        expected = {
            "/list/1",
            "/invisible",
            "/v3",
            "/enterprise",
            "/hcaptcha",
            "/turnstile",
            "/image",
            "/api/items?page=1",
            "/zone/",
            "/login",
            "/protected/managed",
            "/articles/just-a-moment",
            "/articles/captchas",
            "/contact",
        }
        assert expected <= hrefs


@deferred_f_from_coro_f
async def test_listing_pages_link_every_item() -> None:
    config = DemoSiteConfig(pages=53, per_list=10, challenge_share=0.0)
    async with running(config) as (_, web):
        seen: list[int] = []
        path: str | None = "/list/1"
        listings = 0
        while path is not None:
            page = await web.get(path)
            assert page.status == 200
            items = [
                int(href.rsplit("/", 1)[1])
                for href in page.sel.css("a::attr(href)").getall()
                if href.startswith("/item/")
            ]
            assert 0 < len(items) <= 10
            seen += items
            listings += 1
            path = page.sel.css('a[rel="next"]::attr(href)').get()
        assert seen == list(range(1, 54))
        assert listings == 6
        assert (await web.get("/list/7")).status == 404
        texts = {assert_content(await web.get(f"/item/{i}")) for i in (1, 2, 53)}
        assert len({title for title, _ in texts}) == 3
        assert len({content for _, content in texts}) == 3
        assert (await web.get("/item/54")).status == 404


def test_challenge_share_picks_items_deterministically() -> None:
    def guarded(**kwargs: Any) -> frozenset[int]:
        return DemoSite(DemoSiteConfig(**kwargs)).guarded_items

    assert len(guarded(pages=200, challenge_share=0.2)) == 40
    assert len(guarded(pages=50)) == 10  # defaults: 50 pages, share 0.2
    assert guarded(pages=200, seed=7) == guarded(pages=200, seed=7)
    assert guarded(pages=200, seed=7) != guarded(pages=200, seed=8)
    assert guarded(pages=20, challenge_share=0.0) == frozenset()
    assert guarded(pages=20, challenge_share=1.0) == frozenset(range(1, 21))
    spread = guarded(pages=1000, challenge_share=0.1)
    assert min(spread) < 200
    assert max(spread) > 800


@deferred_f_from_coro_f
async def test_challenge_share_decides_which_items_show_the_interstitial() -> None:
    config = DemoSiteConfig(pages=20, challenge_share=0.25, seed=3)
    async with running(config) as (site, web):
        walled = set()
        for i in range(1, 21):
            page = await web.get(f"/item/{i}")
            if page.sel.css("#challenge-form"):
                walled.add(i)
            else:
                assert_content(page)
        assert walled == site.guarded_items
        assert len(walled) == 5
        assert site.counts() == {"challenge_shown/recaptcha_v2": 5, "content/plain": 15}


@deferred_f_from_coro_f
async def test_unknown_pages_and_methods() -> None:
    async with running() as (site, web):
        for path in ("/nope", "/item/0", "/item/007", "/cdn-cgi/challenge-platform/h/g/x"):
            page = await web.get(path)
            assert page.status == 404
            assert page.sel.css("title::text").get()
        not_allowed = await web.post("/item/1", {})
        assert not_allowed.status == 405
        assert not_allowed.header("allow") == "GET"
        assert site.log[-1].outcome == "method_not_allowed"


# --- log, counters, lifecycle --------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_log_records_every_request_in_order() -> None:
    async with running(DemoSiteConfig(pages=4, challenge_share=0.5)) as (site, web):
        guarded = min(site.guarded_items)
        plain = min(set(range(1, 5)) - site.guarded_items)
        token = make_token(site, "recaptcha_v2")
        await web.get("/")
        await web.get("/list/1")
        await web.get(f"/item/{plain}")
        await web.get(f"/item/{guarded}")
        await web.post(
            "/verify/recaptcha", {"next": f"/item/{guarded}", "g-recaptcha-response": token}
        )
        await web.post(
            "/verify/recaptcha", {"next": f"/item/{guarded}", "g-recaptcha-response": token}
        )
        await web.get(f"/item/{guarded}")
        await web.get("/protected/managed")

        assert [
            (hit.seq, hit.method, hit.path, hit.status, hit.kind, hit.outcome) for hit in site.log
        ] == [
            (1, "GET", "/", 200, "plain", "content"),
            (2, "GET", "/list/1", 200, "plain", "content"),
            (3, "GET", f"/item/{plain}", 200, "plain", "content"),
            (4, "GET", f"/item/{guarded}", 200, "recaptcha_v2", "challenge_shown"),
            (5, "POST", "/verify/recaptcha", 302, "recaptcha_v2", "token_accepted"),
            (6, "POST", "/verify/recaptcha", 200, "recaptcha_v2", "token_rejected:reused"),
            (7, "GET", f"/item/{guarded}", 200, "recaptcha_v2", "content"),
            (8, "GET", "/protected/managed", 403, "managed", "challenge_shown"),
        ]
        times = [hit.time for hit in site.log]
        assert times == sorted(times)
        assert all(isinstance(hit, Hit) for hit in site.log)
        assert site.counts() == {
            "content/plain": 3,
            "challenge_shown/recaptcha_v2": 1,
            "token_accepted/recaptcha_v2": 1,
            "token_rejected/recaptcha_v2": 1,
            "token_rejected/reused": 1,
            "content/recaptcha_v2": 1,
            "challenge_shown/managed": 1,
        }


@deferred_f_from_coro_f
async def test_query_is_logged_apart_from_the_path() -> None:
    async with running() as (site, web):
        await web.get("/api/items?page=3")
        assert (site.log[0].path, site.log[0].query) == ("/api/items", "page=3")


@deferred_f_from_coro_f
async def test_slow_delays_every_response() -> None:
    async with running(DemoSiteConfig(slow=0.05)) as (site, web):
        started = _now()
        page = await web.get("/")
        assert page.status == 200
        # asyncio may fire a timer up to its clock resolution early
        assert _now() - started >= 0.045
        assert site.log[0].outcome == "content"


@deferred_f_from_coro_f
async def test_stop_closes_kept_alive_connections_and_the_port() -> None:
    async with running(persistent=True) as (site, web):
        assert (await web.get("/")).status == 200
        assert (await web.get("/list/1")).status == 200
        await site.stop()  # with a kept-alive connection open
        with pytest.raises(ConnectionRefusedError):
            await deferred_to_future(treq.get(site.url + "/", pool=web.pool))
        await site.stop()  # twice is fine


def test_sitekeys_look_real() -> None:
    for kind in ("recaptcha_v2", "recaptcha_invisible", "recaptcha_v3", "recaptcha_enterprise"):
        assert re.fullmatch(r"6Le[0-9A-Za-z_-]{37}", SITEKEYS[kind])
    assert re.fullmatch(
        r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", SITEKEYS["hcaptcha"]
    )
    assert re.fullmatch(r"0x4AAAAAAA[0-9A-Za-z_-]{10,}", SITEKEYS["turnstile"])
    assert len(set(SITEKEYS.values())) == len(SITEKEYS)
    assert DemoSiteConfig().sitekeys == SITEKEYS


@pytest.mark.parametrize(
    "kwargs",
    [
        {"pages": -1},
        {"challenge_share": 1.5},
        {"per_list": 0},
        {"challenge_status": 99},
        {"slow": -0.1},
        {"sitekeys": {"recaptcha_v2": "6Le"}},
    ],
)
def test_config_is_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="DemoSiteConfig"):
        DemoSiteConfig(**kwargs)


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = DemoSite().url
