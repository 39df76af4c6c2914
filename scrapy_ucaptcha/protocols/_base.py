"""What the compatibility-protocol clients share: reading a createTask ``task`` into the fields
every protocol needs, remembering each task's kind until its result, and building results."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from scrapy_ucaptcha.client import TaskId, TaskResult, TaskStatus
from scrapy_ucaptcha.dialects import DIALECTS, Dialect
from scrapy_ucaptcha.errors import UCaptchaBadTaskError
from scrapy_ucaptcha.identity import task_secrets
from scrapy_ucaptcha.templates import kind_for_task_type
from scrapy_ucaptcha.transport import DEFAULT_API_URL, ApiTransport

__all__ = ["ProtocolClient", "TaskFields", "protocol_dialect", "read_task"]

#: Kinds of task remembered at once (tasks abandoned mid-poll are forgotten oldest first).
_REMEMBERED = 10_000


@dataclass(frozen=True)
class TaskFields:
    """A createTask ``task`` as the compatibility protocols see it."""

    type: str
    #: ``recaptcha``, ``hcaptcha``, ``turnstile``, ``image`` or ``custom``.
    family: str
    #: ``v2`` or ``v3`` (reCAPTCHA only).
    version: str
    enterprise: bool
    invisible: bool
    url: str | None
    sitekey: str | None
    action: str | None
    min_score: float | None
    #: ``(scheme, "user:pass@host:port")`` when the task asks for the caller's proxy.
    proxy: tuple[str, str] | None
    user_agent: str | None
    #: The base64 image of an image task.
    image: str | None
    raw: Mapping[str, Any]

    @property
    def proxy_url(self) -> str | None:
        """The proxy as ``scheme://user:pass@host:port``."""
        return None if self.proxy is None else f"{self.proxy[0]}://{self.proxy[1]}"


def read_task(task: Mapping[str, Any], protocol: str) -> TaskFields:
    """Read a createTask ``task``; :class:`UCaptchaBadTaskError` if ``protocol`` cannot send it."""
    if not isinstance(task, Mapping) or not isinstance(task.get("type"), str):
        raise TypeError("task must be a mapping with a string 'type'")
    task_type: str = task["type"]
    kind = kind_for_task_type(task_type)
    family = kind.split("_")[0] if kind != "custom" else "custom"
    if family not in ("recaptcha", "hcaptcha", "turnstile", "image"):
        raise UCaptchaBadTaskError(
            f"the {protocol} protocol cannot send a {task_type} task",
            code="TASK_NOT_SUPPORTED",
        )
    action = _text(task.get("pageAction")) or _text(task.get("action"))
    metadata = task.get("metadata")
    if action is None and isinstance(metadata, Mapping):
        action = _text(metadata.get("action"))
    score = task.get("minScore")
    min_score = (
        float(score)
        if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score)
        else None
    )
    return TaskFields(
        type=task_type,
        family=family,
        version="v3" if kind == "recaptcha_v3" else "v2",
        enterprise=kind == "recaptcha_enterprise" or task.get("isEnterprise") is True,
        invisible=task.get("isInvisible") is True,
        url=_text(task.get("websiteURL")),
        sitekey=_text(task.get("websiteKey")) or _text(task.get("websitePublicKey")),
        action=action,
        min_score=min_score,
        proxy=None if task_type.lower().endswith("proxyless") else _proxy(task),
        user_agent=_text(task.get("userAgent")),
        image=_text(task.get("body")),
        raw=task,
    )


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _proxy(task: Mapping[str, Any]) -> tuple[str, str] | None:
    """The task's proxy, from a ``proxy`` string or from split ``proxyAddress``... fields."""
    proxy = _text(task.get("proxy"))
    kind = (_text(task.get("proxyType")) or "http").lower()
    if proxy is not None:
        if "://" in proxy:
            scheme, _, rest = proxy.partition("://")
            return scheme.lower(), rest
        return kind, proxy
    address, port = _text(task.get("proxyAddress")), task.get("proxyPort")
    if address is None or port is None:
        return None
    login, password = _text(task.get("proxyLogin")), task.get("proxyPassword")
    auth = f"{login}:{password or ''}@" if login else ""
    return kind, f"{auth}{address}:{port}"


def protocol_dialect(
    name: str,
    title: str,
    *,
    reject: Mapping[str, str] | None = None,
    accept: Mapping[str, str] | None = None,
) -> Dialect:
    """The :class:`~scrapy_ucaptcha.dialects.Dialect` of a compatibility protocol: uCaptcha's
    task types (the client maps them), its report endpoints, and no cost in any answer."""
    return Dialect(
        name=name,
        title=title,
        hosts=(),
        task_types=DIALECTS["ucaptcha"].task_types,
        reject=MappingProxyType(dict(reject or {})),
        accept=MappingProxyType(dict(accept or {})),
        cost_in_result=False,
    )


