"""Whether a response is a challenge worth solving, for the template of its URL.

Without ``detect`` rules the built-in detectors decide, with one safety rule: a widget (even one
whose site key is not found) counts only on a wall — a page served with 403, 429 or 503, or a
form that asks for nothing but the CAPTCHA. A widget inside a form that asks the user for more
(contact, login, search, newsletter) is not in the crawl's way; solving it would submit that
form with its default values and pay for it. With ``detect`` rules the template decides.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from scrapy.http import TextResponse

from scrapy_ucaptcha._detectors._core import Page
from scrapy_ucaptcha.detection import Challenge, ChallengeKind, detect, detect_image
from scrapy_ucaptcha.templates import kind_for_task_type

if TYPE_CHECKING:
    from scrapy.http import Response

    from scrapy_ucaptcha.detection import Detector
    from scrapy_ucaptcha.templates import DetectRules, Template

__all__ = ["WALL_STATUSES", "Finding", "find_challenge"]

#: Statuses with which sites serve challenge walls.
WALL_STATUSES = frozenset({403, 429, 503})
#: Kinds that are interstitials by nature (no form: the site serves them instead of the page).
_WALL_KINDS = frozenset({ChallengeKind.AWS_WAF_CAPTCHA})


@dataclass(frozen=True)
class Finding:
    """The verdict on one response."""

    challenge: Challenge | None = None
    widget_ignored: bool = False  # a widget was there, in a form that asks for more


def find_challenge(
    response: Response, template: Template, detectors: Sequence[Detector]
) -> Finding:
    """Decide whether ``response`` is a challenge on ``template``'s URLs."""
    rules = template.detect
    if rules is None:
        found = _completed(detect(response, detectors), template)
        # a token widget (with or without its site key) counts only on a wall; walls always do
        widget = found is not None and found.kind not in ChallengeKind.UNSOLVABLE
        if found is not None and widget and not _is_wall(response, found):
            return Finding(widget_ignored=True)
        return Finding(found)
    if rules.status is not None and response.status not in rules.status:
        return Finding()
    marked = rules.has_markers and _markers_match(response, rules)
    if rules.has_markers and not marked:
        return Finding()
    if rules.is_image:
        return Finding(
            detect_image(
                response,
                image_css=rules.image_css,
                image_xpath=rules.image_xpath,
                answer_field=rules.image_field,
            )
        )
    if rules.builtin:
        found = _completed(detect(response, detectors), template)
        if found is not None:
            return Finding(found)
    if marked or (not rules.builtin and rules.status is not None):
        task_type = template.task.get("type")
        sitekey = template.task.get("websiteKey")
        return Finding(
            Challenge(
                kind=kind_for_task_type(task_type, template.task.get("version"))
                if isinstance(task_type, str)
                else "custom",
                solvable=True,
                sitekey=sitekey if isinstance(sitekey, str) else None,
                detector="template",
            )
        )
    return Finding()


def _completed(found: Challenge | None, template: Template) -> Challenge | None:
    """A GeeTest v3 page whose script fetches ``gt``/``challenge`` is solvable when the template
    says where to fetch them (``challenge_url``)."""
    if (
        found is not None
        and found.kind == ChallengeKind.GEETEST_V3
        and not found.solvable
        and template.challenge_url
    ):
        return replace(found, solvable=True)
    return found


def _is_wall(response: Response, challenge: Challenge) -> bool:
    """Served with a wall status, or a form asking for nothing but the CAPTCHA (an image
    captcha's answer field counts as the CAPTCHA)."""
    if response.status in WALL_STATUSES or challenge.kind in _WALL_KINDS:
        return True
    form = challenge.form
    if form is None or not isinstance(response, TextResponse):
        return False
    if form.asks_only_captcha is not None:  # the built-in detectors judge the form they found
        return form.asks_only_captcha
    try:  # a custom detector's form
        page = Page(response, frozenset())
        found = page.xpath(form.xpath)
        return bool(found) and page.asks_only_captcha(found[0], form.token_field)
    except ValueError:
        return False


def _markers_match(response: Response, rules: DetectRules) -> bool:
    if not isinstance(response, TextResponse):
        return False
    try:
        if rules.css and response.css(rules.css):
            return True
        if rules.xpath and response.xpath(rules.xpath):
            return True
    except ValueError:
        return False
    pattern: re.Pattern[str] | None = rules.regex
    return bool(pattern is not None and pattern.search(response.text))
