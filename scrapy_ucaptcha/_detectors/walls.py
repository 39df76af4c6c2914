"""Walls a token task cannot pass: Cloudflare challenges, DataDome, PerimeterX, AWS WAF."""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlencode

from ._core import (
    AWS_CHALLENGE_JS,
    CAPTCHA_CONTAINER,
    CAPTCHA_DELIVERY,
    CAPTCHA_JS,
    CF_CHL,
    CHK_CAPTCHA,
    DATADOME_CAPTCHA,
    HDR_AWS_WAF,
    HDR_CF_MITIGATED,
    HDR_DATADOME,
    PX_CAPTCHA,
    BaseDetector,
    Challenge,
    ChallengeKind,
    Page,
    query_param,
)
from .widgets import TOKEN_DETECTORS


def _wall_text(page: Page) -> str:
    """Where a wall's machinery lives: script code and URLs of markup, or a JSON/text body."""
    if not page.is_markup:
        return page.text
    return "\n".join([page.inline_js, *page.script_srcs, *page.iframe_srcs])


_IUAM_XPATH: Final = (
    "//input[@name='jschl_vc'] | //*[@id='jschl-answer'] | //form[contains(@action, 'jschl')]"
)


#: Cloudflare's older captcha page: its form posts to ``/cdn-cgi/l/chk_captcha``; when the widget
#: in it is one we can solve (reCAPTCHA v2) the widget detectors take the page.
_OLD_CAPTCHA_XPATH: Final = "//form[contains(@action, '/cdn-cgi/l/chk_captcha')]"


