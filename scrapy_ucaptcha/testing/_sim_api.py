"""What the simulated uCaptcha API accepts: task types, error codes and request validation."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from scrapy_ucaptcha.testing._sim_kinds import KEY_FIELDS, MORE_TASK_TYPES, read_more_fields

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

__all__ = [
    "ERRORS",
    "SELECTION_MODES",
    "TASK_TYPES",
    "Answer",
    "ApiError",
    "TaskSpec",
    "check_options",
    "error_body",
    "error_status",
    "parse_task",
    "task_family",
]

# Task type -> family. Names seen in uCaptcha's docs are marked [U]; the others are the
# Anti-Captcha [AC] / CapSolver [CS] spellings uCaptcha's compat layer is assumed to accept, and
# native "...Token..." spellings extrapolated from the [U] ones. A name without the
# Proxyless/ProxyLess suffix is the variant that takes the caller's proxy.
_RECAPTCHA = (
    "RecaptchaV2TaskProxyless",  # [U] examples, [AC]
    "RecaptchaV2Task",
    "NoCaptchaTaskProxyless",  # old [AC] alias
    "NoCaptchaTask",
    "ReCaptchaV2TaskProxyLess",  # [CS]
    "ReCaptchaV2Task",
    "ReCaptchaV2TokenProxyLess",  # [U] native
    "ReCaptchaV2Token",
    "RecaptchaV2EnterpriseTaskProxyless",  # [AC]
    "RecaptchaV2EnterpriseTask",
    "ReCaptchaV2EnterpriseTaskProxyLess",  # [CS]
    "ReCaptchaV2EnterpriseTask",
    "ReCaptchaV2EnterpriseTokenProxyLess",  # native, extrapolated
    "ReCaptchaV2EnterpriseToken",
    "RecaptchaV3TaskProxyless",  # [AC]
    "RecaptchaV3Task",
    "ReCaptchaV3TaskProxyLess",  # [CS]
    "ReCaptchaV3Task",
    "ReCaptchaV3EnterpriseTaskProxyLess",  # [CS]
    "ReCaptchaV3EnterpriseTask",
    "ReCaptchaV3TokenProxyLess",  # native, extrapolated
    "ReCaptchaV3Token",
)
_HCAPTCHA = (
    "HCaptchaTaskProxyless",  # [AC]
    "HCaptchaTask",
    "HCaptchaTaskProxyLess",  # [CS]
    "HardCaptchaTokenProxyLess",  # [U] native (x402 price list)
    "HardCaptchaToken",
)
_TURNSTILE = (
    "TurnstileTaskProxyless",  # [AC]
    "TurnstileTask",
    "AntiTurnstileTaskProxyLess",  # [CS]
    "AntiTurnstileTask",
    "TurnstileTokenProxyLess",  # [U] native
    "TurnstileToken",
)

# Walls whose solution is a cookie bound to the proxy and User-Agent it was solved with.
_DATADOME = ("DatadomeSliderTask", "DataDomeSliderTask")  # [CS] (both spellings in its docs)
_CLOUDFLARE = ("AntiCloudflareTask",)  # [CS]: the challenge page, proxy required
_AWS_WAF = (
    "AmazonTaskProxyless",  # [AC]
    "AmazonTask",
    "AntiAwsWafTaskProxyLess",  # [CS]
    "AntiAwsWafTask",
)

#: Every accepted task type and its family (``recaptcha``, ``hcaptcha``, ``turnstile``, ``image``,
#: and the cookie walls ``datadome``, ``cloudflare``, ``aws_waf``).
TASK_TYPES: dict[str, str] = {
    **dict.fromkeys(_RECAPTCHA, "recaptcha"),
    **dict.fromkeys(_HCAPTCHA, "hcaptcha"),
    **dict.fromkeys(_TURNSTILE, "turnstile"),
    "ImageToTextTask": "image",
    **dict.fromkeys(_DATADOME, "datadome"),
    **dict.fromkeys(_CLOUDFLARE, "cloudflare"),
    **dict.fromkeys(_AWS_WAF, "aws_waf"),
    **MORE_TASK_TYPES,  # Arkose, GeeTest, Friendly Captcha, MTCaptcha, Yandex SmartCaptcha
}
#: Families whose solution is a cookie rather than a token.
COOKIE_FAMILIES = frozenset({"datadome", "cloudflare", "aws_waf"})
#: Families whose task always needs the caller's proxy, whatever the type's name.
_PROXY_REQUIRED = frozenset({"datadome", "cloudflare"})

#: Values of createTask's ``selectionMode`` [U].
SELECTION_MODES = frozenset({"autoCheapest", "autoFastest", "autoMostReliable", "priority"})

#: Error code -> (HTTP status, description). The first block is uCaptcha's own table [U]; the rest
#: are codes the simulator itself uses. Codes not listed are answered with HTTP 200, as
#: createTask-compatible providers do.
ERRORS: dict[str, tuple[int, str]] = {
    "ERROR_KEY_DOES_NOT_EXIST": (401, "The API key does not exist or was revoked"),
    "ERROR_WRONG_USER_KEY": (401, "Invalid API key format"),
    "ERROR_ZERO_BALANCE": (402, "Insufficient balance"),
    "ERROR_PAGEURL": (400, "websiteURL is missing or is not an absolute URL"),
    "ERROR_SITEKEY": (400, "websiteKey is missing or invalid"),
    "ERROR_BAD_PARAMETERS": (400, "A required parameter is missing or invalid"),
    "ERROR_BAD_PROXY": (400, "The proxy is unreachable or its credentials are wrong"),
    "ERROR_PROXY_FORMAT": (
        400,
        "Proxy format not recognised: use type://user:pass@ip:port, "
        "or user:pass@ip:port with proxyType",
    ),
    "ERROR_CAPTCHA_UNSOLVABLE": (200, "Provider could not solve the captcha"),
    "ERROR_WRONG_CAPTCHA_ID": (404, "Task not found or expired"),
    "ERROR_EMPTY_ACTION": (400, "The action parameter is missing"),
    "ERROR_GOOGLEKEY": (400, "googlekey is missing or invalid"),
    "CAPCHA_NOT_READY": (200, "The captcha is not solved yet"),
    "TASK_NOT_SUPPORTED": (400, "This task type is not supported"),
    # [U] table cut at "NO_PROVIDERS_AVAILAB..."; the status is a guess (transient).
    "NO_PROVIDERS_AVAILABLE": (503, "No provider can solve this task type right now"),
    # Not in uCaptcha's table:
    "ERROR_RATE_LIMIT": (429, "Rate limit exceeded"),
    "ERROR_NO_SUCH_METHOD": (404, "No such API method"),
    "ERROR_ZERO_CAPTCHA_FILESIZE": (400, "The captcha image is empty"),
    "ERROR_TOO_BIG_CAPTCHA_FILESIZE": (400, "The captcha image is too big"),
    "ERROR_INTERNAL": (500, "Internal simulator error"),
}

_MAX_IMAGE_BYTES = 500_000


def error_status(code: str) -> int:
    """The HTTP status the API answers ``code`` with."""
    return ERRORS.get(code, (200, ""))[0]


def error_body(code: str, description: str | None = None) -> dict[str, Any]:
    """An ``errorId: 1`` answer."""
    text = description or ERRORS.get(code, (200, code))[1] or code
    return {"errorId": 1, "errorCode": code, "errorDescription": text}


class ApiError(Exception):
    """A request the API refuses; becomes an ``errorId: 1`` answer."""

    def __init__(self, code: str, description: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.description = description

    @property
    def status(self) -> int:
        return error_status(self.code)

    def answer(self) -> Answer:
        return Answer(self.status, error_body(self.code, self.description))


@dataclass
class Answer:
    """An API answer: HTTP status and JSON body, or ``later``, a Deferred firing with the answer."""

    status: int
    body: dict[str, Any]
    later: Deferred[Answer] | None = field(default=None, repr=False)


def task_family(task_type: str | None) -> str:
    """The family of a task type, or ``""``."""
    return TASK_TYPES.get(task_type or "", "")


@dataclass(frozen=True)
class TaskSpec:
    """A validated createTask ``task`` object."""

    type: str
    family: str
    website_url: str | None
    website_key: str | None
    action: str
    image: bytes | None
    #: The login of the proxy the task is solved through (``""``: a proxy without login), or
    #: None for a proxyless task; the simulated solver "goes out" through that login's exit.
    proxy_login: str | None = None
    user_agent: str | None = None
    version: int | None = None  # GeeTest 3 or 4


def _is_absolute_http_url(value: object) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    parts = urlsplit(value.strip())
    return parts.scheme in ("http", "https") and bool(parts.hostname)


_PROXY_URL = re.compile(
    r"^(?:(?:https?|socks4|socks5)://)?(?:[^:@/\s]+:[^@/\s]*@)?[^:@/\s]+:\d{1,5}$"
)
_PROXY_COLON = re.compile(r"^(?:https?|socks4|socks5):[^:@/\s]+:\d{1,5}(?::[^:\s]+:[^:\s]*)?$")


def _check_proxy(task: dict[str, Any]) -> str:
    """Check the task's proxy; return its login (``""`` without one)."""
    proxy = task.get("proxy")
    if proxy is not None:
        if not isinstance(proxy, str) or not (_PROXY_URL.match(proxy) or _PROXY_COLON.match(proxy)):
            raise ApiError("ERROR_PROXY_FORMAT")
        return _login_of(proxy)
    address, port = task.get("proxyAddress"), task.get("proxyPort")
    if address is None and port is None:
        raise ApiError("ERROR_BAD_PARAMETERS", "This task type needs a proxy (proxy field)")
    if not isinstance(address, str) or not address or isinstance(port, bool):
        raise ApiError("ERROR_PROXY_FORMAT")
    try:
        port_number = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ApiError("ERROR_PROXY_FORMAT") from None
    if not 0 < port_number < 65536:
        raise ApiError("ERROR_PROXY_FORMAT")
    login = task.get("proxyLogin")
    return unquote(login) if isinstance(login, str) else ""


