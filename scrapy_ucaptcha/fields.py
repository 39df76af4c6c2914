"""Token fields: where a token goes in a form, and where it is in a task's solution.

The one table of these names: the detectors read the widgets' fields with it, the planner picks
the field of a presolved token from it, :mod:`~scrapy_ucaptcha.inject` writes multi-value
solutions with it, and the client finds the token in a solution with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from scrapy_ucaptcha.vocabulary import CaptchaKind, Family

__all__ = [
    "FORM_FIELDS",
    "SOLUTION_FIELDS",
    "SOLUTION_TOKEN_KEYS",
    "WIDGET_FIELDS",
    "form_field",
    "solution_fields",
]

#: The form fields that carry a family's token, per kind family: the one a token goes into when
#: nothing else says first, then the other names the widget gives its field. ``image`` is the
#: usual answer field of an image captcha, ``aws_waf`` the cookie of an AWS WAF captcha,
#: ``custom`` the field for a task type the package does not know.
FORM_FIELDS: Final[Mapping[Family, tuple[str, ...]]] = MappingProxyType(
    {
        "recaptcha": ("g-recaptcha-response",),
        "hcaptcha": ("h-captcha-response",),
        "turnstile": ("cf-turnstile-response",),
        "funcaptcha": ("fc-token", "verification-token"),  # Arkose Labs
        "friendly_captcha": ("frc-captcha-solution", "frc-captcha-response"),  # v1, v2
        "mtcaptcha": ("mtcaptcha-verifiedtoken",),
        "yandex_smartcaptcha": ("smart-token",),
        "geetest": ("geetest_validate",),  # the one value of SOLUTION_FIELDS' v3 fields
        "image": ("captcha",),
        "aws_waf": ("aws-waf-token",),
        "custom": ("captcha-response",),
    }
)

#: Kinds whose solution is several values: (form field or JSON key, solution key) pairs, in the
#: order the widget writes them (GeeTest's own names).
SOLUTION_FIELDS: Final[Mapping[CaptchaKind, tuple[tuple[str, str], ...]]] = MappingProxyType(
    {
        "geetest_v3": (
            ("geetest_challenge", "challenge"),
            ("geetest_validate", "validate"),
            ("geetest_seccode", "seccode"),
        ),
        "geetest_v4": (
            ("lot_number", "lot_number"),
            ("captcha_output", "captcha_output"),
            ("pass_token", "pass_token"),
            ("gen_time", "gen_time"),
            ("captcha_id", "captcha_id"),
        ),
    }
)

#: Families whose widget adds its own fields to a form (the others' names are the site's).
_WIDGET_FAMILIES: Final[frozenset[Family]] = frozenset(FORM_FIELDS) - {"image", "aws_waf", "custom"}

#: Every field a widget adds to its form: a form with only these (and hidden inputs) asks for
#: nothing but the CAPTCHA.
WIDGET_FIELDS: Final[frozenset[str]] = frozenset(
    {name for family in _WIDGET_FAMILIES for name in FORM_FIELDS[family]}
    | {name for pairs in SOLUTION_FIELDS.values() for name, _ in pairs}
)

#: The keys of a task's solution that hold its token (or answer), in the order they are looked
#: for; a cookie-type solution has its token in ``cookies`` instead.
SOLUTION_TOKEN_KEYS: Final[tuple[str, ...]] = (
    "gRecaptchaResponse",
    "token",
    "text",
    "cookie",
    "captcha_output",
    "code",
    "validate",  # GeeTest v3
)


def form_field(family: Family) -> str:
    """The form field a family's token goes into when nothing else says."""
    return FORM_FIELDS[family][0]


def solution_fields(kind: str) -> tuple[tuple[str, str], ...]:
    """A kind's (field, solution key) pairs from :data:`SOLUTION_FIELDS`; none for the kinds whose
    solution is one token."""
    for name, pairs in SOLUTION_FIELDS.items():
        if name == kind:
            return pairs
    return ()
