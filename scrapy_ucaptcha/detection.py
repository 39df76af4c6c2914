"""Challenge detection: find CAPTCHA widgets and bot walls in Scrapy responses.

:func:`detect` runs on every response of a crawl, so it is cheap on ordinary pages: one regex
pass over the raw body bytes (and a look at two headers) decides whether anything needs parsing.
Only a page with markers is parsed, and only the detectors whose markers matched look at it.

A detected widget is reported wherever it is: whether a reCAPTCHA on a contact page is a
challenge for a crawl is a per-domain template decision made by the middleware.

Kinds and ``params`` keys (a key is present only when the page provides it):

- ``recaptcha_v2``, ``recaptcha_v2_invisible``, ``recaptcha_v3``, ``recaptcha_enterprise``:
  ``version`` (``"v2"``/``"v3"``, always), ``action``, ``data_s`` (not Enterprise),
  ``enterprise_payload`` (``{"s": …}``, Enterprise), ``enterprise`` (True), ``invisible`` (True),
  ``api_domain`` (``google.com``/``recaptcha.net``), ``callback``.
- ``hcaptcha``: ``rqdata``, ``invisible`` (True), ``callback``.
- ``turnstile``: ``action``, ``cdata``, ``callback``.
- ``image``: from :func:`detect_image` only, with ``image_url``.
- Unsolvable walls: ``cloudflare_challenge``, ``cloudflare_iuam``, ``datadome`` (``banned``),
  ``perimeterx``, ``aws_waf`` (``waf_action``, ``iv``, ``context``; ``sitekey`` is the key).

A token widget whose site key cannot be found is reported with ``solvable=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from scrapy.http import Response, TextResponse

from ._detectors._core import (
    BaseDetector,
    Challenge,
    ChallengeKind,
    Detector,
    FormLocator,
    Page,
    logger,
)
from ._detectors.image import detect_image
from ._detectors.walls import (
    AwsWafDetector,
    CloudflareChallengeDetector,
    DataDomeDetector,
    PerimeterXDetector,
)
from ._detectors.widgets import HCaptchaDetector, RecaptchaDetector, TurnstileDetector

__all__ = [
    "BUILTIN_DETECTORS",
    "DEFAULT_DETECTORS",
    "AwsWafDetector",
    "BaseDetector",
    "Challenge",
    "ChallengeKind",
    "CloudflareChallengeDetector",
    "DataDomeDetector",
    "Detector",
    "FormLocator",
    "HCaptchaDetector",
    "PerimeterXDetector",
    "RecaptchaDetector",
    "TurnstileDetector",
    "detect",
    "detect_image",
]

#: The built-in detector classes, in the order :func:`detect` tries them: walls first (a wall
#: may embed a widget it does not let us use), then the token widgets. Cloudflare's detector
#: steps aside when the page has a solvable widget (Turnstile, or the old reCAPTCHA page).
BUILTIN_DETECTORS: Final[tuple[type[BaseDetector], ...]] = (
    DataDomeDetector,
    PerimeterXDetector,
    AwsWafDetector,
    CloudflareChallengeDetector,
    RecaptchaDetector,
    HCaptchaDetector,
    TurnstileDetector,
)

#: Instances of :data:`BUILTIN_DETECTORS`, the default of :func:`detect`.
DEFAULT_DETECTORS: Final[tuple[Detector, ...]] = tuple(cls() for cls in BUILTIN_DETECTORS)


def detect(
    response: Response, detectors: Sequence[Detector] = DEFAULT_DETECTORS
) -> Challenge | None:
    """The first challenge any of ``detectors`` finds on ``response``, or None.

    Never raises: a detector that fails is logged at DEBUG level and skipped.
    """
    if not isinstance(response, TextResponse):
        return None
    page: Page | None = None
    for detector in detectors:
        try:
            if isinstance(detector, BaseDetector):
                if page is None:  # one pre-scan and one parse, shared by the built-in detectors
                    page = Page(response)
                found = detector.detect_page(page)
            else:
                found = detector.detect(response)
        except Exception:
            name = getattr(detector, "name", type(detector).__name__)
            logger.debug("%s detector failed on %s", name, response, exc_info=True)
            continue
        if found is not None:
            return found
    return None
