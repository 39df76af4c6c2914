"""Detection judged on the real-page corpus (tests/fixtures/real): public pages saved as their
repositories hold them, each with its provenance and the verdict it must get in the manifest.

The verdict is what the middleware decides with no template: ``task`` (a paid solve),
``unsolvable`` (a wall no token passes, counted and never paid), ``ignored`` (a widget on a page
that is no wall) or ``none``. Kind, site key, parameters and form are checked too.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from scrapy.http import HtmlResponse

from scrapy_ucaptcha.detection import DEFAULT_DETECTORS, ChallengeKind, detect
from scrapy_ucaptcha.rules import find_challenge
from scrapy_ucaptcha.templates import Template

REAL = Path(__file__).parent / "fixtures" / "real"
MANIFEST: dict[str, Any] = json.loads((REAL / "manifest.json").read_text(encoding="utf-8"))
PAGES: list[dict[str, Any]] = MANIFEST["pages"]
NO_TEMPLATE = Template.parse("*", {})
#: The kinds the corpus has real pages of: every built-in kind but the image captcha (found only
#: with a template's selector). A kind joins this set with its pages.
COVERED_KINDS = frozenset(
    {
        ChallengeKind.RECAPTCHA_V2,
        ChallengeKind.RECAPTCHA_V2_INVISIBLE,
        ChallengeKind.RECAPTCHA_V3,
        ChallengeKind.RECAPTCHA_ENTERPRISE,
        ChallengeKind.HCAPTCHA,
        ChallengeKind.TURNSTILE,
        ChallengeKind.CLOUDFLARE_CHALLENGE,
        ChallengeKind.CLOUDFLARE_IUAM,
        ChallengeKind.DATADOME,
        ChallengeKind.PERIMETERX,
        ChallengeKind.AWS_WAF,
        ChallengeKind.FUNCAPTCHA,
        ChallengeKind.GEETEST_V3,
        ChallengeKind.GEETEST_V4,
        ChallengeKind.FRIENDLY_CAPTCHA,
        ChallengeKind.MTCAPTCHA,
        ChallengeKind.YANDEX_SMARTCAPTCHA,
        ChallengeKind.SUCURI,
    }
)


def response(entry: dict[str, Any]) -> HtmlResponse:
    return HtmlResponse(
        url=entry["url"],
        body=(REAL / entry["file"]).read_bytes(),
        status=entry["status"],
        headers=entry.get("headers"),
    )


def judge(entry: dict[str, Any]) -> dict[str, Any]:
    """What detection makes of a page, in the manifest's terms."""
    resp = response(entry)
    finding = find_challenge(resp, NO_TEMPLATE, DEFAULT_DETECTORS)
    if finding.widget_ignored:
        verdict = "ignored"
    elif finding.challenge is None:
        verdict = "none"
    else:
        verdict = "task" if finding.challenge.solvable else "unsolvable"
    seen: dict[str, Any] = {"verdict": verdict}
    found = detect(resp)
    if found is not None:
        seen["kind"] = found.kind
        if found.sitekey:
            seen["sitekey"] = found.sitekey
        seen["params"] = dict(found.params)
        if found.form is not None:
            seen["form"] = {"xpath": found.form.xpath, "token_field": found.form.token_field}
    return seen


@pytest.mark.parametrize("entry", PAGES, ids=[p["file"] for p in PAGES])
def test_each_real_page_is_judged_as_its_manifest_says(entry: dict[str, Any]) -> None:
    assert judge(entry) == entry["expect"]


def test_the_corpus_is_what_the_manifest_describes() -> None:
    """Every page has its provenance and is byte for byte the file the manifest names."""
    files = {str(p.relative_to(REAL)) for p in REAL.rglob("*.html")}
    assert files == {p["file"] for p in PAGES}
    for entry in PAGES:
        source = entry["source"]
        assert source["repo"].count("/") == 1
        assert source["path"]
        assert len(source["commit"]) == 40
        assert hashlib.sha256((REAL / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]


def test_the_corpus_covers_every_kind_and_enough_ordinary_pages() -> None:
    ordinary = [p for p in PAGES if p["file"].startswith("ordinary/")]
    assert len(PAGES) >= 100
    assert len(ordinary) >= 40
    # ordinary pages that load a captcha for a form the crawl does not submit
    assert sum(p["expect"]["verdict"] == "ignored" for p in ordinary) >= 5
    kinds = {p["expect"].get("kind") for p in PAGES}
    assert kinds >= COVERED_KINDS, sorted(COVERED_KINDS - kinds)
    assert all(p["expect"]["verdict"] in ("none", "ignored") for p in ordinary)


def test_accuracy_on_the_corpus() -> None:
    """The figures the README reports: every page judged right, no ordinary page paid for."""
    results: Counter[tuple[str, bool]] = Counter()
    ordinary_tasks = 0
    for entry in PAGES:
        group = entry["file"].split("/")[0]
        seen = judge(entry)
        results[group, seen == entry["expect"]] += 1
        ordinary_tasks += group == "ordinary" and seen["verdict"] == "task"
    groups = Counter(entry["file"].split("/")[0] for entry in PAGES)
    assert ordinary_tasks == 0
    assert results == {(group, True): count for group, count in groups.items()}
