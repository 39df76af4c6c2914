"""The crawl's identity on a challenged request: its proxy, User-Agent and cookies.

Sites bind what they issue (Turnstile and hCaptcha tokens, ``cf_clearance``, the ``datadome``
cookie, AWS WAF tokens) to the IP address and often the User-Agent that solved the challenge. So a
task must be solved through the proxy the request went through, with its User-Agent, and the
answer must go back the same way.

:func:`identity_of` reads a request as Scrapy's ``HttpProxyMiddleware`` leaves it: ``meta["proxy"]``
with the credentials in the URL (before that middleware ran), or without them and the credentials
in the ``Proxy-Authorization`` header (after it ran, as in ``process_response``).
:func:`proxy_task_fields` writes a proxy the way a provider's createTask expects it: one ``proxy``
string, or ``proxyType``/``proxyAddress``/``proxyPort``/``proxyLogin``/``proxyPassword``.

Proxy credentials are secrets like the API key: :class:`Proxy` never shows them in ``repr``/
``str``, :meth:`Proxy.secrets` lists the forms in which they could appear in a text, and
:func:`scrub` removes them from one.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, unquote, urlsplit

from scrapy_ucaptcha.dialects import ProxyStyle

if TYPE_CHECKING:
    from scrapy import Request

__all__ = [
    "PIN_KEY",
    "PROXY_SCHEMES",
    "Identity",
    "Proxy",
    "ProxyError",
    "ProxyPolicy",
    "ProxyStyle",
    "UCaptchaIdentityMiddleware",
    "apply_pin",
    "check_reachable",
    "cookie_header_of",
    "identity_of",
    "is_proxied_type",
    "pin",
    "pin_kept",
    "pin_of",
    "proxied_type",
    "proxy_task_fields",
    "proxyless_suffix",
    "scrub",
    "task_secrets",
    "with_identity",
]

#: Proxy schemes a task can carry (``proxyType`` values of the createTask providers).
PROXY_SCHEMES: Final = ("http", "https", "socks4", "socks5")


_SUFFIXES: Final = ("Proxyless", "ProxyLess")
_MIN_SECRET: Final = 3  # shorter strings are not scrubbed: they would eat ordinary words
_REDACTED: Final = "***"


class ProxyError(ValueError):
    """A request's proxy cannot be given to a solving service; the message says why (and never
    shows the proxy's credentials)."""


@dataclass(frozen=True)
class Proxy:
    """A proxy as a task carries it. ``repr``/``str`` hide the login and password."""

    scheme: str
    host: str  # a host name, or an IP address without brackets
    port: int
    login: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, value: str, authorization: bytes | str | None = None) -> Proxy:
        """Read ``scheme://[login:password@]host:port``; ``authorization`` is a
        ``Proxy-Authorization: Basic …`` value that gives the credentials when the URL has none.
        Raise :class:`ProxyError` saying what is wrong."""
        if not isinstance(value, str) or not value.strip():
            raise ProxyError("the proxy is empty")
        text = value.strip()
        if "://" not in text:
            text = "http://" + text  # as Scrapy reads a proxy without a scheme
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise ProxyError(f"the proxy {_shown(text)} has an invalid port") from None
        scheme = parts.scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise ProxyError(
                f"the proxy scheme {scheme!r} is not one a solving service takes "
                f"({', '.join(PROXY_SCHEMES)})"
            )
        host = (parts.hostname or "").rstrip(".")
        if not host or any(c.isspace() for c in host):
            raise ProxyError(f"the proxy {_shown(text)} has no host")
        if port is None:
            port = 443 if scheme == "https" else 80 if scheme == "http" else 1080
        if not 0 < port < 65536:
            raise ProxyError(f"the proxy {_shown(text)} has an invalid port")
        login = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        if login is None and authorization:
            login, password = _basic_credentials(authorization)
        return cls(scheme=scheme, host=host, port=port, login=login, password=password)

    @property
    def is_ip(self) -> bool:
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            return False
        return True

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full URL, credentials included: only for the task sent to the API."""
        auth = ""
        if self.login is not None:
            auth = quote(self.login, safe="")
            if self.password is not None:
                auth += ":" + quote(self.password, safe="")
            auth += "@"
        return f"{self.scheme}://{auth}{self.netloc}"

    @property
    def redacted(self) -> str:
        """The URL with the credentials replaced by ``***``: safe in logs and errors."""
        auth = f"{_REDACTED}@" if self.login is not None else ""
        return f"{self.scheme}://{auth}{self.netloc}"

    @property
    def key(self) -> str:
        """Tells identities apart (scheme, host, port and login; the login selects the exit IP
        at many rotating-proxy services), without the password."""
        return f"{self.scheme}://{self.login or ''}@{self.netloc}"

    def secrets(self) -> tuple[str, ...]:
        """The forms in which this proxy's credentials could appear in a text."""
        found: list[str] = []
        if self.password:
            found += [self.password, quote(self.password, safe="")]
            if self.login is not None:
                pair = f"{self.login}:{self.password}"
                found += [pair, base64.b64encode(pair.encode("utf-8")).decode("ascii")]
                found.append(base64.b64encode(pair.encode("latin-1", "replace")).decode("ascii"))
        return tuple(sorted({s for s in found if len(s) >= _MIN_SECRET}, key=len, reverse=True))

    def __repr__(self) -> str:
        return f"Proxy({self.redacted!r})"

    def __str__(self) -> str:
        return self.redacted


