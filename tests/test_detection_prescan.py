"""The pre-scan decides, with one regex pass over the raw bytes, which detectors look at a page.

A page that merely says "captcha" (in prose, a footer, a privacy notice, a link, a class name or a
script) is rejected there: no detector is called, nothing is decoded or parsed. These tests count
that work (calls, decodings, parses), never time it; every challenge page of the corpus and of the
fixtures still reaches its detector (tests/test_detection_corpus.py judges what they find).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from parsel import Selector
from scrapy.http import HtmlResponse, Response, TextResponse
from w3lib.encoding import html_to_unicode

from scrapy_ucaptcha._detectors import _core
from scrapy_ucaptcha._detectors._core import (
    ARKOSE,
    AWS_CHALLENGE_JS,
    CAPTCHA_CONTAINER,
    CAPTCHA_DELIVERY,
    CAPTCHA_JS,
    CF_CHL,
    CF_ERROR,
    CF_TURNSTILE,
    CHK_CAPTCHA,
    CLOUDPROXY,
    DATADOME_CAPTCHA,
    FRIENDLY_CAPTCHA,
    FUNCAPTCHA,
    GEETEST,
    HCAPTCHA,
    HDR_AWS_WAF,
    HDR_CF_MITIGATED,
    HDR_DATADOME,
    MAX_BODY_BYTES,
    MTCAPTCHA,
    PX_CAPTCHA,
    RECAPTCHA,
    SMART_CAPTCHA,
    BaseDetector,
    Page,
    scan,
)
from scrapy_ucaptcha.detection import BUILTIN_DETECTORS, Challenge, detect
from scrapy_ucaptcha.testing import _demo_html as demo
from scrapy_ucaptcha.testing._demo_model import item_text

REAL = Path(__file__).parent / "fixtures" / "real"
PAGES = Path(__file__).parent / "fixtures" / "pages"
MANIFEST: list[dict[str, Any]] = json.loads((REAL / "manifest.json").read_text("utf-8"))["pages"]


def response(body: str | bytes, status: int = 200, headers: Any = None) -> HtmlResponse:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return HtmlResponse(
        url="https://site.example/p", body=data, status=status, headers=headers, encoding="utf-8"
    )


class Work:
    """Counts what detection does: detector calls, decodings of the body, parses."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: Counter[str] = Counter()
        decode, selector = html_to_unicode, Selector

        def counting_decode(*args: Any, **kwargs: Any) -> Any:
            self.calls["decode"] += 1
            return decode(*args, **kwargs)

        def counting_selector(*args: Any, **kwargs: Any) -> Any:
            self.calls["parse"] += 1
            return selector(*args, **kwargs)

        monkeypatch.setattr(_core, "html_to_unicode", counting_decode)
        monkeypatch.setattr(_core, "Selector", counting_selector)
        self.detectors = [self._counting(cls)() for cls in BUILTIN_DETECTORS]

    def _counting(self, cls: type[BaseDetector]) -> type[BaseDetector]:
        work = self

        class Counting(cls):  # type: ignore[valid-type,misc]
            needs_markers = cls.needs_markers  # counts the calls, finds what cls finds

            def detect_page(self, page: Page) -> Challenge | None:
                work.calls[f"detect_page/{self.name}"] += 1
                return super().detect_page(page)  # type: ignore[no-any-return]

        Counting.__name__ = cls.__name__
        return Counting

    def detect(self, resp: Response) -> Challenge | None:
        return detect(resp, self.detectors)


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Work:
    return Work(monkeypatch)


def demo_plain_pages() -> dict[str, str]:
    """The demo site's plain pages, as it serves them: each links to its article on captchas."""
    title, text = item_text(0, 5)
    items = [(i, item_text(0, i)[0]) for i in range(1, 26)]
    return {
        "item": demo.content_page(title, text, extra='  <p class="price">&euro; 14.99</p>\n'),
        "listing": demo.listing_page(1, items, "/list/2"),
    }


