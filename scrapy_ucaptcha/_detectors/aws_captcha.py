"""AWS WAF CAPTCHA (HTTP 405, ``captcha.js``): a token for the ``aws-waf-token`` cookie.

AWS WAF's *challenge* interstitial (HTTP 202, ``challenge.js`` only) is not a captcha and stays
with :class:`~scrapy_ucaptcha.detection.AwsWafDetector`.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._core import (
    CAPTCHA_CONTAINER,
    CAPTCHA_JS,
    HDR_AWS_WAF,
    BaseDetector,
    Challenge,
    ChallengeKind,
    Page,
)
from .walls import _GOKU_FIELD_RE, _GOKU_RE, _wall_text

_SCRIPT_RE: Final = re.compile(
    r"""https://[\w.-]{1,200}\.awswaf\.com/[^"'\s<>]{0,500}/(captcha|challenge)\.js"""
)


class AwsWafCaptchaDetector(BaseDetector):
    """The AWS WAF CAPTCHA page: ``x-amzn-waf-action: captcha``, or ``window.gokuProps`` with
    ``captcha.js`` / ``#captcha-container``.

    ``sitekey`` is gokuProps' ``key``; ``params``: ``iv``, ``context``, ``captcha_script`` and
    ``challenge_script`` (the script URLs, when the page has them).
    """

    name = "aws_waf_captcha"
    triggers = frozenset({HDR_AWS_WAF, CAPTCHA_JS, CAPTCHA_CONTAINER})

    def examine(self, page: Page) -> Challenge | None:
        header = ""
        if HDR_AWS_WAF in page.hits:  # the pre-scan saw the header
            header = (page.response.headers.get(b"x-amzn-waf-action") or b"").decode("latin-1")
            header = header.strip().lower()
        if header and header != "captcha":
            return None
        if not header and not (
            page.near_captcha(b"captcha.js", b"captcha-cont") and page.has(b"gokuProps")
        ):
            return None
        text = _wall_text(page)
        goku = _GOKU_RE.search(text)
        srcs = [s for s in page.script_srcs if "awswaf.com" in s]
        scripts = {m.group(1): m.group(0) for m in map(_SCRIPT_RE.search, srcs) if m}
        if not header:
            box = page.is_markup and page.first("//*[@id='captcha-container']") is not None
            if goku is None or not ("captcha" in scripts or box):
                return None
        fields = dict(_GOKU_FIELD_RE.findall(goku.group(1))) if goku else {}
        params: dict[str, Any] = {}
        for name in ("iv", "context"):
            if fields.get(name):
                params[name] = fields[name]
        for name in ("captcha", "challenge"):
            if name in scripts:
                params[f"{name}_script"] = scripts[name]
        sitekey = fields.get("key") or None
        return Challenge(
            kind=ChallengeKind.AWS_WAF_CAPTCHA,
            solvable=bool(sitekey and "iv" in params and "context" in params),
            sitekey=sitekey,
            params=params,
            detector=self.name,
        )