class CloudflareChallengeDetector(BaseDetector):
    """Cloudflare's managed/JS challenge ("Just a moment...") and the old IUAM ``jschl`` page.

    A page that also carries a solvable token widget (the older "Attention Required" captcha
    page, or a Turnstile widget) is left to the widget detectors.
    """

    name = "cloudflare"
    triggers = frozenset({CF_CHL, HDR_CF_MITIGATED, CHK_CAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        header = HDR_CF_MITIGATED in page.hits
        old_captcha = page.near_captcha(b"chk_captcha")  # the 2015-era captcha page
        if not header and not old_captcha and not page.has(b"_cf_chl", b"jschl"):
            return None
        iuam = page.has(b"jschl") and (page.first(_IUAM_XPATH) is not None)
        managed = (
            header
            or "_cf_chl_opt" in page.inline_js
            or any(
                "/cdn-cgi/challenge-platform/" in s and "/orchestrate/" in s
                for s in page.script_srcs
            )
            or page.first("//form[contains(@action, '__cf_chl_')]") is not None
            or (old_captcha and page.first(_OLD_CAPTCHA_XPATH) is not None)
        )
        if not (iuam or managed):
            return None
        for detector in TOKEN_DETECTORS:
            widget = detector.detect_page(page)
            if widget is not None and widget.solvable:
                return None
        kind = ChallengeKind.CLOUDFLARE_IUAM if iuam else ChallengeKind.CLOUDFLARE_CHALLENGE
        return Challenge(kind=kind, solvable=False, detector=self.name)


_DD_OBJECT_RE: Final = re.compile(r"\bdd\s*=\s*\{([^{}]{0,4000})\}")
_DD_FIELD_RE: Final = re.compile(r"""["']?(\w+)["']?\s*:\s*["']?([^"',}]*)""")
_DD_URL_RE: Final = re.compile(
    r"""(?:captcha-delivery\.com|datadome\.co)(?:\\?/){1,3}(?:captcha|interstitial)\b"""
    r"""(?:\\?/)?(?:\?[^"'\s<>]{0,4000})?"""
)
#: The host in front of a captcha URL's domain (``geo.``, ``c.``), read back from where it starts.
_DD_HOST_PREFIX_RE: Final = re.compile(r"(?:[\w-]{1,63}\.){1,4}$")
_DD_SCRIPT_RE: Final = re.compile(r"captcha-delivery\.com/[ci]\.js")


class DataDomeDetector(BaseDetector):
    """DataDome's captcha (``t=fe``) and ban (``t=bv``) pages, also as a JSON answer to an XHR.

    Both are unsolvable here: the captcha is a slider bound to the proxy and User-Agent.
    ``params["banned"]`` is True when the IP is banned (rotate the proxy instead).
    """

    name = "datadome"
    triggers = frozenset({CAPTCHA_DELIVERY, DATADOME_CAPTCHA, HDR_DATADOME})

    def examine(self, page: Page) -> Challenge | None:
        header = HDR_DATADOME in page.hits
        if not (page.near_captcha(b"captcha-delivery") or page.has(b"datadome.co") or header):
            return None
        text = _wall_text(page)
        t: str | None = None
        found = False
        obj = _DD_OBJECT_RE.search(text)
        if obj is not None:
            fields = dict(_DD_FIELD_RE.findall(obj.group(1)))
            found = (
                "captcha-delivery" in fields.get("host", "")
                or _DD_SCRIPT_RE.search(text) is not None
                or (header and page.response.status == 403 and "cid" in fields)
            )
            t = fields.get("t") if found else None
        url = _DD_URL_RE.search(text)
        captcha_url = None
        if url is not None:
            found = True
            host = _DD_HOST_PREFIX_RE.search(text, max(0, url.start() - 256), url.start())
            found_url = (host.group(0) if host else "geo.") + url.group(0)
            captcha_url = "https://" + found_url.replace("\\u0026", "&").replace("\\/", "/")
            t = t or query_param(captcha_url, "t")
        if not found:
            return None
        if captcha_url is None and obj is not None:
            captcha_url = _dd_captcha_url(fields, page)
        params: dict[str, Any] = {"banned": t == "bv"}
        if captcha_url is not None and t == "fe":
            params["captcha_url"] = captcha_url  # what a DataDome slider task needs
        return Challenge(
            kind=ChallengeKind.DATADOME, solvable=False, params=params, detector=self.name
        )


def _dd_captcha_url(fields: dict[str, str], page: Page) -> str | None:
    """The captcha URL DataDome's ``c.js`` builds from the ``dd`` object, the ``datadome``
    cookie the block page set, and the page's URL."""
    cid, hsh, t = fields.get("cid"), fields.get("hsh"), fields.get("t")
    if not (cid and hsh and t):
        return None
    cookie = ""
    for header in page.response.headers.getlist(b"Set-Cookie"):
        name, _, rest = header.decode("latin-1").partition("=")
        if name.strip() == "datadome":
            cookie = rest.partition(";")[0].strip()
    query = {"initialCid": cid, "hash": hsh, "cid": cookie, "t": t, "referer": page.response.url}
    for name in ("s", "e"):
        if fields.get(name):
            query[name] = fields[name]
    host = fields.get("host") or "geo.captcha-delivery.com"
    return f"https://{host}/captcha/?{urlencode(query)}"


_PX_MACHINERY: Final = ("_pxAppId", "px-cdn.net", "px-cloud.net", "/captcha/captcha.js")


_PX_CAPTCHA_SCRIPT_RE: Final = re.compile(
    r"captcha\.px-cdn\.net/|/captcha/captcha\.js|/px/captcha/"
)
#: What PerimeterX's own block template carries instead of a ``#px-captcha`` box: it loads the
#: captcha script from a variable and falls back to an error box.
_PX_TEMPLATE_MARKERS: Final = ("pxCaptchaSrc", "_pxOnError", "px-captcha-error")
_PX_TITLE: Final = "access to this page has been denied"


class PerimeterXDetector(BaseDetector):
    """PerimeterX (HUMAN) block pages ("Press & Hold" in ``#px-captcha``), also as JSON.

    The ``#px-captcha`` box is often created by the captcha script (PerimeterX's own block
    template has none in its HTML), so the captcha script (``captcha.px-cdn.net``, the
    first-party ``/<app>/captcha/captcha.js`` or ``/px/captcha/``), the template's loader or the
    block page's title count as much as the box. The sensor script alone (``window._pxAppId`` and
    ``main.min.js``, on every page of a protected site) does not.
    """

    name = "perimeterx"
    triggers = frozenset({PX_CAPTCHA, CAPTCHA_JS})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"px-captcha", b"captcha.px-", b"/captcha.js", b"px/captcha"):
            return None
        text = _wall_text(page)
        if not any(marker in text for marker in _PX_MACHINERY):
            return None
        if page.is_markup:
            block = (
                page.first("//*[@id='px-captcha']") is not None
                or _PX_CAPTCHA_SCRIPT_RE.search(text) is not None
                or any(marker in text for marker in _PX_TEMPLATE_MARKERS)
                or _PX_TITLE
                in (page.first("//title") or page.sel).xpath("string()").get("").lower()
            )
            if not block:
                return None
        elif '"blockScript"' not in text or '"appId"' not in text:
            return None
        return Challenge(kind=ChallengeKind.PERIMETERX, solvable=False, detector=self.name)


_GOKU_RE: Final = re.compile(r"gokuProps\s*=\s*\{([^{}]{0,8000})\}")
_GOKU_FIELD_RE: Final = re.compile(r"""["']?(key|iv|context)["']?\s*:\s*["']([^"']*)["']""")


class AwsWafDetector(BaseDetector):
    """AWS WAF CAPTCHA (HTTP 405) and challenge (HTTP 202) interstitials.

    ``sitekey`` and ``params["iv"]``/``params["context"]`` come from ``window.gokuProps``;
    ``params["waf_action"]`` is ``captcha`` or ``challenge``.
    """

    name = "aws_waf"
    triggers = frozenset({HDR_AWS_WAF, AWS_CHALLENGE_JS, CAPTCHA_JS, CAPTCHA_CONTAINER})

    def examine(self, page: Page) -> Challenge | None:
        header = (page.response.headers.get(b"x-amzn-waf-action") or b"").decode("latin-1")
        header = header.strip().lower()
        if not header and not (
            (AWS_CHALLENGE_JS in page.hits or page.near_captcha(b"captcha.js", b"captcha-cont"))
            and page.has(b"gokuProps")
        ):
            return None
        text = _wall_text(page)
        goku = _GOKU_RE.search(text)
        aws_scripts = [s for s in page.script_srcs if "awswaf.com" in s]
        captcha_box = page.is_markup and page.first("//*[@id='captcha-container']") is not None
        if not header:  # ordinary pages load the AWS WAF SDK too, but have no gokuProps
            box = captcha_box or (
                page.is_markup and page.first("//*[@id='challenge-container']") is not None
            )
            if goku is None or not (aws_scripts or box):
                return None
        fields = dict(_GOKU_FIELD_RE.findall(goku.group(1))) if goku else {}
        captcha = captcha_box or any(s.endswith("/captcha.js") for s in aws_scripts)
        params: dict[str, Any] = {"waf_action": header or ("captcha" if captcha else "challenge")}
        for name in ("iv", "context"):
            if fields.get(name):
                params[name] = fields[name]
        script = next((src for src in aws_scripts if src.endswith("/challenge.js")), None)
        if script:
            params["challenge_script"] = script
        return Challenge(
            kind=ChallengeKind.AWS_WAF,
            solvable=False,
            sitekey=fields.get("key") or None,
            params=params,
            detector=self.name,
        )