#: Ordinary pages that say the word without any widget or wall machinery.
MENTIONS = {
    "prose": "<p>Sites show a captcha when traffic looks odd; solving captchas is tedious.</p>",
    "footer": '<footer><a href="/captcha-policy">Captcha policy</a> &middot; no captcha</footer>',
    "privacy": "<p>This site is protected by reCAPTCHA and the Google Privacy Policy applies.</p>",
    "script": "<script>var captchaEnabled = false; window.config = {captcha: null};</script>",
    "class": '<div class="captcha-free banner" id="no_captcha">Welcome</div>',
    "upper": "<h2>CAPTCHA, Captcha, capTCHA</h2>",
    "challenge prose": "<p>The challenge of the captcha: a challenge-response test.</p>",
}


@pytest.mark.parametrize("kind", ["item", "listing"])
def test_the_demo_sites_plain_pages_take_the_cheap_path(work: Work, kind: str) -> None:
    body = demo_plain_pages()[kind]
    assert "captcha" in body  # the word is there: the page used to be examined by 11 detectors
    resp = response(body)
    assert scan(resp) == frozenset()
    assert work.detect(resp) is None
    assert work.calls == {}  # no detector called, nothing decoded, nothing parsed


@pytest.mark.parametrize("name", sorted(MENTIONS))
def test_a_page_that_merely_mentions_captcha_takes_the_cheap_path(work: Work, name: str) -> None:
    resp = response(demo.page("A page", MENTIONS[name]))
    assert scan(resp) == frozenset()
    assert work.detect(resp) is None
    assert work.calls == {}


