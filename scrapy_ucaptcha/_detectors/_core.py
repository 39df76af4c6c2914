"""Shared pieces of the challenge detectors: result types, the cheap pre-scan and page functions."""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, ClassVar, Final, Protocol, runtime_checkable
from urllib.parse import parse_qs, urlsplit

from parsel import Selector
from scrapy.http import Headers, HtmlResponse, Response, TextResponse, XmlResponse
from w3lib.encoding import html_to_unicode

from scrapy_ucaptcha.fields import WIDGET_FIELDS
from scrapy_ucaptcha.vocabulary import (
    CAPTCHA_KINDS,
    WALL_KINDS,
    CaptchaKind,
    ChallengeKindName,
    WallKind,
)

logger = logging.getLogger("scrapy_ucaptcha.detection")


class ChallengeKind:
    """The built-in detectors' kinds by name: plain strings (:data:`~scrapy_ucaptcha.vocabulary.
    CaptchaKind`, :data:`~scrapy_ucaptcha.vocabulary.WallKind`), used in the stats keys
    ``ucaptcha/challenges/<kind>``."""

    RECAPTCHA_V2: Final[CaptchaKind] = "recaptcha_v2"
    RECAPTCHA_V2_INVISIBLE: Final[CaptchaKind] = "recaptcha_v2_invisible"
    RECAPTCHA_V3: Final[CaptchaKind] = "recaptcha_v3"
    RECAPTCHA_ENTERPRISE: Final[CaptchaKind] = "recaptcha_enterprise"
    HCAPTCHA: Final[CaptchaKind] = "hcaptcha"
    TURNSTILE: Final[CaptchaKind] = "turnstile"
    IMAGE: Final[CaptchaKind] = "image"
    FUNCAPTCHA: Final[CaptchaKind] = "funcaptcha"
    GEETEST_V3: Final[CaptchaKind] = "geetest_v3"
    GEETEST_V4: Final[CaptchaKind] = "geetest_v4"
    FRIENDLY_CAPTCHA: Final[CaptchaKind] = "friendly_captcha"
    MTCAPTCHA: Final[CaptchaKind] = "mtcaptcha"
    YANDEX_SMARTCAPTCHA: Final[CaptchaKind] = "yandex_smartcaptcha"
    AWS_WAF_CAPTCHA: Final[CaptchaKind] = "aws_waf_captcha"
    # walls a token task cannot pass
    CLOUDFLARE_CHALLENGE: Final[WallKind] = "cloudflare_challenge"
    CLOUDFLARE_IUAM: Final[WallKind] = "cloudflare_iuam"
    DATADOME: Final[WallKind] = "datadome"
    PERIMETERX: Final[WallKind] = "perimeterx"
    AWS_WAF: Final[WallKind] = "aws_waf"
    CLOUDFLARE_BLOCK: Final[WallKind] = "cloudflare_block"
    SUCURI: Final[WallKind] = "sucuri"

    SOLVABLE: Final[frozenset[CaptchaKind]] = frozenset(CAPTCHA_KINDS)
    UNSOLVABLE: Final[frozenset[WallKind]] = frozenset(WALL_KINDS)
    ALL: Final[frozenset[ChallengeKindName]] = SOLVABLE | UNSOLVABLE


@dataclass(frozen=True)
class FormLocator:
    """Where a token goes back on the challenge page."""

    #: Selects exactly that ``<form>`` (usable as ``FormRequest.from_response(formxpath=...)``).
    xpath: str
    #: The form field that carries the token (or the image captcha's answer).
    token_field: str
    #: Whether the form asks the user for nothing but the CAPTCHA (a wall), as the detector saw
    #: it: False when the form has any other field to fill in (named or not) or was only guessed
    #: (the page's only form, for a widget bound to none); None when unknown.
    asks_only_captcha: bool | None = field(default=None, compare=False)


