"""What each createTask-compatible provider does differently, in one table.

uCaptcha, 2captcha (API v2), Anti-Captcha, CapSolver and CapMonster Cloud share the createTask /
getTaskResult / getBalance protocol but differ in the details a client must get right: the type
name of each captcha kind, how a task that is not solved yet is described, where a rejected (or
accepted) token is reported, which failures are charged, whether answers carry a cost and the type
of task ids. :data:`DIALECTS` holds one :class:`Dialect` per provider; the client and the solver
read it instead of branching on the provider.

The dialect is chosen from the API host (:func:`dialect_for_url`; unknown hosts speak uCaptcha's)
and can be forced with ``UCAPTCHA_DIALECT``.

Extending the table: a new captcha kind is one entry in each dialect's ``task_types`` (kind → type
name); a provider's other variant of a type name (say with a proxy) is a new mapping field with a
default, filled in where the provider has it. Sources for every value: the providers' public docs
and official SDKs (see the README's provider table).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal
from urllib.parse import urlsplit

__all__ = [
    "DIALECTS",
    "KINDS",
    "NOT_READY_CODES",
    "Dialect",
    "ProxyStyle",
    "ReportStyle",
    "dialect_for_url",
    "get_dialect",
]

#: How a task carries the caller's proxy: one ``proxy`` URL string (``scheme://login:password@
#: host:port``), or the split ``proxyType``/``proxyAddress``/``proxyPort``/``proxyLogin``/
#: ``proxyPassword`` fields.
ProxyStyle = Literal["url", "fields"]

#: How a report is sent: ``feedback`` = ``{taskId, result: {invalid, message}}`` (uCaptcha,
#: CapSolver ``feedbackTask``); ``task_id`` = ``{taskId}`` alone (the ``report*`` methods).
ReportStyle = Literal["feedback", "task_id"]

#: Error codes some providers answer getTaskResult with while a task is still being solved (both
#: spellings are in use: 2captcha's legacy API says ``CAPCHA_NOT_READY``, CapMonster Cloud
#: ``CAPTCHA_NOT_READY``). Such an answer means "ask again later", never an error.
NOT_READY_CODES = frozenset({"CAPCHA_NOT_READY", "CAPTCHA_NOT_READY"})


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


#: Anti-Captcha's type names, which 2captcha v2, CapMonster Cloud and uCaptcha accept too.
_AC_TYPES = {
    "recaptcha_v2": "RecaptchaV2TaskProxyless",
    "recaptcha_v2_invisible": "RecaptchaV2TaskProxyless",
    "recaptcha_v3": "RecaptchaV3TaskProxyless",
    "recaptcha_enterprise": "RecaptchaV2EnterpriseTaskProxyless",
    "hcaptcha": "HCaptchaTaskProxyless",
    "turnstile": "TurnstileTaskProxyless",
    "image": "ImageToTextTask",
    "funcaptcha": "FunCaptchaTaskProxyless",
    "geetest_v3": "GeeTestTaskProxyless",
    "geetest_v4": "GeeTestTaskProxyless",
    "friendly_captcha": "FriendlyCaptchaTaskProxyless",
    "mtcaptcha": "MtCaptchaTaskProxyless",
    "yandex_smartcaptcha": "YandexCaptchaTaskProxyless",
    "aws_waf_captcha": "AmazonTaskProxyless",
}

#: CapSolver's spellings (``ReCaptcha``, ``ProxyLess``, ``AntiTurnstile``).
_CS_TYPES = {
    "recaptcha_v2": "ReCaptchaV2TaskProxyLess",
    "recaptcha_v2_invisible": "ReCaptchaV2TaskProxyLess",
    "recaptcha_v3": "ReCaptchaV3TaskProxyLess",
    "recaptcha_enterprise": "ReCaptchaV2EnterpriseTaskProxyLess",
    "hcaptcha": "HCaptchaTaskProxyLess",
    "turnstile": "AntiTurnstileTaskProxyLess",
    "image": "ImageToTextTask",
    "funcaptcha": "FunCaptchaTaskProxyLess",
    "geetest_v3": "GeeTestTaskProxyLess",
    "geetest_v4": "GeeTestTaskProxyLess",
    "friendly_captcha": "FriendlyCaptchaTaskProxyless",
    "mtcaptcha": "MtCaptchaTaskProxyLess",
    "yandex_smartcaptcha": "YandexCaptchaTaskProxyLess",
    "aws_waf_captcha": "AntiAwsWafTaskProxyLess",
}


@dataclass(frozen=True)
class Dialect:
    """One provider's createTask dialect. Families in ``reject``/``accept`` are ``recaptcha``,
    ``hcaptcha``, ``turnstile``, ``image`` (and ``custom``); ``"*"`` is any other family."""

    #: The name ``UCAPTCHA_DIALECT`` takes.
    name: str
    #: The provider, for messages and the README.
    title: str
    #: API hosts that speak this dialect.
    hosts: tuple[str, ...]
    #: Default createTask ``type`` per captcha kind (``UCAPTCHA_TASK_TYPES`` overrides).
    task_types: Mapping[str, str]
    #: Report endpoint for a token the site rejected, per family (no entry: nothing to report to).
    reject: Mapping[str, str]
    #: Report endpoint for a token the site accepted, per family.
    accept: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    #: The body of a report.
    report_style: ReportStyle = "task_id"
    #: Task statuses that mean "not solved yet". ``None`` stands for ``"status": null`` (or no
    #: status at all), which createTask answers for a task it did not solve at once everywhere,
    #: and CapSolver documents as a value of ``status``.
    pending_statuses: frozenset[str | None] = frozenset({"idle", "processing", None})
    #: ``errorCode`` values of a getTaskResult error answer that mean "not solved yet".
    pending_codes: frozenset[str] = NOT_READY_CODES
    #: Failure codes for which the provider keeps the price (the others are refunded).
    charged_failures: frozenset[str] = frozenset()
    #: Whether a ready answer carries the task's price in ``cost`` (a number or a numeric string).
    #: Without it, cost comes from the user's price table or from balance reconciliation.
    cost_in_result: bool = True
    #: The type of ``taskId`` in createTask's answer (requests send it back as received).
    id_type: type = str
    #: The field of getBalance's answer with the balance (a number or a numeric string).
    balance_field: str = "balance"
    #: How a task carries the request's proxy. The proxied variant of a type is its name without
    #: the ``Proxyless``/``ProxyLess`` suffix, in every dialect (``identity.proxied_type``).
    proxy_style: ProxyStyle = "url"
    #: Whether ``proxyAddress`` must be an IP address (host names are refused).
    proxy_needs_ip: bool = False

    @property
    def reconciles(self) -> bool:
        """Whether some charges have no price in the answers (no ``cost`` at all, or charged
        failures), so that the balance is needed to count them true."""
        return not self.cost_in_result or bool(self.charged_failures)

    def report_endpoint(self, family: str, *, accepted: bool) -> str | None:
        """Where to report a token of ``family``: the endpoint name, or None when the provider
        takes no such report."""
        table = self.accept if accepted else self.reject
        return table.get(family) or table.get("*")


#: Every dialect, by name.
DIALECTS: Mapping[str, Dialect] = MappingProxyType(
    {
        dialect.name: dialect
        for dialect in (
            Dialect(
                name="ucaptcha",
                title="uCaptcha",
                hosts=("api.ucaptcha.net",),
                task_types=_frozen(_AC_TYPES),
                reject=_frozen({"*": "feedbackTask"}),
                accept=_frozen({"*": "feedbackTask"}),
                report_style="feedback",
            ),
            Dialect(
                name="2captcha",
                title="2captcha (API v2)",
                hosts=("api.2captcha.com",),
                task_types=_frozen(_AC_TYPES),
                reject=_frozen({"*": "reportIncorrect"}),
                accept=_frozen({"*": "reportCorrect"}),
                id_type=int,
                proxy_style="fields",
            ),
            Dialect(
                name="anticaptcha",
                title="Anti-Captcha",
                hosts=("api.anti-captcha.com",),
                task_types=_frozen(_AC_TYPES),
                reject=_frozen(
                    {
                        "recaptcha": "reportIncorrectRecaptcha",
                        "hcaptcha": "reportIncorrectHcaptcha",
                        "image": "reportIncorrectImageCaptcha",
                    }
                ),
                accept=_frozen({"recaptcha": "reportCorrectRecaptcha"}),
                pending_statuses=frozenset({"processing", None}),
                charged_failures=frozenset({"ERROR_CAPTCHA_UNSOLVABLE"}),
                id_type=int,
                proxy_style="fields",  # "IPv4/IPv6 address, no host names, no local networks"
                proxy_needs_ip=True,
            ),
            Dialect(
                name="capsolver",
                title="CapSolver",
                hosts=("api.capsolver.com",),
                task_types=_frozen(_CS_TYPES),
                reject=_frozen({"*": "feedbackTask"}),
                accept=_frozen({"*": "feedbackTask"}),
                report_style="feedback",
                cost_in_result=False,
            ),
            Dialect(
                name="capmonster",
                title="CapMonster Cloud",
                hosts=("api.capmonster.cloud",),
                task_types=_frozen(_AC_TYPES),
                reject=_frozen(
                    {"image": "reportIncorrectImageCaptcha", "*": "reportIncorrectTokenCaptcha"}
                ),
                pending_statuses=frozenset({"processing", None}),
                cost_in_result=False,
                id_type=int,
                proxy_style="fields",
                proxy_needs_ip=True,
            ),
        )
    }
)

#: Every captcha kind some dialect has a type name for.
KINDS: frozenset[str] = frozenset(kind for d in DIALECTS.values() for kind in d.task_types)


def get_dialect(name: str) -> Dialect:
    """The dialect called ``name``; :class:`ValueError` listing the names otherwise."""
    try:
        return DIALECTS[name.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown dialect {name!r}; use one of {', '.join(sorted(DIALECTS))}"
        ) from None


def dialect_for_url(api_url: str) -> Dialect:
    """The dialect of the provider at ``api_url``; uCaptcha's for any host not in the table
    (uCaptcha itself, a simulator, a proxy in front of either)."""
    host = (urlsplit(api_url).hostname or "").lower()
    for dialect in DIALECTS.values():
        if host in dialect.hosts:
            return dialect
    return DIALECTS["ucaptcha"]
