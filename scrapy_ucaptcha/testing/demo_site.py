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
========================  =========================================================================

Every request is recorded in :attr:`DemoSite.log`; :meth:`DemoSite.counts` sums the outcomes::

    site = DemoSite(DemoSiteConfig(pages=20, challenge_status=403))
    url = site.start()  # "http://127.0.0.1:PORT"; the reactor must be installed
    ...  # crawl url, with the simulator's secret equal to site.config.secret
    await site.stop()
    assert site.counts()["token_accepted/recaptcha_v2"] == len(site.guarded_items)
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet.defer import Deferred
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web import http
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from scrapy_ucaptcha.testing._demo_app import DemoApp
from scrapy_ucaptcha.testing._demo_model import (
    SITEKEYS,
    DemoSiteConfig,
    Incoming,
    Reply,
)

if TYPE_CHECKING:
    from twisted.internet.address import IPv4Address, IPv6Address
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


# The reactor and its interfaces are typed as zope interfaces, which mypy cannot call; these
# protocols name what the site uses of them.
class _DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class _ListeningPort(Protocol):
    def getHost(self) -> IPv4Address | IPv6Address: ...

    def stopListening(self) -> Deferred[None] | None: ...


class _Reactor(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[[], None], /) -> _DelayedCall: ...

    def listenTCP(
        self, port: int, factory: WrappingFactory, backlog: int = ..., interface: str = ...
    ) -> _ListeningPort: ...


def _reactor() -> _Reactor:
    from twisted.internet import reactor

    return cast("_Reactor", reactor)


class _Connections(WrappingFactory):
    """Tracks open connections so that :meth:`DemoSite.stop` can close them and wait."""

    noisy = False

    def __init__(self, site: Site) -> None:
        super().__init__(site)  # type: ignore[no-untyped-call]
        self._gone: dict[ProtocolWrapper, Deferred[None]] = {}

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]
        waiter = self._gone.pop(p, None)
        if waiter is not None:
            waiter.callback(None)

    def close_all(self) -> list[Deferred[None]]:
        waiters = []
        for proto in list(self.protocols):
            waiter: Deferred[None] = Deferred()
            self._gone[proto] = waiter
            waiters.append(waiter)
            proto.transport.abortConnection()
        return waiters


class _QuietSite(Site):
    """A Site without the access log: :attr:`DemoSite.log` records every request instead."""

    noisy = False
    displayTracebacks = False

    def log(self, request: http.Request) -> None:
        return


class _Root(Resource):
    isLeaf = True

    def __init__(self, respond: Callable[[Request], bytes | int]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._respond = respond

    def render(self, request: Request) -> bytes | int:
        return self._respond(request)


async def _wait(waiter: Deferred[None]) -> None:
    """Await a Deferred in an asyncio task (Scrapy, asyncio reactor) or a Twisted-run coroutine."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop: a coroutine driven by Twisted
        task = None
    if task is None:
        await waiter
    else:
        await waiter.asFuture(task.get_loop())


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
        self._pending: set[_DelayedCall] = set()
        self._port: _ListeningPort | None = None
        self._connections: _Connections | None = None
        self._url = ""

    @property
    def url(self) -> str:
        """``http://host:port`` of the running site."""
        if not self._url:
            raise RuntimeError("DemoSite is not started")
        return self._url

    @property
    def guarded_items(self) -> frozenset[int]:
        """Numbers of the items behind the reCAPTCHA v2 interstitial."""
        return self._app.guarded_items

    @property
    def sitekeys(self) -> dict[str, str]:
        return dict(self.config.sitekeys)

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on ``host:port`` (0: any free port) and return the site's URL."""
        if self._port is not None:
            raise RuntimeError("DemoSite is already started")
        site = _QuietSite(_Root(self._render))  # type: ignore[no-untyped-call]
        self._connections = _Connections(site)
        self._port = _reactor().listenTCP(port, self._connections, interface=host)
        netloc = f"[{host}]" if ":" in host else host
        self._url = f"http://{netloc}:{self._port.getHost().port}"
        return self._url

    async def stop(self) -> None:
        """Stop listening, drop delayed responses and close every open connection."""
        port, connections = self._port, self._connections
        self._port = self._connections = None
        for call in list(self._pending):
            if call.active():
                call.cancel()
        self._pending.clear()
        waiters = []
        if port is not None:
            stopped = port.stopListening()
            if stopped is not None:
                waiters.append(stopped)
        if connections is not None:
            waiters.extend(connections.close_all())
        for waiter in waiters:
            await _wait(waiter)

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
        reactor = _reactor()
        req = self._incoming(request, reactor.seconds())
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
        self._send_later(reactor, request, reply.body)
        return NOT_DONE_YET

    def _send_later(self, reactor: _Reactor, request: Request, body: bytes) -> None:
        def send() -> None:
            self._pending.discard(call)
            request.write(body)  # type: ignore[no-untyped-call]
            request.finish()  # type: ignore[no-untyped-call]

        def abandon(_: Failure) -> None:
            self._pending.discard(call)
            if call.active():
                call.cancel()

        call = reactor.callLater(self.config.slow, send)
        self._pending.add(call)
        request.notifyFinish().addErrback(abandon)
