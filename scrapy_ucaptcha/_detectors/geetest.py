"""GeeTest v3 (``initGeetest({gt, challenge})``) and v4 (``initGeetest4({captchaId})``).

A v3 ``challenge`` is single-use and most sites fetch it with an XHR after the page loaded: a page
without one is reported as not solvable (a task without a fresh challenge cannot succeed).
"""

from __future__ import annotations

import re
from typing import Any, Final

from scrapy_ucaptcha.fields import form_field

from ._core import (
    GEETEST,
    BaseDetector,
    Challenge,
    ChallengeKind,
    Page,
    js_calls,
    js_value,
    query_param,
)
from .widgets import _first, _form

_V3_INIT_RE: Final = re.compile(r"\binitGeetest\s{0,20}\(")
_V4_INIT_RE: Final = re.compile(r"\binitGeetest4\s{0,20}\(")
_HEX32_RE: Final = re.compile(r"[0-9a-f]{32}")
_CHALLENGE_RE: Final = re.compile(r"[0-9a-z]{32,34}")
_RISK_RE: Final = re.compile(r"[a-z]{2,20}")
_HOST_RE: Final = re.compile(r"[a-z0-9][a-z0-9.-]{2,100}")
_APPEND_RE: Final = re.compile(r"""\.appendTo\(\s{0,20}(["'])([^"']{1,200})\1""")
_V4_LOAD_RE: Final = re.compile(r"gcaptcha4\.geetest\.com/load\?[^\"'\s<>]{0,2000}")


def _assigned(name: str, shape: re.Pattern[str], text: str) -> str | None:
    """``name: "<value>"`` or ``name = "<value>"`` in ``text``, when the value has ``shape``."""
    pattern = rf"""["']?\b{name}["']?\s{{0,20}}[:=]\s{{0,20}}["']([^"'\s]{{1,200}})["']"""
    for m in re.finditer(pattern, text):
        if shape.fullmatch(m.group(1)):
            return m.group(1)
    return None


def _shaped(value: str | None, shape: re.Pattern[str]) -> str | None:
    value = _first(value)
    return value if value is not None and shape.fullmatch(value) else None


class GeeTestDetector(BaseDetector):
    """GeeTest v3 and v4 widgets."""

    name = "geetest"
    triggers = frozenset({GEETEST})

    def examine(self, page: Page) -> Challenge | None:
        if not page.is_markup or not page.has(b"geetest", b"Geetest"):
            return None
        js = page.inline_js
        srcs = page.script_srcs
        v4_call = next(js_calls(js, _V4_INIT_RE), None)
        v3_call = next(js_calls(js, _V3_INIT_RE), None)
        v4_load = _V4_LOAD_RE.search(js) or next(filter(None, map(_V4_LOAD_RE.search, srcs)), None)
        v4 = v4_call is not None or v4_load is not None or any("/v4/gt4.js" in s for s in srcs)
        v3 = v3_call is not None or any(
            "geetest.com/static/tools/gt.js" in s or "/gt.js" in s for s in srcs
        )
        v3_field = page.first("//*[@name='geetest_challenge' or @name='geetest_validate']")
        if not (v4 or v3 or v3_field is not None):
            return None
        target = None
        append = _APPEND_RE.search(js)
        if append is not None:
            target = page.element_for_target(append.group(2))
        params: dict[str, Any] = {}
        if v4:
            call = v4_call
            captcha_id = (
                _shaped(js_value(call.options.get("captchaid"), js) if call else None, _HEX32_RE)
                or _assigned("captcha_?[iI]d", _HEX32_RE, js)
                or (
                    _shaped(query_param(v4_load.group(0), "captcha_id"), _HEX32_RE)
                    if v4_load is not None
                    else None
                )
            )
            params["version"] = 4
            risk = _first(js_value(call.options.get("risktype"), js)) if call else None
            risk = risk or _assigned("riskType", _RISK_RE, js)  # an option after a comment
            if risk:
                params["risk_type"] = risk
            form, bound = _form(page, target, "lot_number", fallback=True)
            return Challenge(
                kind=ChallengeKind.GEETEST_V4,
                solvable=captcha_id is not None,
                sitekey=captcha_id,
                params=params,
                form=page.locate(form, "captcha_output", bound=bound),
                detector=self.name,
            )
        call = v3_call
        gt = _shaped(js_value(call.options.get("gt"), js) if call else None, _HEX32_RE)
        gt = gt or _assigned("gt", _HEX32_RE, js)
        challenge = _shaped(
            js_value(call.options.get("challenge"), js) if call else None, _CHALLENGE_RE
        )
        challenge = challenge or _assigned("challenge", _CHALLENGE_RE, js)
        params["version"] = 3
        if challenge:
            params["challenge"] = challenge
        server = _first(js_value(call.options.get("api_server"), js)) if call else None
        if server and _HOST_RE.fullmatch(server.lower()):
            params["api_server"] = server.lower()
        target = target if target is not None else v3_field
        form, bound = _form(page, target, "geetest_challenge", fallback=True)
        return Challenge(
            kind=ChallengeKind.GEETEST_V3,
            solvable=gt is not None and challenge is not None,
            sitekey=gt,
            params=params,
            form=page.locate(form, form_field("geetest"), bound=bound),
            detector=self.name,
        )
