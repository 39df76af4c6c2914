"""The task planner: a challenge (or a presolved request) and its template → what to solve and
how the token goes back.

Pure: no I/O, no engine, no clock. :func:`plan_task` takes the request, the challenge page (when
there is one) and the template, and returns a :class:`TaskPlan` (the createTask ``task``, the
:class:`~scrapy_ucaptcha.inject.InjectPlan`, the captcha image to fetch) or raises
:class:`PlanError` before any task is paid for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha import inject, walls

if TYPE_CHECKING:
    from scrapy import Request
    from scrapy.http import Response

    from scrapy_ucaptcha.detection import Challenge
    from scrapy_ucaptcha.templates import Template

__all__ = [
    "DEFAULT_TOKEN_FIELDS",
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
            kind = kind_for_task_type(task_type) if isinstance(task_type, str) else "custom"
            if challenge is not None:
                kind = challenge.kind
            field_name = DEFAULT_TOKEN_FIELDS[family_of(kind)]
            plan = inject.prepare_presolve(template.inject, field_name, request)
            sitekey, params = template.task.get("websiteKey"), {}
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
    return TaskPlan(
        task=task,
        inject=plan,
        kind=kind,
        image_url=challenge.image_url if challenge is not None else None,
    )


#: Which task field each extracted challenge parameter fills, per kind.
_PARAM_FIELDS: Mapping[str, Mapping[str, str]] = MappingProxyType(
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
    }
)

#: The form field a presolved token goes into, per kind family.
DEFAULT_TOKEN_FIELDS: Mapping[str, str] = MappingProxyType(
    {
        "recaptcha": "g-recaptcha-response",
        "hcaptcha": "h-captcha-response",
        "turnstile": "cf-turnstile-response",
        "image": "captcha",
        "custom": "captcha-response",
    }
)


def family_of(kind: str) -> str:
    """``recaptcha``, ``hcaptcha``, ``turnstile``, ``image`` or ``custom``."""
    for family in ("recaptcha", "hcaptcha", "turnstile", "image"):
        if kind.startswith(family):
            return family
    return "custom"


def kind_for_task_type(task_type: str) -> str:
    """Guess the challenge kind of a createTask type name (for rule-only challenges and stats)."""
    name = task_type.lower()
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
    if sitekey:
        task.setdefault("websiteKey", sitekey)
    family = family_of(kind)
    for param, task_field in _PARAM_FIELDS.get(family, {}).items():
        value = params.get(param)
        if value not in (None, "", {}):
            task.setdefault(task_field, value)
    if kind == "recaptcha_v2_invisible" or params.get("invisible"):
        task.setdefault("isInvisible", True)
    if family == "recaptcha" and params.get("enterprise") and "Enterprise" not in task["type"]:
        task.setdefault("isEnterprise", True)
    return task