def _login_of(proxy: str) -> str:
    if "://" in proxy or "@" in proxy:
        auth = proxy.partition("://")[2] if "://" in proxy else proxy
        userinfo, at, _ = auth.rpartition("@")
        return unquote(userinfo.partition(":")[0]) if at else ""
    parts = proxy.split(":")  # scheme:host:port[:login:password]
    return parts[3] if len(parts) >= 5 else ""


def _action_of(task: dict[str, Any]) -> str:
    metadata = task.get("metadata")
    candidates = [task.get("pageAction"), task.get("action")]
    if isinstance(metadata, dict):
        candidates.append(metadata.get("action"))
    for value in candidates:
        if isinstance(value, str) and value:
            return value
    return ""


def _decode_image(body: object) -> bytes:
    if not isinstance(body, str):
        raise ApiError("ERROR_BAD_PARAMETERS", "body (the base64 image) is required")
    try:
        image = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("ERROR_BAD_PARAMETERS", "body is not valid base64") from None
    if not image:
        raise ApiError("ERROR_ZERO_CAPTCHA_FILESIZE")
    if len(image) > _MAX_IMAGE_BYTES:
        raise ApiError("ERROR_TOO_BIG_CAPTCHA_FILESIZE")
    return image


def parse_task(task: object) -> TaskSpec:
    """Validate createTask's ``task`` object like uCaptcha does; raise :class:`ApiError`."""
    if not isinstance(task, dict):
        raise ApiError("ERROR_BAD_PARAMETERS", "task must be an object")
    task_type = task.get("type")
    if not isinstance(task_type, str) or not task_type:
        raise ApiError("ERROR_BAD_PARAMETERS", "task.type is required")
    family = TASK_TYPES.get(task_type)
    if family is None:
        raise ApiError("TASK_NOT_SUPPORTED", f"Task type {task_type!r} is not supported")
    if family == "image":
        return TaskSpec(task_type, family, None, None, "", _decode_image(task.get("body")))
    url = task.get("websiteURL")
    if not _is_absolute_http_url(url):
        raise ApiError("ERROR_PAGEURL")
    assert isinstance(url, str)
    key_field = KEY_FIELDS.get(family, "websiteKey")
    sitekey = _wall_key(family, task) if family in COOKIE_FAMILIES else task.get(key_field)
    if not isinstance(sitekey, str) or not sitekey.strip():
        raise ApiError("ERROR_SITEKEY", f"{key_field} is missing or invalid")
    action, version = _action_of(task), None
    if family in MORE_TASK_TYPES.values():
        try:
            action, version = read_more_fields(family, task)
        except ValueError as exc:
            raise ApiError("ERROR_BAD_PARAMETERS", str(exc)) from None
    login = None
    if family in _PROXY_REQUIRED or not task_type.lower().endswith("proxyless"):
        login = _check_proxy(task)
    agent = task.get("userAgent")
    if agent is not None and (not isinstance(agent, str) or not agent.strip()):
        raise ApiError("ERROR_BAD_PARAMETERS", "userAgent must be a non-empty string")
    if family == "datadome" and agent is None:
        raise ApiError("ERROR_BAD_PARAMETERS", "userAgent is required: the cookie is bound to it")
    return TaskSpec(
        task_type,
        family,
        url.strip(),
        sitekey.strip(),
        action,
        None,
        proxy_login=login,
        user_agent=agent.strip() if isinstance(agent, str) else None,
        version=version,
    )