class ProtocolClient(ApiTransport):
    """The base of the compatibility-protocol clients: :class:`~scrapy_ucaptcha.UCaptchaClient`'s
    interface (``create_task``, ``get_task_result``, ``get_balance``, ``feedback_task``,
    ``close``) on the shared transport.

    :param balance_per_usd: how many units of the protocol's balance answer make one US dollar
        (1: the answer is in USD, as at uCaptcha; 100: US cents, as DeathByCaptcha itself answers).
    """

    #: The ``UCAPTCHA_PROTOCOL`` value of the protocol.
    protocol = ""
    #: What the solver reads of the protocol: its report endpoints; answers carry no cost.
    dialect: Dialect

    def __init__(
        self,
        api_key: str,
        *,
        api_url: str = DEFAULT_API_URL,
        balance_per_usd: float = 1.0,
        **transport: Any,
    ) -> None:
        super().__init__(api_key, api_url=api_url, **transport)
        if not (balance_per_usd > 0 and math.isfinite(balance_per_usd)):
            raise ValueError(f"balance_per_usd must be > 0, got {balance_per_usd!r}")
        self.balance_per_usd = float(balance_per_usd)
        self._families: dict[str, str] = {}

    def _read(self, task: Mapping[str, Any]) -> TaskFields:
        """The fields of ``task``; its proxy credentials join what is scrubbed from errors."""
        fields = read_task(task, self.protocol)
        self._secrets.update(task_secrets(task))
        return fields

    # --- the interface: each protocol speaks these calls in its own way ------------------------

    async def create_task(
        self,
        task: Mapping[str, Any],
        *,
        callback_url: str | None = None,
        selection_mode: str | None = None,
        provider: str | None = None,
    ) -> TaskResult:
        """Submit ``task``; it comes back pending with its id (``ready`` if solved at once)."""
        raise NotImplementedError(f"{type(self).__name__} does not submit tasks")

    async def get_task_result(self, task_id: TaskId) -> TaskResult:
        """Poll ``task_id``: pending, ready with its solution, or failed."""
        raise NotImplementedError(f"{type(self).__name__} does not poll tasks")

    async def get_balance(self) -> float:
        """The account's balance in USD."""
        raise NotImplementedError(f"{type(self).__name__} does not read balances")

    # --- the kind of each task, for its solution's field names ---------------------------------

    def _remember(self, task_id: TaskId, family: str) -> None:
        if len(self._families) >= _REMEMBERED:
            self._families.pop(next(iter(self._families)))
        self._families[str(task_id)] = family

    def _ready(self, task_id: TaskId, token: str, user_agent: str | None = None) -> TaskResult:
        family = self._families.pop(str(task_id), "")
        if family == "image":
            solution: dict[str, Any] = {"text": token}
        elif family == "recaptcha":
            solution = {"gRecaptchaResponse": token}
        elif family == "hcaptcha":
            solution = {"gRecaptchaResponse": token, "token": token}
        else:
            solution = {"token": token}
        if user_agent:
            solution["userAgent"] = user_agent
        return TaskResult(task_id, TaskStatus.READY, solution=MappingProxyType(solution))

    def _failed(self, task_id: TaskId, code: str, description: str | None = None) -> TaskResult:
        self._families.pop(str(task_id), None)
        return TaskResult(
            task_id,
            TaskStatus.FAILED,
            error_code=code,
            error_description=None if description is None else self._scrub(description)[:200],
        )

    async def feedback_task(
        self, task_id: TaskId, *, invalid: bool, message: str, code: str | None = None
    ) -> None:
        """Tell the API whether the target site accepted a task's solution (:meth:`report`)."""
        await self.report(task_id, accepted=not invalid, family="*", message=message)

    async def report(
        self, task_id: TaskId, *, accepted: bool, family: str = "*", message: str | None = None
    ) -> bool:
        """Report a token's fate where the protocol takes such a report; False (nothing sent)
        where it takes none."""
        endpoint = self.dialect.report_endpoint(family, accepted=accepted)
        if endpoint is None:
            return False
        await self._report(task_id, endpoint)
        return True

    async def _report(self, task_id: TaskId, endpoint: str) -> None:
        raise NotImplementedError(f"{type(self).__name__} sends no {endpoint} report")

    def _usd(self, balance: float) -> float:
        return balance / self.balance_per_usd
