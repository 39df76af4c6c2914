"""Token → re-issued request: form submission, header, cookie, query parameter, JSON key, callable.

:func:`prepare` runs when a challenge is found, while the challenge page is at hand: it keeps only
what the re-issue needs (for a form: its URL, method and encoded body with a placeholder for the
token), so a parked request does not hold the page. :func:`apply` builds the request to send once
the token is ready; it keeps the original callback, errback, ``cb_kwargs``, meta and headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote_plus, urlencode

from form2request import form2request
from scrapy import Request
from scrapy.utils.misc import load_object
from typing_extensions import assert_never
from w3lib.url import add_or_replace_parameter

from scrapy_ucaptcha.fields import form_field, solution_fields
from scrapy_ucaptcha.vocabulary import PlanMode

if TYPE_CHECKING:
    from scrapy.http import Response

    from scrapy_ucaptcha.detection import Challenge
    from scrapy_ucaptcha.templates import InjectSpec

__all__ = [
    "KIND_INJECT",
    "InjectError",
    "InjectPlan",
    "apply",
    "prepare",
    "prepare_presolve",
]

_PLACEHOLDER = "UCAPTCHATOKENPLACEHOLDER7f3a"
_FORM_TYPE = b"application/x-www-form-urlencoded"

InjectFunction = Callable[..., Request]

#: Kinds whose token does not go back through a form by default: kind → (mode, name).
KIND_INJECT: Mapping[str, tuple[PlanMode, str]] = MappingProxyType(
    {"aws_waf_captcha": ("cookie", form_field("aws_waf"))}
)


class InjectError(ValueError):
    """The token cannot be sent back the way the template says (e.g. no form on the page)."""


@dataclass(frozen=True)
class InjectPlan:
    """What :func:`apply` needs, decided while the challenge page was at hand."""

    mode: PlanMode
    name: str
    format: str = "{token}"
    form_url: str | None = None
    form_method: str | None = None
    form_body: bytes | None = None
    form_content_type: bytes | None = None
    function: str | None = None
    #: Multi-field solutions: (field, solution key) pairs written instead of ``name``.
    fields: tuple[tuple[str, str], ...] = ()


def _placeholder(index: int) -> str:
    return f"{_PLACEHOLDER}x{index}x"


def _value(solution: Mapping[str, Any], key: str) -> str:
    value = solution.get(key)
    if value is None:
        raise InjectError(f"the solution has no {key!r} to send back")
    return value if isinstance(value, str) else json.dumps(value)


def prepare(spec: InjectSpec, challenge: Challenge | None, response: Response | None) -> InjectPlan:
    """Decide how the token will go back for a challenge found in ``response``."""
    mode = spec.mode
    kind = challenge.kind if challenge is not None else ""
    fields = spec.fields if spec.fields is not None else solution_fields(kind)
    if mode == "auto" and kind in KIND_INJECT and spec.fields is None:
        default_mode, default_name = KIND_INJECT[kind]
        return InjectPlan(mode=default_mode, name=spec.name or default_name, format=spec.format)
    if mode == "auto" or mode == "form":  # noqa: PLR1714 (mypy narrows a Literal by ==, not by in)
        form = challenge.form if challenge is not None else None
        if form is None or response is None:
            raise InjectError(
                "the challenge page has no form to submit the token with; set the template's "
                "'inject' (header, cookie, query, json or callable)"
            )
        field_name = spec.name or form.token_field
        values = (
            {name: _placeholder(i) for i, (name, _) in enumerate(fields)}
            if fields
            else {field_name: _PLACEHOLDER}
        )
        try:
            forms = response.xpath(form.xpath)
            if not forms:
                raise ValueError(f"no form at {form.xpath}")
            seed = form2request(forms[0], values, click=False)
        except (ValueError, TypeError, AttributeError) as exc:
            raise InjectError(f"cannot read the challenge form: {exc}") from None
        content_type = next(
            (value for name, value in seed.headers if name.lower() == "content-type"), None
        )
        return InjectPlan(
            mode="page_form",
            name=field_name,
            format=spec.format,
            form_url=seed.url,
            form_method=seed.method,
            form_body=seed.body,
            form_content_type=content_type.encode("latin-1") if content_type else None,
            fields=tuple(fields),
        )
    return InjectPlan(
        mode=mode,
        name=spec.name or "",
        format=spec.format,
        function=spec.function,
        fields=tuple(fields) if mode in ("query", "json") else (),
    )


def prepare_presolve(
    spec: InjectSpec, default_field: str, request: Request, *, kind: str = ""
) -> InjectPlan:
    """How a token solved before sending goes into ``request`` itself; checked before any task
    is paid for. ``kind`` picks the defaults of multi-field and cookie kinds."""
    fields = spec.fields if spec.fields is not None else solution_fields(kind)
    if spec.mode == "auto" and kind in KIND_INJECT and spec.fields is None:
        default_mode, default_name = KIND_INJECT[kind]
        return InjectPlan(mode=default_mode, name=spec.name or default_name, format=spec.format)
    if spec.mode in ("auto", "form"):
        content_type = request.headers.get(b"Content-Type") or b""
        if request.method != "GET" and request.body and not content_type.startswith(_FORM_TYPE):
            raise InjectError(
                "inject mode 'form' on a presolved request needs a form-encoded body "
                f"(got {content_type.decode('latin-1') or 'none'}); use 'json', 'header' or "
                "'callable'"
            )
        return InjectPlan(
            mode="own_form", name=spec.name or default_field, format=spec.format, fields=fields
        )
    if spec.mode == "json" and request.body:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise InjectError("inject mode 'json' needs a JSON object body")
    plan = prepare(spec, None, None)
    return replace(plan, fields=fields) if spec.mode in ("query", "json") else plan


def apply(plan: InjectPlan, request: Request, token: str, solution: Mapping[str, Any]) -> Request:
    """The request that carries ``token`` back, keeping ``request``'s callbacks, meta and headers.

    Scheduling details (``dont_filter``, priority, meta) are left to the caller.
    """
    value = plan.format.replace("{token}", token)
    pairs = [(name, _value(solution, key)) for name, key in plan.fields]
    if plan.mode == "page_form":
        assert plan.form_url is not None
        assert plan.form_body is not None
        url, body = plan.form_url, plan.form_body
        replacements = [(_placeholder(i), v) for i, (_, v) in enumerate(pairs)] or [
            (_PLACEHOLDER, value)
        ]
        for placeholder, text in replacements:
            encoded = quote_plus(text)
            url = url.replace(placeholder, encoded)
            body = body.replace(placeholder.encode(), encoded.encode())
        headers = request.headers.copy()
        for header in (b"Content-Type", b"Content-Length"):
            headers.pop(header, None)
        if plan.form_method == "POST" and plan.form_content_type:
            headers[b"Content-Type"] = plan.form_content_type
        new = request.replace(url=url, method=plan.form_method or "GET", body=body, headers=headers)
    elif plan.mode == "own_form":
        new = request
        for key, text in pairs or [(plan.name, value)]:
            new = _set_form_field(new, key, text)
    elif plan.mode == "header":
        headers = request.headers.copy()
        headers[plan.name] = value
        new = request.replace(headers=headers)
    elif plan.mode == "cookie":
        cookies = request.cookies
        if isinstance(cookies, Mapping):
            merged: Any = {**cookies, plan.name: value}
        else:
            merged = [c for c in cookies if c.get("name") != plan.name]
            merged.append({"name": plan.name, "value": value})
        new = request.replace(cookies=merged)
    elif plan.mode == "query":
        url = request.url
        for key, text in pairs or [(plan.name, value)]:
            url = add_or_replace_parameter(url, key, text)
        new = request.replace(url=url)
    elif plan.mode == "json":
        new = request
        for key, text in pairs or [(plan.name, value)]:
            new = _set_json_key(new, key, text)
    elif plan.mode == "callable":
        function: InjectFunction = load_object((plan.function or "").replace(":", "."))
        new = function(request=request, token=token, solution=dict(solution))
        if not isinstance(new, Request):
            raise InjectError(f"inject function {plan.function} returned {type(new).__name__}")
    else:  # pragma: no cover - every mode has its branch above
        assert_never(plan.mode)
    user_agent = solution.get("userAgent")
    if isinstance(user_agent, str) and user_agent:
        new.headers[b"User-Agent"] = user_agent
    return new


def _set_form_field(request: Request, name: str, value: str) -> Request:
    if request.method == "GET":
        return request.replace(url=add_or_replace_parameter(request.url, name, value))
    content_type = request.headers.get(b"Content-Type") or _FORM_TYPE
    if not content_type.startswith(_FORM_TYPE):
        raise InjectError(
            "inject mode 'form' on a presolved request needs a form-encoded body "
            f"(got {content_type.decode('latin-1')}); use 'json', 'header' or 'callable'"
        )
    encoding = request.encoding
    fields = [
        (k, v)
        for k, v in parse_qsl(
            request.body.decode("ascii", "replace"), keep_blank_values=True, encoding=encoding
        )
        if k != name
    ]
    fields.append((name, value))
    headers = request.headers.copy()
    headers[b"Content-Type"] = _FORM_TYPE
    body = urlencode(fields, encoding=encoding).encode("ascii")
    return request.replace(body=body, headers=headers)


def _set_json_key(request: Request, name: str, value: str) -> Request:
    data: Any = {}
    if request.body:
        try:
            data = json.loads(request.body)
        except ValueError:
            raise InjectError("inject mode 'json' needs a JSON object body") from None
    if not isinstance(data, dict):
        raise InjectError("inject mode 'json' needs a JSON object body")
    data[name] = value
    headers = request.headers.copy()
    headers[b"Content-Type"] = b"application/json"
    return request.replace(body=json.dumps(data).encode(), headers=headers)
