"""Token widgets: reCAPTCHA (v2, invisible, v3, Enterprise), hCaptcha and Cloudflare Turnstile."""

from __future__ import annotations

import re
from typing import Any, Final

from parsel import Selector

from scrapy_ucaptcha.fields import form_field

from ._core import (
    CF_TURNSTILE,
    HCAPTCHA,
    RECAPTCHA,
    BaseDetector,
    Challenge,
    ChallengeKind,
    JsCall,
    Page,
    attr,
    js_calls,
    js_name,
    js_value,
    query_param,
)

_RC_FIELD: Final = form_field("recaptcha")
_RC_API_RE: Final = re.compile(
    r"""(?:https?:)?//(?:www\.)?(google\.com|recaptcha\.net)/recaptcha/(api|enterprise)\.js[^"'\s<>]{0,2000}"""
)
_RC_FRAME_RE: Final = re.compile(
    r"(?:www\.)?(google\.com|recaptcha\.net)/recaptcha/(?:api2|enterprise|api)/(?:anchor|bframe|fallback)"
)
_RC_RENDER_RE: Final = re.compile(r"\bgrecaptcha(?:\.enterprise)?\.render\s*\(")
_RC_EXECUTE_RE: Final = re.compile(r"\bgrecaptcha(?:\.enterprise)?\.execute\s*\(")
_RC_KEY_RE: Final = re.compile(r"6[\w-]{39}")
#: What api.js writes into the page (saved pages carry it inline): the keys it renders with
#: (a site key for v3, else "explicit"/"onload"), Enterprise, and the API base it uses.
_RC_CFG_RENDER_RE: Final = re.compile(
    r"""cfg\[["']render["']\]\s*\|\|\s*\[\]\)\.push\(\s*["']([\w-]{1,100})["']"""
)
_RC_CFG_API_RE: Final = re.compile(
    r"""__recaptcha_api["']?\]?\s*=\s*["'](?:https?:)?//(?:www\.)?(google\.com|recaptcha\.net)"""
    r"""/recaptcha/(api2|enterprise)/"""
)
_RC_RENDER_KEY_RE: Final = re.compile(r"[\w-]{20,}")  # `render=<key>`, not `render=explicit`

_HC_FIELD: Final = form_field("hcaptcha")
_HC_API_RE: Final = re.compile(r"hcaptcha\.com/1/api\.js")
_HC_RENDER_RE: Final = re.compile(r"\bhcaptcha\.render\s*\(")
_HC_KEY_RE: Final = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", re.I)
_HC_RQDATA_RE: Final = re.compile(r"""\brqdata["']?\s*:\s*(["'])([^"'\n]{1,8000})\1""")

_TS_FIELD: Final = form_field("turnstile")
_TS_API: Final = "challenges.cloudflare.com/turnstile/"
_TS_RENDER_RE: Final = re.compile(r"\bturnstile\.render\s*\(")
_TS_KEY_RE: Final = re.compile(r"[0-3]x[\w-]{16,}")

_BY_ID_RE: Final = re.compile(r"""(?:getElementById|querySelector)\(\s*(["'])([^"']{1,200})\1""")


def _first(*values: str | None) -> str | None:
    return next((v.strip() for v in values if v and v.strip()), None)


def _attr(el: Selector | None, name: str) -> str | None:
    return _first(attr(el, name)) if el is not None else None


def _opt(call: JsCall | None, key: str, scripts: str) -> str | None:
    return _first(js_value(call.options.get(key), scripts)) if call is not None else None


def _callback(el: Selector | None, call: JsCall | None) -> str | None:
    return _first(
        _attr(el, "data-callback"), js_name(call.options.get("callback")) if call else None
    )


def _is_button(el: Selector | None) -> bool:
    """A widget bound to a submit button is invisible (it runs when the button is clicked)."""
    if el is None:
        return False
    tag = el.root.tag if isinstance(el.root.tag, str) else ""
    kind = attr(el, "type").lower()
    return tag == "button" or (tag == "input" and kind in ("submit", "button", "image"))


def _badge_frame(badge: Selector | None) -> str | None:
    """The anchor iframe URL inside a ``.grecaptcha-badge``."""
    if badge is None:
        return None
    src = badge.xpath(".//iframe/@src").get()
    return src.strip() if src and _RC_FRAME_RE.search(src) else None


def _standalone_badge(badge: Selector | None) -> bool:
    """A badge in a bare ``<div>`` right under ``<body>``: where api.js puts the v3 badge."""
    if badge is None:
        return False
    parent = badge.xpath("..")
    return bool(parent) and not len(parent[0].root.attrib) and bool(parent.xpath("parent::body"))


def _target(page: Page, widget: Selector | None, call: JsCall | None) -> Selector | None:
    """The widget element, else the element a ``render(…)`` call draws into."""
    if widget is not None or call is None:
        return widget
    if call.first_string is not None:
        return page.element_for_target(call.first_string)
    m = _BY_ID_RE.search(call.first)
    return page.element_for_target(m.group(2)) if m else None


