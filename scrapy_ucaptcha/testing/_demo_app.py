"""What the demo challenge site answers, free of any server machinery.

:class:`DemoApp` maps an :class:`Incoming` request to a :class:`Reply`; the twisted.web glue, the
request log and the optional delay live in :mod:`scrapy_ucaptcha.testing.demo_site`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final, NamedTuple
from urllib.parse import urlsplit

from scrapy_ucaptcha.testing import _demo_html as html
from scrapy_ucaptcha.testing._demo_kinds import MoreKinds
from scrapy_ucaptcha.testing._demo_model import (
    CLEARANCE_TTL,
    ENTERPRISE_ACTION,
    IMAGE_ANSWER_LENGTH,
    SITEKEYS,
    TURNSTILE_ACTION,
    V3_ACTION,
    ZONE_PAGES,
    DemoSiteConfig,
    Incoming,
    Reply,
    item_text,
    local_path,
    pick_guarded,
)
from scrapy_ucaptcha.testing.tokens import (
    IMAGE_ALPHABET,
    InvalidToken,
    TokenVerifier,
    render_captcha_png,
)

_MAX_IMAGE_CHALLENGES: Final = 10_000  # oldest unanswered image challenges are forgotten first
_REJECTED: Final = "The security check failed. Please try again."
_WALL_TITLES: Final = {
    "datadome": "Shop floor",
    "cloudflare": "Back office",
    "aws_waf": "Warehouse",
}
#: The ``key`` of the AWS WAF challenge pages' ``window.gokuProps`` (the site's, it never changes).
AWS_WAF_KEY: Final = "AQIDAHjcYu/GjX+QlghicBgQ/7bFaQZ+m5FKCMDnO+vTbNg96AHDh0IR5vgzHNceHYqZR+GO"
_ITEM_PATH: Final = re.compile(r"/item/([1-9][0-9]*)")


class _Clearance(NamedTuple):
    cookie: str
    path: str
    scope: str


@dataclass(frozen=True, kw_only=True)
class _Wall:
    """A page behind a token wall that, once passed, sets a clearance cookie."""

    kind: str
    field: str
    clearance: _Clearance
    challenge: Callable[[str, str], str]  # (next path, error note) -> HTML
    sitekey_kind: str = ""  # default: kind
    action: str | None = None
    default_next: str = ""  # default: the clearance cookie's path
    title: str = ""
    text: str = ""


Handler = Callable[[Incoming, "re.Match[str]"], Reply]


def _page(status: int, doc: str, kind: str, outcome: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, doc.encode(), kind, outcome, headers=headers)


def _json(status: int, payload: object, kind: str, outcome: str) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return Reply(status, body, kind, outcome, content_type="application/json")


class DemoApp:
    """Routes requests to pages and checks tokens, clearance cookies and image answers."""

    def __init__(self, config: DemoSiteConfig) -> None:
        self.config = config
        self.verifier = TokenVerifier(config.secret)
        self.guarded_items = pick_guarded(config.pages, config.challenge_share, config.seed)
        self.list_pages = max(1, math.ceil(config.pages / config.per_list))
        self._image_answers: dict[str, str] = {}
        walls = self._walls()
        self._zone = walls["zone"]
        get, post = "GET", "POST"
        routes: list[tuple[str, dict[str, Handler]]] = [
            ("/", {get: self._index}),
            ("/list/([1-9][0-9]*)", {get: self._listing}),
            ("/item/([1-9][0-9]*)", {get: self._item}),
            ("/verify/recaptcha", {post: self._verify_recaptcha}),
            ("/invisible", {get: self._invisible}),
            ("/submit/invisible", {post: self._submit_invisible}),
            ("/v3", {get: self._v3}),
            ("/submit/v3", {post: self._submit_v3}),
            ("/enterprise", {get: self._wall_page(walls["enterprise"])}),
            ("/verify/enterprise", {post: self._wall_verify(walls["enterprise"])}),
            ("/hcaptcha", {get: self._wall_page(walls["hcaptcha"])}),
            ("/verify/hcaptcha", {post: self._wall_verify(walls["hcaptcha"])}),
            ("/turnstile", {get: self._wall_page(walls["turnstile"])}),
            ("/verify/turnstile", {post: self._wall_verify(walls["turnstile"])}),
            ("/image", {get: self._image}),
            ("/captcha.png", {get: self._captcha_png}),
            ("/verify/image", {post: self._verify_image}),
            ("/api/items", {get: self._api_items, post: self._api_items}),
            ("/zone", {get: self._zone_redirect}),
            ("/zone/", {get: self._zone_index}),
            ("/zone/([1-9][0-9]*)", {get: self._zone_page}),
            ("/zone/verify", {post: self._wall_verify(self._zone)}),
            ("/login", {get: self._login, post: self._login_post}),
            ("/protected/managed", {get: self._managed, post: self._managed}),
            ("/dd/([1-9][0-9]*)", {get: self._datadome}),
            ("/dd-banned/([1-9][0-9]*)", {get: self._datadome_banned}),
            ("/cf/([1-9][0-9]*)", {get: self._cloudflare}),
            ("/aws/([1-9][0-9]*)", {get: self._aws_waf}),
            ("/articles/just-a-moment", {get: self._article_moment}),
            ("/articles/captchas", {get: self._article_captchas}),
            ("/contact", {get: self._contact, post: self._contact_post}),
            *MoreKinds(self).routes(),  # Arkose, GeeTest, Friendly, MTCaptcha, Yandex, AWS WAF
        ]
        self._routes = [(re.compile(pattern), handlers) for pattern, handlers in routes]

    def handle(self, req: Incoming) -> Reply:
        method = "GET" if req.method == "HEAD" else req.method
        for pattern, handlers in self._routes:
            match = pattern.fullmatch(req.path)
            if match is None:
                continue
            handler = handlers.get(method)
            if handler is None:
                allow = ", ".join(sorted(handlers))
                doc = html.method_not_allowed_page(req.method)
                return _page(405, doc, "error", "method_not_allowed", ("Allow", allow))
            return handler(req, match)
        return self._not_found(req)

    # --- shared mechanics -----------------------------------------------------------------------

    def _key(self, kind: str) -> str:
        return self.config.sitekeys[kind].strip()

    def _reject_reason(
        self,
        token: str,
        sitekey_kind: str,
        page_url: str,
        now: float,
        action: str | None = None,
        *,
        identity: str | None = None,
    ) -> str | None:
        """``None`` for a good token (now used up), else why it was refused. ``identity``: the
        requester's, checked when the site binds tokens to it."""
        try:
            self.verifier.verify(
                token,
                sitekey=self._key(sitekey_kind),
                page_url=page_url,
                now=now,
                action=action,
                identity=identity if self.config.bind_identity else None,
            )
        except InvalidToken as exc:
            return exc.reason
        return None

    def _clearance_mac(self, scope: str, expires: int, nonce: str) -> str:
        data = f"clearance|{scope}|{expires}|{nonce}".encode()
        return hmac.new(self.config.secret.encode(), data, hashlib.sha256).hexdigest()[:32]

    def _clearance_cookie(self, clearance: _Clearance, now: float) -> tuple[str, str]:
        expires = int(now) + CLEARANCE_TTL
        nonce = secrets.token_urlsafe(9)
        value = f"{expires}.{nonce}.{self._clearance_mac(clearance.scope, expires, nonce)}"
        header = (
            f"{clearance.cookie}={value}; Max-Age={CLEARANCE_TTL}; Path={clearance.path}; "
            "HttpOnly; SameSite=Lax"
        )
        return ("Set-Cookie", header)

    def _cleared(self, req: Incoming, clearance: _Clearance) -> bool:
        expires, _, rest = req.cookies.get(clearance.cookie, "").partition(".")
        nonce, _, mac = rest.partition(".")
        if not (expires.isdigit() and nonce and mac) or int(expires) < req.now:
            return False
        return hmac.compare_digest(mac, self._clearance_mac(clearance.scope, int(expires), nonce))

    def _guarded(
        self,
        req: Incoming,
        kind: str,
        clearance: _Clearance,
        content: Callable[[], str],
        challenge: Callable[[], str],
    ) -> Reply:
        if self._cleared(req, clearance):
            return _page(200, content(), kind, "content")
        return _page(self.config.challenge_status, challenge(), kind, "challenge_shown")

    def _verify_token(
        self,
        req: Incoming,
        *,
        kind: str,
        field: str,
        next_path: str,
        clearance: _Clearance | None,
        challenge: Callable[[str], str],
        sitekey_kind: str = "",
        action: str | None = None,
    ) -> Reply:
        """Check the token in ``field``; on success set the clearance cookie and go to ``next``."""
        page_url = req.url_for(next_path)
        reason = self._reject_reason(
            req.arg(field), sitekey_kind or kind, page_url, req.now, action, identity=req.identity
        )
        if reason is not None:
            doc = challenge(_REJECTED)
            return _page(self.config.challenge_status, doc, kind, f"token_rejected:{reason}")
        headers = [("Location", next_path)]
        if clearance is not None:
            headers.append(self._clearance_cookie(clearance, req.now))
        return _page(302, html.redirect_page(next_path), kind, "token_accepted", *headers)

    def _not_found(self, req: Incoming) -> Reply:
        return _page(404, html.not_found_page(req.path), "not_found", "not_found")

    # --- catalogue ------------------------------------------------------------------------------

    def _index(self, req: Incoming, match: re.Match[str]) -> Reply:
        links = [
            ("/list/1", "Catalogue"),
            ("/invisible", "Newsletter"),
            ("/v3", "Archive search"),
            ("/enterprise", "Partner portal"),
            ("/hcaptcha", "Deals of the day"),
            ("/turnstile", "Checkout"),
            ("/image", "Gift card balance"),
            ("/api/items?page=1", "Items API"),
            ("/zone/", "Members zone"),
            ("/login", "Sign in"),
            ("/protected/managed", "Protected area"),
            ("/articles/just-a-moment", "Blog: Just a moment..."),
            ("/articles/captchas", "Blog: How CAPTCHAs work"),
            ("/contact", "Contact"),
        ]
        return _page(200, html.index_page(links), "plain", "content")

    def _item_range(self, page: int) -> range:
        first = (page - 1) * self.config.per_list + 1
        return range(first, min(first + self.config.per_list, self.config.pages + 1))

    def _listing(self, req: Incoming, match: re.Match[str]) -> Reply:
        number = int(match[1])
        if number > self.list_pages:
            return self._not_found(req)
        items = [(i, item_text(self.config.seed, i)[0]) for i in self._item_range(number)]
        next_href = f"/list/{number + 1}" if number < self.list_pages else None
        return _page(200, html.listing_page(number, items, next_href), "plain", "content")

    def _item(self, req: Incoming, match: re.Match[str]) -> Reply:
        number = int(match[1])
        if number > self.config.pages:
            return self._not_found(req)
        title, text = item_text(self.config.seed, number)
        extra = f'  <p class="price">&euro; {number % 90 + 9}.99</p>\n'
        doc = html.content_page(title, text, extra=extra)
        if number not in self.guarded_items:
            return _page(200, doc, "plain", "content")
        clearance = _Clearance(f"clearance_item_{number}", req.path, f"item/{number}")
        key = self._key("recaptcha_v2")
        return self._guarded(
            req,
            "recaptcha_v2",
            clearance,
            lambda: doc,
            lambda: html.recaptcha_interstitial(key, req.path),
        )

    def _verify_recaptcha(self, req: Incoming, match: re.Match[str]) -> Reply:
        next_path = local_path(req.arg("next"), "/")
        item = _ITEM_PATH.fullmatch(next_path)
        clearance = None
        if item is not None and int(item[1]) <= self.config.pages:
            clearance = _Clearance(f"clearance_item_{item[1]}", next_path, f"item/{item[1]}")
        key = self._key("recaptcha_v2")
        return self._verify_token(
            req,
            kind="recaptcha_v2",
            field="g-recaptcha-response",
            next_path=next_path,
            clearance=clearance,
            challenge=lambda error: html.recaptcha_interstitial(key, next_path, error),
        )

    # --- forms that carry their token (invisible, v3, login) ------------------------------------

    def _invisible(self, req: Incoming, match: re.Match[str]) -> Reply:
        doc = html.invisible_page(self._key("recaptcha_invisible"))
        return _page(200, doc, "recaptcha_invisible", "challenge_shown")

    def _submit_invisible(self, req: Incoming, match: re.Match[str]) -> Reply:
        key = self._key("recaptcha_invisible")
        return self._form_post(
            req,
            kind="recaptcha_invisible",
            form_path="/invisible",
            form=lambda error: html.invisible_page(key, error),
            title="Welcome to the newsletter",
            text="Subscribed: the members-only catalogue opens with issue 42 of our letter.",
        )

    def _v3(self, req: Incoming, match: re.Match[str]) -> Reply:
        doc = html.v3_page(self._key("recaptcha_v3"), V3_ACTION)
        return _page(200, doc, "recaptcha_v3", "challenge_shown")

    def _submit_v3(self, req: Incoming, match: re.Match[str]) -> Reply:
        key = self._key("recaptcha_v3")
        query = req.arg("q") or "everything"
        return self._form_post(
            req,
            kind="recaptcha_v3",
            form_path="/v3",
            action=V3_ACTION,
            form=lambda error: html.v3_page(key, V3_ACTION, error),
            title=f"Search results for {query}",
            text=f"Archive search: 3 results for {query} in the v3-scored archive.",
        )

    def _login(self, req: Incoming, match: re.Match[str]) -> Reply:
        doc = html.login_page(self._key("recaptcha_invisible"))
        return _page(200, doc, "login", "challenge_shown")

    def _login_post(self, req: Incoming, match: re.Match[str]) -> Reply:
        key = self._key("recaptcha_invisible")
        username = req.arg("username")
        return self._form_post(
            req,
            kind="login",
            sitekey_kind="recaptcha_invisible",
            form_path="/login",
            form=lambda error: html.login_page(key, username, error),
            rejected_status=403,
            title=f"Welcome, {username or 'guest'}",
            text=f"Signed in as {username or 'guest'}: your order history has 7 orders.",
        )

    def _form_post(
        self,
        req: Incoming,
        *,
        kind: str,
        form_path: str,
        form: Callable[[str], str],
        title: str,
        text: str,
        sitekey_kind: str = "",
        action: str | None = None,
        rejected_status: int = 200,
    ) -> Reply:
        """A form posted with its ``g-recaptcha-response``: the result, or the form again."""
        token = req.arg("g-recaptcha-response")
        page_url = req.url_for(form_path)
        reason = self._reject_reason(
            token, sitekey_kind or kind, page_url, req.now, action, identity=req.identity
        )
        if reason is not None:
            return _page(rejected_status, form(_REJECTED), kind, f"token_rejected:{reason}")
        return _page(200, html.content_page(title, text), kind, "token_accepted")

    # --- walls with a clearance cookie (enterprise, hCaptcha, Turnstile, zone; image below) -----

    def _walls(self) -> dict[str, _Wall]:
        keys = {kind: self._key(kind) for kind in SITEKEYS}

        def turnstile(next_path: str, error: str) -> str:
            return html.turnstile_page(
                keys["turnstile"],
                form_action="/verify/turnstile",
                next_path=next_path,
                widget_action=TURNSTILE_ACTION,
                cdata=f"order-{secrets.token_hex(6)}",
                error=error,
            )

        def zone(next_path: str, error: str) -> str:
            return html.turnstile_page(
                keys["turnstile"],
                form_action="/zone/verify",
                next_path=next_path,
                heading="Checking your browser",
                error=error,
            )

        return {
            "enterprise": _Wall(
                kind="recaptcha_enterprise",
                field="g-recaptcha-response",
                action=ENTERPRISE_ACTION,
                clearance=_Clearance("clearance_enterprise", "/enterprise", "enterprise"),
                challenge=lambda next_path, error: html.enterprise_page(
                    keys["recaptcha_enterprise"], ENTERPRISE_ACTION, next_path, error
                ),
                title="Partner portal",
                text="Partner price list: wholesale lanterns at 40% off, enterprise tier.",
            ),
            "hcaptcha": _Wall(
                kind="hcaptcha",
                field="h-captcha-response",
                clearance=_Clearance("clearance_hcaptcha", "/hcaptcha", "hcaptcha"),
                challenge=lambda next_path, error: html.hcaptcha_page(
                    keys["hcaptcha"], next_path, error
                ),
                title="Deals of the day",
                text="Today only: hCaptcha-guarded deal on brass compasses, 2 for 1.",
            ),
            "turnstile": _Wall(
                kind="turnstile",
                field="cf-turnstile-response",
                action=TURNSTILE_ACTION,
                clearance=_Clearance("clearance_turnstile", "/turnstile", "turnstile"),
                challenge=turnstile,
                title="Checkout",
                text="Checkout open: basket of 3 items, Turnstile check passed.",
            ),
            "zone": _Wall(
                kind="zone",
                sitekey_kind="turnstile",
                field="cf-turnstile-response",
                clearance=_Clearance("zone_clearance", "/", "zone"),
                challenge=zone,
                default_next="/zone/",
            ),
        }

    def _behind_wall(self, req: Incoming, wall: _Wall, title: str, text: str) -> Reply:
        return self._guarded(
            req,
            wall.kind,
            wall.clearance,
            lambda: html.content_page(title, text),
            lambda: wall.challenge(req.path, ""),
        )

    def _wall_page(self, wall: _Wall) -> Handler:
        def handler(req: Incoming, match: re.Match[str]) -> Reply:
            return self._behind_wall(req, wall, wall.title, wall.text)

        return handler

    def _wall_verify(self, wall: _Wall) -> Handler:
        def handler(req: Incoming, match: re.Match[str]) -> Reply:
            next_path = local_path(req.arg("next"), wall.default_next or wall.clearance.path)
            return self._verify_token(
                req,
                kind=wall.kind,
                sitekey_kind=wall.sitekey_kind,
                field=wall.field,
                next_path=next_path,
                clearance=wall.clearance,
                challenge=lambda error: wall.challenge(next_path, error),
                action=wall.action,
            )

        return handler

    def _new_image_challenge(self) -> str:
        """Remember a fresh answer under a new challenge id and return the id."""
        while len(self._image_answers) >= _MAX_IMAGE_CHALLENGES:
            del self._image_answers[next(iter(self._image_answers))]
        cid = secrets.token_urlsafe(12)
        answer = "".join(secrets.choice(IMAGE_ALPHABET) for _ in range(IMAGE_ANSWER_LENGTH))
        self._image_answers[cid] = answer
        return cid

    def _image(self, req: Incoming, match: re.Match[str]) -> Reply:
        return self._guarded(
            req,
            "image",
            _Clearance("clearance_image", "/image", "image"),
            lambda: html.content_page(
                "Gift card balance",
                "Gift card balance: 25.00 EUR, shown after the image check.",
            ),
            lambda: html.image_page(self._new_image_challenge()),
        )

    def _captcha_png(self, req: Incoming, match: re.Match[str]) -> Reply:
        answer = self._image_answers.get(req.arg("cid"))
        if answer is None:
            return _page(404, html.not_found_page(req.path), "image", "not_found")
        png = render_captcha_png(self.config.secret, answer)
        return Reply(
            200,
            png,
            "image",
            "image_served",
            content_type="image/png",
            headers=(("Cache-Control", "no-store"),),
        )

    def _verify_image(self, req: Incoming, match: re.Match[str]) -> Reply:
        answer = self._image_answers.pop(req.arg("cid"), None)
        given = req.arg("captcha_answer").strip().upper()
        if answer is None:
            reason = "unknown-cid"
        elif not given:
            reason = "missing"
        elif not hmac.compare_digest(given.encode(), answer.encode()):
            reason = "wrong-answer"
        else:
            clearance = _Clearance("clearance_image", "/image", "image")
            cookie = self._clearance_cookie(clearance, req.now)
            doc = html.redirect_page("/image")
            return _page(302, doc, "image", "token_accepted", ("Location", "/image"), cookie)
        doc = html.image_page(self._new_image_challenge(), _REJECTED)
        return _page(self.config.challenge_status, doc, "image", f"token_rejected:{reason}")

    def _zone_redirect(self, req: Incoming, match: re.Match[str]) -> Reply:
        return _page(301, html.redirect_page("/zone/"), "zone", "redirect", ("Location", "/zone/"))

    def _zone_index(self, req: Incoming, match: re.Match[str]) -> Reply:
        links = [(f"/zone/{n}", f"Members area {n}") for n in range(1, ZONE_PAGES + 1)]
        body = "<h1>Members zone</h1>\n" + html.link_list(links)
        return _page(200, html.page("Members zone | Demo Shop", body), "zone", "content")

    def _zone_page(self, req: Incoming, match: re.Match[str]) -> Reply:
        number = int(match[1])
        if number > ZONE_PAGES:
            return self._not_found(req)
        title = f"Members area {number}"
        return self._behind_wall(
            req, self._zone, title, f"{title}: zone-wide clearance works here."
        )

    # --- JSON API ---------------------------------------------------------------------------------

    def _api_items(self, req: Incoming, match: re.Match[str]) -> Reply:
        body: dict[str, object] = {}
        if req.method == "POST":
            try:
                loaded = json.loads(req.body or b"{}")
            except ValueError:
                loaded = None
            if not isinstance(loaded, dict):
                problem = {"error": "bad_request", "detail": "POST a JSON object"}
                return _json(400, problem, "api", "bad_request")
            body = loaded
        raw = str(body.get("page", "")) or req.arg("page") or "1"
        if not re.fullmatch(r"[1-9][0-9]{0,8}", raw):
            problem = {"error": "bad_request", "detail": "page must be a positive integer"}
            return _json(400, problem, "api", "bad_request")
        # the token may come as a header, a cookie, a query parameter or a JSON body key
        token = (
            req.headers.get("x-captcha-token")
            or req.cookies.get("captcha_token")
            or req.arg("captcha")
            or str(body.get("captchaToken") or "")
        )
        reason = (
            self._reject_reason(token, "turnstile", req.url, req.now, identity=req.identity)
            if token
            else "missing"
        )
        if reason is not None:
            captcha = {"type": "turnstile", "sitekey": self._key("turnstile"), "url": req.url}
            refusal: dict[str, object] = {"error": "captcha_required", "captcha": captcha}
            outcome = "challenge_shown"
            if token:
                refusal["reason"] = reason
                outcome = f"token_rejected:{reason}"
            return _json(403, refusal, "api", outcome)
        number = int(raw)
        items = [
            {"id": i, "title": item_text(self.config.seed, i)[0], "url": f"/item/{i}"}
            for i in self._item_range(number)
        ]
        next_url = f"/api/items?page={number + 1}" if number < self.list_pages else None
        payload = {"page": number, "pages": self.list_pages, "items": items, "next": next_url}
        return _json(200, payload, "api", "token_accepted")

    # --- cookie walls: a cookie solved through the visitor's proxy, with its User-Agent ---------

    def _cookie_wall(
        self, req: Incoming, match: re.Match[str], *, kind: str, cookie: str, blocked: Reply
    ) -> Reply:
        """Content for a good ``cookie`` (solved for this host by the same exit and User-Agent
        as the request's: the simulator signs it with ``kind`` as the key), else ``blocked``."""
        number = int(match[1])
        if number > ZONE_PAGES:
            return self._not_found(req)
        value = req.cookies.get(cookie, "")
        if not value:
            return blocked
        try:
            self.verifier.verify(
                value,
                sitekey=kind,
                page_url=req.url,
                now=req.now,
                identity=req.identity,
                single_use=False,
            )
        except InvalidToken as exc:
            return replace(blocked, outcome=f"token_rejected:{exc.reason}")
        title = f"{_WALL_TITLES[kind]} {number}"
        doc = html.content_page(title, f"{title}: the {cookie} cookie works here.")
        return _page(200, doc, kind, "token_accepted")

    def _datadome_block(self, t: str) -> Reply:
        doc = html.datadome_page(
            cid=secrets.token_urlsafe(24),
            hsh="789361B674144528D0B7EE76B35826",
            t=t,
            s=43337,
            e=secrets.token_hex(16),
        )
        headers = (
            ("X-DataDome", "protected"),
            ("X-DD-B", "2" if t == "bv" else "1"),
            ("Set-Cookie", f"datadome={secrets.token_urlsafe(32)}; Max-Age=31536000; Path=/"),
            ("Cache-Control", "max-age=0, private, no-cache, no-store, must-revalidate"),
        )
        kind = "datadome" if t == "fe" else "datadome_banned"
        return _page(403, doc, kind, "challenge_shown", *headers)

    def _datadome(self, req: Incoming, match: re.Match[str]) -> Reply:
        return self._cookie_wall(
            req, match, kind="datadome", cookie="datadome", blocked=self._datadome_block("fe")
        )

    def _datadome_banned(self, req: Incoming, match: re.Match[str]) -> Reply:
        return self._datadome_block("bv")

    def _cloudflare(self, req: Incoming, match: re.Match[str]) -> Reply:
        ray = secrets.token_hex(8)
        host = urlsplit(req.origin).hostname or "localhost"
        doc = html.managed_page(ray, host, req.path, secrets.token_urlsafe(32))
        headers = (("cf-mitigated", "challenge"), ("Server", "cloudflare"), ("CF-RAY", ray))
        blocked = _page(403, doc, "cloudflare", "challenge_shown", *headers)
        return self._cookie_wall(
            req, match, kind="cloudflare", cookie="cf_clearance", blocked=blocked
        )

    def _aws_waf(self, req: Incoming, match: re.Match[str]) -> Reply:
        doc = html.aws_waf_challenge_page(
            key=AWS_WAF_KEY, iv=secrets.token_urlsafe(12), context=secrets.token_urlsafe(48)
        )
        blocked = _page(202, doc, "aws_waf", "challenge_shown", ("x-amzn-waf-action", "challenge"))
        return self._cookie_wall(
            req, match, kind="aws_waf", cookie="aws-waf-token", blocked=blocked
        )

    # --- unsolvable and negative pages -----------------------------------------------------------

    def _managed(self, req: Incoming, match: re.Match[str]) -> Reply:
        ray = secrets.token_hex(8)
        host = urlsplit(req.origin).hostname or "localhost"
        doc = html.managed_page(ray, host, req.path, secrets.token_urlsafe(32))
        headers = (
            ("cf-mitigated", "challenge"),
            ("Server", "cloudflare"),
            ("CF-RAY", f"{ray}-AMS"),
            ("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
            ("X-Frame-Options", "SAMEORIGIN"),
        )
        return Reply(
            403,
            doc.encode(),
            "managed",
            "challenge_shown",
            content_type="text/html; charset=UTF-8",
            headers=headers,
        )

    def _article_moment(self, req: Incoming, match: re.Match[str]) -> Reply:
        text = (
            "Just a moment... is our column about small pauses: a cup of tea, a walk round the "
            "block, five minutes without a screen before the next order ships."
        )
        doc = html.content_page("Just a moment...", text, doc_title="Just a moment...")
        return _page(200, doc, "negative", "content")

    def _article_captchas(self, req: Incoming, match: re.Match[str]) -> Reply:
        text = (
            "Why you sometimes see a CAPTCHA here: reCAPTCHA, hCaptcha and Cloudflare Turnstile "
            "tell people from bots, and a 'Just a moment...' screen may appear during a rush."
        )
        docs = html.link_list(
            [
                ("https://developers.google.com/recaptcha/docs/display", "reCAPTCHA v2 docs"),
                ("https://developers.google.com/recaptcha/docs/v3", "reCAPTCHA v3 docs"),
                ("https://docs.hcaptcha.com/", "hCaptcha docs"),
                ("https://developers.cloudflare.com/turnstile/", "Turnstile docs"),
            ],
            css="further-reading",
        )
        extra = f"  <h2>Further reading</h2>\n{docs}\n"
        doc = html.content_page("How CAPTCHAs work (and why you see them)", text, extra=extra)
        return _page(200, doc, "negative", "content")

    def _contact(self, req: Incoming, match: re.Match[str]) -> Reply:
        return _page(200, html.contact_page(self._key("recaptcha_v2")), "negative", "content")

    def _contact_post(self, req: Incoming, match: re.Match[str]) -> Reply:
        key = self._key("recaptcha_v2")
        return self._form_post(
            req,
            kind="negative",
            sitekey_kind="recaptcha_v2",
            form_path="/contact",
            form=lambda error: html.contact_page(key, error),
            title="Message sent",
            text="Thank you: we answer within two days.",
        )
