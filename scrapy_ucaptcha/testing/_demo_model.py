"""Configuration, request/reply types and deterministic content of the demo challenge site."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from scrapy_ucaptcha.testing.proxy import exit_of_headers
from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET, identity_string

#: Site keys by widget kind; they have the shapes of real keys but belong to nobody.
SITEKEYS: Final[dict[str, str]] = {
    "recaptcha_v2": "6Le-wTctAAAAApcOTD0Yc95R_VpQ17tGszgxE2Am",
    "recaptcha_invisible": "6Let1r37AAAAA2xN4rmQU_f2wAXVSelb4Ri-DrUA",
    "recaptcha_v3": "6Le4NJ0eAAAAA5q3q7brZeA3P6G0KKKL1tiiOAEG",
    "recaptcha_enterprise": "6Lem5esXAAAAAnZ-U5PNDu0JqOUbbzd166OPeSWT",
    "hcaptcha": "aaa94026-64f1-441f-80eb-bc52c9993eb6",
    "turnstile": "0x4AAAAAAA47mKTaMaEn1L3m",
    "funcaptcha": "6E1C4A2B-3F5D-4E7A-9B8C-D0E1F2A3B4C5",
    "geetest_v3": "c9c4facd1a6feeb80802222cbb74ca8e",
    "geetest_v4": "e3a6f1c90b2d4c7e8f5a9b1d0c2e4f6a",
    "friendly_captcha": "FCMDEMOSHOP2026QX",
    "mtcaptcha": "MTPublic-DemoShop7Q",
    "yandex_smartcaptcha": "ysc1_DemoShopSmartKey7Q2X4KqP9r0dE5vB3nW8yZ1aL6cF",
    "aws_waf": "AQIDAHjcYu/GjX+QlghicBgQ/7bFaQZ+m5FKCMDnO+vTbNg96AHDemoShopAwsWafCaptchaKey==",
}

V3_ACTION: Final = "search"
ENTERPRISE_ACTION: Final = "LOGIN"
TURNSTILE_ACTION: Final = "checkout"
ZONE_PAGES: Final = 5
CLEARANCE_TTL: Final = 1800  # seconds a clearance cookie stays good
IMAGE_ANSWER_LENGTH: Final = 5

_ADJECTIVES = ("amber", "brisk", "cobalt", "dappled", "frosted", "gilded", "hazel", "indigo")
_NOUNS = ("lantern", "kettle", "satchel", "compass", "teapot", "notebook", "candle", "trowel")


@dataclass(frozen=True, kw_only=True)
class DemoSiteConfig:
    """How a :class:`~scrapy_ucaptcha.testing.demo_site.DemoSite` behaves."""

    #: Secret shared with the uCaptcha simulator: tokens it signs are checked with it.
    secret: str = DEFAULT_SECRET
    #: Number of item pages (``/item/1`` … ``/item/<pages>``).
    pages: int = 50
    #: Share of item pages behind a reCAPTCHA v2 interstitial, picked by a hash of number and seed.
    challenge_share: float = 0.2
    #: Item links per listing page (and items per ``/api/items`` page).
    per_list: int = 25
    seed: int = 0
    #: HTTP status of interstitial (wall) pages; 403 is as realistic as 200.
    challenge_status: int = 200
    #: Delay in seconds before every response is sent (for benchmarks).
    slow: float = 0.0
    sitekeys: Mapping[str, str] = field(default_factory=lambda: dict(SITEKEYS))
    #: Bind tokens to the identity that solved them, as sites that check the IP address do: a
    #: request through a proxy takes only tokens solved through the same proxy exit with the
    #: same User-Agent. (The cookie walls ``/dd/``, ``/cf/`` and ``/aws/`` always bind.)
    bind_identity: bool = False

    def __post_init__(self) -> None:
        if self.pages < 0:
            raise ValueError("DemoSiteConfig.pages must be >= 0")
        if not 0.0 <= self.challenge_share <= 1.0:
            raise ValueError("DemoSiteConfig.challenge_share must be between 0 and 1")
        if self.per_list < 1:
            raise ValueError("DemoSiteConfig.per_list must be >= 1")
        if not 100 <= self.challenge_status <= 599:
            raise ValueError("DemoSiteConfig.challenge_status must be an HTTP status")
        if self.slow < 0:
            raise ValueError("DemoSiteConfig.slow must be >= 0")
        missing = sorted(set(SITEKEYS) - set(self.sitekeys))
        if missing:
            raise ValueError(f"DemoSiteConfig.sitekeys lacks {', '.join(missing)}")


@dataclass(frozen=True)
class Incoming:
    """A request as the pages see it."""

    method: str
    path: str
    query: str
    args: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]  # lower-case names
    cookies: Mapping[str, str]
    origin: str  # "http://host:port" as the client addressed the site
    now: float
    body: bytes = b""

    def arg(self, name: str) -> str:
        values = self.args.get(name)
        return values[0] if values else ""

    def url_for(self, path: str) -> str:
        return self.origin + path

    @property
    def url(self) -> str:
        return self.url_for(f"{self.path}?{self.query}" if self.query else self.path)

    @property
    def exit(self) -> str:
        """The proxy exit the request came from (``direct``: no proxy)."""
        return exit_of_headers(self.headers.get("forwarded"))

    @property
    def identity(self) -> str:
        """What the site binds solutions to: exit and User-Agent."""
        return identity_string(self.exit, self.headers.get("user-agent"))


@dataclass(frozen=True)
class Reply:
    """A response plus how the request log files it."""

    status: int
    body: bytes
    kind: str
    outcome: str
    content_type: str = "text/html; charset=utf-8"
    headers: Sequence[tuple[str, str]] = ()


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(map(str, parts)).encode()).digest()


def pick_guarded(pages: int, share: float, seed: int) -> frozenset[int]:
    """The ``round(share * pages)`` items whose hash with ``seed`` ranks lowest."""
    ranked = sorted(range(1, pages + 1), key=lambda number: _digest("demo-guard", seed, number))
    return frozenset(ranked[: round(share * pages)])


def item_text(seed: int, number: int) -> tuple[str, str]:
    """Title and text of item ``number``: unique to it, the same for every run with ``seed``."""
    ref = _digest("demo-item", seed, number).hex()
    adjective = _ADJECTIVES[int(ref[:4], 16) % len(_ADJECTIVES)]
    noun = _NOUNS[int(ref[4:8], 16) % len(_NOUNS)]
    title = f"Item {number}: {adjective.capitalize()} {noun}"
    content = f"Catalogue entry {number} (ref {ref[:10]}): a {adjective} {noun}, ready to ship."
    return title, content


def local_path(value: str, default: str) -> str:
    """``value`` if it is a path on this site (no scheme, host or control characters)."""
    if not (value.startswith("/") and value.isascii() and value.isprintable()):
        return default
    if value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    return default if parts.scheme or parts.netloc else value
