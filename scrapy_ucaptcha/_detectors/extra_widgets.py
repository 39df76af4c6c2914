"""More token widgets: Arkose Labs (FunCaptcha), Friendly Captcha, MTCaptcha, Yandex SmartCaptcha.

Each is one site key plus a hidden field the widget fills with its token; the detectors find the
key (attribute, script URL or JavaScript configuration), the form and that field.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

from parsel import Selector

from scrapy_ucaptcha.fields import FORM_FIELDS, form_field

from ._core import (
    ARKOSE,
    FRIENDLY_CAPTCHA,
    FUNCAPTCHA,
    MTCAPTCHA,
    SMART_CAPTCHA,
    BaseDetector,
    Challenge,
    ChallengeKind,
    Page,
    js_calls,
    query_param,
)
from .widgets import _attr, _callback, _first, _form, _opt, _target


def _field_in(form: Selector | None, page: Page, names: tuple[str, ...]) -> str | None:
    """The first of ``names`` that is a field of ``form`` (or of the page, without a form)."""
    return next((name for name in names if page.xpath(".//*[@name=$n]", form, n=name)), None)


def _keyed_assignment(shape: re.Pattern[str], keys: str, text: str) -> str | None:
    """A ``key: "<value>"`` / ``key = "<value>"`` in ``text`` (keys: a regex alternation) whose
    value has ``shape``."""
    pattern = (
        rf"""["']?\b(?:{keys})["']?\s{{0,20}}[:=]\s{{0,20}}["']\s{{0,20}}"""
        r"""([^"'\s]{4,200})\s{0,20}["']"""
    )
    for m in re.finditer(pattern, text, re.I):
        if shape.fullmatch(m.group(1)):
            return m.group(1)
    return None


# --- Arkose Labs / FunCaptcha ---------------------------------------------------------------------

_FC_KEY_RE: Final = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")
_FC_API_RE: Final = re.compile(
    r"""(?:https?:)?//([\w.-]{0,100}(?:arkoselabs\.com|funcaptcha\.com))/(?:v2/(?:([\w-]{1,100})/)?(?:api|enforcement)[\w.-]{0,60}\.js|fc/)"""
)
_FC_BLOB_RE: Final = re.compile(r"""["']?\bblob["']?\s{0,20}:\s{0,20}(["'])([^"'\\]{1,8000})\1""")
_FC_BLOB_QUERY_RE: Final = re.compile(r"data(?:%5B|\[)blob(?:%5D|\])=([^&\"'\s<>]{1,8000})")
_FC_FIELDS: Final = FORM_FIELDS["funcaptcha"]
_FC_DEFAULT_HOST: Final = "client-api.arkoselabs.com"


class FunCaptchaDetector(BaseDetector):
    """Arkose Labs (FunCaptcha): the enforcement script, ``data-pkey`` or ``public_key``."""

    name = "funcaptcha"
    triggers = frozenset({ARKOSE, FUNCAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.is_markup:
            return None
        js = page.inline_js
        api = next(filter(None, map(_FC_API_RE.search, page.script_srcs)), None)
        api = api or _FC_API_RE.search(js)
        widget = page.first("//*[@data-pkey]")
        frames = [s for s in page.iframe_srcs if "arkoselabs.com" in s or "funcaptcha.com" in s]
        field = page.first("//*[@name=$n]", n=_FC_FIELDS[0])
        if api is None and widget is None and field is None and not frames:
            return None
        sitekey = (
            _first(_attr(widget, "data-pkey"))
            or (api.group(2) if api is not None and api.group(2) else None)
            or _keyed_assignment(_FC_KEY_RE, "public_?key|pkey", js)
            or next((query_param(f, "pkey") for f in frames if query_param(f, "pkey")), None)
            or next((m.group(0) for f in frames for m in [_FC_KEY_RE.search(f)] if m), None)
        )
        if sitekey is not None and not _FC_KEY_RE.fullmatch(sitekey):
            sitekey = None
        params: dict[str, Any] = {}
        host = api.group(1).lower() if api is not None else None
        surl = _attr(widget, "data-surl")
        if surl:
            host = (urlsplit(surl).hostname or host or "").lower() or None
        if host and host != _FC_DEFAULT_HOST:
            params["api_subdomain"] = host
        blob = _FC_BLOB_RE.search(js)
        blob_value = blob.group(2) if blob else None
        if blob_value is None:
            for src in frames:
                m = _FC_BLOB_QUERY_RE.search(src)
                if m:
                    blob_value = m.group(1)
                    break
        if blob_value:
            params["data_blob"] = blob_value
        callback = _first(_attr(widget, "data-callback"))
        if callback:
            params["callback"] = callback
        target = widget if widget is not None else field
        form, bound = _form(page, target, _FC_FIELDS[0], fallback=True)
        token_field = _field_in(form, page, _FC_FIELDS) or _FC_FIELDS[0]
        return Challenge(
            kind=ChallengeKind.FUNCAPTCHA,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, token_field, bound=bound),
            detector=self.name,
        )


# --- Friendly Captcha -----------------------------------------------------------------------------

_FRC_KEY_RE: Final = re.compile(r"[A-Z0-9]{12,20}")
_FRC_V1_FIELD, _FRC_V2_FIELD = FORM_FIELDS["friendly_captcha"]
_FRC_RENDER_RE: Final = re.compile(r"\b(?:new\s+WidgetInstance|createWidget)\s*\(")


class FriendlyCaptchaDetector(BaseDetector):
    """Friendly Captcha (v1 ``friendly-challenge`` and v2 ``@friendlycaptcha/sdk``)."""

    name = "friendly_captcha"
    triggers = frozenset({FRIENDLY_CAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"frc-captcha", b"dlycaptcha"):
            return None
        js = page.inline_js
        widget = page.widget("frc-captcha")
        render = next(js_calls(js, _FRC_RENDER_RE), None) if "sitekey" in js else None
        field = page.first("//*[@name=$a or @name=$b]", a=_FRC_V1_FIELD, b=_FRC_V2_FIELD)
        if widget is None and render is None and field is None:
            return None
        sitekey = _attr(widget, "data-sitekey") or _opt(render, "sitekey", js)
        if sitekey is not None and not _FRC_KEY_RE.fullmatch(sitekey):
            sitekey = None
        params: dict[str, Any] = {}
        callback = _callback(widget, render)
        if callback:
            params["callback"] = callback
        form, bound = _form(page, _target(page, widget, render), _FRC_V1_FIELD, fallback=True)
        v2 = any(
            "@friendlycaptcha/sdk" in s or "friendlycaptcha.com" in s for s in page.script_srcs
        )
        token_field = (
            _attr(widget, "data-solution-field-name")
            or _field_in(form, page, (_FRC_V1_FIELD, _FRC_V2_FIELD))
            or (_FRC_V2_FIELD if v2 else _FRC_V1_FIELD)
        )
        return Challenge(
            kind=ChallengeKind.FRIENDLY_CAPTCHA,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, token_field, bound=bound),
            detector=self.name,
        )


# --- MTCaptcha ------------------------------------------------------------------------------------

_MT_KEY_RE: Final = re.compile(r"MTPublic-[A-Za-z0-9]{4,40}")
_MT_FIELD: Final = form_field("mtcaptcha")


class MTCaptchaDetector(BaseDetector):
    """MTCaptcha: ``mtcaptchaConfig = {"sitekey": "MTPublic-…"}`` and its service script."""

    name = "mtcaptcha"
    triggers = frozenset({MTCAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"mtcaptcha"):
            return None
        js = page.inline_js
        widget = page.widget("mtcaptcha")
        api = any("mtcaptcha.com/" in s for s in page.script_srcs) or "mtcaptcha.com/" in js
        config = "mtcaptchaConfig" in js
        field = page.first("//*[@name=$n]", n=_MT_FIELD)
        if widget is None and field is None and not (api or config):
            return None
        frames = [s for s in page.iframe_srcs if "mtcaptcha.com/" in s]
        sitekey = (
            _attr(widget, "data-sitekey")
            or _keyed_assignment(_MT_KEY_RE, "sitekey", js)
            or next((query_param(f, "sk") for f in frames if query_param(f, "sk")), None)
        )
        if sitekey is not None and not _MT_KEY_RE.fullmatch(sitekey):
            sitekey = None
        params: dict[str, Any] = {}
        action = _keyed_assignment(re.compile(r"[\w-]{1,64}"), "action", js) if config else None
        if action:
            params["action"] = action
        form, bound = _form(page, widget if widget is not None else field, _MT_FIELD, fallback=True)
        return Challenge(
            kind=ChallengeKind.MTCAPTCHA,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, _MT_FIELD, bound=bound),
            detector=self.name,
        )


# --- Yandex SmartCaptcha --------------------------------------------------------------------------

#: ``ysc1_…`` keys, and the 40-character keys of older captchas.
_YSC_KEY_RE: Final = re.compile(r"ysc1_[A-Za-z0-9]{10,80}|[A-Za-z0-9]{40}")
_YSC_FIELD: Final = form_field("yandex_smartcaptcha")
_YSC_API: Final = "smartcaptcha.yandexcloud.net/"
_YSC_RENDER_RE: Final = re.compile(r"\bsmartCaptcha\.render\s*\(")


class YandexSmartCaptchaDetector(BaseDetector):
    """Yandex SmartCaptcha: ``div.smart-captcha[data-sitekey=ysc1_…]``, ``smartCaptcha.render``."""

    name = "yandex_smartcaptcha"
    triggers = frozenset({SMART_CAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"art-captcha", b"artcaptcha"):
            return None
        js = page.inline_js
        widget = page.widget("smart-captcha")
        render = next(js_calls(js, _YSC_RENDER_RE), None)
        api = any(_YSC_API in s for s in page.script_srcs) or _YSC_API in js
        field = page.first("//*[@name=$n]", n=_YSC_FIELD)
        if widget is None and render is None and field is None and not api:
            return None
        sitekey = (
            _attr(widget, "data-sitekey")
            or _opt(render, "sitekey", js)
            or page.generic_sitekey(_YSC_KEY_RE)
        )
        if sitekey is not None and not _YSC_KEY_RE.fullmatch(sitekey):
            sitekey = None
        params: dict[str, Any] = {}
        invisible = _first(
            _attr(widget, "data-invisible"), render.options.get("invisible") if render else None
        )
        if invisible in ("true", "1", "'true'", '"true"'):
            params["invisible"] = True
        callback = _callback(widget, render)
        if callback:
            params["callback"] = callback
        form, bound = _form(page, _target(page, widget, render), _YSC_FIELD, fallback=True)
        return Challenge(
            kind=ChallengeKind.YANDEX_SMARTCAPTCHA,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, _YSC_FIELD, bound=bound),
            detector=self.name,
        )