def _form(
    page: Page, target: Selector | None, field: str, *, fallback: bool
) -> tuple[Selector | None, bool]:
    """The form holding the widget, else the one holding the response field, else (for
    invisible/v3 widgets, best effort) the form with a captcha input or the only form.

    The flag says whether something ties the widget to that form (False for the only-form
    guess: a site-wide v3 script and a search box share a page, not a form)."""
    form = page.enclosing_form(target)
    if form is None:
        form = page.form_with_field(field)
    if form is None and fallback:
        form = page.enclosing_form(page.captcha_input(None))
        if form is None:
            return page.only_form(), False
    return form, True


class RecaptchaDetector(BaseDetector):
    """Google reCAPTCHA: v2 checkbox, v2 invisible, v3 and Enterprise."""

    name = "recaptcha"
    triggers = frozenset({RECAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"recaptcha"):
            return None
        js = page.inline_js
        widget = page.widget("g-recaptcha")
        renders = list(js_calls(js, _RC_RENDER_RE))
        # the render call that names a site key, else the first one
        render = next(
            (c for c in renders if _opt(c, "sitekey", js)), renders[0] if renders else None
        )
        executes = list(js_calls(js, _RC_EXECUTE_RE))
        api = next(filter(None, map(_RC_API_RE.search, page.script_srcs)), None)
        api = api or _RC_API_RE.search(js)
        cfg_api = _RC_CFG_API_RE.search(js) if "___grecaptcha_cfg" in js else None
        cfg_keys = (
            _RC_CFG_RENDER_RE.findall(js)
            if cfg_api is not None or "___grecaptcha_cfg" in js
            else []
        )
        frames = [s for s in page.iframe_srcs if _RC_FRAME_RE.search(s)]
        field = page.first("//*[@name=$n]", n=_RC_FIELD)
        badge = page.widget("grecaptcha-badge")
        scripted = bool(frames or executes or cfg_keys) or "grecaptcha." in js
        if (
            widget is None
            and render is None
            and api is None
            and field is None
            and badge is None
            and not scripted
        ):
            return None

        frame = frames[0] if frames else None
        badge_frame = _badge_frame(badge)
        enterprise = (
            (api is not None and api.group(2) == "enterprise")
            or "grecaptcha.enterprise." in js
            or (cfg_api is not None and cfg_api.group(2) == "enterprise")
            or any("/recaptcha/enterprise/" in f for f in frames)
        )
        exec_key = exec_action = None
        bare_execute = False  # execute() / execute(widgetId): runs an invisible v2 widget
        for call in executes:
            key = _first(js_value(call.first, js)) if call.first else None
            if key and _RC_KEY_RE.fullmatch(key):
                exec_key = exec_key or key
            else:
                bare_execute = True
            exec_action = exec_action or _opt(call, "action", js)
        render_key = query_param(api.group(0), "render") if api else None
        if render_key and not _RC_RENDER_KEY_RE.fullmatch(render_key):
            render_key = None  # render=explicit / render=onload
        if render_key is None:  # the loader api.js wrote inline: its render list
            render_key = next((k for k in cfg_keys if _RC_RENDER_KEY_RE.fullmatch(k)), None)
        target = _target(page, widget, render)

        sitekey: str | None
        widget_key = _attr(widget, "data-sitekey")
        if widget is not None and (
            (_is_button(widget) and _attr(widget, "data-action"))  # Google's v3 button binding
            or (widget_key is not None and widget_key == render_key)
        ):
            version, sitekey, invisible = "v3", widget_key or render_key or exec_key, False
        elif widget is not None or render is not None:  # a v2 widget
            version = "v2"
            sitekey = (
                widget_key
                or _opt(render, "sitekey", js)
                or page.generic_sitekey(_RC_KEY_RE)
                or (query_param(frame, "k") if frame else None)
            )
            size = _first(
                _attr(widget, "data-size"),
                _opt(render, "size", js),
                query_param(frame, "size") if frame else None,
            )
            invisible = (
                size == "invisible"
                or _is_button(target)
                or bare_execute
                or (exec_key is not None and exec_key == sitekey)
            )
        elif render_key or exec_key:
            version, sitekey, invisible = "v3", render_key or exec_key, False
        elif badge_frame is not None and _standalone_badge(badge):
            # the badge Google appends to <body> for v3 (a v2 badge sits in its widget)
            version, sitekey, invisible = "v3", query_param(badge_frame, "k"), False
        else:  # only the API script, an execute() or a response field: the widget is built in JS
            version = "v2"
            frame = frame or badge_frame
            sitekey = page.generic_sitekey(_RC_KEY_RE) or (
                query_param(frame, "k") if frame else None
            )
            invisible = (
                bool(executes)
                or badge is not None
                or (frame is not None and query_param(frame, "size") == "invisible")
            )

        if enterprise:
            kind = ChallengeKind.RECAPTCHA_ENTERPRISE
        elif version == "v3":
            kind = ChallengeKind.RECAPTCHA_V3
        elif invisible:
            kind = ChallengeKind.RECAPTCHA_V2_INVISIBLE
        else:
            kind = ChallengeKind.RECAPTCHA_V2

        params: dict[str, Any] = {"version": version}
        action = _first(_attr(widget, "data-action"), _opt(render, "action", js), exec_action)
        if action:
            params["action"] = action
        data_s = _first(_attr(widget, "data-s"), _opt(render, "s", js))
        if data_s and enterprise:
            params["enterprise_payload"] = {"s": data_s}
        elif data_s:
            params["data_s"] = data_s
        if enterprise:
            params["enterprise"] = True
        if invisible:
            params["invisible"] = True
        domain = api.group(1) if api else (cfg_api.group(1) if cfg_api else None)
        if domain is None and (frame or badge_frame) is not None:
            m = _RC_FRAME_RE.search(frame or badge_frame or "")
            domain = m.group(1) if m else None
        if domain:
            params["api_domain"] = domain
        callback = _callback(widget, render)
        if callback:
            params["callback"] = callback

        form, bound = _form(page, target, _RC_FIELD, fallback=invisible or version == "v3")
        token_field = _RC_FIELD
        if version == "v3" and form is not None:  # v3 pages often copy the token to their own input
            own = page.captcha_input(form)
            token_field = _first(attr(own, "name") if own is not None else None) or _RC_FIELD
        return Challenge(
            kind=kind,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, token_field, bound=bound),
            detector=self.name,
        )


