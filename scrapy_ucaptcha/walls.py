"""Cookie-type walls: DataDome's slider captcha, Cloudflare's challenge page and AWS WAF's
challenge, solved through the crawl's own proxy.

No token widget is on these pages; the providers sell tasks that pass the wall from the proxy
and User-Agent the crawl uses and answer with the cookie the site then expects (``datadome``,
``cf_clearance``, ``aws-waf-token``). The cookie is bound to that proxy and User-Agent, so a wall
is solvable only when the challenged request went through a proxy (or a template pins a task
type for it), and one cookie serves every request of the same identity on that host.

A DataDome page with ``t=bv`` is a ban of the IP address, not a captcha: never solvable (rotate
the proxy instead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scrapy import Request

    from scrapy_ucaptcha.detection import Challenge
    from scrapy_ucaptcha.templates import Template
    from scrapy_ucaptcha.vocabulary import WallKind

__all__ = [
    "COOKIE_WALLS",
    "CookieWall",
    "cookie_value",
    "opted_in",
    "wall_for",
    "wall_task",
    "with_cookie",
]


@dataclass(frozen=True)
class CookieWall:
    """A wall a cookie passes: its challenge kind, the cookie, and the task types that get it."""

    kind: WallKind
    cookie: str
    #: The task type solved through the request's proxy (CapSolver / Anti-Captcha names).
    task_type: str
    #: Task types that ask for this wall, so that a template pinning one opts in without a proxy.
    task_types: frozenset[str]


#: The cookie walls, by challenge kind.
COOKIE_WALLS: Final[Mapping[str, CookieWall]] = MappingProxyType(
    {
        "datadome": CookieWall(
            "datadome",
            "datadome",
            "DatadomeSliderTask",
            frozenset({"DatadomeSliderTask", "DataDomeSliderTask"}),
        ),
        "cloudflare_challenge": CookieWall(
            "cloudflare_challenge",
            "cf_clearance",
            "AntiCloudflareTask",
            frozenset({"AntiCloudflareTask"}),
        ),
        "aws_waf": CookieWall(
            "aws_waf",
            "aws-waf-token",
            "AmazonTask",
            frozenset(
                {"AmazonTask", "AmazonTaskProxyless", "AntiAwsWafTask", "AntiAwsWafTaskProxyLess"}
            ),
        ),
    }
)


def wall_for(challenge: Challenge) -> CookieWall | None:
    """The cookie wall ``challenge`` is, when the page gives what its task needs."""
    wall = COOKIE_WALLS.get(challenge.kind)
    if wall is None:
        return None
    params = challenge.params
    if wall.kind == "datadome":
        # t=bv: the IP is banned, no captcha to solve
        if params.get("banned") or not params.get("captcha_url"):
            return None
    elif wall.kind == "aws_waf" and (
        params.get("waf_action") != "challenge"
        or not (challenge.sitekey and params.get("iv") and params.get("context"))
    ):
        return None  # the captcha variant takes a token task, not this cookie task
    return wall


def opted_in(wall: CookieWall, template: Template) -> bool:
    """Whether the template makes the wall solvable without a request proxy: its task pins a
    proxyless type of the wall (``AmazonTaskProxyless``), or carries a proxy of its own."""
    task = template.task
    if "proxy" in task or "proxyAddress" in task:
        return True
    task_type = task.get("type")
    return (
        isinstance(task_type, str)
        and task_type in wall.task_types
        and task_type.lower().endswith("proxyless")
    )


def wall_task(
    wall: CookieWall, challenge: Challenge, page_url: str, template: Template
) -> dict[str, Any]:
    """The createTask ``task``: the template's fields, the page's for the rest."""
    task: dict[str, Any] = {"type": wall.task_type, **template.task, "websiteURL": page_url}
    if "websiteURL" in template.task:
        task["websiteURL"] = template.task["websiteURL"]
    params = challenge.params
    if wall.kind == "datadome":
        task.setdefault("captchaUrl", params["captcha_url"])
    elif wall.kind == "aws_waf":
        task.setdefault("websiteKey", challenge.sitekey)
        task.setdefault("iv", params["iv"])
        task.setdefault("context", params["context"])
        if params.get("challenge_script"):
            task.setdefault("challengeScript", params["challenge_script"])
    return task


def cookie_value(wall: CookieWall, solution: Mapping[str, Any], token: str) -> str:
    """The value of ``wall.cookie`` in a solution: a ``cookies`` object, a ``cookie`` line
    (``name=value; Max-Age=…``), a field named like the cookie, or the token itself."""
    cookies = solution.get("cookies")
    if isinstance(cookies, Mapping):
        value = cookies.get(wall.cookie)
        if isinstance(value, str) and value:
            return value
    named = solution.get(wall.cookie)
    if isinstance(named, str) and named:
        return named
    for line in (solution.get("cookie"), token):
        if isinstance(line, str) and f"{wall.cookie}=" in line:
            parsed: SimpleCookie = SimpleCookie()
            try:
                parsed.load(line)
            except CookieError:
                continue
            morsel = parsed.get(wall.cookie)
            if morsel is not None and morsel.value:
                return morsel.value
    return token


def with_cookie(request: Request, name: str, value: str) -> Request:
    """``request`` carrying cookie ``name`` for the whole host (``Path=/``): it replaces the one
    the wall page set (DataDome sets its own ``datadome`` cookie on the block page), and goes
    into the request's cookie jar for the requests that follow."""
    cookies = request.cookies
    if isinstance(cookies, Mapping):
        kept: list[Any] = [{"name": k, "value": v} for k, v in cookies.items() if k != name]
    else:
        kept = [c for c in cookies if c.get("name") != name]
    kept.append({"name": name, "value": value, "path": "/"})
    return request.replace(cookies=kept)
