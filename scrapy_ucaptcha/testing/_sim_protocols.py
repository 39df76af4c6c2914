"""The simulator's compatibility protocols: each turns its requests into JSON API calls.

A protocol module (``_sim_legacy``, ``_sim_dbc``, ``_sim_riskbypass``) reads one HTTP request
into a :class:`Routed`: the JSON API endpoint and payload it stands for, and how to render the JSON
API's answer in the protocol's own shape. The simulator then runs it like any JSON API request, so
the tasks, tokens, balances, rate limit and faults are the same whatever the protocol.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapy_ucaptcha.testing._sim_api import Answer, ApiError

if TYPE_CHECKING:
    from scrapy_ucaptcha.testing.simulator import Simulator

__all__ = [
    "JSON_API",
    "PROTOCOLS",
    "Rendered",
    "RequestView",
    "Routed",
    "route",
]

#: The name of the uCaptcha JSON API among the protocols (the ``protocol`` of its calls).
JSON_API = "createTask"
#: The compatibility protocols the simulator serves, by the names ``UCAPTCHA_PROTOCOL`` uses.
PROTOCOLS = ("2captcha-legacy", "deathbycaptcha", "riskbypass")

_JSON = b"application/json; charset=utf-8"
_TEXT = b"text/plain; charset=utf-8"


@dataclass
class RequestView:
    """What a protocol reads of one HTTP request."""

    method: str
    path: str
    #: Query and form (urlencoded or multipart) fields: the first value of each, as sent.
    args: dict[str, bytes]
    #: Header names lower-case.
    headers: dict[str, str]
    body: bytes

    def get(self, name: str) -> str | None:
        """A query or form field as text, or ``None``."""
        value = self.args.get(name)
        return None if value is None else value.decode("utf-8", "replace")

    def json_body(self) -> dict[str, Any] | None:
        """The body as a JSON object, or ``None``."""
        try:
            data = json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None
        return data if isinstance(data, dict) else None


@dataclass
class Rendered:
    """An answer in a protocol's shape."""

    status: int
    body: bytes
    content_type: bytes = _JSON
    headers: dict[bytes, bytes] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, **headers: bytes) -> Rendered:
        body = json.dumps(payload, separators=(",", ":")).encode()
        return cls(status, body, _JSON, {k.encode(): v for k, v in headers.items()})

    @classmethod
    def text(cls, status: int, text: str) -> Rendered:
        return cls(status, text.encode(), _TEXT)


@dataclass
class Routed:
    """A protocol request read as a JSON API call."""

    protocol: str
    endpoint: str  # createTask | getTaskResult | getBalance | feedbackTask
    payload: dict[str, Any] | None
    render: Callable[[Answer], Rendered]
    #: The request is invalid in the protocol: answer this error without processing.
    error: ApiError | None = None
    #: Runs after a processed request with its JSON API answer (e.g. a refund on a report).
    after: Callable[[Answer], None] | None = None


def route(sim: Simulator, view: RequestView) -> Routed | None:
    """The compatibility-protocol request ``view`` is, or ``None`` for a JSON API path."""
    from scrapy_ucaptcha.testing import _sim_dbc, _sim_legacy, _sim_riskbypass  # noqa: PLC0415

    for module in (_sim_legacy, _sim_riskbypass, _sim_dbc):  # /api/user/balance before /api/
        routed: Routed | None = module.route(sim, view)
        if routed is not None:
            return routed
    return None


# --- helpers the protocol modules share -----------------------------------------------------------


def token_of(solution: Mapping[str, Any] | None) -> str:
    """The token or answer text of a JSON API solution."""
    solution = solution or {}
    for name in ("text", "token", "gRecaptchaResponse"):
        value = solution.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def proxy_url(proxy: str | None, proxy_type: str | None) -> str | None:
    """A ``type://user:pass@host:port`` proxy string from a protocol's proxy fields."""
    if not proxy:
        return None
    if "://" in proxy:
        return proxy
    return f"{(proxy_type or 'http').lower()}://{proxy}"


def token_task(
    family: str,
    *,
    url: str | None,
    sitekey: str | None,
    proxy: str | None = None,
    version: str = "v2",
    enterprise: bool = False,
) -> dict[str, Any]:
    """A JSON API ``task`` for a token captcha (the Proxyless type unless a proxy is given)."""
    if family == "recaptcha":
        base = "RecaptchaV3Task" if version == "v3" else "RecaptchaV2Task"
        if enterprise and version != "v3":
            base = "RecaptchaV2EnterpriseTask"
    elif family == "hcaptcha":
        base = "HCaptchaTask"
    else:
        base = "TurnstileTask"
    task: dict[str, Any] = {"type": base if proxy else f"{base}Proxyless"}
    if url is not None:
        task["websiteURL"] = url
    if sitekey is not None:
        task["websiteKey"] = sitekey
    if proxy:
        task["proxy"] = proxy
    if enterprise and version == "v3":
        task["isEnterprise"] = True
    return task


def image_task(data: str | None) -> dict[str, Any]:
    """A JSON API ``ImageToTextTask`` from base64 image data."""
    return {"type": "ImageToTextTask", "body": data or ""}


def decode_file(value: bytes) -> str:
    """A file field's bytes as the base64 text the JSON API takes."""
    return base64.b64encode(value).decode("ascii")


def owner_key(sim: Simulator, task_id: str) -> str | None:
    """The key that created ``task_id`` (protocols that poll without the key)."""
    return sim._task_keys.get(task_id)


def number(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        return None