def _empty_params() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Challenge:
    """A challenge found on a response."""

    kind: str
    #: False for walls a token task cannot pass (and widgets whose site key was not found).
    solvable: bool
    sitekey: str | None = None
    #: Extracted extras, read-only (a dict given here is copied into a read-only mapping).
    params: Mapping[str, Any] = field(default_factory=_empty_params, hash=False)
    form: FormLocator | None = None
    image_url: str | None = None
    detector: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        if self.sitekey is not None:
            object.__setattr__(self, "sitekey", self.sitekey.strip() or None)


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and a ``detect(response)`` method can detect challenges."""

    name: str

    def detect(self, response: Response) -> Challenge | None: ...


# --- the pre-scan ---------------------------------------------------------------------------------

# What the pre-scan reports (see :func:`scan`): each detector looks only at pages with one of its
# own markers. A bare "captcha" is not one: prose, footers, privacy notices, link texts and class
# names of ordinary pages say it; the widgets' and walls' machinery names them in full.
RECAPTCHA: Final = b"recaptcha"  # g-recaptcha, google.com/recaptcha/, grecaptcha.execute
HCAPTCHA: Final = b"hcaptcha"  # hcaptcha, h-captcha
FRIENDLY_CAPTCHA: Final = b"frc-captcha"  # frc-captcha, friendlycaptcha
MTCAPTCHA: Final = b"mtcaptcha"
SMART_CAPTCHA: Final = b"smart-captcha"  # smart-captcha, smartcaptcha (Yandex)
FUNCAPTCHA: Final = b"funcaptcha"
ARKOSE: Final = b"arkoselabs"  # arkoselabs.com, .cn or any other TLD
PX_CAPTCHA: Final = b"px-captcha"  # px-captcha, px/captcha, captcha.px-cdn.net
CAPTCHA_JS: Final = b"captcha.js"  # PerimeterX's /captcha.js, AWS WAF's captcha.js
CAPTCHA_CONTAINER: Final = b"captcha-cont"  # AWS WAF's #captcha-container
CAPTCHA_DELIVERY: Final = b"captcha-delivery"  # DataDome
DATADOME_CAPTCHA: Final = b"datadome.co/captcha"  # also escaped; any datadome.co URL
CHK_CAPTCHA: Final = b"chk_captcha"  # Cloudflare's old captcha page
GEETEST: Final = b"geetest"  # geetest.com, initGeetest
CF_TURNSTILE: Final = b"cf-turnstile"  # the widget class, or the API script's URL
CF_CHL: Final = b"cf-chl"  # _cf_chl_opt, __cf_chl_rt_tk, chk_jschl, the old jschl_vc form
AWS_CHALLENGE_JS: Final = b"challenge.js"  # AWS WAF's challenge interstitial
CF_ERROR: Final = b"cf-error-details"  # Cloudflare's error and block pages
CLOUDPROXY: Final = b"cloudproxy"  # Sucuri CloudProxy's sucuri_cloudproxy_js
HDR_CF_MITIGATED: Final = b"header:cf-mitigated"
HDR_AWS_WAF: Final = b"header:x-amzn-waf-action"
HDR_DATADOME: Final = b"header:x-datadome"  # X-DataDome / X-DD-B, or a datadome= cookie set

#: What comes before a "captcha" that makes it a marker: each a fixed-width look-behind, named
#: after the marker it reports.
_CAPTCHA_PREFIXES: Final = {
    "re": (b"recaptcha", RECAPTCHA),
    "h": (b"hcaptcha", HCAPTCHA),
    "h_": (b"h-captcha", HCAPTCHA),
    "frc": (b"frc-captcha", FRIENDLY_CAPTCHA),
    "dly": (b"dlycaptcha", FRIENDLY_CAPTCHA),
    "mt": (b"mtcaptcha", MTCAPTCHA),
    "art": (b"artcaptcha", SMART_CAPTCHA),
    "art_": (b"art-captcha", SMART_CAPTCHA),
    "fun": (b"funcaptcha", FUNCAPTCHA),
    "px": (b"px-captcha", PX_CAPTCHA),
    "px_": (b"px/captcha", PX_CAPTCHA),
    "chk": (b"chk_captcha", CHK_CAPTCHA),
    "dd": (b".co/captcha", DATADOME_CAPTCHA),
    "dd_": (b".co\\/captcha", DATADOME_CAPTCHA),
}
#: What may follow a "captcha" and makes it a marker, whatever comes before.
_CAPTCHA_SUFFIXES: Final = {
    b"captcha-delivery": CAPTCHA_DELIVERY,
    b"captcha.js": CAPTCHA_JS,
    b"captcha-cont": CAPTCHA_CONTAINER,
    b"captcha.px-": PX_CAPTCHA,
}
_OTHER_MARKERS: Final = {
    b"challenges.cloudflare.com/turnstile": CF_TURNSTILE,
    b"challenge.js": AWS_CHALLENGE_JS,
    b"chk_jschl": CF_CHL,
    b"cf-turnstile": CF_TURNSTILE,
    b"cf_turnstile": CF_TURNSTILE,
    b"cf-chl": CF_CHL,
    b"cf_chl": CF_CHL,
    b"cf-error-details": CF_ERROR,
    b"cloudproxy": CLOUDPROXY,
    b"co": DATADOME_CAPTCHA,  # only after "datadome.": its captcha and interstitial URLs
    b"chl": CF_CHL,  # only after "js": the old IUAM form's jschl_vc, jschl_answer
}
_SUFFIX_RE: Final = b"|".join(re.escape(s[len(b"captcha") :]) for s in _CAPTCHA_SUFFIXES)
_PREFIX_RE: Final = b"|".join(
    b"(?<=%s)(?P<%s>)" % (re.escape(needle), name.encode())
    for name, (needle, _) in _CAPTCHA_PREFIXES.items()
)
#: One pass over the raw body finds every marker. All alternatives start with "c", so the regex
#: engine searches for that literal first character, which keeps a 50 KB page at ~25 µs (an
#: alternation with different first characters costs ~15 times more); what comes before the "c"
#: is checked by look-behinds, only where a "c" is found. A "captcha" matches only with a marker's
#: prefix or suffix, so a page that merely says the word costs what a page without it does.
#: Challenge machinery (class names, script URLs, JS identifiers) is lowercase, so the body is not
#: lowercased. The bare word "challenge" is not a marker either: prose and Cloudflare's script on
#: every proxied page contain it.
_MARKERS_RE: Final = re.compile(
    rb"c(?:aptcha(?:(?:%s)(?:%s)?|%s)"
    % (_PREFIX_RE, _SUFFIX_RE, _SUFFIX_RE)
    + rb"|h(?:allenges\.cloudflare\.com/turnstile|allenge\.js|k_jschl|l(?<=jschl))"
    rb"|f[-_](?:turnstile|chl)|f-error-details|loudproxy|o(?<=datadome\.co))"
)
_PREFIX_TOKENS: Final = {name: token for name, (_, token) in _CAPTCHA_PREFIXES.items()}
_TEXT_TOKENS: Final = {**_CAPTCHA_SUFFIXES, **_OTHER_MARKERS}
_CAPTCHA_RE: Final = re.compile(rb"captcha")


#: Detection reads at most this many bytes of a body (the pre-scan and the parse alike): challenge
#: pages and widgets sit well inside it, and it bounds the cost of any response.
MAX_BODY_BYTES: Final = 2 * 1024 * 1024
#: At most this many elements of a kind (scripts, iframes, forms, site keys) are looked at.
MAX_ITEMS: Final = 500
#: Characters lxml refuses in a string ("All strings must be XML compatible"): C0 controls but
#: tab/LF/CR, lone surrogates and the two non-characters. Replaced by a space before parsing.
_NOT_XML_RE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` with the characters lxml refuses replaced by spaces (same length, same offsets)."""
    return _NOT_XML_RE.sub(" ", text) if _NOT_XML_RE.search(text) else text


