"""A demo challenge site: a real twisted.web server on loopback whose pages are guarded by CAPTCHAs.

The end-to-end tests, the example project and the benchmarks crawl it. Challenge pages carry the
markup real sites serve; tokens are checked with ``tokens.TokenVerifier`` (signature, site key,
host, action, expiry, single use), so only tokens from the uCaptcha simulator (same secret) or
made with ``tokens.sign_token`` pass.

URL map (sitekey kinds are keys of :data:`SITEKEYS`):

========================  =========================================================================
``/``                     index: links to ``/list/1`` and every special page below
``/list/<n>``             ``per_list`` links to ``/item/<i>``, ``rel="next"`` while items remain
``/item/<i>``             article; a share of items sits behind a reCAPTCHA v2 (``recaptcha_v2``)
                          interstitial: ``form#challenge-form`` → ``POST /verify/recaptcha``
                          (``next``, ``g-recaptcha-response``) → cookie ``clearance_item_<i>``
                          (Path=/item/<i>) and 302 to ``next``
``/invisible``            newsletter form, invisible reCAPTCHA (``recaptcha_invisible``) →
                          ``POST /submit/invisible`` (``g-recaptcha-response``) → content
``/v3``                   search form, reCAPTCHA v3 (``recaptcha_v3``, action ``search``) →
                          ``POST /submit/v3`` (``q``, ``g-recaptcha-response``) → results
``/enterprise``           reCAPTCHA Enterprise wall (``recaptcha_enterprise``, action ``LOGIN``) →
                          ``POST /verify/enterprise`` → cookie ``clearance_enterprise`` + 302
``/hcaptcha``             hCaptcha wall (``hcaptcha``) → ``POST /verify/hcaptcha``
                          (``h-captcha-response``) → cookie ``clearance_hcaptcha`` + 302
``/turnstile``            Turnstile wall (``turnstile``, action ``checkout``, ``data-cdata``) →
                          ``POST /verify/turnstile`` (``cf-turnstile-response``) → cookie + 302
``/image``                image captcha: ``img#captcha-image`` from ``/captcha.png?cid=…``, fields
                          ``cid`` and ``captcha_answer`` → ``POST /verify/image`` → cookie + 302
``/api/items?page=<n>``   JSON; 403 ``captcha_required`` (Turnstile) without a good token, else
                          200 with ``per_list`` items. The token: header ``X-Captcha-Token``,
                          cookie ``captcha_token``, query ``captcha``, or (POST of a JSON object
                          with ``page``) body key ``captchaToken``
``/zone/``, ``/zone/<n>`` n in 1..5 behind a Turnstile wall → ``POST /zone/verify``; one good token
                          sets ``zone_clearance`` (Path=/) and opens every zone page
``/login``                sign-in form, invisible reCAPTCHA (``recaptcha_invisible``) →
                          ``POST /login`` (``username``, ``password``, ``g-recaptcha-response``):
                          Welcome page, or 403 and the form again
``/protected/managed``    Cloudflare managed challenge (403, header ``cf-mitigated: challenge``),
                          no widget: never passes
``/articles/just-a-moment``, ``/articles/captchas``, ``/contact``: negatives, plain 200 pages
``/arkose``               Arkose Labs wall (``funcaptcha``; script on ``demo-api.arkoselabs.com``,
                          a data blob) → ``POST /verify/arkose`` (``fc-token``) → cookie + 302
``/geetest4``             GeeTest v4 wall (``geetest_v4``) → ``POST /verify/geetest4`` with
                          ``lot_number``, ``captcha_output``, ``pass_token``, ``gen_time``,
                          ``captcha_id`` → cookie + 302
``/geetest3``             GeeTest v3 wall (``geetest_v3``) with ``gt`` and a fresh ``challenge``
                          inline → ``POST /verify/geetest3`` (``geetest_challenge``,
                          ``geetest_validate``, ``geetest_seccode``) → cookie + 302
``/geetest3/xhr``         the same wall whose script fetches ``gt`` and ``challenge`` from
                          ``/geetest3/register`` (JSON)
``/friendly``             Friendly Captcha wall (``friendly_captcha``) → ``POST /verify/friendly``
                          (``frc-captcha-solution``) → cookie + 302
``/mtcaptcha``            MTCaptcha wall (``mtcaptcha``) → ``POST /verify/mtcaptcha``
                          (``mtcaptcha-verifiedtoken``) → cookie + 302
``/yandex``               Yandex SmartCaptcha wall (``yandex_smartcaptcha``) →
                          ``POST /verify/yandex`` (``smart-token``) → cookie + 302
``/aws-waf``              AWS WAF CAPTCHA (405, ``gokuProps``) until the ``aws-waf-token`` cookie
                          holds a good token (``aws_waf``), then the page (200)
``/blocked``, ``/sucuri`` a Cloudflare 1020 block (403) and Sucuri CloudProxy's JavaScript page:
                          never pass
========================  =========================================================================

Every request is recorded in :attr:`DemoSite.log`; :meth:`DemoSite.counts` sums the outcomes::

    site = DemoSite(DemoSiteConfig(pages=20, challenge_status=403))
    url = site.start()  # "http://127.0.0.1:PORT"; the reactor must be installed
    ...  # crawl url, with the simulator's secret equal to site.config.secret
    await site.stop()
    assert site.counts()["token_accepted/recaptcha_v2"] == len(site.guarded_items)
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from scrapy_ucaptcha.testing._demo_app import DemoApp
from scrapy_ucaptcha.testing._demo_model import (
    SITEKEYS,
    DemoSiteConfig,
    Incoming,
    Reply,
)
from scrapy_ucaptcha.testing._serving import LoopbackServer, get_reactor

if TYPE_CHECKING:
    from twisted.python.failure import Failure

__all__ = ["SITEKEYS", "DemoSite", "DemoSiteConfig", "Hit"]

_HOST_HEADER = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


@dataclass(frozen=True)
class Hit:
    """One request as the site answered it."""

    seq: int  #: 1, 2, 3, … in arrival order
    time: float  #: ``reactor.seconds()`` on arrival
    method: str
    path: str
    query: str
    status: int
    kind: str  #: "plain", "recaptcha_v2", "hcaptcha", "api", "zone", "managed", "negative", …
    outcome: str  #: "content", "challenge_shown", "token_accepted", "token_rejected:<reason>", …


class _Root(Resource):
    isLeaf = True

    def __init__(self, respond: Callable[[Request], bytes | int]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._respond = respond

    def render(self, request: Request) -> bytes | int:
        return self._respond(request)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


class DemoSite:
    """The demo challenge site; ``start()`` it on loopback, ``await stop()`` when done."""

    def __init__(self, config: DemoSiteConfig | None = None) -> None:
        self.config = config if config is not None else DemoSiteConfig()
        #: Every request in arrival order.
        self.log: list[Hit] = []
        self._app = DemoApp(self.config)
        self._counts: Counter[str] = Counter()
        self._server = LoopbackServer(
            not_running="DemoSite is not started", already_running="DemoSite is already started"
        )

    @property
    def url(self) -> str:
        """``http://host:port`` of the running site."""
        return self._server.url

    @property
    def guarded_items(self) -> frozenset[int]:
        """Numbers of the items behind the reCAPTCHA v2 interstitial."""
        return self._app.guarded_items

    @property
    def sitekeys(self) -> dict[str, str]:
        return dict(self.config.sitekeys)

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on ``host:port`` (0: any free port) and return the site's URL."""
        return self._server.start(_Root(self._render), port, host)

    async def stop(self) -> None:
        """Stop listening, drop delayed responses and close every open connection."""
        await self._server.stop()

    def counts(self) -> dict[str, int]:
        """Requests per ``"<outcome>/<kind>"``; rejections also per ``"token_rejected/<reason>"``.

        Outcomes are those of :attr:`log` without the reason, e.g. ``"challenge_shown/hcaptcha"``,
        ``"token_accepted/recaptcha_v2"``, ``"token_rejected/reused"``.
        """
        return dict(self._counts)

    # --- request handling -----------------------------------------------------------------------

    def _incoming(self, request: Request, now: float) -> Incoming:
        path, _, query = _text(request.uri).partition("?")
        args = {
            _text(name): [_text(value) for value in values]
            for name, values in (request.args or {}).items()
        }
        headers = {
            _text(name).lower(): _text(values[-1])
            for name, values in request.requestHeaders.getAllRawHeaders()
            if values
        }
        cookies = {_text(name): _text(value) for name, value in request.received_cookies.items()}
        host = headers.get("host", "")
        if not _HOST_HEADER.fullmatch(host):
            host = self.url.partition("://")[2]
        return Incoming(
            method=_text(request.method),
            path=path,
            query=query,
            args=args,
            headers=headers,
            cookies=cookies,
            origin=f"http://{host}",
            now=now,
            body=request.content.read() if request.content is not None else b"",
        )

    def _record(self, req: Incoming, reply: Reply) -> None:
        seq = len(self.log) + 1
        hit = Hit(
            seq, req.now, req.method, req.path, req.query, reply.status, reply.kind, reply.outcome
        )
        self.log.append(hit)
        base, _, reason = reply.outcome.partition(":")
        self._counts[f"{base}/{reply.kind}"] += 1
        if reason:
            self._counts[f"{base}/{reason}"] += 1

    def _render(self, request: Request) -> bytes | int:
        req = self._incoming(request, get_reactor().seconds())
        reply = self._app.handle(req)
        self._record(req, reply)
        request.setResponseCode(reply.status)
        headers: dict[str, list[str]] = {"Content-Type": [reply.content_type]}
        for name, value in reply.headers:
            headers.setdefault(name, []).append(value)
        for name, values in headers.items():
            request.responseHeaders.setRawHeaders(name, values)
        if self.config.slow <= 0:
            return reply.body
        request.responseHeaders.setRawHeaders("Content-Length", [str(len(reply.body))])
        self._send_later(request, reply.body)
        return NOT_DONE_YET

    def _send_later(self, request: Request, body: bytes) -> None:
        def send() -> None:
            request.write(body)  # type: ignore[no-untyped-call]
            request.finish()  # type: ignore[no-untyped-call]

        def abandon(_: Failure) -> None:
            self._server.cancel(call)

        call = self._server.call_later(self.config.slow, send)
        request.notifyFinish().addErrback(abandon)
