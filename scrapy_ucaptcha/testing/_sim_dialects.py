"""How the simulator imitates each createTask provider: answer shapes, ids, codes and quirks.

Written from the providers' public docs and SDKs, independently of the client's own table
(:mod:`scrapy_ucaptcha.dialects`), so that tests against the simulator check the client's table
rather than repeat it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from scrapy_ucaptcha.testing._sim_api import TASK_TYPES, error_status

__all__ = ["SIM_DIALECTS", "SimDialect"]

#: Anti-Captcha / 2captcha numeric ``errorId`` of each code (the others answer ``errorId: 1``).
_NUMERIC_IDS = {
    "ERROR_KEY_DOES_NOT_EXIST": 1,
    "ERROR_NO_SLOT_AVAILABLE": 2,
    "ERROR_ZERO_BALANCE": 10,
    "ERROR_CAPTCHA_UNSOLVABLE": 12,
    "ERROR_NO_SUCH_METHOD": 14,
    "ERROR_NO_SUCH_CAPCHA_ID": 16,
    "ERROR_TASK_ABSENT": 22,
    "ERROR_TASK_NOT_SUPPORTED": 23,
}

_ANTICAPTCHA_NAMES = frozenset(
    name
    for name in TASK_TYPES
    if not name.endswith(("ProxyLess", "Token")) or name == "ImageToTextTask"
)
_CAPSOLVER_NAMES = frozenset(
    name
    for name in TASK_TYPES
    if name.startswith(("ReCaptcha", "HCaptchaTask", "AntiTurnstile")) and "Token" not in name
) | {"ImageToTextTask", "DatadomeSliderTask", "AntiCloudflareTask", "AntiAwsWafTask"}
_CAPSOLVER_NAMES |= {"AntiAwsWafTaskProxyLess"}


@dataclass(frozen=True)
class SimDialect:
    """One provider as the simulator imitates it."""

    name: str
    #: ``uuid`` (string ids) or ``int`` (integer ids, as Anti-Captcha and its likes).
    ids: str = "uuid"
    #: createTask's answer for a task not solved at once: ``status`` given (uCaptcha), ``null``
    #: (CapSolver), or absent.
    create_status: str = "absent"
    #: getTaskResult of a task being solved: ``status`` (idle/processing), ``processing`` (idle
    #: shows as processing), or ``not_ready`` (processing as ``errorId 1 CAPTCHA_NOT_READY``).
    pending: str = "processing"
    #: ``cost`` of a ready answer: ``number``, ``string`` or ``none``.
    cost: str = "string"
    #: A failed task: ``status`` (``errorId 0, status failed``) or ``error`` (an error answer).
    failed: str = "error"
    #: Whether an unsolvable task is refunded.
    refund_unsolvable: bool = True
    #: Report endpoints: name → ``"invalid"``/``"valid"`` (``feedbackTask`` takes either).
    reports: dict[str, str] = field(default_factory=dict)
    #: Task types this provider knows (None: every type the simulator knows).
    types: frozenset[str] | None = None
    #: Codes renamed for this provider (the simulator's own → the provider's).
    codes: dict[str, str] = field(default_factory=dict)
    #: ``errorId`` values: ``numeric`` (Anti-Captcha, 2captcha) or ``one``.
    error_ids: str = "one"
    #: HTTP status of error answers: ``table`` (uCaptcha's), ``ok`` (always 200) or
    #: ``capsolver`` (400, 401 for a refused key).
    error_http: str = "ok"
    #: Extra fields of getBalance's answer.
    balance_extra: dict[str, Any] = field(default_factory=dict)
    #: How a task gives its proxy: ``any`` (a ``proxy`` string or the split fields), or
    #: ``fields`` (``proxyType``/``proxyAddress``/…; a ``proxy`` string alone is not read).
    proxy_style: str = "any"
    #: Whether ``proxyAddress`` must be an IP address (host names refused).
    proxy_needs_ip: bool = False

    def check_proxy(self, task: Any) -> str | None:
        """Why this provider refuses the task's proxy, or None."""
        if not isinstance(task, dict) or not ("proxy" in task or "proxyAddress" in task):
            return None
        if self.proxy_style == "fields" and "proxyAddress" not in task:
            return "proxyType, proxyAddress and proxyPort are required for this task type"
        address = task.get("proxyAddress")
        if self.proxy_needs_ip and isinstance(address, str):
            try:
                ipaddress.ip_address(address)
            except ValueError:
                return "proxyAddress must be an IPv4/IPv6 address, not a host name"
        return None

    def code(self, code: str) -> str:
        return self.codes.get(code, code)

    def error_id(self, code: str) -> int:
        return _NUMERIC_IDS.get(code, 1) if self.error_ids == "numeric" else 1

    def http_status(self, code: str) -> int:
        if self.error_http == "table":
            return error_status(code)
        if self.error_http == "capsolver":
            return 401 if code == "ERROR_KEY_DENIED_ACCESS" else 400
        return 200


