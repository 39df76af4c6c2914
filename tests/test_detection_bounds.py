"""Detection has a bounded cost and never raises, whatever the page: hostile pages built to be
slow, and pages mutated by hypothesis. Cost is asserted as work done (characters handed to the
parser, XPath evaluations), never as time; the time of the worst case is a benchmark figure."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, TextResponse

from scrapy_ucaptcha._detectors._core import MAX_BODY_BYTES, MAX_ITEMS, Page
from scrapy_ucaptcha.detection import DEFAULT_DETECTORS, Challenge, ChallengeKind, detect
from scrapy_ucaptcha.rules import find_challenge
from scrapy_ucaptcha.templates import Template
from scrapy_ucaptcha.testing.hostile import SITEKEY as KEY
from scrapy_ucaptcha.testing.hostile import hostile_pages

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: XPath evaluations one page may cost: the built-in detectors make a fixed number of queries
#: (a few per detector), whatever the page holds.
MAX_QUERIES = 60
PAGES = Path(__file__).parent / "fixtures" / "pages"
REAL = Path(__file__).parent / "fixtures" / "real"


def response(body: bytes | str, status: int = 200) -> HtmlResponse:
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return HtmlResponse(url="https://site.example/p", body=data, status=status, encoding="utf-8")


def examine(resp: TextResponse) -> tuple[Challenge | None, Page]:
    """What :func:`detect` does, with the page kept to read its work counters."""
    page = Page(resp)
    for detector in DEFAULT_DETECTORS:
        found = detector.detect_page(page)
        if found is not None:
            return found, page
    return None, page


def assert_bounded(page: Page) -> None:
    assert page.work["parsed_chars"] <= MAX_BODY_BYTES
    assert page.work["queries"] <= MAX_QUERIES
    assert len(page.body) <= MAX_BODY_BYTES


@pytest.fixture
def no_detector_failures(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="scrapy_ucaptcha.detection")
    yield
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert failures == []


def widget(extra: str = "") -> str:
    return (
        f'<form action="/v" method="post"><div class="g-recaptcha" data-sitekey="{KEY}"{extra}>'
        "</div></form>"
    )


#: Pages built to hit the slow paths of a parser or a regular expression, at the size cap.
HOSTILE = hostile_pages(MAX_BODY_BYTES)


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.usefixtures("no_detector_failures")
def test_hostile_pages_cost_a_bounded_amount_of_work(name: str) -> None:
    resp = response(HOSTILE[name])
    _, page = examine(resp)
    assert_bounded(page)
    detect(resp)  # and through the public entry point, which logs (and fails the test) on errors


@pytest.mark.usefixtures("no_detector_failures")
def test_control_characters_do_not_hide_a_widget() -> None:
    """lxml refuses NUL and other C0 controls in strings: they become spaces before parsing, so
    the widget on such a page is still found (it used to be missed with a ValueError)."""
    body = "<html>\x00<body>\x01" + widget(' data-callback="on\x00Done"') + "\x0b</body></html>"
    found = detect(response(body))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V2, KEY)
    target = f"<script>grecaptcha.render('a\x01b', {{sitekey: '{KEY}', size: 'invisible'}})"
    target += "</script><form id='f'><input id='a\x01b' type=submit></form>"
    found = detect(response(target))
    assert found is not None
    assert found.kind == ChallengeKind.RECAPTCHA_V2_INVISIBLE
    assert found.form is not None
    assert found.form.xpath == '//form[@id="f"]'


def test_only_the_first_bytes_of_a_huge_body_are_read() -> None:
    """A widget beyond :data:`MAX_BODY_BYTES` is not looked at; one before it is found."""
    filler = "<p>" + "x" * MAX_BODY_BYTES + "</p>"
    found, page = examine(response("<html><body>" + filler + widget()))
    assert found is None
    assert page.work["parsed_chars"] == 0  # no marker in the part read: nothing parsed
    found, page = examine(response("<html><body>" + widget() + filler))
    assert found is not None
    assert found.sitekey == KEY
    assert page.work["parsed_chars"] <= MAX_BODY_BYTES


def test_lists_read_from_a_page_are_capped() -> None:
    srcs = "".join(f'<iframe src="https://x.example/{i}"></iframe>' for i in range(MAX_ITEMS * 2))
    page = Page(response(srcs + widget()))
    assert len(page.iframe_srcs) == MAX_ITEMS


# --- hypothesis -----------------------------------------------------------------------------------


def _seed_pages(folder: Path, pattern: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted(folder.glob(pattern))] if folder.is_dir() else []


#: Challenge pages (kept small) and ordinary pages, some loading captcha scripts for forms a
#: crawl does not submit. Ordinary pages come from the real-page corpus when it is there.
CHALLENGE_SEEDS = [b for b in _seed_pages(PAGES, "*.html") if len(b) < 60_000]
ORDINARY_SEEDS = [
    b for b in _seed_pages(REAL / "ordinary", "*.html") if len(b) < 120_000
] or _seed_pages(PAGES, "neg_*.html") + _seed_pages(PAGES, "plain_article.html")

NOISE = st.sampled_from(
    [
        "\x00",
        "\x01\x02\x03",
        "\x0b\x0c",
        "\x1b[0m",
        "\ufffe",
        "\u2028",
        "\ud800",  # a lone surrogate, as a broken encoder writes it
        "&#0;",
        "<!-- captcha -->",
        f'<!-- <div class="h-captcha" data-sitekey="{KEY[:8]}-0000-0000-0000-000000000000">'
        "</div> -->",
        '<!-- <script src="https://www.google.com/recaptcha/api.js?render=x"></script> -->',
        "<div>" * 300,
        "</div>" * 50,
        "<![CDATA[",
        '<button data-call(="1" {window.gokuprops="2">',  # names lxml refuses to hand back
        "<svg><style>",
        '<p title="' + "x" * 5000 + '">',
        "\ufeff",
        "é" * 10,
    ]
)


#: What the challenge pages also get: markup that looks like a widget, broken in ways that made
#: lxml raise (attribute names it refuses, "Invalid tag name").
HOSTILE_NOISE = NOISE | st.sampled_from(
    [
        '<button class="g-recaptcha" data-sitekey="x" data-call(="1" {window.gokuprops="2">',
        "<div class='h-captcha' data-sitekey=\x00>",
        "grecaptcha.render(",
        "window.gokuProps = {",
    ]
)


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], anywhere: bool) -> bytes:
    """A seed page with noise inserted. With ``anywhere`` False the noise goes only where a tag
    starts, so it cannot break the page's own markup (a mutation that cuts a ``<textarea>``
    out of a contact form really does leave a form that asks only for the CAPTCHA)."""
    body = draw(st.sampled_from(seeds))
    text = body.decode("utf-8", "replace")
    for _ in range(draw(st.integers(1, 8))):
        noise = draw(HOSTILE_NOISE if anywhere else NOISE)
        if anywhere:
            at = draw(st.integers(0, len(text)))
        else:
            starts = [i for i in range(0, len(text), max(1, len(text) // 64)) if text[i] == "<"]
            at = draw(st.sampled_from(starts)) if starts else 0
        text = text[:at] + noise + text[at:]
    if draw(st.booleans()):
        text = text[: draw(st.integers(0, len(text)))] if anywhere else text
    return text.encode("utf-8", "surrogatepass")


DEFAULT = Template.parse("*", {})
HYPOTHESIS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@HYPOTHESIS
@given(body=mutated(CHALLENGE_SEEDS, anywhere=True))
def test_mutated_challenge_pages_never_raise_and_stay_bounded(body: bytes) -> None:
    for status in (200, 403):
        resp = response(body, status)
        _, page = examine(resp)  # an exception here fails the test
        assert_bounded(page)


@HYPOTHESIS
@given(body=mutated(ORDINARY_SEEDS, anywhere=False))
def test_mutated_ordinary_pages_never_become_tasks(body: bytes) -> None:
    resp = response(body)
    _, page = examine(resp)
    assert_bounded(page)
    finding = find_challenge(resp, DEFAULT, DEFAULT_DETECTORS)
    assert finding.challenge is None or not finding.challenge.solvable


@HYPOTHESIS
@given(body=st.binary(max_size=4000) | st.text(max_size=4000).map(str.encode))
def test_arbitrary_bytes_never_raise(body: bytes) -> None:
    for cls in (HtmlResponse, TextResponse):
        resp = cls(url="https://site.example/", body=body, encoding="utf-8")
        _, page = examine(resp)
        assert_bounded(page)
