"""The 2captcha legacy protocol: ``/in.php`` to submit, ``/res.php`` for results, balance, reports.

Every call is a form ``POST`` with ``json=1``: the key travels in the body, never in a URL, and the
answers are read as ``{"status": 1|0, "request": …}`` (plain-text answers, ``OK|…`` or a bare code,
are read too). Error codes arrive with HTTP 200 at 2captcha and with uCaptcha's statuses (401, 402,
404...) at uCaptcha: both are read by their code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from scrapy_ucaptcha.client import TaskId, TaskResult, TaskStatus
from scrapy_ucaptcha.errors import (
    UCaptchaBadTaskError,
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
from scrapy_ucaptcha.transport import HttpAnswer

__all__ = ["TwoCaptchaLegacyClient"]

_NOT_READY = "CAPCHA_NOT_READY"
#: The plain-text answers of the legacy API (when a server ignores ``json=1``).
_PLAIN = re.compile(r"^(?:OK\|\S+|OK_[A-Z_]+|CAPCHA_NOT_READY|ERROR_[A-Z0-9_]+|-?\d+(?:\.\d+)?)$")
_METHODS = {"recaptcha": "userrecaptcha", "hcaptcha": "hcaptcha", "turnstile": "turnstile"}
_PROXY_TYPES = {"http": "HTTP", "https": "HTTPS", "socks4": "SOCKS4", "socks5": "SOCKS5"}


class TwoCaptchaLegacyClient(ProtocolClient):
    """Speaks the 2captcha legacy API (``UCAPTCHA_PROTOCOL = "2captcha-legacy"``)."""

    protocol = "2captcha-legacy"

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult:
        """Submit a task to ``/in.php``; it comes back ``processing`` with its id.

        ``selection_mode`` and ``provider`` have no place in this protocol and are not sent;
        ``callback_url`` is sent as ``pingback``.
        """
        fields = self._read(task)
        form = self._form(fields)
        if callback_url:
            form["pingback"] = callback_url
        task_id = await self._call("createTask", "/in.php", form)
        self._remember(task_id, fields.family)
        return TaskResult(task_id, TaskStatus.PROCESSING)

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Ask ``/res.php?action=get``: not ready, the token, or failed (unsolvable, unknown id)."""
        try:
            answer = await self._call("getTaskResult", "/res.php", {"action": "get", "id": task_id})
        except UCaptchaTaskDeadError as exc:
            return self._failed(task_id, exc.code or "ERROR_CAPTCHA_UNSOLVABLE", exc.description)
        if answer == _NOT_READY:
            return TaskResult(task_id, TaskStatus.PROCESSING)
        return self._ready(task_id, answer)

    async def get_balance(self) -> float:
        """``/res.php?action=getbalance``, in USD."""
        answer = await self._call("getBalance", "/res.php", {"action": "getbalance"})
        balance = self._number({"balance": answer}, "balance", "getbalance", required=True)
        assert balance is not None
        return self._usd(balance)

    dialect = protocol_dialect(
        "2captcha-legacy",
        "2captcha legacy API",
        reject={"*": "reportbad"},
        accept={"*": "reportgood"},
    )

    async def _report(self, task_id: TaskId, endpoint: str) -> None:
        """``reportbad`` for a rejected token, ``reportgood`` for an accepted one."""
        await self._call("feedbackTask", "/res.php", {"action": endpoint, "id": task_id})

    # --- requests and answers -----------------------------------------------------------------

    def _form(self, fields: TaskFields) -> dict[str, Any]:
        if fields.family == "image":
            if not fields.image:
                raise UCaptchaBadTaskError(
                    "an image task needs its base64 'body'", code="ERROR_BAD_PARAMETERS"
                )
            return {"method": "base64", "body": fields.image}
        form: dict[str, Any] = {"method": _METHODS[fields.family], "pageurl": fields.url or ""}
        form["googlekey" if fields.family == "recaptcha" else "sitekey"] = fields.sitekey or ""
        if fields.family == "recaptcha":
            if fields.version == "v3":
                form["version"] = "v3"
            if fields.enterprise:
                form["enterprise"] = 1
            if fields.invisible:
                form["invisible"] = 1
            if fields.min_score is not None:
                form["min_score"] = fields.min_score
            data_s = fields.raw.get("recaptchaDataSValue")
            if isinstance(data_s, str) and data_s:
                form["data-s"] = data_s
        if fields.action:
            form["action"] = fields.action
        extra = (
            fields.raw.get("cData") if fields.family == "turnstile" else fields.raw.get("rqdata")
        )
        if isinstance(extra, str) and extra:
            form["data"] = extra
        if fields.user_agent:
            form["userAgent"] = fields.user_agent
        if fields.proxy is not None:
            form["proxytype"] = _PROXY_TYPES.get(fields.proxy[0], fields.proxy[0].upper())
            form["proxy"] = fields.proxy[1]
        return form

    async def _call(self, endpoint: str, path: str, form: dict[str, Any]) -> str:
        data = {"key": self._key, "json": 1, **form}
        return await self._request(
            endpoint, "POST", path, lambda answer: self._parse(endpoint, answer), data=data
        )

    def _parse(self, endpoint: str, answer: HttpAnswer) -> str:
        """The ``request`` value of a good answer; raise the error class of an error code."""
        text = answer.body.decode("utf-8", "replace").strip()
        status_flag: int | None = None
        description: str | None = None
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            value, status_flag = data.get("request"), data.get("status")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise UCaptchaProtocolError(
                    f"{endpoint}: an answer without a usable 'request'", http_status=answer.status
                )
            value = str(value).strip()
            error_text = data.get("error_text")
            description = error_text if isinstance(error_text, str) else None
        elif _PLAIN.match(text):
            value = text
        else:
            what = "an empty body" if not text else self._snippet(answer.body)
            message = f"{endpoint}: expected a legacy answer, got {what}"
            if answer.status >= 500:
                raise UCaptchaRetryableError(message, http_status=answer.status)
            raise UCaptchaProtocolError(message, http_status=answer.status)
        if value == _NOT_READY:
            return value
        is_error = value.startswith("ERROR") or status_flag == 0
        if not is_error and answer.status < 400:
            if status_flag is None and value.startswith("OK|"):
                value = value[3:]
            if not value:
                raise UCaptchaProtocolError(
                    f"{endpoint}: an empty answer", http_status=answer.status
                )
            return value
        code = self._scrub(value.split("|", 1)[0])[:100] if value else f"HTTP_{answer.status}"
        text = self._scrub(description or code)
        if answer.status >= 500 and not code.startswith("ERROR"):
            raise UCaptchaRetryableError(f"{endpoint}: {text}", http_status=answer.status)
        raise error_for(code, f"{endpoint}: {text}", answer.status)
