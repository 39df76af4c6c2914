"""The pre-scan never hides a challenge from its detector.

:func:`~scrapy_ucaptcha.detection.detect` calls a built-in detector only on a page with one of
its ``triggers`` (or one of its ``statuses``). Each detector's own close look (``examine``) is run
here on every page, with no pre-scan in front of it: whenever it finds something, the pre-scan
must have let the page through. The pages: the fixtures, the real-page corpus, the hostile pages
(at a small size, so the work stays small) and hand-written pages of shapes once missed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import HtmlResponse, TextResponse

from scrapy_ucaptcha._detectors._core import BaseDetector, Page, scan
from scrapy_ucaptcha.detection import BUILTIN_DETECTORS, Challenge, detect
from scrapy_ucaptcha.testing.hostile import hostile_pages

FIXTURES = Path(__file__).parent / "fixtures"
REAL = FIXTURES / "real"
KEY = "11111111-2222-3333-4444-555555555555"

#: Shapes the detectors know and the pre-scan once missed, with what each is detected as.
ONCE_MISSED: dict[str, tuple[str, str, str]] = {
    # DataDome's interstitial URL, without captcha-delivery and without DataDome's headers
    "datadome-interstitial": (
        '<html><body><script>var dd={"cid":"AHrlqA","hsh":"ABC","t":"fe","s":1,'
        '"host":"c.example"}</script><iframe src="https://c.datadome.co/interstitial/'
        '?initialCid=x&amp;t=fe"></iframe></body></html>',
        "datadome",
        "datadome",
    ),
    # Arkose Labs served from an arkoselabs host whose TLD is not .com
    "arkose-other-tld": (
        f'<html><body><form action="/login"><div id="fc" data-pkey="{KEY}"></div>'
        '<input type="hidden" name="fc-token">'
        f'<script src="https://client-api.arkoselabs.cn/v2/{KEY}/api.js"></script>'
        "</form></body></html>",
        "funcaptcha",
        "funcaptcha",
    ),
    # Cloudflare's old IUAM form: jschl_vc and jschl_answer, no chk_jschl, no cf_chl
    "cloudflare-jschl-form": (
        '<html><body><form id="challenge-form" action="/cdn-cgi/l/x" method="get">'
        '<input type="hidden" name="jschl_vc" value="1"/>'
        '<input type="hidden" name="jschl_answer"/></form></body></html>',
        "cloudflare_iuam",
        "cloudflare",
    ),
}


def _html(body: bytes | str, status: int = 200, headers: Any = None) -> HtmlResponse:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return HtmlResponse(
        url="https://site.example/p", body=data, status=status, headers=headers, encoding="utf-8"
    )


@pytest.mark.parametrize("name", sorted(ONCE_MISSED))
@pytest.mark.parametrize("status", [200, 403])
def test_shapes_the_pre_scan_once_missed_are_detected(name: str, status: int) -> None:
    body, kind, detector = ONCE_MISSED[name]
    found = detect(_html(body, status))
    assert found is not None
    assert (found.kind, found.detector) == (kind, detector)
    assert found.solvable is (kind == "funcaptcha")
    if kind == "funcaptcha":
        assert found.sitekey == KEY


def test_the_datadome_interstitial_as_json_is_detected() -> None:
    body = b'{"url":"https://geo.datadome.co/interstitial/?initialCid=x&t=fe&cid=y"}'
    resp = TextResponse(
        url="https://site.example/api",
        body=body,
        status=403,
        headers={"Content-Type": "application/json"},
        encoding="utf-8",
    )
    found = detect(resp)
    assert found is not None
    assert (found.kind, found.detector) == ("datadome", "datadome")


def _pages() -> list[tuple[str, TextResponse]]:
    pages: list[tuple[str, TextResponse]] = []
    for path in sorted((FIXTURES / "pages").rglob("*")):
        if path.is_file():
            for status in (200, 403):
                pages.append((f"{path.name}@{status}", _html(path.read_bytes(), status)))
    manifest = json.loads((REAL / "manifest.json").read_text("utf-8"))["pages"]
    for entry in manifest:
        body = (REAL / entry["file"]).read_bytes()
        resp = HtmlResponse(
            url=entry["url"], body=body, status=entry["status"], headers=entry.get("headers")
        )
        pages.append((entry["file"], resp))
        pages.append((f"{entry['file']}@200", resp.replace(status=200, headers=None)))
    for name, body in hostile_pages(16 * 1024).items():
        pages.append((f"hostile:{name}", _html(body)))
    for name, (body, _, _) in ONCE_MISSED.items():
        for status in (200, 403):
            pages.append((f"{name}@{status}", _html(body, status)))
    return pages


def test_whatever_a_detector_finds_the_pre_scan_lets_through() -> None:
    detectors = [cls() for cls in BUILTIN_DETECTORS]
    pages = _pages()
    assert len(pages) >= 300
    findings = 0
    for name, resp in pages:
        page = Page(resp)
        hits = scan(resp)
        assert hits == page.hits
        for detector in detectors:
            # the close look itself; a detector with its own detect_page gates it there
            own = type(detector).detect_page is not BaseDetector.detect_page
            found = detector.detect_page(page) if own else detector.examine(page)
            if found is None:
                continue
            findings += 1
            marked = not detector.triggers.isdisjoint(hits)
            assert marked or resp.status in detector.statuses, (name, detector.name, sorted(hits))
    assert findings >= 100


# --- the subclass contract -------------------------------------------------------------------


class TitleDetector(BaseDetector):
    """A user's detector in the style of the older built-in ones: it has triggers, and its
    ``detect_page`` also looks at pages without them."""

    name = "title_wall"
    triggers = frozenset({b"recaptcha"})

    def detect_page(self, page: Page) -> Challenge | None:
        if b"<title>Access check</title>" in page.response.body:
            return Challenge(kind="custom_wall", solvable=False, detector=self.name)
        return super().detect_page(page)

    def examine(self, page: Page) -> Challenge | None:
        return None


class MarkedTitleDetector(TitleDetector):
    """The same, declaring that it finds nothing without its triggers: detect() may skip it."""

    needs_markers = True

    def detect_page(self, page: Page) -> Challenge | None:
        return super().detect_page(page)


WALL = b"<html><head><title>Access check</title></head><body>Wait.</body></html>"


def _plain(body: bytes) -> HtmlResponse:
    return HtmlResponse(url="https://site.example/", body=body, encoding="utf-8")


def test_a_subclass_overriding_detect_page_is_called_without_its_triggers() -> None:
    assert scan(_plain(WALL)) == frozenset()
    assert TitleDetector.needs_markers is False
    found = detect(_plain(WALL), [TitleDetector()])
    assert found is not None
    assert (found.kind, found.detector) == ("custom_wall", "title_wall")


def test_a_subclass_that_declares_it_needs_markers_is_skipped_without_them() -> None:
    calls: list[str] = []

    class Counted(MarkedTitleDetector):
        def detect_page(self, page: Page) -> Challenge | None:
            calls.append(page.response.url)
            return super().detect_page(page)

    assert Counted.needs_markers is False  # its own override: called everywhere again
    Counted.needs_markers = True
    assert detect(_plain(WALL), [Counted()]) is None
    assert calls == []
    assert MarkedTitleDetector.needs_markers is True
    assert detect(_plain(WALL), [MarkedTitleDetector()]) is None


def test_the_built_in_detectors_need_markers() -> None:
    assert all(cls.needs_markers for cls in BUILTIN_DETECTORS)
