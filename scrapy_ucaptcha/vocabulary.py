"""The closed sets of names scrapy-ucaptcha reads and writes, as ``Literal`` types.

Each set is one ``Literal`` alias and, where it is read from settings, templates or meta, a tuple
of its values (``get_args`` of the alias, so the two cannot drift apart). The values are plain
strings: what a template or a request's meta holds stays plain data that survives pickling and
``request_to_dict``.

The API's error codes and the package's own failure codes are in :mod:`scrapy_ucaptcha.errors`.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "CAPTCHA_KINDS",
    "FAMILIES",
    "INJECT_MODES",
    "SCOPES",
    "SELECTION_MODES",
    "WALL_KINDS",
    "CaptchaKind",
    "ChallengeKindName",
    "Family",
    "InjectMode",
    "PlanMode",
    "Scope",
    "SelectionMode",
    "TaskKind",
    "WallKind",
]

#: A template's ``inject`` mode: how the token goes back to the site.
InjectMode = Literal["auto", "form", "header", "cookie", "query", "json", "callable"]
INJECT_MODES: Final[tuple[InjectMode, ...]] = get_args(InjectMode)

#: How a prepared re-issue carries its token (:class:`~scrapy_ucaptcha.inject.InjectPlan`):
#: ``page_form`` submits the challenge page's form, ``own_form`` writes a field of the request's
#: own form body (a presolved request); the others are the inject modes of the same names.
PlanMode = Literal["page_form", "own_form", "header", "cookie", "query", "json", "callable"]

#: A template's ``scope``: one solve per request, or one per (template, host) group.
Scope = Literal["request", "domain"]
SCOPES: Final[tuple[Scope, ...]] = get_args(Scope)

#: ``selectionMode`` values uCaptcha's routing knows (``UCAPTCHA_SELECTION_MODE``, templates).
SelectionMode = Literal["autoCheapest", "autoFastest", "autoMostReliable", "priority"]
SELECTION_MODES: Final[tuple[SelectionMode, ...]] = get_args(SelectionMode)

#: The challenges a task can solve, as the built-in detectors name them (``Challenge.kind``).
CaptchaKind = Literal[
    "recaptcha_v2",
    "recaptcha_v2_invisible",
    "recaptcha_v3",
    "recaptcha_enterprise",
    "hcaptcha",
    "turnstile",
    "image",
    "funcaptcha",  # Arkose Labs
    "geetest_v3",
    "geetest_v4",
    "friendly_captcha",
    "mtcaptcha",
    "yandex_smartcaptcha",
    "aws_waf_captcha",  # the token goes into the aws-waf-token cookie
]
CAPTCHA_KINDS: Final[tuple[CaptchaKind, ...]] = get_args(CaptchaKind)

#: The bot walls the built-in detectors recognise, which a token task cannot pass (a cookie
#: task may pass some: :mod:`scrapy_ucaptcha.walls`).
WallKind = Literal[
    "cloudflare_challenge",
    "cloudflare_iuam",
    "datadome",
    "perimeterx",
    "aws_waf",
    "cloudflare_block",  # "Sorry, you have been blocked" (1020 and kin)
    "sucuri",  # Sucuri CloudProxy's JavaScript cookie page and firewall blocks
]
WALL_KINDS: Final[tuple[WallKind, ...]] = get_args(WallKind)

#: Every kind a built-in detector reports. A detector of one's own may name other kinds: the
#: middleware solves them with the template's task ``type``.
ChallengeKindName = CaptchaKind | WallKind

#: The kind of a task: a captcha kind, or ``custom`` for a task type the package does not know.
TaskKind = CaptchaKind | Literal["custom"]

#: Kinds grouped by the widget that issues them: the task fields, the form field of the token and
#: the report endpoint are the same within a family.
Family = Literal[
    "recaptcha",
    "hcaptcha",
    "turnstile",
    "image",
    "funcaptcha",
    "geetest",
    "friendly_captcha",
    "mtcaptcha",
    "yandex_smartcaptcha",
    "aws_waf",
    "custom",
]
FAMILIES: Final[tuple[Family, ...]] = get_args(Family)
