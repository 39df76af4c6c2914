"""Task types beyond reCAPTCHA, hCaptcha, Turnstile and images: what the simulator checks in them
and the solutions it hands out, each verifiable by the demo site.

Every solution is bound to what the page gave the task, the way the real services bind theirs:
an Arkose token to the page's data blob, a GeeTest v3 ``validate`` to its ``challenge``, a v4
``captcha_output`` to its ``lot_number``. (AWS WAF tasks are the simulator's cookie walls.)
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha.testing.tokens import sign_token

if TYPE_CHECKING:
    from scrapy_ucaptcha.testing._sim_model import SimTask

__all__ = [
    "KEY_FIELDS",
    "MORE_TASK_TYPES",
    "geetest_pass_token",
    "geetest_v3_seccode",
    "more_solution",
    "read_more_fields",
]

_FAMILIES = {
    "funcaptcha": ("FunCaptchaTaskProxyless", "FunCaptchaTask", "FunCaptchaTaskProxyLess"),
    "geetest": ("GeeTestTaskProxyless", "GeeTestTask", "GeeTestTaskProxyLess"),
    "friendly_captcha": (
        "FriendlyCaptchaTaskProxyless",
        "FriendlyCaptchaTaskProxyLess",
        "FriendlyCaptchaTask",
    ),
    "mtcaptcha": ("MtCaptchaTaskProxyless", "MtCaptchaTaskProxyLess", "MtCaptchaTask"),
    "yandex_smartcaptcha": (
        "YandexCaptchaTaskProxyless",
        "YandexCaptchaTaskProxyLess",
        "YandexCaptchaTask",
    ),
}

#: Task type -> family, for the kinds this module handles.
MORE_TASK_TYPES: dict[str, str] = {
    name: family for family, names in _FAMILIES.items() for name in names
}

#: The task field holding the site key, where it is not ``websiteKey``.
KEY_FIELDS = {"funcaptcha": "websitePublicKey", "geetest": "gt"}


class _Refusal(ValueError):
    """A task field is missing or wrong; the message names it."""


def _text(task: dict[str, Any], name: str) -> str:
    value = task.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _Refusal(f"{name} is required for this task type")
    return value.strip()


def read_more_fields(family: str, task: dict[str, Any]) -> tuple[str, int | None]:
    """Check a task's family-specific fields; return what its solution is bound to (the value
    the demo site checks) and the GeeTest version. Raises ``ValueError`` naming the field."""
    if family == "funcaptcha":
        data = task.get("data")
        if data is None:
            return "", None
        try:
            blob = json.loads(data)["blob"] if isinstance(data, str) else None
        except (ValueError, KeyError, TypeError):
            blob = None
        if not isinstance(blob, str):
            raise _Refusal('data must be a JSON string like {"blob": "..."}')
        return blob, None
    if family == "geetest":
        version = task.get("version", 3)
        if version not in (3, 4, "3", "4"):
            raise _Refusal("version must be 3 or 4")
        if int(version) == 3:
            return _text(task, "challenge"), 3
        init = task.get("initParameters")
        if init is not None and not isinstance(init, dict):
            raise _Refusal("initParameters must be an object")
        captcha_id = (init or {}).get("captcha_id")
        if captcha_id is not None and captcha_id != task.get("gt"):
            raise _Refusal("initParameters.captcha_id differs from gt")
        return "", 4
    return "", None


def geetest_v3_seccode(validate: str) -> str:
    """GeeTest v3's ``seccode`` is its ``validate`` followed by ``|jordan``."""
    return f"{validate}|jordan"


def geetest_pass_token(secret: str, lot_number: str, captcha_output: str) -> str:
    """The v4 ``pass_token`` of a ``lot_number`` and ``captcha_output``."""
    data = f"pass|{lot_number}|{captcha_output}".encode()
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()[:64]


def more_solution(secret: str, task: SimTask, expires_at: float, now: float) -> dict[str, str]:
    """The solution of a task of one of this module's families."""

    def token(bound: str) -> str:
        return sign_token(
            secret,
            family=task.family,
            sitekey=task.website_key or "",
            page_url=task.website_url or "",
            expires_at=expires_at,
            action=bound,
        )

    if task.family == "geetest" and task.version == 4:
        lot_number = secrets.token_hex(16)
        output = token(lot_number)
        return {
            "captcha_id": task.website_key or "",
            "lot_number": lot_number,
            "pass_token": geetest_pass_token(secret, lot_number, output),
            "gen_time": str(int(now)),
            "captcha_output": output,
        }
    if task.family == "geetest":
        validate = token(task.action)
        return {
            "challenge": task.action,
            "validate": validate,
            "seccode": geetest_v3_seccode(validate),
        }
    return {"token": token(task.action)}