def scan(response: TextResponse) -> frozenset[bytes]:
    """The markers found in ``response``'s raw body and headers (cheap; no parsing).

    Its cost is one regex pass and two byte searches over the first :data:`MAX_BODY_BYTES`, plus a
    set entry per distinct marker found."""
    body = response.body
    found = {(m.lastgroup, m[0]) for m in _MARKERS_RE.finditer(body, 0, MAX_BODY_BYTES)}
    hits = set()
    for prefix, text in found:
        if prefix is not None:
            hits.add(_PREFIX_TOKENS[prefix])
        token = _TEXT_TOKENS.get(text)
        if token is not None:
            hits.add(token)
    if body.find(b"eetest", 0, MAX_BODY_BYTES) >= 0:  # geetest.com, initGeetest
        hits.add(GEETEST)
    if body.find(b"arkoselabs", 0, MAX_BODY_BYTES) >= 0:  # no "c" in it; hosts on any TLD
        hits.add(ARKOSE)
    headers = response.headers
    if headers:
        _scan_headers(headers, hits)
    return frozenset(hits)


#: The headers :func:`scan` looks at, as :class:`~scrapy.http.Headers` keys them.
_WALL_HEADERS: Final = frozenset(
    Headers().normkey(name)
    for name in (b"cf-mitigated", b"x-amzn-waf-action", b"x-datadome", b"x-dd-b", b"set-cookie")
)


