"""Blocks no solve can pass: Cloudflare's "Sorry, you have been blocked" (1020 and kin) and
Sucuri CloudProxy (its JavaScript cookie page and its firewall's "Access Denied")."""

from __future__ import annotations

import re
from typing import Any, Final

from ._core import CF_ERROR, CLOUDPROXY, BaseDetector, Challenge, ChallengeKind, Page

_CF_CODE_RE: Final = re.compile(
    rb"""class=["']cf-error-code["'][^>]{0,40}>\s{0,20}(\d{3,4})\s{0,20}<"""
)
_CF_CODE_TEXT_RE: Final = re.compile(rb"[Ee]rror(?:\s{1,5}code)?:?\s{0,5}(10\d\d)\b")
_CF_RAY_RE: Final = re.compile(rb"Ray ID:\s{0,20}(?:<[^>]{1,80}>\s{0,20})?([0-9a-f]{16})")
#: Cloudflare 1xxx codes that mean "blocked" (firewall rule, banned IP or country, bad browser
#: signature, hotlinking, rate limiting), as opposed to DNS and origin errors.
_CF_BLOCK_CODES: Final = frozenset(
    {b"1005", b"1006", b"1007", b"1008", b"1009", b"1010", b"1011", b"1012", b"1015", b"1020"}
)


class CloudflareBlockDetector(BaseDetector):
    """Cloudflare's block page: ``data-translate="block_headline"`` or a blocking 1xxx error code.

    ``params``: ``error_code`` (e.g. ``"1020"``) and ``ray_id`` when the page shows them.
    """

    name = "cloudflare_block"
    triggers = frozenset({CF_ERROR})
    statuses = frozenset({403, 429})
    needs_markers = True  # detect_page looks at those statuses, nothing else

    def detect_page(self, page: Page) -> Challenge | None:
        if CF_ERROR not in page.hits:
            # a trimmed block page without cf-error-details: only on Cloudflare's error statuses
            if page.response.status not in self.statuses:
                return None
            server = page.response.headers.get(b"server") or b""
            if b"cloudflare" not in server.lower():
                return None
        return self.examine(page)

    def examine(self, page: Page) -> Challenge | None:
        body = page.body
        code_match = _CF_CODE_RE.search(body) or _CF_CODE_TEXT_RE.search(body)
        code = code_match.group(1) if code_match else None
        if b'data-translate="block_headline"' not in body and code not in _CF_BLOCK_CODES:
            return None
        params: dict[str, Any] = {}
        if code:
            params["error_code"] = code.decode("ascii")
        ray = _CF_RAY_RE.search(body)
        if ray:
            params["ray_id"] = ray.group(1).decode("ascii")
        return Challenge(
            kind=ChallengeKind.CLOUDFLARE_BLOCK, solvable=False, params=params, detector=self.name
        )


#: The firewall block page's title and heading ("Sucuri WebSite Firewall - Access Denied").
_SUCURI_BLOCK_TEXTS: Final = (b"Sucuri WebSite Firewall", b"Sucuri Website Firewall")
_SUCURI_S_RE: Final = re.compile(rb"""\bS\s{0,5}=\s{0,5}['"][A-Za-z0-9+/=]{16,65536}['"]""")


class SucuriDetector(BaseDetector):
    """Sucuri CloudProxy: the ``sucuri_cloudproxy_js`` cookie page (``params["blocked"]`` False)
    and the firewall's 403 block page (True), also known by the ``x-sucuri-block`` header."""

    name = "sucuri"
    triggers = frozenset({CLOUDPROXY})
    statuses = frozenset({403})  # the firewall blocks with 403
    needs_markers = True  # detect_page looks at that status, nothing else

    def detect_page(self, page: Page) -> Challenge | None:
        if CLOUDPROXY in page.hits:
            return self.examine(page)
        if page.response.status not in self.statuses:
            return None
        if page.response.headers.get(b"x-sucuri-block"):
            return self._found(blocked=True)
        return self.examine(page)

    def examine(self, page: Page) -> Challenge | None:
        body = page.body
        if b"sucuri_cloudproxy_js" in body and _SUCURI_S_RE.search(body):
            return self._found(blocked=False)
        if page.response.status == 403 and page.has(*_SUCURI_BLOCK_TEXTS):
            return self._found(blocked=True)
        return None

    def _found(self, *, blocked: bool) -> Challenge:
        return Challenge(
            kind=ChallengeKind.SUCURI,
            solvable=False,
            params={"blocked": blocked},
            detector=self.name,
        )