def _shown(url: str) -> str:
    """``url`` with anything before an ``@`` hidden."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = _REDACTED + "@" + rest.rpartition("@")[2]
    return f"{scheme}{sep}{rest}"


def _basic_credentials(header: bytes | str) -> tuple[str | None, str | None]:
    raw = header.encode("latin-1") if isinstance(header, str) else header
    kind, _, encoded = raw.strip().partition(b" ")
    if kind.lower() != b"basic" or not encoded.strip():
        raise ProxyError("the Proxy-Authorization header is not Basic authentication")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ProxyError("the Proxy-Authorization header is not valid base64") from None
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        text = decoded.decode("latin-1")  # Scrapy's default HTTPPROXY_AUTH_ENCODING
    login, sep, password = text.partition(":")
    return login, password if sep else None


# --- what providers refuse ------------------------------------------------------------------------

_LOCAL_SUFFIXES: Final = (".localhost", ".local", ".internal", ".lan", ".home.arpa")


def _is_private(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        name = address.lower()
        return name == "localhost" or name.endswith(_LOCAL_SUFFIXES) or "." not in name
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_reachable(proxy: Proxy, *, needs_ip: bool, allow_private: bool) -> None:
    """Raise :class:`ProxyError` when a solving service could not use ``proxy``: an address on a
    private, loopback or link-local network (unless ``allow_private``), or a host name where the
    provider takes only IP addresses (``needs_ip``; resolve it first)."""
    if needs_ip and not proxy.is_ip:
        raise ProxyError(
            f"the proxy {proxy} is a host name, and this provider takes only IP addresses"
        )
    if not allow_private and _is_private(proxy.host):
        raise ProxyError(
            f"the proxy {proxy} is on a private or local network, which the solving service "
            "cannot reach (set UCAPTCHA_PROXY_ALLOW_PRIVATE if it can)"
        )


# --- the request's identity -----------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """What a site sees of a request: the proxy it came through (None: direct), its User-Agent
    and the cookies it sent."""

    proxy: Proxy | None = None
    user_agent: str | None = None
    cookies: str | None = field(default=None, repr=False)  # the Cookie header's value

    @property
    def key(self) -> str:
        """One clearance cookie is good for one identity: proxy key and User-Agent."""
        proxy = self.proxy.key if self.proxy is not None else "direct"
        return f"{proxy}|{self.user_agent or ''}"


def identity_of(request: Request) -> Identity:
    """The identity ``request`` went out with; raise :class:`ProxyError` for an unusable proxy.

    ``meta["proxy"]`` set to None means "no proxy", as for ``HttpProxyMiddleware``.
    """
    raw_proxy = request.meta.get("proxy")
    proxy = None
    if raw_proxy:
        if not isinstance(raw_proxy, str):
            raise ProxyError(f"meta['proxy'] must be a string, got {type(raw_proxy).__name__}")
        proxy = Proxy.parse(raw_proxy, request.headers.get(b"Proxy-Authorization"))
    agent = request.headers.get(b"User-Agent")
    cookies = cookie_header_of(request)
    return Identity(
        proxy=proxy,
        user_agent=agent.decode("latin-1") if agent else None,
        cookies=cookies,
    )


def cookie_header_of(request: Request) -> str | None:
    """The ``Cookie`` header the request was sent with (set by ``CookiesMiddleware``)."""
    values = request.headers.getlist(b"Cookie")
    text = "; ".join(v.decode("latin-1").strip() for v in values if v.strip())
    return text or None


# --- what each provider takes -------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyPolicy:
    """How one provider takes a proxy (its dialect's ``proxy_style`` and ``proxy_needs_ip``)."""

    style: ProxyStyle
    needs_ip: bool = False


# --- task fields ----------------------------------------------------------------------------------


def proxyless_suffix(task_type: str) -> str | None:
    """The ``Proxyless``/``ProxyLess`` suffix of a task type name, if it has one."""
    return next((s for s in _SUFFIXES if task_type.endswith(s)), None)


def proxied_type(task_type: str) -> str:
    """The variant of ``task_type`` that takes the caller's proxy: the name without its
    ``Proxyless``/``ProxyLess`` suffix (each dialect spells the suffix its own way, and the
    proxied name is the same name without it)."""
    suffix = proxyless_suffix(task_type)
    return task_type[: -len(suffix)] if suffix else task_type


def is_proxied_type(task_type: str) -> bool:
    """Whether a task of this type is solved through the caller's proxy (image tasks are not)."""
    name = task_type.lower()
    return not name.endswith("proxyless") and "image" not in name


def proxy_task_fields(proxy: Proxy, style: ProxyStyle) -> dict[str, Any]:
    """``proxy`` as createTask ``task`` fields, in ``style``."""
    if style == "url":
        return {"proxy": proxy.url}
    fields: dict[str, Any] = {
        "proxyType": proxy.scheme,
        "proxyAddress": proxy.host,
        "proxyPort": proxy.port,
    }
    if proxy.login is not None:
        fields["proxyLogin"] = proxy.login
    if proxy.password is not None:
        fields["proxyPassword"] = proxy.password
    return fields


def task_secrets(task: Mapping[str, Any]) -> tuple[str, ...]:
    """Proxy credentials a task carries (in either style), as :meth:`Proxy.secrets` lists them."""
    found: set[str] = set()
    raw = task.get("proxy")
    if isinstance(raw, str) and raw:
        try:
            found.update(Proxy.parse(raw).secrets())
        except ProxyError:
            if len(raw) >= _MIN_SECRET:
                found.add(raw)
    login, password = task.get("proxyLogin"), task.get("proxyPassword")
    if isinstance(password, str) and password:
        proxy = Proxy("http", "h", 1, login if isinstance(login, str) else None, password)
        found.update(proxy.secrets())
    return tuple(sorted(found, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SECRET and secret in text:
            text = text.replace(secret, _REDACTED)
    return text


# --- the task of a challenged request -------------------------------------------------------------

#: Token families whose task types take a ``userAgent``; reCAPTCHA's also take ``cookies``.
_AGENT_FAMILIES: Final = ("recaptcha", "hcaptcha", "turnstile", "datadome", "cloudflare", "aws_waf")


def _family(task_type: str) -> str:
    name = task_type.lower()
    for family, marks in (
        ("recaptcha", ("recaptcha", "nocaptcha")),
        ("hcaptcha", ("hcaptcha", "hardcaptcha")),
        ("turnstile", ("turnstile",)),
        ("datadome", ("datadome",)),
        ("cloudflare", ("cloudflare",)),
        ("aws_waf", ("amazon", "awswaf")),
    ):
        if any(mark in name for mark in marks):
            return family
    return "other"


def _has_proxied_variant(task_type: str) -> bool:
    """reCAPTCHA v3 has no proxied variant at Anti-Captcha and 2captcha; image tasks take none."""
    name = task_type.lower()
    return proxyless_suffix(task_type) is not None and "v3" not in name and "image" not in name


def with_identity(
    task: Mapping[str, Any],
    identity: Identity,
    *,
    type_pinned: bool,
    passthrough: bool,
    policy: ProxyPolicy,
    allow_private: bool,
) -> dict[str, Any]:
    """``task`` solved as ``identity``: through its proxy (the type switched to the proxied
    variant unless the template pinned the type), with its User-Agent and, for reCAPTCHA, its
    cookies (the template's values win). Raise :class:`ProxyError` for a proxy the provider
    cannot use."""
    result = dict(task)
    task_type = str(result.get("type", ""))
    proxy = identity.proxy if passthrough else None
    has_proxy_fields = "proxy" in result or "proxyAddress" in result
    if proxy is not None and not has_proxy_fields:
        if not type_pinned and _has_proxied_variant(task_type):
            task_type = result["type"] = proxied_type(task_type)
        if is_proxied_type(task_type):
            check_reachable(proxy, needs_ip=policy.needs_ip, allow_private=allow_private)
            result.update(proxy_task_fields(proxy, policy.style))
    family = _family(task_type)
    if identity.user_agent and family in _AGENT_FAMILIES:
        result.setdefault("userAgent", identity.user_agent)
    if identity.cookies and family == "recaptcha":
        result.setdefault("cookies", identity.cookies)
    return result


# --- re-issues go out as the identity that solved -------------------------------------------------

#: Internal meta key: what a re-issued request must go out with (plain data).
PIN_KEY: Final = "_ucaptcha_identity"


def pin_of(request: Request, user_agent: str | None) -> dict[str, str | None]:
    """What ``request`` (as it came back, after ``HttpProxyMiddleware``) went out with, to send
    its re-issue the same way; ``user_agent`` (the solution's, when it has one) wins."""
    auth = request.headers.get(b"Proxy-Authorization")
    agent = request.headers.get(b"User-Agent")
    proxy = request.meta.get("proxy")
    pinned_proxy = proxy if isinstance(proxy, str) and proxy else None
    authorization = auth.decode("latin-1") if auth else None
    if pinned_proxy is not None and "@" in pinned_proxy:
        # not through HttpProxyMiddleware yet (a presolved request): pin what it would send,
        # the proxy without its credentials and them in Proxy-Authorization
        try:
            parsed = Proxy.parse(pinned_proxy)
        except ProxyError:
            parsed = None
        if parsed is not None:
            pinned_proxy = f"{parsed.scheme}://{parsed.netloc}"
            if parsed.login is not None:
                pair = f"{parsed.login}:{parsed.password or ''}".encode("latin-1", "replace")
                authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return {
        "proxy": pinned_proxy,
        "proxy_authorization": authorization,
        "user_agent": user_agent or (agent.decode("latin-1") if agent else None),
    }


def pin(request: Request, user_agent: str | None) -> None:
    """Pin ``request`` to the proxy and User-Agent it went out with (``user_agent`` wins), now
    and for :class:`UCaptchaIdentityMiddleware` after any middleware that would change them."""
    request.meta[PIN_KEY] = pin_of(request, user_agent)
    apply_pin(request)


def apply_pin(request: Request) -> bool:
    """Send ``request`` with the proxy, proxy credentials and User-Agent pinned on it (undoing
    what a rotating-proxy or User-Agent middleware changed); True if it was pinned."""
    pin = request.meta.get(PIN_KEY)
    if not isinstance(pin, Mapping):
        return False
    proxy, auth, agent = pin.get("proxy"), pin.get("proxy_authorization"), pin.get("user_agent")
    if isinstance(proxy, str) and proxy:
        request.meta["proxy"] = proxy
        if isinstance(auth, str) and auth:
            request.headers[b"Proxy-Authorization"] = auth.encode("latin-1")
            request.meta["_auth_proxy"] = proxy  # as HttpProxyMiddleware marks it
        else:
            request.headers.pop(b"Proxy-Authorization", None)
    else:
        request.meta["proxy"] = None  # went out directly: stay direct
        request.headers.pop(b"Proxy-Authorization", None)
    if isinstance(agent, str) and agent:
        request.headers[b"User-Agent"] = agent
    return True


def pin_kept(request: Request) -> bool:
    """Whether a pinned request came back through the proxy it was pinned to."""
    pin = request.meta.get(PIN_KEY)
    if pin is None or not isinstance(pin, Mapping):
        return True
    proxy = request.meta.get("proxy") or None
    pinned = pin.get("proxy") or None
    if (proxy is None) != (pinned is None):
        return False
    if proxy is None or pinned is None:
        return True
    auth = request.headers.get(b"Proxy-Authorization")
    try:
        seen = Proxy.parse(proxy, auth)
        wanted = Proxy.parse(pinned, pin.get("proxy_authorization"))
    except ProxyError:
        return False
    return seen.key == wanted.key  # same proxy, same login (the login picks the exit)


class UCaptchaIdentityMiddleware:
    """Re-issued requests go out through the proxy, with the credentials and User-Agent, their
    task was solved with, whatever a rotating-proxy or User-Agent middleware chose for them.

    Enable it after every middleware that sets proxies or User-Agents (and after Scrapy's
    ``HttpProxyMiddleware``, 750): the add-on puts it at 760.
    """

    async def process_request(self, request: Request, spider: Any = None) -> None:
        apply_pin(request)
