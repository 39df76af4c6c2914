"""The simulator's RiskByPass protocol.

``POST /task/submit`` (JSON ``task_type`` = ``recaptchav2`` / ``recaptchav3`` / ``hcaptcha`` /
``turnstile``, ``target_url``, ``site_key``, optional ``proxy``, ``action``, ``enterprise``,
``min_score``, ``invisible``) answers ``{"ok": true, "task_id": …}``; ``GET /task/result/:id``
answers ``QUEUED``, ``RUNNING``, ``SUCCESS`` with ``result.token``, ``FAILED`` with ``error``, or
``NOT_FOUND``; ``POST /api/user/balance`` answers ``{"ok": true, "balance": N}`` (USD). The key is
the ``x-api-key`` header, a ``token`` query field, or (balance) a JSON body ``token``. Errors are
``{"ok": false, "code": …, "error": …}`` with the HTTP status of uCaptcha's table. There is no
report endpoint.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha.testing._sim_api import Answer, ApiError
from scrapy_ucaptcha.testing._sim_protocols import (
    Rendered,
    RequestView,
    Routed,
    owner_key,
    token_of,
    token_task,
)

if TYPE_CHECKING:
    from scrapy_ucaptcha.testing.simulator import Simulator

__all__ = ["route"]

NAME = "riskbypass"

_RESULT = re.compile(r"^/task/result/([^/]+)$")

#: task_type -> (family, reCAPTCHA version)
_TYPES = {
    "recaptchav2": ("recaptcha", "v2"),
    "recaptchav3": ("recaptcha", "v3"),
    "hcaptcha": ("hcaptcha", "v2"),
    "turnstile": ("turnstile", "v2"),
}

_STATES = {"idle": "QUEUED", "processing": "RUNNING"}


def route(sim: Simulator, view: RequestView) -> Routed | None:
    path = view.path.rstrip("/")
    if path not in ("/task/submit", "/api/user/balance") and not path.startswith("/task/"):
        return None
    body = view.json_body()
    key = view.headers.get("x-api-key") or view.get("token")
    if key is None and body is not None and isinstance(body.get("token"), str):
        key = body["token"]
    payload: dict[str, Any] = {"clientKey": key}
    if path == "/task/submit":
        return _routed("createTask", payload, _submit(body, payload))
    if path == "/api/user/balance":
        return _routed("getBalance", payload)
    result = _RESULT.match(path)
    if result and view.method == "GET":
        task_id = result.group(1)
        payload["taskId"] = task_id
        if key is None:
            payload["clientKey"] = owner_key(sim, task_id)
        error = ApiError("ERROR_WRONG_CAPTCHA_ID") if payload["clientKey"] is None else None
        return _routed("getTaskResult", payload, error)
    return _routed(path.strip("/"), payload, ApiError("ERROR_NO_SUCH_METHOD"))


def _routed(endpoint: str, payload: dict[str, Any], error: ApiError | None = None) -> Routed:
    def render(answer: Answer) -> Rendered:
        return _render(endpoint, answer)

    return Routed(NAME, endpoint, payload, render, error=error)


def _submit(body: dict[str, Any] | None, payload: dict[str, Any]) -> ApiError | None:
    if body is None:
        return ApiError("ERROR_BAD_PARAMETERS", "the body must be a JSON object")
    task_type = body.get("task_type")
    spec = _TYPES.get(task_type) if isinstance(task_type, str) else None
    if spec is None:
        return ApiError("TASK_NOT_SUPPORTED", f"task_type {task_type!r} is not supported")
    family, version = spec
    url, sitekey, proxy = body.get("target_url"), body.get("site_key"), body.get("proxy")
    task = token_task(
        family,
        url=url if isinstance(url, str) else None,
        sitekey=sitekey if isinstance(sitekey, str) else None,
        proxy=proxy if isinstance(proxy, str) and proxy else None,
        version=version,
        enterprise=body.get("enterprise") is True,
    )
    action = body.get("action")
    if isinstance(action, str) and action:
        task["pageAction" if family == "recaptcha" else "action"] = action
    score = body.get("min_score")
    if isinstance(score, (int, float)) and not isinstance(score, bool):
        task["minScore"] = float(score)
    if body.get("invisible") is True:
        task["isInvisible"] = True
    payload["task"] = task
    return None


def _render(endpoint: str, answer: Answer) -> Rendered:
    body = answer.body
    if body.get("errorId"):
        code = str(body.get("errorCode") or "")
        if endpoint == "getTaskResult" and (
            code == "ERROR_WRONG_CAPTCHA_ID" or answer.status == 404
        ):
            return Rendered.json(200, {"status": "NOT_FOUND"})
        if endpoint == "getTaskResult" and answer.status == 200:  # the compat shape of a failure
            return Rendered.json(200, {"status": "FAILED", "error": "Task failed", "code": code})
        description = str(body.get("errorDescription") or code)
        return Rendered.json(answer.status, {"ok": False, "code": code, "error": description})
    if endpoint == "createTask":
        return Rendered.json(200, {"ok": True, "task_id": str(body.get("taskId"))})
    if endpoint == "getBalance":
        return Rendered.json(200, {"ok": True, "balance": float(body.get("balance") or 0.0)})
    status = body.get("status")
    if status == "ready":
        solution = body.get("solution") or {}
        result: dict[str, Any] = {"token": token_of(solution)}
        if isinstance(solution, dict) and isinstance(solution.get("userAgent"), str):
            result["ua"] = solution["userAgent"]
        return Rendered.json(200, {"status": "SUCCESS", "result": result})
    if status == "failed":
        code = str(body.get("errorCode") or "ERROR_CAPTCHA_UNSOLVABLE")
        return Rendered.json(200, {"status": "FAILED", "error": "Task failed", "code": code})
    return Rendered.json(200, {"status": _STATES.get(str(status), "RUNNING")})
