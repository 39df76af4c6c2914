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
- ``funcaptcha`` (Arkose Labs; ``sitekey`` is the public key): ``api_subdomain``, ``data_blob``,
  ``callback``.
- ``geetest_v3`` (``sitekey`` is ``gt``): ``version`` (3), ``challenge``, ``api_server``;
  ``geetest_v4`` (``sitekey`` is the captcha id): ``version`` (4), ``risk_type``.
- ``friendly_captcha``: ``callback``. ``mtcaptcha``: ``action``. ``yandex_smartcaptcha``:
  ``invisible`` (True), ``callback``.
- ``aws_waf_captcha`` (``sitekey`` is gokuProps' key): ``iv``, ``context``, ``captcha_script``,
  ``challenge_script``.
- Unsolvable walls: ``cloudflare_challenge``, ``cloudflare_iuam``, ``datadome`` (``banned``),
  ``perimeterx``, ``aws_waf`` (the challenge interstitial: ``waf_action``, ``iv``, ``context``;
  ``sitekey`` is the key), ``cloudflare_block`` (``error_code``, ``ray_id``), ``sucuri``
  (``blocked``).

A token widget whose site key cannot be found is reported with ``solvable=False``.
"""

from __future__ import annotations

import functools
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
from ._detectors.aws_captcha import AwsWafCaptchaDetector
from ._detectors.blocks import CloudflareBlockDetector, SucuriDetector
from ._detectors.extra_widgets import (
    FriendlyCaptchaDetector,
    FunCaptchaDetector,
    MTCaptchaDetector,
    YandexSmartCaptchaDetector,
)
from ._detectors.geetest import GeeTestDetector
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
    "AwsWafCaptchaDetector",
    "AwsWafDetector",
    "BaseDetector",
    "Challenge",
    "ChallengeKind",
    "CloudflareBlockDetector",
    "CloudflareChallengeDetector",
    "DataDomeDetector",
    "Detector",
    "FormLocator",
    "FriendlyCaptchaDetector",
    "FunCaptchaDetector",
    "GeeTestDetector",
    "HCaptchaDetector",
    "MTCaptchaDetector",
    "PerimeterXDetector",
    "RecaptchaDetector",
    "SucuriDetector",
    "TurnstileDetector",
    "YandexSmartCaptchaDetector",
    "detect",
    "detect_image",
]

#: The built-in detector classes, in the order :func:`detect` tries them: walls first (a wall
#: may embed a widget it does not let us use), then the token widgets. Cloudflare's detector
#: steps aside when the page has a solvable widget (Turnstile, or the old reCAPTCHA page).
BUILTIN_DETECTORS: Final[tuple[type[BaseDetector], ...]] = (
    DataDomeDetector,
    PerimeterXDetector,
    AwsWafCaptchaDetector,  # before AwsWafDetector: it takes the CAPTCHA page, not the challenge
    AwsWafDetector,
    CloudflareBlockDetector,
    SucuriDetector,
    CloudflareChallengeDetector,
    RecaptchaDetector,
    HCaptchaDetector,
    TurnstileDetector,
    FunCaptchaDetector,
    GeeTestDetector,
    FriendlyCaptchaDetector,
    MTCaptchaDetector,
    YandexSmartCaptchaDetector,
)

#: Instances of :data:`BUILTIN_DETECTORS`, the default of :func:`detect`.
DEFAULT_DETECTORS: Final[tuple[Detector, ...]] = tuple(cls() for cls in BUILTIN_DETECTORS)


def _gate(detectors: Sequence[Detector]) -> tuple[frozenset[bytes], frozenset[int]] | None:
    """Every marker and status any of ``detectors`` looks at, when each is a built-in-style
    detector that needs one of its own (else None: some detector looks at every page)."""
    if not isinstance(detectors, tuple):
        return None
    try:
        return _tuple_gate(detectors)
    except TypeError:  # a detector that cannot be hashed
        return None


@functools.lru_cache(maxsize=32)
def _tuple_gate(detectors: tuple[Detector, ...]) -> tuple[frozenset[bytes], frozenset[int]] | None:
    triggers: set[bytes] = set()
    statuses: set[int] = set()
    for detector in detectors:
        if not isinstance(detector, BaseDetector) or not (detector.triggers or detector.statuses):
            return None
        triggers |= detector.triggers
        statuses |= detector.statuses
    return frozenset(triggers), frozenset(statuses)


def detect(
    response: Response, detectors: Sequence[Detector] = DEFAULT_DETECTORS
) -> Challenge | None:
    """The first challenge any of ``detectors`` finds on ``response``, or None.

    Never raises: a detector that fails is logged at DEBUG level and skipped.
    """
    if not isinstance(response, TextResponse):
        return None
    page: Page | None = None
    gate = _gate(detectors)
    if gate is not None:  # most pages have no marker of any detector: one check, no loop
        page = Page(response)
        triggers, statuses = gate
        if triggers.isdisjoint(page.hits) and response.status not in statuses:
            return None
    for detector in detectors:
        try:
            if isinstance(detector, BaseDetector):
                if page is None:  # one pre-scan and one parse, shared by the built-in detectors
                    page = Page(response)
                triggers, statuses = detector.triggers, detector.statuses
                if (
                    (triggers or statuses)
                    and triggers.isdisjoint(page.hits)
                    and response.status not in statuses
                    and detector.needs_markers
                ):
                    continue  # none of its markers: no call at all (most pages, most detectors)
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