def _scan_headers(headers: Headers, hits: set[bytes]) -> None:
    if _WALL_HEADERS.isdisjoint(headers.keys()):  # one set operation for most responses
        return
    mitigated = headers.get(b"cf-mitigated")
    if mitigated is not None and mitigated.strip().lower() == b"challenge":
        hits.add(HDR_CF_MITIGATED)
    if headers.get(b"x-amzn-waf-action"):
        hits.add(HDR_AWS_WAF)
    if (
        b"x-datadome" in headers
        or b"x-dd-b" in headers
        or any(c.lstrip().startswith(b"datadome=") for c in headers.getlist(b"set-cookie"))
    ):
        hits.add(HDR_DATADOME)


# --- JavaScript scraps ----------------------------------------------------------------------------

_IDENT_RE: Final = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_MEMBER_RE: Final = re.compile(r"""\s*(["']?)([\w$-]+)\1\s*(?::\s*(.*))?""", re.S)
_STRING_RE: Final = re.compile(r"""\s*(["'`])(.*)\1\s*""", re.S)


def _split_args(text: str, pos: int, limit: int = 4000) -> list[str]:
    """Top-level comma-separated pieces from ``pos`` to the bracket closing the current level."""
    args: list[str] = []
    depth, start, quote = 0, pos, ""
    end = min(len(text), pos + limit)
    i = pos
    while i < end:
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif c == "," and depth == 0:
            args.append(text[start:i])
            start = i + 1
        i += 1
    args.append(text[start:i])
    return [a for a in args if a.strip()]


def js_string(source: str) -> str | None:
    """The value of a JS string literal, or None when ``source`` is not one."""
    m = _STRING_RE.fullmatch(source)
    return m.group(2) if m else None


@dataclass(frozen=True)
class JsCall:
    """A call like ``grecaptcha.render('box', {sitekey: '…'})``, roughly parsed."""

    #: The first argument's source text, and its value when it is a string literal.
    first: str
    first_string: str | None
    #: Members of the first object-literal argument: key (lowercased) → value source text.
    options: Mapping[str, str]


def _object_members(text: str, pos: int) -> dict[str, str]:
    """The members of the object literal whose ``{`` is just before ``pos``."""
    options: dict[str, str] = {}
    for member in _split_args(text, pos):
        mm = _MEMBER_RE.fullmatch(member)
        if mm:  # `{sitekey}` shorthand: the value is a variable of that name
            options.setdefault(mm.group(2).lower(), (mm.group(3) or mm.group(2)).strip())
    return options


def js_calls(text: str, callee: re.Pattern[str], limit: int = 10) -> Iterator[JsCall]:
    """Calls of ``callee`` (a pattern ending with the opening parenthesis) in ``text``.

    The options are the first object-literal argument's members, or those of the object
    literal assigned to a variable passed instead (``render('box', opts)``)."""
    for count, m in enumerate(callee.finditer(text)):
        if count >= limit:
            return
        args = _split_args(text, m.end())
        first = args[0].strip() if args else ""
        options: dict[str, str] = {}
        for arg in args:
            stripped = arg.strip()
            if stripped.startswith("{"):
                options = _object_members(stripped, 1)
                break
        else:
            for arg in args[1:2]:
                name = arg.strip()
                if _IDENT_RE.fullmatch(name) and "." not in name:
                    assigned = re.search(rf"(?<![\w$.]){re.escape(name)}\s*=\s*\{{", text)
                    if assigned is not None:
                        options = _object_members(text, assigned.end())
        yield JsCall(first=first, first_string=js_string(first), options=options)