def test_the_word_up_to_the_cap_costs_no_parse(work: Work) -> None:
    """A body made of nothing but the word, to the size detection reads, is still not parsed."""
    resp = response(b"captcha " * (MAX_BODY_BYTES // 8 + 1000))
    assert work.detect(resp) is None
    assert work.calls == {}
    page = Page(resp)
    assert page.hits == frozenset()
    assert page.work == {"parsed_chars": 0, "queries": 0}


def test_only_the_detectors_of_the_markers_found_are_called(work: Work) -> None:
    """A reCAPTCHA page is looked at by the reCAPTCHA detector alone."""
    body = (
        '<script src="https://www.google.com/recaptcha/api.js"></script><form action="/v">'
        '<div class="g-recaptcha" data-sitekey="6LdDemoKeyDemoKeyDemoKeyDemoKeyDemoKey00"></div>'
        "</form><p>Why a captcha?</p>"
    )
    found = work.detect(response(body, status=403))
    assert found is not None
    assert found.kind == "recaptcha_v2"
    # the walls that also look at any 403 (Cloudflare's block page, Sucuri's firewall) and the
    # reCAPTCHA detector: no other detector is called
    assert work.calls == {
        "detect_page/cloudflare_block": 1,
        "detect_page/sucuri": 1,
        "detect_page/recaptcha": 1,
        "decode": 1,
        "parse": 1,
    }


#: A snippet of each kind's machinery, and the markers the pre-scan reports for it.
MARKERS = [
    ('<div class="g-recaptcha"></div>', {RECAPTCHA}),
    ('<script src="https://www.google.com/recaptcha/api.js"></script>', {RECAPTCHA}),
    ("<script>grecaptcha.execute('k')</script>", {RECAPTCHA}),
    ('<div class="h-captcha"></div>', {HCAPTCHA}),
    ('<script src="https://js.hcaptcha.com/1/api.js"></script>', {HCAPTCHA}),
    ('<div class="cf-turnstile"></div>', {CF_TURNSTILE}),
    ('<script src="https://challenges.cloudflare.com/turnstile/v0/api.js">', {CF_TURNSTILE}),
    ('<div class="frc-captcha"></div>', {FRIENDLY_CAPTCHA}),
    ('<script src="https://cdn.example/friendlycaptcha/widget.js">', {FRIENDLY_CAPTCHA}),
    ('<div class="mtcaptcha"></div>', {MTCAPTCHA}),
    ('<div class="smart-captcha"></div>', {SMART_CAPTCHA}),
    ('<script src="https://smartcaptcha.yandexcloud.net/captcha.js">', {SMART_CAPTCHA, CAPTCHA_JS}),
    ('<script src="https://client-api.arkoselabs.com/v2/api.js">', {ARKOSE}),
    ('<iframe src="https://funcaptcha.com/fc/api/"></iframe>', {FUNCAPTCHA}),
    ("<script>initGeetest({gt: 'x'})</script>", {GEETEST}),
    ('<script src="https://static.geetest.com/static/tools/gt.js">', {GEETEST}),
    ('<div id="px-captcha"></div>', {PX_CAPTCHA}),
    ('<script src="/px/captcha/?a=1"></script>', {PX_CAPTCHA}),
    ('<script src="https://captcha.px-cdn.net/PX1/captcha.js">', {PX_CAPTCHA, CAPTCHA_JS}),
    ('<script src="/PXabc/captcha/captcha.js"></script>', {CAPTCHA_JS}),
    ('<div id="captcha-container"></div>', {CAPTCHA_CONTAINER}),
    ("<script>challenge.js</script>", {AWS_CHALLENGE_JS}),
    ("<script src='https://geo.captcha-delivery.com/captcha/'>", {CAPTCHA_DELIVERY}),
    ('{"url":"https:\\/\\/geo.datadome.co\\/captcha\\/?t=fe"}', {DATADOME_CAPTCHA}),
    ('<iframe src="https://c.datadome.co/captcha/?t=fe">', {DATADOME_CAPTCHA}),
    ('<form action="/cdn-cgi/l/chk_captcha">', {CHK_CAPTCHA}),
    ('<form action="/cdn-cgi/l/chk_jschl">', {CF_CHL}),
    ("<script>window._cf_chl_opt = {}</script>", {CF_CHL}),
    ('<div id="cf-error-details">', {CF_ERROR}),
    ("<script>sucuri_cloudproxy_js=''</script>", {CLOUDPROXY}),
]


@pytest.mark.parametrize(("snippet", "expected"), MARKERS, ids=[m[0][:40] for m in MARKERS])
def test_each_kinds_machinery_is_a_marker(snippet: str, expected: set[bytes]) -> None:
    assert scan(response(f"<html><body><p>a captcha</p>{snippet}</body></html>")) == expected


def test_wall_headers_are_markers() -> None:
    assert scan(response("<p>x</p>", headers={"cf-mitigated": "challenge"})) == {HDR_CF_MITIGATED}
    assert scan(response("<p>x</p>", headers={"x-amzn-waf-action": "captcha"})) == {HDR_AWS_WAF}
    assert scan(response("<p>x</p>", headers={"X-DataDome": "protected"})) == {HDR_DATADOME}
    cookie = {"Set-Cookie": ["a=1", "datadome=abc; Path=/"]}
    assert scan(response("<p>x</p>", headers=cookie)) == {HDR_DATADOME}
    plain = {"Set-Cookie": "a=1", "Server": "nginx", "cf-mitigated": "none"}
    assert scan(response("<p>x</p>", headers=plain)) == frozenset()


def _corpus() -> list[tuple[str, TextResponse, dict[str, Any]]]:
    pages: list[tuple[str, TextResponse, dict[str, Any]]] = []
    for entry in MANIFEST:
        resp = HtmlResponse(
            url=entry["url"],
            body=(REAL / entry["file"]).read_bytes(),
            status=entry["status"],
            headers=entry.get("headers"),
        )
        pages.append((entry["file"], resp, entry["expect"]))
    return pages


def test_every_challenge_page_has_a_marker_of_its_detector() -> None:
    """Each page of the corpus with a finding has a marker (or the status) of the detector that
    makes it; the corpus test checks what that detector then finds."""
    by_kind: dict[str, list[type[BaseDetector]]] = {}
    for cls in BUILTIN_DETECTORS:
        by_kind.setdefault(cls.name, []).append(cls)
    checked = 0
    for name, resp, expect in _corpus():
        found = detect(resp)
        if expect["verdict"] == "none":
            assert found is None, name
            continue
        assert found is not None, name
        detector = next(cls for cls in BUILTIN_DETECTORS if cls.name == found.detector)
        hits = scan(resp)
        assert not detector.triggers.isdisjoint(hits) or resp.status in detector.statuses, name
        checked += 1
    assert checked >= 45
