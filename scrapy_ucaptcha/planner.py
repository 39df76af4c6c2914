"""The task planner: a challenge (or a presolved request) and its template → what to solve and
how the token goes back.

Pure: no I/O, no engine, no clock. :func:`plan_task` takes the request, the challenge page (when
there is one) and the template, and returns a :class:`TaskPlan` (the createTask ``task``, the
:class:`~scrapy_ucaptcha.inject.InjectPlan`, the captcha image to fetch) or raises
:class:`PlanError` before any task is paid for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from scrapy_ucaptcha import inject, walls
from scrapy_ucaptcha.fields import form_field
from scrapy_ucaptcha.vocabulary import FAMILIES, Family, TaskKind

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

    from scrapy_ucaptcha.detection import Challenge
    from scrapy_ucaptcha.templates import Template

__all__ = [
    "KEY_FIELDS",
    "PlanError",
    "TaskPlan",
    "build_task",
    "family_of",
    "kind_for_task_type",
    "plan_task",
]


class PlanError(ValueError):
    """The template cannot give a task for this request, or the token could not go back."""


@dataclass(frozen=True)
class TaskPlan:
    """What solving and re-issuing one request need (not the page)."""

    task: dict[str, Any] = field(repr=False)  # may carry proxy credentials
    inject: inject.InjectPlan
    kind: str
    image_url: str | None = None
    #: A cookie wall: the solution is this wall's cookie.
    wall: walls.CookieWall | None = None
    #: GeeTest v3: the absolute URL a fresh ``gt``/``challenge`` is fetched from before each task.
    challenge_url: str | None = None


def plan_task(
    template: Template,
    *,
    request: Request,
    response: Response | None,
    challenge: Challenge | None,
    presolve: bool,
    task_types: Mapping[str, str],
) -> TaskPlan:
    """Plan the task for ``challenge`` found in ``response`` (or, when ``presolve``, for sending
    ``request`` with a token from the start)."""
    wall = walls.wall_for(challenge) if challenge is not None and not presolve else None
    if wall is not None and challenge is not None and challenge.solvable:
        page_url = response.url if response is not None else request.url
        return TaskPlan(
            task=walls.wall_task(wall, challenge, page_url, template),
            inject=inject.InjectPlan(mode="cookie", name=wall.cookie),
            kind=challenge.kind,
            wall=wall,
        )
    try:
        if challenge is None or presolve:
            task_type = template.task.get("type")
            version = template.task.get("version")
            kind: str = (
                kind_for_task_type(task_type, version) if isinstance(task_type, str) else "custom"
            )
            if challenge is not None:
                kind = challenge.kind
            family = family_of(kind)
            field_name = form_field(family)
            plan = inject.prepare_presolve(template.inject, field_name, request, kind=kind)
            sitekey, params = template.task.get(KEY_FIELDS.get(family, "websiteKey")), {}
        else:
            kind = challenge.kind
            plan = inject.prepare(template.inject, challenge, response)
            sitekey, params = challenge.sitekey, dict(challenge.params)
        task = build_task(
            template,
            kind=kind,
            page_url=response.url if response is not None else request.url,
            sitekey=sitekey if isinstance(sitekey, str) else None,
            params=params,
            task_types=task_types,
        )
    except (inject.InjectError, ValueError) as exc:
        raise PlanError(str(exc)) from None
    challenge_url = None
    if kind == "geetest_v3" and template.challenge_url:
        page_url = response.url if response is not None else request.url
        challenge_url = urljoin(page_url, template.challenge_url)
    return TaskPlan(
        task=task,
        inject=plan,
        kind=kind,
        image_url=challenge.image_url if challenge is not None else None,
        challenge_url=challenge_url,
    )


#: Which task field each extracted challenge parameter fills, per kind.
_PARAM_FIELDS: Mapping[Family, Mapping[str, str]] = MappingProxyType(
    {
        "recaptcha": MappingProxyType(
            {
                "data_s": "recaptchaDataSValue",
                "api_domain": "apiDomain",
                "action": "pageAction",
                "enterprise_payload": "enterprisePayload",
            }
        ),
        "hcaptcha": MappingProxyType({"rqdata": "rqdata"}),
        "turnstile": MappingProxyType({"action": "action", "cdata": "cData"}),
        "funcaptcha": MappingProxyType({"api_subdomain": "funcaptchaApiJSSubdomain"}),
        "geetest": MappingProxyType(
            {
                "version": "version",
                "challenge": "challenge",
                "api_server": "geetestApiServerSubdomain",
            }
        ),
        "aws_waf": MappingProxyType(
            {
                "iv": "iv",
                "context": "context",
                "captcha_script": "captchaScript",
                "challenge_script": "challengeScript",
            }
        ),
    }
)

#: The task field that carries the site key, where it is not ``websiteKey``.
KEY_FIELDS: Mapping[Family, str] = MappingProxyType(
    {"funcaptcha": "websitePublicKey", "geetest": "gt"}
)


def family_of(kind: str) -> Family:
    """The family of a kind (``recaptcha_v3`` → ``recaptcha``); ``custom`` for a kind of no
    family the package knows."""
    for family in FAMILIES:
        if family != "custom" and kind.startswith(family):
            return family
    return "custom"


def kind_for_task_type(task_type: str, version: object = None) -> TaskKind:
    """Guess the challenge kind of a createTask type name (for rule-only challenges and stats);
    ``version`` is the task's ``version`` field (GeeTest 3 or 4)."""
    name = task_type.lower()
    if "geetest" in name:
        return "geetest_v4" if str(version) == "4" else "geetest_v3"
    if "funcaptcha" in name or "arkose" in name:
        return "funcaptcha"
    if "friendly" in name:
        return "friendly_captcha"
    if "mtcaptcha" in name:
        return "mtcaptcha"
    if "yandex" in name:
        return "yandex_smartcaptcha"
    if "amazon" in name or "awswaf" in name:
        return "aws_waf_captcha"
    if "recaptchav3" in name:
        return "recaptcha_v3"
    if "enterprise" in name and "recaptcha" in name:
        return "recaptcha_enterprise"
    if "recaptcha" in name or "nocaptcha" in name:
        return "recaptcha_v2"
    if "hcaptcha" in name or "hardcaptcha" in name:
        return "hcaptcha"
    if "turnstile" in name:
        return "turnstile"
    if "image" in name:
        return "image"
    return "custom"


