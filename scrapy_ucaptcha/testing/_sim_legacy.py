"""The simulator's 2captcha legacy protocol: ``/in.php`` and ``/res.php``, plain text or ``json=1``.

``GET`` or ``POST`` (urlencoded or multipart), the key in ``key``. Answers as uCaptcha documents
them: ``OK|<id>``, ``CAPCHA_NOT_READY`` (sic), ``OK|<token>``, ``ERROR_…``, the balance with four
decimals, ``OK_REPORT_RECORDED``; with ``json=1`` the same as ``{"status": 1|0, "request": …}``.
HTTP statuses are uCaptcha's (401 for a bad key, 402 for no balance...), not 2captcha's all-200.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha.testing._sim_api import Answer, ApiError
from scrapy_ucaptcha.testing._sim_protocols import (
    Rendered,
    RequestView,
    Routed,
    decode_file,
    image_task,
    number,
    proxy_url,
    token_of,
    token_task,
)

if TYPE_CHECKING:
    from scrapy_ucaptcha.testing.simulator import Simulator

__all__ = ["route"]

NAME = "2captcha-legacy"

_FAMILIES = {"userrecaptcha": "recaptcha", "hcaptcha": "hcaptcha", "turnstile": "turnstile"}


def route(sim: Simulator, view: RequestView) -> Routed | None:
    if view.path not in ("/in.php", "/res.php"):
        return None
    as_json = view.get("json") == "1"
    key = view.get("key")
    if view.path == "/in.php":
        endpoint = "createTask"
        payload, error = _submit(view, key)
    else:
        endpoint, payload, error = _result(view, key)

    def render(answer: Answer) -> Rendered:
        return _render(endpoint, answer, as_json)

    return Routed(NAME, endpoint, payload, render, error=error)


def _submit(view: RequestView, key: str | None) -> tuple[dict[str, Any] | None, ApiError | None]:
    method = view.get("method")
    payload: dict[str, Any] = {"clientKey": key}
    callback = view.get("pingback")
    if callback:
        payload["callbackUrl"] = callback
    if method in ("base64", "post"):
        raw = view.args.get("file") if method == "post" else None
        payload["task"] = image_task(decode_file(raw) if raw is not None else view.get("body"))
        return payload, None
    family = _FAMILIES.get(method or "")
    if family is None:
        return payload, ApiError("ERROR_BAD_PARAMETERS", f"method {method!r} is not supported")
    sitekey = view.get("googlekey" if family == "recaptcha" else "sitekey")
    if not sitekey:
        code = "ERROR_GOOGLEKEY" if family == "recaptcha" else "ERROR_SITEKEY"
        return payload, ApiError(code)
    task = token_task(
        family,
        url=view.get("pageurl"),
        sitekey=sitekey,
        proxy=proxy_url(view.get("proxy"), view.get("proxytype")),
        version="v3" if view.get("version") == "v3" else "v2",
        enterprise=view.get("enterprise") == "1",
    )
    if view.get("invisible") == "1":
        task["isInvisible"] = True
    action = view.get("action")
    if action:
        task["pageAction" if family == "recaptcha" else "action"] = action
    score = number(view.get("min_score"))
    if score is not None:
        task["minScore"] = score
    data_s = view.get("data-s")
    if data_s:
        task["recaptchaDataSValue"] = data_s
    payload["task"] = task
    return payload, None


def _result(
    view: RequestView, key: str | None
) -> tuple[str, dict[str, Any] | None, ApiError | None]:
    action = view.get("action")
    payload: dict[str, Any] = {"clientKey": key}
    task_id = view.get("id")
    if task_id is not None:
        payload["taskId"] = task_id
    if not action:
        return "getTaskResult", payload, ApiError("ERROR_EMPTY_ACTION")
    if action == "get":
        return "getTaskResult", payload, None
    if action == "getbalance":
        return "getBalance", payload, None
    if action in ("reportbad", "reportgood"):
        bad = action == "reportbad"
        payload["result"] = {"invalid": bad, "message": action}
        return "feedbackTask", payload, None
    return "getTaskResult", payload, ApiError("ERROR_BAD_PARAMETERS", f"unknown action {action!r}")


def _render(endpoint: str, answer: Answer, as_json: bool) -> Rendered:
    body = answer.body
    ok: str | None = None
    waiting = False
    error: str | None = None
    if body.get("errorId"):
        error = str(body.get("errorCode") or "ERROR_BAD_PARAMETERS")
    elif endpoint == "createTask":
        ok = str(body.get("taskId"))
    elif endpoint == "getTaskResult":
        status = body.get("status")
        if status == "ready":
            ok = token_of(body.get("solution"))
        elif status == "failed":
            error = str(body.get("errorCode") or "ERROR_CAPTCHA_UNSOLVABLE")
        else:
            waiting = True
    elif endpoint == "getBalance":
        return _ok(f"{float(body.get('balance') or 0.0):.4f}", as_json, bare=True)
    else:
        return _ok("OK_REPORT_RECORDED", as_json, bare=True)
    if ok is not None:
        return _ok(ok, as_json)
    text = "CAPCHA_NOT_READY" if waiting else str(error)
    if as_json:
        payload: dict[str, Any] = {"status": 0, "request": text}
        if error is not None:
            payload["error_text"] = str(body.get("errorDescription") or text)
        return Rendered.json(answer.status, payload)
    return Rendered.text(answer.status, text)


def _ok(value: str, as_json: bool, *, bare: bool = False) -> Rendered:
    if as_json:
        return Rendered.json(200, {"status": 1, "request": value})
    return Rendered.text(200, value if bare else f"OK|{value}")
