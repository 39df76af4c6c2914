"""A forward HTTP proxy on loopback that requires Basic authentication, for tests.

Crawls really go through it: Scrapy sends ``GET http://site/path`` with a ``Proxy-Authorization``
header, the proxy checks the login and password, forwards the request to the site without the
proxy headers, and relays the answer. A wrong or missing login gets HTTP 407.

Like a rotating-proxy service, the login selects the exit: the proxy tells the site which exit
the request came from in an RFC 7239 ``Forwarded: for="_exit-…"`` header (an obfuscated node
name, the same for a login on every run), so that a demo site can bind what it issues to the
exit and the User-Agent, as real sites bind to the IP address::

    proxy = ForwardProxy({"alice": "prx-secret-a1"})
    url = proxy.start()  # "http://127.0.0.1:PORT"
    request = Request(site_url, meta={"proxy": proxy.proxy_url("alice")})
    ...
    await proxy.stop()

Plain ``http://`` targets only (no ``CONNECT`` tunnels): the proxy must see the request to stamp
its exit on it. Every request is recorded in :attr:`ForwardProxy.log`, without the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlsplit

import treq
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.web.client import Agent, FileBodyProducer, HTTPConnectionPool
from twisted.web.http import HTTPChannel, HTTPFactory, Request
from twisted.web.http_headers import Headers

from scrapy_ucaptcha.testing._serving import await_deferred, get_reactor
from scrapy_ucaptcha.testing.tokens import DIRECT_EXIT

if TYPE_CHECKING:
    from twisted.python.failure import Failure
    from twisted.web.iweb import IResponse

__all__ = ["DIRECT", "ForwardProxy", "ProxyHit", "exit_for", "exit_of_headers"]

#: The exit name of a request that came through no proxy.
DIRECT = DIRECT_EXIT

_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
    }
)


def exit_for(login: str | None) -> str:
    """The exit a login of the test proxy goes out through (``exit-`` + a digest of it)."""
    digest = hashlib.sha256(f"ucaptcha-test-proxy|{login or ''}".encode()).hexdigest()
    return f"exit-{digest[:12]}"


def exit_of_headers(forwarded: str | None) -> str:
    """The exit named in a ``Forwarded`` header by :class:`ForwardProxy`, else :data:`DIRECT`."""
    for element in (forwarded or "").split(","):
        for pair in element.split(";"):
            name, _, value = pair.strip().partition("=")
            value = value.strip().strip('"')
            if name.strip().lower() == "for" and value.startswith("_exit-"):
                return value[1:]
    return DIRECT


@dataclass(frozen=True)
class ProxyHit:
    """One request the proxy got: who asked (``None``: no or wrong credentials), what, and the
    status it answered."""

    login: str | None
    method: str
    url: str
    status: int
    user_agent: str | None


class _ProxyRequest(Request):
    """One request to the proxy: authenticate, forward, relay."""

    proxy: ForwardProxy  # set by the factory

    def process(self) -> None:
        ensureDeferred(self._relay()).addErrback(self._failed)

    async def _relay(self) -> None:
        proxy = self.proxy
        method = self.method.decode("ascii", "replace")
        target = self.uri.decode("latin-1")
        agent_header = self.getHeader(b"user-agent")
        user_agent = agent_header.decode("latin-1") if agent_header else None
        login = proxy.authenticate(self.getHeader(b"proxy-authorization"))
        if login is None:
            self._answer(407, b"Proxy authentication required", proxy_auth=True)
            proxy.record(ProxyHit(None, method, target, 407, user_agent))
            return
        parts = urlsplit(target)
        if method == "CONNECT" or parts.scheme != "http" or not parts.hostname:
            self._answer(501, b"Only absolute http:// URLs are forwarded")
            proxy.record(ProxyHit(login, method, target, 501, user_agent))
            return
        headers = Headers()
        for name, values in self.requestHeaders.getAllRawHeaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() != b"forwarded":
                headers.setRawHeaders(name, values)
        headers.setRawHeaders(
            b"forwarded", [f'for="_{exit_for(login)}";by="_ucaptcha-test-proxy"'.encode()]
        )
        assert self.content is not None
        self.content.seek(0, 0)
        body = self.content.read()
        try:
            response = await proxy.forward(self.method, target.encode("latin-1"), headers, body)
            content = await treq.content(response)
        except Exception as exc:
            self._answer(502, f"Bad gateway: {type(exc).__name__}".encode())
            proxy.record(ProxyHit(login, method, target, 502, user_agent))
            return
        if self._gone:
            return
        self.setResponseCode(response.code)
        for name, values in response.headers.getAllRawHeaders():
            if name.lower() not in _HOP_BY_HOP:
                self.responseHeaders.setRawHeaders(name, values)
        self._send(content)
        proxy.record(ProxyHit(login, method, target, response.code, user_agent))

    @property
    def _gone(self) -> bool:
        """The client left (twisted.web drops the channel then; its type does not say so)."""
        return cast("Any", self).channel is None

    def _answer(self, status: int, text: bytes, *, proxy_auth: bool = False) -> None:
        if self._gone:
            return
        self.setResponseCode(status)
        if proxy_auth:
            self.responseHeaders.setRawHeaders(
                b"proxy-authenticate", [b'Basic realm="ucaptcha-test-proxy"']
            )
        self.responseHeaders.setRawHeaders(b"content-type", [b"text/plain; charset=utf-8"])
        self._send(text)

    def _send(self, body: bytes) -> None:
        self.responseHeaders.setRawHeaders(b"content-length", [str(len(body)).encode()])
        this = cast("Any", self)  # twisted.web's Request methods are untyped
        this.write(body)
        this.finish()

    def _failed(self, failure: Failure) -> None:
        if not self._gone and not self.finished:
            self._answer(500, b"Proxy error")


class ForwardProxy:
    """The test proxy. ``users`` maps logins to passwords; see the module docstring."""

    def __init__(self, users: Mapping[str, str]) -> None:
        if not users:
            raise ValueError("the proxy needs at least one login")
        self.users = dict(users)
        #: Every request, in arrival order.
        self.log: list[ProxyHit] = []
        self._port: Any = None  # IListeningPort
        self._pool: Any = None
        self._agent: Agent | None = None
        self._factory: HTTPFactory | None = None

    def __repr__(self) -> str:
        state = self._netloc if self._port is not None else "stopped"
        return f"ForwardProxy({state}, logins={sorted(self.users)!r})"

    # --- running ----------------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on ``host:port`` (0: any free port); return ``http://HOST:PORT``
        (no credentials: see :meth:`proxy_url`)."""
        if self._port is not None:
            raise RuntimeError("the proxy is already running")
        proxy = self

        class Bound(_ProxyRequest):
            pass

        Bound.proxy = proxy
        factory: Any = HTTPFactory()
        factory.noisy = False
        factory.log = lambda request: None  # no access log: the proxy keeps its own records
        factory.protocol = _channel_for(Bound)
        reactor = cast("Any", get_reactor())
        self._port = reactor.listenTCP(port, factory, interface=host)
        self._factory = factory
        self._pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call]
        self._agent = Agent(reactor, pool=self._pool)  # type: ignore[no-untyped-call]
        return self.url

    @property
    def _netloc(self) -> str:
        assert self._port is not None
        address = self._port.getHost()
        return f"{address.host}:{address.port}"

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` of the running proxy."""
        if self._port is None:
            raise RuntimeError("the proxy is not running")
        return f"http://{self._netloc}"

    def proxy_url(self, login: str, password: str | None = None) -> str:
        """The ``meta["proxy"]`` value for ``login`` (with its password unless one is given)."""
        secret = self.users[login] if password is None else password
        return f"http://{quote(login, safe='')}:{quote(secret, safe='')}@{self._netloc}"

    async def stop(self) -> None:
        """Stop listening and close the connections to sites."""
        port, self._port = self._port, None
        if port is not None:
            stopped = port.stopListening()
            if isinstance(stopped, Deferred):
                await await_deferred(stopped)
        pool, self._pool, self._agent = self._pool, None, None
        if pool is not None:
            await await_deferred(pool.closeCachedConnections())

    async def __aenter__(self) -> ForwardProxy:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- used by the requests ---------------------------------------------------------------------

    def authenticate(self, header: bytes | None) -> str | None:
        """The login of a good ``Proxy-Authorization: Basic …`` value, else None."""
        kind, _, encoded = (header or b"").strip().partition(b" ")
        if kind.lower() != b"basic":
            return None
        try:
            login, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, ValueError):
            return None
        expected = self.users.get(login)
        if not sep or expected is None:
            return None
        return login if hmac.compare_digest(password.encode(), expected.encode()) else None

    def forward(
        self, method: bytes, url: bytes, headers: Headers, body: bytes
    ) -> Deferred[IResponse]:
        if self._agent is None:
            raise RuntimeError("the proxy is not running")
        producer: Any = FileBodyProducer(BytesIO(body)) if body else None  # type: ignore[no-untyped-call]
        return self._agent.request(method, url, headers, producer)

    def record(self, hit: ProxyHit) -> None:
        self.log.append(hit)

    def counts(self) -> Counter[tuple[str | None, int]]:
        """``(login, status)`` → number of requests."""
        return Counter((hit.login, hit.status) for hit in self.log)


def _channel_for(request_class: type[Request]) -> Any:
    class Channel(HTTPChannel):
        requestFactory = request_class

    return Channel
