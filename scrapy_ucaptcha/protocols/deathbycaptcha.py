"""The DeathByCaptcha protocol: submit, poll, user (balance) and report.

Submits and reports are form ``POST``\\ s with the key as ``authtoken`` in the body; polls are
``GET /api/:id`` without the key (DeathByCaptcha needs none there), so no URL ever carries it.
``Accept: application/json`` makes the answers JSON. A submit is answered ``303 See Other`` at
DeathByCaptcha (the answer's body is read, the redirect not followed) and may be ``200`` elsewhere.
HTTP 403 means a bad key, no funds or a banned account; 400/413 a task the service refuses; 503 an
overload (retried).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from scrapy_ucaptcha.client import TaskId, TaskResult, TaskStatus
from scrapy_ucaptcha.errors import (
    UCaptchaBadTaskError,
    UCaptchaFatalError,
    UCaptchaProtocolError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    error_for,
)
from scrapy_ucaptcha.protocols._base import (
    ProtocolClient,
    TaskFields,
    protocol_dialect,
)
from scrapy_ucaptcha.transport import DEFAULT_API_URL, HttpAnswer

__all__ = ["DBC_PATHS", "DeathByCaptchaClient"]

#: Path styles: uCaptcha documents ``POST /api`` and ``GET /api/:id``; DeathByCaptcha's own
#: clients use ``/api/captcha`` and ``/api/captcha/:id``. The report path is the same in both.
DBC_PATHS = {
    "ucaptcha": ("/api", "/api/{id}"),
    "deathbycaptcha": ("/api/captcha", "/api/captcha/{id}"),
}

#: DeathByCaptcha's error names (socket API and JSON answers) -> our codes.
_ERRORS = {
    "not-logged-in": "ERROR_KEY_DOES_NOT_EXIST",
    "invalid-credentials": "ERROR_KEY_DOES_NOT_EXIST",
    "banned": "ERROR_ACCOUNT_SUSPENDED",
    "insufficient-funds": "ERROR_ZERO_BALANCE",
    "invalid-captcha": "ERROR_BAD_PARAMETERS",
    "service-overload": "ERROR_SERVICE_UNAVAILABLE",
}

#: family -> (type, params field)
_TYPES = {
    ("recaptcha", "v2", False): (4, "token_params"),
    ("recaptcha", "v3", False): (5, "token_params"),
    ("recaptcha", "v3", True): (5, "token_params"),
    ("recaptcha", "v2", True): (25, "token_enterprise_params"),
    ("hcaptcha", "v2", False): (7, "hcaptcha_params"),
    ("turnstile", "v2", False): (12, "turnstile_params"),
}

#: DeathByCaptcha requires a score for reCAPTCHA v3; this one is sent when the task has none.
DEFAULT_MIN_SCORE = 0.3


class DeathByCaptchaClient(ProtocolClient):
    """Speaks the DeathByCaptcha HTTP API (``UCAPTCHA_PROTOCOL = "deathbycaptcha"``).

    :param paths: ``"ucaptcha"`` (``/api``, ``/api/:id``; the default) or ``"deathbycaptcha"``
        (``/api/captcha``, ``/api/captcha/:id``).
    """

    protocol = "deathbycaptcha"
    dialect = protocol_dialect("deathbycaptcha", "DeathByCaptcha API", reject={"*": "report"})

    def __init__(
        self, api_key: str, *, api_url: str = DEFAULT_API_URL, paths: str = "ucaptcha", **kw: Any
    ) -> None:
        if paths not in DBC_PATHS:
            raise ValueError(f"paths must be one of {', '.join(DBC_PATHS)}, got {paths!r}")
        super().__init__(api_key, api_url=api_url, **kw)
        self.paths = paths
        self._submit_path, self._poll_path = DBC_PATHS[paths]

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult:
        """Submit a task; it comes back ``processing`` with its id (``ready`` if already solved).

        The protocol has no callback, selection mode or provider: those are not sent.
        """
        fields = self._read(task)
        form = {"authtoken": self._key, **self._form(fields)}
        data = await self._request(
            "createTask",
            "POST",
            self._submit_path,
            lambda answer: self._parse("createTask", answer, submit=True),
            data=form,
        )
        task_id = data.get("captcha")
        if isinstance(task_id, bool) or not isinstance(task_id, (str, int)) or not task_id:
            raise UCaptchaProtocolError("submit answered without a usable captcha id")
        self._remember(task_id, fields.family)
        return self._result(task_id, data)

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Poll the task: pending, solved (``text``), or failed (``is_correct`` false)."""
        data = await self._request(
            "getTaskResult",
            "GET",
            self._poll_path.format(id=task_id),
            lambda answer: self._parse("getTaskResult", answer),
        )
        return self._result(task_id, data)

    async def get_balance(self) -> float:
        """``/api/user``'s ``balance``, in USD (see ``balance_per_usd``)."""
        data = await self._request(
            "getBalance",
            "POST",
            "/api/user",
            lambda answer: self._parse("getBalance", answer),
            data={"authtoken": self._key},
        )
        if data.get("is_banned") is True:
            raise UCaptchaFatalError("the account is banned", code="ERROR_ACCOUNT_SUSPENDED")
        balance = self._number(data, "balance", "user", required=True)
        assert balance is not None
        return self._usd(balance)

    async def _report(self, task_id: TaskId, endpoint: str) -> None:
        """Report a rejected token to ``/api/captcha/:id/report``, which refunds it. (The
        protocol has nothing for an accepted one.)"""
        await self._request(
            "feedbackTask",
            "POST",
            f"/api/captcha/{task_id}/report",
            lambda answer: self._parse("feedbackTask", answer),
            data={"authtoken": self._key},
        )

    # --- requests and answers -----------------------------------------------------------------

    def _form(self, fields: TaskFields) -> dict[str, Any]:
        if fields.family == "image":
            if not fields.image:
                raise UCaptchaBadTaskError(
                    "an image task needs its base64 'body'", code="ERROR_BAD_PARAMETERS"
                )
            return {"captchafile": f"base64:{fields.image}"}
        version = fields.version if fields.family == "recaptcha" else "v2"
        enterprise = fields.enterprise and fields.family == "recaptcha"
        kind, field = _TYPES[(fields.family, version, enterprise)]
        params: dict[str, Any] = {"pageurl": fields.url or ""}
        params["googlekey" if fields.family == "recaptcha" else "sitekey"] = fields.sitekey or ""
        if kind == 5:
            params["action"] = fields.action or ""
            params["min_score"] = (
                fields.min_score if fields.min_score is not None else DEFAULT_MIN_SCORE
            )
        elif fields.action:
            params["action"] = fields.action
        if fields.proxy is not None:
            params["proxy"] = fields.proxy_url
            params["proxytype"] = fields.proxy[0].upper()
        return {"type": kind, field: json.dumps(params, separators=(",", ":"))}

    def _result(self, task_id: TaskId, data: Mapping[str, Any]) -> TaskResult:
        text = data.get("text")
        token = text.strip() if isinstance(text, str) else ""
        is_correct = data.get("is_correct")
        solved = data.get("solved")
        if is_correct is False:
            error = data.get("error")
            described = error if isinstance(error, str) else None
            if solved is False:
                return self._failed(task_id, "ERROR_WRONG_CAPTCHA_ID", described or "unknown id")
            return self._failed(task_id, "ERROR_CAPTCHA_UNSOLVABLE", described)
        if token and solved is not False:
            return self._ready(task_id, token)
        return TaskResult(task_id, TaskStatus.PROCESSING)

    def _parse(self, endpoint: str, answer: HttpAnswer, *, submit: bool = False) -> dict[str, Any]:
        status = answer.status
        try:
            data: Any = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        name = data.get("error") if isinstance(data, dict) else None
        name = self._scrub(name)[:100] if isinstance(name, str) else None
        code = _ERRORS.get(name or "")
        ok = status in (200, 201) or (submit and status in (302, 303))
        if ok and isinstance(data, dict) and not (code and data.get("status") == 255):
            return data
        if name and "not found" in name.lower():
            raise UCaptchaTaskDeadError(
                f"{endpoint}: {name}", code="ERROR_WRONG_CAPTCHA_ID", http_status=status
            )
        if status == 403:
            code = code if code in ("ERROR_ZERO_BALANCE", "ERROR_ACCOUNT_SUSPENDED") else None
            raise UCaptchaFatalError(
                f"{endpoint}: access denied ({name or 'check the key and the balance'})",
                code=code or "ERROR_KEY_DOES_NOT_EXIST",
                http_status=status,
            )
        if status in (400, 413):
            description = data.get("description") if isinstance(data, dict) else None
            text = self._scrub(description) if isinstance(description, str) else name
            raise UCaptchaBadTaskError(
                f"{endpoint}: the service refused the task ({text or 'invalid captcha'})",
                code="ERROR_BAD_PARAMETERS",
                http_status=status,
            )
        if status == 404 and submit:
            raise UCaptchaFatalError(
                f"{endpoint}: no submit endpoint at {self._submit_path} (HTTP 404); "
                "check UCAPTCHA_DBC_PATHS",
                code="HTTP_404",
                http_status=status,
            )
        if status >= 500 or not isinstance(data, dict):
            what = name or ("an empty body" if not answer.body.strip() else None)
            message = (
                f"{endpoint}: {what or 'expected a JSON object, got ' + self._snippet(answer.body)}"
            )
            if status >= 500:
                raise UCaptchaRetryableError(message, code=code, http_status=status)
            raise UCaptchaProtocolError(message, http_status=status)
        raise error_for(code or f"HTTP_{status}", f"{endpoint}: {name or 'error'}", status)