def js_value(source: str | None, scripts: str) -> str | None:
    """A string literal's value, or the string a simple variable was assigned in ``scripts``."""
    if source is None:
        return None
    value = js_string(source)
    if value is not None:
        return value
    source = source.strip()
    if not _IDENT_RE.fullmatch(source):
        return None
    name = re.escape(source.rsplit(".", 1)[-1])
    m = re.search(rf"""(?<![\w$])["']?{name}["']?\s*[:=]\s*(["'])([^"'\\\n]{{1,300}})\1""", scripts)
    return m.group(2) if m else None


def js_name(source: str | None) -> str | None:
    """A callback's name: a string literal or a (dotted) identifier, not an inline function."""
    if source is None:
        return None
    value = js_string(source)
    value = (value if value is not None else source).strip()
    if _IDENT_RE.fullmatch(value) and value not in ("function", "null", "undefined"):
        return value
    return None


_SITEKEY_KV_RE: Final = re.compile(
    r"""["']?(?:data-)?(?:site_?key|website_?key)["']?\s*[:=]\s*["']\s*([\w-]{10,100})\s*["']""",
    re.I,
)


def query_param(url: str, name: str, *, fragment: bool = False) -> str | None:
    """A query (or fragment) parameter of ``url``."""
    try:
        parts = urlsplit(url.replace("&amp;", "&"))
    except ValueError:
        return None
    values = parse_qs(parts.fragment if fragment else parts.query).get(name)
    return values[0].strip() if values else None


# --- the page being examined ----------------------------------------------------------------------


def attr(el: Selector, name: str) -> str:
    """``el``'s attribute ``name`` ("" when absent). Unlike ``el.attrib``, which builds a dict of
    every attribute, this does not raise on a broken page whose attribute names lxml refuses
    (``ValueError: Invalid tag name``)."""
    get = getattr(el.root, "get", None)
    if get is None:  # a text or attribute result, not an element
        return ""
    try:
        value = get(name)
    except ValueError:
        return ""
    return value if isinstance(value, str) else ""


def xpath_literal(value: str) -> str | None:
    """``value`` as an XPath 1.0 string literal (None if it holds both kinds of quote)."""
    if '"' not in value:
        return f'"{value}"'
    if "'" not in value:
        return f"'{value}'"
    return None


