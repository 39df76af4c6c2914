"""The simulator's DeathByCaptcha protocol.

Paths: ``POST /api`` or ``POST /api/captcha`` (submit; uCaptcha documents the first, DBC's clients
use the second), ``GET /api/:id`` or ``GET /api/captcha/:id`` (poll, no key needed),
``POST|GET /api/user`` (balance, in USD as uCaptcha's example shows) and
``POST /api/captcha/:id/report`` (refunds the task). The key is the ``authtoken`` field (form or
query) or the user name of HTTP Basic auth. A submit answers **303 See Other** with ``Location`` as
DeathByCaptcha does. Types: 0 (or none) image ``captchafile`` (a file, or ``base64:…``), 4
reCAPTCHA v2 and 5 v3 (``token_params``), 25 v2 Enterprise (``token_enterprise_params``), 7
hCaptcha (``hcaptcha_params``), 12 Turnstile (``turnstile_params``). Errors: 403 with
``not-logged-in``, ``insufficient-funds`` or ``banned``; 400 ``invalid-captcha``; 503
``service-overload``; a poll of an unknown id answers ``is_correct: false, solved: false``.
"""

from __future__ import annotations

import base64
import json
import re
from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha.testing._sim_api import Answer, ApiError
from scrapy_ucaptcha.testing._sim_protocols import (
    Rendered,
    RequestView,
    Routed,
    decode_file,
    image_task,
    number,
    owner_key,
    proxy_url,
    token_of,
    token_task,
)

if TYPE_CHECKING:
    from scrapy_ucaptcha.testing.simulator import Simulator

__all__ = ["route"]

NAME = "deathbycaptcha"

_POLL = re.compile(r"^/api/(?:captcha/)?([^/]+)$")
_REPORT = re.compile(r"^/api/captcha/([^/]+)/report$")

#: type -> (family, params field, reCAPTCHA version, enterprise)
_TYPES: dict[int, tuple[str, str, str, bool]] = {
    4: ("recaptcha", "token_params", "v2", False),
    5: ("recaptcha", "token_params", "v3", False),
    25: ("recaptcha", "token_enterprise_params", "v2", True),
    7: ("hcaptcha", "hcaptcha_params", "v2", False),
    12: ("turnstile", "turnstile_params", "v2", False),
}

_KEY_ERRORS = {"ERROR_KEY_DOES_NOT_EXIST", "ERROR_WRONG_USER_KEY"}
_BANNED = {"ERROR_ACCOUNT_SUSPENDED", "ERROR_IP_BANNED", "ERROR_IP_BLOCKED"}
_NOT_FOUND = "Captcha not found or not owned by this user"


def route(sim: Simulator, view: RequestView) -> Routed | None:
    path = view.path.rstrip("/")
    if path != "/api" and not path.startswith("/api/"):
        return None
    key = _key(view)
    payload: dict[str, Any] = {"clientKey": key}
    if path in ("/api", "/api/captcha"):
        if view.method != "POST":
            return _routed("createTask", payload, ApiError("ERROR_BAD_PARAMETERS", "POST only"))
        return _routed("createTask", payload, _submit(view, payload))
    if path == "/api/user":
        return _routed("getBalance", payload)
    report = _REPORT.match(path)
    if report:
        task_id = report.group(1)
        payload["taskId"] = task_id
        payload["result"] = {"invalid": True, "message": "report"}

        def refund(answer: Answer) -> None:
            if not answer.body.get("errorId"):
                sim._refund(task_id)

        return _routed("feedbackTask", payload, after=refund)
    poll = _POLL.match(path)
    if poll and view.method == "GET":
        task_id = poll.group(1)
        payload["taskId"] = task_id
        if key is None:
            payload["clientKey"] = owner_key(sim, task_id)
        error = ApiError("ERROR_WRONG_CAPTCHA_ID") if payload["clientKey"] is None else None
        return _routed("getTaskResult", payload, error, task_id=task_id)
    return _routed(path.strip("/"), payload, ApiError("ERROR_NO_SUCH_METHOD"))


def _routed(
    endpoint: str,
    payload: dict[str, Any],
    error: ApiError | None = None,
    *,
    after: Any = None,
    task_id: str | None = None,
) -> Routed:
    def render(answer: Answer) -> Rendered:
        return _render(endpoint, answer, task_id or payload.get("taskId"))

    return Routed(NAME, endpoint, payload, render, error=error, after=after)


def _key(view: RequestView) -> str | None:
    token = view.get("authtoken")
    if token:
        return token
    auth = view.headers.get("authorization", "")
    scheme, _, encoded = auth.partition(" ")
    if scheme.lower() == "basic" and encoded:
        try:
            user = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except ValueError:
            return None
        return user.partition(":")[0] or None
    return None


