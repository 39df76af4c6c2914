"""Template-driven image captchas: an ``<img>`` and the form field its answer goes into."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from parsel import Selector
from parsel.csstranslator import css2xpath
from scrapy.http import Response, TextResponse

from ._core import Challenge, ChallengeKind, Page, attr, logger

#: Used when the template names no selector: an image whose src/id/alt/class/name says captcha.
_DEFAULT_IMAGE_XPATH: Final = (
    "//img[contains(translate(concat(@src, ' ', @id, ' ', @alt, ' ', @class, ' ', @name),"
    " 'CAPTH', 'capth'), 'captcha')] | //input[@type='image'][contains(@src, 'captcha')]"
)
_TEXT_INPUTS: Final = (
    ".//input[not(@type) or normalize-space(@type) = '' or contains(' text tel number search ',"
    " concat(' ', translate(normalize-space(@type), 'ABCEHLMNRSTUX', 'abcehlmnrstux'), ' '))]"
)
_ANSWER_NAME_RE: Final = re.compile(r"captcha|code|answer", re.I)
_PROBE: Final = Selector(text="<html></html>")


@lru_cache(maxsize=64)
def _image_xpaths(image_css: str | None, image_xpath: str | None) -> tuple[str, ...]:
    """XPaths for the template's selectors (CSS first), checked once: a bad one raises
    ValueError."""
    xpaths: list[str] = []
    for selector, is_css in ((image_css, True), (image_xpath, False)):
        if selector is None:
            continue
        try:
            xpath = css2xpath(selector) if is_css else selector
            _PROBE.xpath(xpath)
        except Exception as exc:
            raise ValueError(f"invalid captcha image selector {selector!r}: {exc}") from exc
        xpaths.append(xpath)
    return tuple(xpaths) or (_DEFAULT_IMAGE_XPATH,)


def _visible(el: Selector) -> bool:
    style = re.sub(r"\s+", "", attr(el, "style")).lower()
    return (
        not el.xpath("@hidden") and "display:none" not in style and "visibility:hidden" not in style
    )


def _text_inputs(form: Selector) -> list[Selector]:
    return [el for el in form.xpath(_TEXT_INPUTS) if attr(el, "name").strip()]


def _named_answer_field(form: Selector) -> str | None:
    """The text input whose name or id mentions captcha/code/answer."""
    for el in _text_inputs(form):
        if _ANSWER_NAME_RE.search(attr(el, "name") + " " + attr(el, "id")):
            return attr(el, "name").strip()
    return None


def _answer_field(form: Selector) -> str | None:
    """The text input whose name/id mentions captcha/code/answer, else the first visible one."""
    visible = [el for el in _text_inputs(form) if _visible(el)]
    return _named_answer_field(form) or (attr(visible[0], "name").strip() if visible else None)


def detect_image(
    response: Response,
    *,
    image_css: str | None = None,
    image_xpath: str | None = None,
    answer_field: str | None = None,
) -> Challenge | None:
    """An image captcha on ``response``, located by a template's selector.

    With both selectors, the CSS one is tried first. Without any, an ``<img>`` whose src, id,
    alt, class or name mentions "captcha" is used. The answer field defaults to the text input
    of the image's form whose name or id mentions captcha/code/answer, else its first visible
    text input. Raises ValueError for an invalid selector (a configuration error); problems
    with the page only ever yield None.
    """
    xpaths = _image_xpaths(image_css, image_xpath)
    if not isinstance(response, TextResponse) or not response.body.strip():
        return None
    try:
        return _detect_image(Page(response, frozenset()), xpaths, answer_field)
    except Exception:
        logger.debug("image captcha detection failed on %s", response, exc_info=True)
        return None


def _detect_image(
    page: Page, xpaths: tuple[str, ...], answer_field: str | None
) -> Challenge | None:
    image: Selector | None = None
    src: str | None = None
    nodes = (node for xpath in xpaths for node in page.sel.xpath(xpath))
    for node in nodes:
        if isinstance(node.root, str):  # the selector picked an attribute, e.g. @src
            src = node.root.strip() or None
        else:
            tag = node.root.tag if isinstance(node.root.tag, str) else ""
            image = (
                node if tag in ("img", "input") else next(iter(node.xpath(".//img[@src]")), None)
            )
            if image is not None:
                src = (attr(image, "src") or attr(image, "data-src")).strip() or None
        if src:
            break
    if not src:
        return None

    form = page.enclosing_form(image)
    if form is None and answer_field:
        form = page.form_with_field(answer_field)
    if form is None:  # the image is outside any form, or the selector picked its URL
        form = next((f for f in page.forms if _named_answer_field(f)), page.only_form())
    field = answer_field or (_answer_field(form) if form is not None else None)
    return Challenge(
        kind=ChallengeKind.IMAGE,
        solvable=True,
        form=page.locate(form, field) if field else None,
        image_url=page.response.urljoin(src),
        detector="image",
    )