_AC_CODES = {
    "ERROR_WRONG_CAPTCHA_ID": "ERROR_NO_SUCH_CAPCHA_ID",
    "TASK_NOT_SUPPORTED": "ERROR_TASK_NOT_SUPPORTED",
}

#: Every imitated provider, by the name the simulator's ``dialect`` option takes.
SIM_DIALECTS: dict[str, SimDialect] = {
    d.name: d
    for d in (
        SimDialect(
            "ucaptcha",
            create_status="status",
            pending="status",
            cost="number",
            failed="status",
            reports={"feedbackTask": "either"},
            error_http="table",
        ),
        SimDialect(
            "2captcha",
            ids="int",
            reports={
                "reportIncorrect": "invalid",
                "reportCorrect": "valid",
                "reportIncorrectRecaptcha": "invalid",
                "reportIncorrectImageCaptcha": "invalid",
                "reportCorrectRecaptcha": "valid",
            },
            types=_ANTICAPTCHA_NAMES,
            codes=_AC_CODES,
            error_ids="numeric",
            proxy_style="fields",
        ),
        SimDialect(
            "anticaptcha",
            ids="int",
            refund_unsolvable=False,
            reports={
                "reportIncorrectRecaptcha": "invalid",
                "reportIncorrectHcaptcha": "invalid",
                "reportIncorrectImageCaptcha": "invalid",
                "reportCorrectRecaptcha": "valid",
            },
            types=_ANTICAPTCHA_NAMES,
            codes=_AC_CODES,
            error_ids="numeric",
            balance_extra={"captchaCredits": 0},
            proxy_style="fields",
            proxy_needs_ip=True,
        ),
        SimDialect(
            "capsolver",
            create_status="null",
            pending="status",
            cost="none",
            reports={"feedbackTask": "either"},
            types=_CAPSOLVER_NAMES,
            codes={
                "ERROR_KEY_DOES_NOT_EXIST": "ERROR_KEY_DENIED_ACCESS",
                "ERROR_WRONG_CAPTCHA_ID": "ERROR_TASKID_INVALID",
                "TASK_NOT_SUPPORTED": "ERROR_INVALID_TASK_DATA",
            },
            error_http="capsolver",
            balance_extra={"packages": []},
        ),
        SimDialect(
            "capmonster",
            ids="int",
            pending="not_ready",
            cost="none",
            reports={
                "reportIncorrectImageCaptcha": "invalid",
                "reportIncorrectTokenCaptcha": "invalid",
                "reportIncorrectRecaptcha": "invalid",
                "reportIncorrectHcaptcha": "invalid",
            },
            types=_ANTICAPTCHA_NAMES,
            codes=_AC_CODES,
            proxy_style="fields",
            proxy_needs_ip=True,
        ),
    )
}