def _submit(view: RequestView, payload: dict[str, Any]) -> ApiError | None:
    raw_type = view.get("type") or "0"
    try:
        kind = int(raw_type)
    except ValueError:
        return ApiError("ERROR_BAD_PARAMETERS", f"type {raw_type!r} is not a number")
    if kind == 0:
        payload["task"] = image_task(_image(view))
        return None
    spec = _TYPES.get(kind)
    if spec is None:
        return ApiError("TASK_NOT_SUPPORTED", f"type {kind} is not supported")
    family, field, version, enterprise = spec
    try:
        params = json.loads(view.get(field) or "")
    except ValueError:
        return ApiError("ERROR_BAD_PARAMETERS", f"{field} must be a JSON object")
    if not isinstance(params, dict):
        return ApiError("ERROR_BAD_PARAMETERS", f"{field} must be a JSON object")
    sitekey = params.get("googlekey" if family == "recaptcha" else "sitekey")
    url = params.get("pageurl")
    proxy = params.get("proxy")
    task = token_task(
        family,
        url=url if isinstance(url, str) else None,
        sitekey=sitekey if isinstance(sitekey, str) else None,
        proxy=proxy_url(proxy, params.get("proxytype")) if isinstance(proxy, str) else None,
        version=version,
        enterprise=enterprise,
    )
    action = params.get("action")
    if isinstance(action, str) and action:
        task["pageAction" if family == "recaptcha" else "action"] = action
    score = number(str(params["min_score"])) if "min_score" in params else None
    if score is not None:
        task["minScore"] = score
    payload["task"] = task
    return None


def _image(view: RequestView) -> str:
    raw = view.args.get("captchafile", b"")
    if raw.startswith(b"base64:"):
        return raw[len(b"base64:") :].decode("ascii", "replace")
    return decode_file(raw) if raw else ""


def _render(endpoint: str, answer: Answer, task_id: object) -> Rendered:
    body = answer.body
    if body.get("errorId"):
        return _error(endpoint, answer, task_id)
    if endpoint == "createTask":
        new_id = str(body.get("taskId"))
        return Rendered.json(
            303,
            {"status": 0, "captcha": new_id, "is_correct": True, "text": ""},
            Location=f"/api/captcha/{new_id}".encode(),
        )
    if endpoint == "getBalance":
        balance = float(body.get("balance") or 0.0)
        return Rendered.json(200, {"user": 0, "rate": 0, "balance": balance, "is_banned": False})
    if endpoint == "feedbackTask":
        return Rendered.json(
            200, {"status": 0, "captcha": task_id, "is_correct": False, "solved": True, "text": ""}
        )
    status = body.get("status")
    shown: dict[str, Any] = {"status": 0, "captcha": task_id}
    if status == "ready":
        shown.update(is_correct=True, solved=True, text=token_of(body.get("solution")))
    elif status == "failed":
        shown.update(is_correct=False, solved=True, text="", error="Task failed")
    else:
        shown.update(is_correct=True, solved=False, text="")
    return Rendered.json(200, shown)


def _error(endpoint: str, answer: Answer, task_id: object) -> Rendered:
    code = str(answer.body.get("errorCode") or "")
    status = answer.status
    if code in _KEY_ERRORS:
        return Rendered.json(403, {"status": 255, "error": "not-logged-in"})
    if code == "ERROR_ZERO_BALANCE":
        return Rendered.json(403, {"status": 255, "error": "insufficient-funds"})
    if code in _BANNED:
        return Rendered.json(403, {"status": 255, "error": "banned"})
    if code == "ERROR_WRONG_CAPTCHA_ID" or status == 404:
        if endpoint == "getTaskResult":
            return Rendered.json(
                200,
                {"status": 0, "captcha": task_id, "is_correct": False, "solved": False, "text": ""},
            )
        return Rendered.json(503, {"status": 255, "error": _NOT_FOUND})
    if endpoint == "getTaskResult" and status == 200:  # the compat shape of a failed task
        return Rendered.json(
            200,
            {
                "status": 0,
                "captcha": task_id,
                "is_correct": False,
                "solved": True,
                "text": "",
                "error": "Task failed",
            },
        )
    if status == 429:
        return Rendered.json(429, {"status": 255, "error": "rate-limit"})
    if status >= 500 or code == "ERROR_NO_SLOT_AVAILABLE":
        return Rendered.json(503, {"status": 255, "error": "service-overload"})
    description = str(answer.body.get("errorDescription") or code)
    return Rendered.json(
        400, {"status": 255, "error": "invalid-captcha", "description": description}
    )