class HCaptchaDetector(BaseDetector):
    """hCaptcha, visible or invisible, with ``rqdata`` when the page sets it."""

    name = "hcaptcha"
    triggers = frozenset({HCAPTCHA})

    def examine(self, page: Page) -> Challenge | None:
        if not page.near_captcha(b"hcaptcha", b"h-captcha"):
            return None
        js = page.inline_js
        widget = page.widget("h-captcha")
        render = next(js_calls(js, _HC_RENDER_RE), None)
        api = any(map(_HC_API_RE.search, page.script_srcs)) or _HC_API_RE.search(js) is not None
        frames = [s for s in page.iframe_srcs if "hcaptcha.com/" in s]
        field = page.first("//*[@name=$n]", n=_HC_FIELD)
        if widget is None and render is None and field is None and not (api or frames):
            return None

        rq = _HC_RQDATA_RE.search(js)
        sitekey = (
            _attr(widget, "data-sitekey")
            or _opt(render, "sitekey", js)
            or page.generic_sitekey(_HC_KEY_RE)
            or (query_param(frames[0], "sitekey", fragment=True) if frames else None)
        )
        rqdata = _first(
            _attr(widget, "data-rqdata"), _opt(render, "rqdata", js), rq and rq.group(2)
        )
        size = _first(_attr(widget, "data-size"), _opt(render, "size", js))
        invisible = size == "invisible" or _is_button(widget)

        params: dict[str, Any] = {}
        if rqdata:
            params["rqdata"] = rqdata
        callback = _callback(widget, render)
        if callback:
            params["callback"] = callback
        target = _target(page, widget, render)
        invisible = invisible or _is_button(target)
        if invisible:
            params["invisible"] = True
        form, bound = _form(page, target, _HC_FIELD, fallback=invisible)
        return Challenge(
            kind=ChallengeKind.HCAPTCHA,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, _HC_FIELD, bound=bound),
            detector=self.name,
        )


class TurnstileDetector(BaseDetector):
    """Cloudflare Turnstile widgets (not Cloudflare's own challenge pages)."""

    name = "turnstile"
    triggers = frozenset({CF_TURNSTILE})

    def examine(self, page: Page) -> Challenge | None:
        js = page.inline_js  # the trigger is the widget class or the API script's URL
        widget = page.widget("cf-turnstile")
        render = next(js_calls(js, _TS_RENDER_RE), None)
        api = any(_TS_API in s for s in page.script_srcs) or _TS_API in js
        field = page.first("//*[@name=$n]", n=_TS_FIELD)
        if widget is None and render is None and field is None and not api:
            return None

        sitekey = (
            _attr(widget, "data-sitekey")
            or _opt(render, "sitekey", js)
            or page.generic_sitekey(_TS_KEY_RE)
        )
        params: dict[str, Any] = {}
        action = _first(_attr(widget, "data-action"), _opt(render, "action", js))
        if action:
            params["action"] = action
        cdata = _first(_attr(widget, "data-cdata"), _opt(render, "cdata", js))
        if cdata:
            params["cdata"] = cdata
        callback = _callback(widget, render)
        if callback:
            params["callback"] = callback
        token_field = _first(
            _attr(widget, "data-response-field-name"),
            _opt(render, "response-field-name", js),
        )
        form, bound = _form(
            page, _target(page, widget, render), token_field or _TS_FIELD, fallback=False
        )
        return Challenge(
            kind=ChallengeKind.TURNSTILE,
            solvable=sitekey is not None,
            sitekey=sitekey,
            params=params,
            form=page.locate(form, token_field or _TS_FIELD, bound=bound),
            detector=self.name,
        )


TOKEN_DETECTORS: Final = (RecaptchaDetector(), HCaptchaDetector(), TurnstileDetector())