def _wall_key(family: str, task: dict[str, Any]) -> str:
    """What a cookie wall's solution is "for" (the simulator's stand-in for a site key)."""
    if family == "datadome":
        captcha_url = task.get("captchaUrl")
        if not _is_absolute_http_url(captcha_url):
            raise ApiError("ERROR_BAD_PARAMETERS", "captchaUrl is required")
        assert isinstance(captcha_url, str)
        t = parse_qs(urlsplit(captcha_url).query).get("t", [""])[0]
        if t != "fe":
            raise ApiError(
                "ERROR_BAD_PARAMETERS", f"captchaUrl has t={t or '?'}: only t=fe can be solved"
            )
        return "datadome"
    if family == "aws_waf":
        # Anti-Captcha's field names, or CapSolver's
        for name, alias in (("websiteKey", "awsKey"), ("iv", "awsIv"), ("context", "awsContext")):
            value = task.get(name) or task.get(alias)
            if not isinstance(value, str) or not value:
                raise ApiError("ERROR_BAD_PARAMETERS", f"{name} (window.gokuProps) is required")
        return "aws_waf"
    return "cloudflare"


def check_options(payload: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """Validate createTask's ``callbackUrl``, ``selectionMode`` and ``provider``."""
    callback_url = payload.get("callbackUrl")
    if callback_url is not None and not _is_absolute_http_url(callback_url):
        raise ApiError("ERROR_BAD_PARAMETERS", "callbackUrl must be an absolute http(s) URL")
    mode = payload.get("selectionMode")
    if mode is not None and mode not in SELECTION_MODES:
        raise ApiError(
            "ERROR_BAD_PARAMETERS",
            f"selectionMode must be one of {', '.join(sorted(SELECTION_MODES))}",
        )
    provider = payload.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise ApiError("ERROR_BAD_PARAMETERS", "provider must be a provider name")
    return callback_url, mode, provider