def build_task(
    template: Template,
    *,
    kind: str,
    page_url: str,
    sitekey: str | None,
    params: Mapping[str, Any],
    task_types: Mapping[str, str],
) -> dict[str, Any]:
    """The createTask ``task`` for a challenge: the template's fields, the page's for the rest."""
    task: dict[str, Any] = dict(template.task)
    if "type" not in task and kind == "recaptcha_enterprise" and params.get("version") == "v3":
        task["type"] = task_types["recaptcha_v3"]  # a score-based Enterprise key
        task.setdefault("isEnterprise", True)
    if "type" not in task:
        if kind not in task_types:
            raise ValueError(
                f"no task type for a {kind!r} challenge: give the template a task 'type'"
            )
        task["type"] = task_types[kind]
    if kind == "image":
        return task
    task.setdefault("websiteURL", page_url)
    family = family_of(kind)
    if sitekey:
        task.setdefault(KEY_FIELDS.get(family, "websiteKey"), sitekey)
    for param, task_field in _PARAM_FIELDS.get(family, {}).items():
        value = params.get(param)
        if value not in (None, "", {}):
            task.setdefault(task_field, value)
    if family == "funcaptcha" and params.get("data_blob"):
        task.setdefault("data", json.dumps({"blob": params["data_blob"]}))
    if kind == "geetest_v4":
        task.setdefault("version", 4)
        init: dict[str, Any] = {"captcha_id": task.get("gt", sitekey)}
        if params.get("risk_type"):
            init["riskType"] = params["risk_type"]
        task.setdefault("initParameters", init)
    if kind == "geetest_v3" and not task.get("challenge") and not template.challenge_url:
        raise ValueError(
            "this GeeTest v3 page has no 'challenge' (its script fetches one): give the "
            "template a 'challenge_url' that answers a fresh one"
        )
    if kind == "recaptcha_v2_invisible" or params.get("invisible"):
        task.setdefault("isInvisible", True)
    if family == "recaptcha" and params.get("enterprise") and "Enterprise" not in task["type"]:
        task.setdefault("isEnterprise", True)
    return task