def _guess_encoding(body: bytes) -> str:
    """UTF-8 when the bytes are UTF-8, else cp1252 (decoded with replacement characters)."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"
    return "utf-8"


class Page:
    """A response under examination, with lazily computed views shared by the detectors.

    Only the first :data:`MAX_BODY_BYTES` of the body are read; the text given to lxml has the
    characters it refuses replaced, and is parsed without lxml's "huge tree" option (nesting
    deeper than 255 levels is flattened). ``work`` counts what was done, for tests and benchmarks.
    """

    def __init__(self, response: TextResponse, hits: frozenset[bytes] | None = None) -> None:
        self.response = response
        self.body = response.body[:MAX_BODY_BYTES]
        self.hits = scan(response) if hits is None else hits
        #: ``parsed_chars``: text handed to lxml; ``queries``: XPath evaluations.
        self.work: dict[str, int] = {"parsed_chars": 0, "queries": 0}

    def has(self, *needles: bytes) -> bool:
        """Whether the raw body contains any of ``needles`` (a byte search, no parsing)."""
        return any(needle in self.body for needle in needles)

    @cached_property
    def text(self) -> str:
        """The (capped) body as text, safe for lxml.

        Decoded as Scrapy would for a declared encoding (BOM, ``Content-Type``, ``<meta>``);
        without one, as UTF-8 or else cp1252, never by statistical guessing over the body
        (which costs seconds on a large page of random bytes). A character cut in two at the
        cap becomes U+FFFD."""
        content_type = self.response.headers.get(b"Content-Type")
        _, text = html_to_unicode(
            content_type.decode("latin-1") if content_type else None,
            self.body,
            auto_detect_fun=_guess_encoding,
        )
        return xml_safe(text)

    @cached_property
    def _captcha_contexts(self) -> bytes:
        """The bytes around every "captcha" in the body (one pass, instead of one per needle)."""
        body = self.body
        return b"\n".join(
            body[max(0, m.start() - 4) : m.end() + 12] for m in _CAPTCHA_RE.finditer(body)
        )

    def near_captcha(self, *needles: bytes) -> bool:
        """Whether a needle that contains "captcha" (within 4 bytes before it, 12 after) is in
        the body: as :meth:`has`, but cheaper for several needles."""
        return any(needle in self._captcha_contexts for needle in needles)

    @cached_property
    def is_markup(self) -> bool:
        """HTML (or XML) worth parsing, rather than JSON or plain text."""
        if isinstance(self.response, (HtmlResponse, XmlResponse)):
            return True
        return self.body.lstrip()[:1] == b"<"

    @cached_property
    def sel(self) -> Selector:
        text = self.text
        kind = "xml" if isinstance(self.response, XmlResponse) else "html"
        self.work["parsed_chars"] += len(text)
        with warnings.catch_warnings():  # lxml's "input data is too big" for huge text nodes
            warnings.simplefilter("ignore")
            return Selector(text=text, type=kind, base_url=self.response.url, huge_tree=False)

    def xpath(
        self, xpath: str, node: Selector | None = None, /, limit: int = MAX_ITEMS, **variables: str
    ) -> list[Selector]:
        """The first ``limit`` nodes ``xpath`` selects from ``node`` (default: the page).

        The limit is part of the query, so lxml hands back no more than that many nodes (a page
        with 100,000 forms costs what one with ``limit`` does). Variables are made safe for lxml
        (they often come from the page)."""
        self.work["queries"] += 1
        safe = {k: xml_safe(v) for k, v in variables.items()}
        root = node if node is not None else self.sel
        return list(root.xpath(f"({xpath})[position() <= {limit}]", None, **safe))

    def strings(self, xpath: str) -> list[str]:
        """The string values ``xpath`` selects (stripped), at most :data:`MAX_ITEMS`."""
        return [s.get().strip() for s in self.xpath(xpath)]

    @cached_property
    def script_srcs(self) -> list[str]:
        return self.strings("//script/@src")

    @cached_property
    def inline_js(self) -> str:
        """The text of the ``<script>`` elements without ``src`` (JS and JSON data blocks)."""
        return "\n".join(s.get() for s in self.xpath("//script[not(@src)]/text()"))

    @cached_property
    def iframe_srcs(self) -> list[str]:
        return self.strings("//iframe/@src")

    @cached_property
    def data_sitekeys(self) -> list[str]:
        return [s for s in self.strings("//@data-sitekey") if s]

    @cached_property
    def forms(self) -> list[Selector]:
        return self.xpath("//form")

    def first(self, xpath: str, **variables: str) -> Selector | None:
        found = self.xpath(xpath, limit=1, **variables)
        return found[0] if found else None

    def widget(self, css_class: str) -> Selector | None:
        """The first element with ``css_class``, preferring one that carries a site key."""
        found = self.xpath(
            "//*[contains(concat(' ', normalize-space(@class), ' '), $c)]", c=f" {css_class} "
        )
        for el in found:
            if attr(el, "data-sitekey").strip():
                return el
        return found[0] if found else None

    def element_for_target(self, target: str | None) -> Selector | None:
        """The element a ``*.render(target, …)`` call renders into (an id or ``#id``)."""
        ident = (target or "").strip()
        if ident.startswith("."):
            return self.widget(ident[1:])
        ident = ident.removeprefix("#")
        return self.first("//*[@id=$i]", i=ident) if ident else None

    def generic_sitekey(self, shape: re.Pattern[str]) -> str | None:
        """A ``data-sitekey`` anywhere, or a ``sitekey: '…'`` in a script, shaped like ``shape``."""
        for key in self.data_sitekeys:
            if shape.fullmatch(key):
                return key
        for m in _SITEKEY_KV_RE.finditer(self.inline_js):
            if shape.fullmatch(m.group(1)):
                return m.group(1)
        return None

    # --- forms --------------------------------------------------------------------------------

    def enclosing_form(self, el: Selector | None) -> Selector | None:
        if el is None:
            return None
        found = self.xpath("ancestor-or-self::form[1]", el, limit=1)
        return found[0] if found else None

    def form_with_field(self, name: str) -> Selector | None:
        return self.first("//form[.//*[@name=$n]]", n=name)

    def only_form(self) -> Selector | None:
        return self.forms[0] if len(self.forms) == 1 else None

    def captcha_input(self, form: Selector | None) -> Selector | None:
        """An ``<input>`` whose name mentions captcha (in ``form``, or in any form)."""
        xpath = ".//input[contains(translate(@name, 'CAPTH', 'capth'), 'captcha')]"
        if form is None:
            return self.first("//form" + xpath[1:])
        found = self.xpath(xpath, form)
        return found[0] if found else None

    def form_xpath(self, form: Selector) -> str | None:
        """An XPath selecting exactly ``form``: by unique id or name, else by position."""
        index = next((i for i, f in enumerate(self.forms) if f.root is form.root), None)
        if index is None:
            return None
        for name in ("id", "name"):
            value = attr(form, name)
            literal = xpath_literal(value) if value else None
            if literal and sum(attr(f, name) == value for f in self.forms) == 1:
                return f"//form[@{name}={literal}]"
        return f"(//form)[{index + 1}]"

    def asks_only_captcha(self, form: Selector, token_field: str) -> bool:
        """Whether ``form`` has no field for the user but the CAPTCHA's own: a field without a
        ``name`` still asks the user for something (a search box, an e-mail address)."""
        for el in self.xpath(USER_FIELDS_XPATH, form):
            name = attr(el, "name").strip()
            if not name or (name not in WIDGET_FIELDS and name != token_field):
                return False
        return True

    def locate(
        self, form: Selector | None, token_field: str, *, bound: bool = True
    ) -> FormLocator | None:
        """Where the token goes: ``form`` and its ``token_field``. ``bound`` is False when the
        form is only a guess (the widget is in no form, and nothing ties it to this one)."""
        xpath = self.form_xpath(form) if form is not None else None
        if form is None or xpath is None:
            return None
        only = bound and self.asks_only_captcha(form, token_field)
        return FormLocator(xpath=xpath, token_field=token_field, asks_only_captcha=only)


#: The fields of a form a user fills in or picks (not hidden inputs, buttons, check boxes).
USER_FIELDS_XPATH: Final = (
    ".//textarea | .//select | .//input[not(@type) or not(contains("
    "' hidden submit button image reset checkbox radio file ', "
    "concat(' ', translate(normalize-space(@type), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', "
    "'abcdefghijklmnopqrstuvwxyz'), ' ')))]"
)


class BaseDetector:
    """Base of the built-in detectors: a cheap marker check, then :meth:`examine` on a hit."""

    name: str = ""
    #: The pre-scan markers (see :func:`scan`) at least one of which must be present.
    triggers: ClassVar[frozenset[bytes]] = frozenset()
    #: Response statuses on which the detector looks at a page that has none of its triggers.
    statuses: ClassVar[frozenset[int]] = frozenset()
    #: Whether :meth:`detect_page` finds nothing on a page that has none of :attr:`triggers` and
    #: whose status is not in :attr:`statuses`, so that
    #: :func:`~scrapy_ucaptcha.detection.detect` may skip the call there. True for the
    #: :meth:`detect_page` of this class; a subclass that overrides :meth:`detect_page` is called
    #: on every page unless it sets this to True itself.
    needs_markers: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "detect_page" in vars(cls) and "needs_markers" not in vars(cls):
            cls.needs_markers = False

    def detect(self, response: Response) -> Challenge | None:
        if not isinstance(response, TextResponse):
            return None
        try:
            return self.detect_page(Page(response))
        except Exception:
            logger.debug("%s detector failed on %s", self.name, response, exc_info=True)
            return None

    def detect_page(self, page: Page) -> Challenge | None:
        if self.triggers.isdisjoint(page.hits):
            return None
        return self.examine(page)

    def examine(self, page: Page) -> Challenge | None:
        """Look closely at a page that has this detector's markers."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
