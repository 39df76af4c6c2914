"""The RiskByPass protocol: ``POST /task/submit``, ``GET /task/result/:id``,
``POST /api/user/balance``; the key in the ``x-api-key`` header of every call.

There is no report endpoint: a rejected token is counted and its request solved again, and
nothing is sent. RiskByPass solves no image captchas: an image task is refused before any call.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from scrapy_ucaptcha.client import TaskId, TaskResult, TaskStatus
from scrapy_ucaptcha.errors import (
    UCaptchaBadTaskError,
    UCaptchaProtocolError,
    UCaptchaRetryableError,
    error_for,
)
from scrapy_ucaptcha.protocols._base import (
    ProtocolClient,
    TaskFields,
    protocol_dialect,
)
from scrapy_ucaptcha.transport import DEFAULT_API_URL, HttpAnswer

__all__ = ["DEFAULT_RISKBYPASS_TASK_TYPES", "RiskByPassClient"]

#: ``task_type`` per captcha family and version. ``recaptchav3``, ``hcaptcha`` and ``turnstile``
#: are RiskByPass's own (its demos); ``recaptchav2`` follows their pattern (not documented).
DEFAULT_RISKBYPASS_TASK_TYPES: Mapping[str, str] = MappingProxyType(
    {
        "recaptcha_v2": "recaptchav2",
        "recaptcha_v3": "recaptchav3",
        "hcaptcha": "hcaptcha",
        "turnstile": "turnstile",
    }
)

_PENDING = {"QUEUED": TaskStatus.IDLE, "RUNNING": TaskStatus.PROCESSING}


class RiskByPassClient(ProtocolClient):
    """Speaks the RiskByPass API (``UCAPTCHA_PROTOCOL = "riskbypass"``).

    :param task_types: ``task_type`` names to use instead of
        :data:`DEFAULT_RISKBYPASS_TASK_TYPES` (keys ``recaptcha_v2``, ``recaptcha_v3``,
        ``hcaptcha``, ``turnstile``).
    """

    protocol = "riskbypass"
    #: No report endpoint: a rejected token is counted, its request solved again.
    dialect = protocol_dialect("riskbypass", "RiskByPass API")

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        task_types: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(api_key, api_url=api_url, **kw)
        names = dict(DEFAULT_RISKBYPASS_TASK_TYPES)
        for kind, name in (task_types or {}).items():
            if kind not in names or not isinstance(name, str) or not name:
                raise ValueError(
                    f"task_types: {kind!r} -> {name!r}: use a task_type name for one of "
                    f"{', '.join(names)}"
                )
            names[kind] = name
        self.task_types: Mapping[str, str] = MappingProxyType(names)

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult:
        """Submit a task; it comes back ``idle`` (queued) with its id.

        The protocol has no callback, selection mode or provider: those are not sent.
        """
        fields = self._read(task)
        body = self._body(fields)
        data = await self._call("createTask", "POST", "/task/submit", json=body)
        task_id = data.get("task_id")
        if isinstance(task_id, bool) or not isinstance(task_id, (str, int)) or task_id == "":
            raise UCaptchaProtocolError("submit answered without a usable task_id")
        self._remember(task_id, fields.family)
        return TaskResult(task_id, TaskStatus.IDLE)

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Poll: ``QUEUED``/``RUNNING``, ``SUCCESS`` with the token, ``FAILED`` or ``NOT_FOUND``."""
        data = await self._call("getTaskResult", "GET", f"/task/result/{task_id}")
        status = data.get("status")
        if status in _PENDING:
            return TaskResult(task_id, _PENDING[status])
        if status == "SUCCESS":
            result = data.get("result")
            token = result.get("token") if isinstance(result, dict) else None
            if not isinstance(token, str) or not token:
                raise UCaptchaProtocolError(f"task {task_id}: SUCCESS without a result token")
            agent = result.get("ua") if isinstance(result, dict) else None
            return self._ready(task_id, token, agent if isinstance(agent, str) else None)
        if status == "FAILED":
            code, error = data.get("code"), data.get("error")
            return self._failed(
                task_id,
                code if isinstance(code, str) and code else "ERROR_CAPTCHA_UNSOLVABLE",
                error if isinstance(error, str) else None,
            )
        if status == "NOT_FOUND":
            return self._failed(task_id, "ERROR_WRONG_CAPTCHA_ID", "expired or unknown task")
        raise UCaptchaProtocolError(f"task {task_id}: unknown status {str(status)[:40]!r}")

    async def get_balance(self) -> float:
        """``/api/user/balance``, in USD (see ``balance_per_usd``)."""
        data = await self._call("getBalance", "POST", "/api/user/balance", json={})
        balance = self._number(data, "balance", "balance", required=True)
        assert balance is not None
        return self._usd(balance)

    # --- requests and answers -----------------------------------------------------------------

    def _body(self, fields: TaskFields) -> dict[str, Any]:
        if fields.family == "image":
            raise UCaptchaBadTaskError(
                "the riskbypass protocol solves no image captchas", code="TASK_NOT_SUPPORTED"
            )
        kind = f"recaptcha_{fields.version}" if fields.family == "recaptcha" else fields.family
        body: dict[str, Any] = {
            "task_type": self.task_types[kind],
            "target_url": fields.url or "",
            "site_key": fields.sitekey or "",
        }
        if fields.proxy is not None:
            body["proxy"] = fields.proxy_url
        if fields.action:
            body["action"] = fields.action
        if fields.enterprise:
            body["enterprise"] = True
        if fields.invisible:
            body["invisible"] = True
        if fields.min_score is not None:
            body["min_score"] = fields.min_score
        return body

    async def _call(self, endpoint: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return await self._request(
            endpoint,
            method,
            path,
            lambda answer: self._parse(endpoint, answer),
            headers={"x-api-key": self._key},
            **kwargs,
        )

    def _parse(self, endpoint: str, answer: HttpAnswer) -> dict[str, Any]:
        status = answer.status
        try:
            data: Any = json.loads(answer.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            what = "an empty body" if not answer.body.strip() else self._snippet(answer.body)
            message = f"{endpoint}: expected a JSON object, got {what}"
            if status >= 500:
                raise UCaptchaRetryableError(message, http_status=status)
            raise UCaptchaProtocolError(message, http_status=status)
        if status < 400 and data.get("ok") is not False:
            return data
        code, error = data.get("code"), data.get("error")
        code = self._scrub(code)[:100] if isinstance(code, str) and code else f"HTTP_{status}"
        text = self._scrub(error)[:200] if isinstance(error, str) and error else code
        if status >= 500 and code.startswith("HTTP_"):
            raise UCaptchaRetryableError(f"{endpoint}: {text}", http_status=status)
        raise error_for(code, f"{endpoint}: {text}", status)
