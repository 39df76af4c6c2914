"""Settings → one frozen :class:`Config`, read once at start; a bad value names its setting."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from scrapy.exceptions import NotConfigured
from scrapy.utils.misc import load_object

from scrapy_ucaptcha.client import DEFAULT_API_URL, CaptchaClient, UCaptchaClient, check_api_url
from scrapy_ucaptcha.dialects import DIALECTS, KINDS, Dialect, dialect_for_url, get_dialect
from scrapy_ucaptcha.protocols import (
    CREATE_TASK,
    DBC_PATHS,
    DEFAULT_RISKBYPASS_TASK_TYPES,
    PROTOCOLS,
    DeathByCaptchaClient,
    RiskByPassClient,
    TwoCaptchaLegacyClient,
)
from scrapy_ucaptcha.templates import DEFAULT_TASK_TYPES, TemplateSet
from scrapy_ucaptcha.vocabulary import SELECTION_MODES, SelectionMode

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from scrapy_ucaptcha.detection import Detector

__all__ = ["SELECTION_MODES", "Config", "ConfigError"]

_MISSING = object()
_Name = TypeVar("_Name", bound=str)


class ConfigError(ValueError):
    """A ``UCAPTCHA_*`` setting has a value scrapy-ucaptcha cannot use; the message names it."""


@dataclass(frozen=True)
class Config:
    """Every ``UCAPTCHA_*`` setting, checked. Build it with :meth:`from_settings`."""

    api_key: str = field(repr=False)
    api_url: str = DEFAULT_API_URL
    allow_insecure_http: bool = False
    dialect: Dialect = DIALECTS["ucaptcha"]
    templates: TemplateSet = field(default_factory=TemplateSet)
    task_types: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType(dict(DEFAULT_TASK_TYPES))
    )
    detectors: tuple[Detector, ...] = ()
    poll_interval: float = 5.0
    first_poll: float | None = None
    solve_time_prior: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    solve_timeout: float = 300.0
    max_attempts: int = 3
    max_concurrent_tasks: int = 200
    budget: float | None = None
    prices: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    price_estimates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    balance_interval: float = 60.0
    selection_mode: SelectionMode | None = None
    provider: str | None = None
    feedback: bool = True
    feedback_accepted: bool = True
    reissue_priority: int = 100
    check_balance: bool = True
    http_timeout: float = 30.0
    max_retries: int = 4
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_deadline: float = 120.0
    max_connections: int = 10
    callback_url: str | None = None
    callback_listen: tuple[str, int] | None = None
    protocol: str = CREATE_TASK
    balance_per_usd: float = 1.0
    dbc_paths: str = "ucaptcha"
    #: ``(kind, task_type)`` pairs of the RiskByPass protocol.
    riskbypass_task_types: tuple[tuple[str, str], ...] = tuple(
        DEFAULT_RISKBYPASS_TASK_TYPES.items()
    )
    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    redis_prefix: str = "ucaptcha:%(spider)s"
    lease_time: float = 30.0
    proxy_passthrough: bool = True
    proxy_allow_private: bool = False
    #: Every ``UCAPTCHA_*`` name this configuration was read from (for the start checks).
    setting_names: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: BaseSettings) -> Config:
        """Read and check the settings; raise :class:`NotConfigured` when disabled and
        :class:`ConfigError` (naming the setting) for any unusable value."""
        reader = _Reader(settings)
        if not reader.boolean("UCAPTCHA_ENABLED", True):
            raise NotConfigured("scrapy-ucaptcha is disabled (UCAPTCHA_ENABLED=False)")
        if not settings.getbool("TWISTED_REACTOR_ENABLED", True):
            raise ConfigError(
                "scrapy-ucaptcha needs the Twisted asyncio reactor: its API client runs on "
                "Twisted, which Scrapy's reactorless mode (TWISTED_REACTOR_ENABLED=False) lacks"
            )
        api_key = reader.raw_or_none("UCAPTCHA_API_KEY") or os.environ.get("UCAPTCHA_API_KEY", "")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ConfigError(
                "UCAPTCHA_API_KEY is not set: set it in the settings or in the environment "
                "(or set UCAPTCHA_ENABLED=False to turn scrapy-ucaptcha off)"
            )
        allow_insecure = reader.boolean("UCAPTCHA_ALLOW_INSECURE_HTTP", False)
        api_url = reader.string("UCAPTCHA_API_URL", DEFAULT_API_URL)
        try:
            api_url = check_api_url(api_url, allow_insecure_http=allow_insecure)
        except ValueError as exc:
            unlock = ""
            if urlsplit(api_url).scheme == "http" and not allow_insecure:
                unlock = " (UCAPTCHA_ALLOW_INSECURE_HTTP = True allows it)"
            raise ConfigError(f"UCAPTCHA_API_URL: {exc}{unlock}") from None
        dialect_name = reader.optional_string("UCAPTCHA_DIALECT")
        try:
            dialect = (
                dialect_for_url(api_url) if dialect_name is None else get_dialect(dialect_name)
            )
        except ValueError as exc:
            raise ConfigError(f"UCAPTCHA_DIALECT: {exc}") from None
        task_types = dict(dialect.task_types)
        overrides = reader.mapping("UCAPTCHA_TASK_TYPES")
        for kind, name in overrides.items():
            if kind not in KINDS or not isinstance(name, str) or not name:
                raise ConfigError(
                    f"UCAPTCHA_TASK_TYPES: {kind!r} → {name!r} is not a known captcha kind "
                    f"mapped to a task type name; kinds: {', '.join(sorted(KINDS))}"
                )
            task_types[kind] = name
        try:
            templates = TemplateSet.from_setting(reader.mapping("UCAPTCHA_TASKS"))
        except ValueError as exc:
            raise ConfigError(f"UCAPTCHA_TASKS: {exc}") from None
        selection_mode = reader.choice("UCAPTCHA_SELECTION_MODE", SELECTION_MODES)
        callback_url, callback_listen = reader.callbacks()
        protocol = reader.string("UCAPTCHA_PROTOCOL", CREATE_TASK)
        if protocol not in (CREATE_TASK, *PROTOCOLS):
            raise ConfigError(
                f"UCAPTCHA_PROTOCOL must be one of {', '.join((CREATE_TASK, *PROTOCOLS))}, "
                f"got {protocol!r}"
            )
        dbc_paths = reader.string("UCAPTCHA_DBC_PATHS", "ucaptcha")
        if dbc_paths not in DBC_PATHS:
            raise ConfigError(
                f"UCAPTCHA_DBC_PATHS must be one of {', '.join(DBC_PATHS)}, got {dbc_paths!r}"
            )
        riskbypass_types = dict(DEFAULT_RISKBYPASS_TASK_TYPES)
        for kind, name in reader.mapping("UCAPTCHA_RISKBYPASS_TASK_TYPES").items():
            if kind not in riskbypass_types or not isinstance(name, str) or not name:
                raise ConfigError(
                    f"UCAPTCHA_RISKBYPASS_TASK_TYPES: {kind!r} → {name!r} is not a task_type "
                    f"name for one of {', '.join(riskbypass_types)}"
                )
            riskbypass_types[kind] = name
        redis_url = reader.redis_url()
        config = cls(
            api_key=api_key.strip(),
            api_url=api_url,
            allow_insecure_http=allow_insecure,
            dialect=dialect,
            templates=templates,
            task_types=MappingProxyType(task_types),
            detectors=reader.detectors("UCAPTCHA_DETECTORS"),
            poll_interval=reader.number("UCAPTCHA_POLL_INTERVAL", 5.0, minimum=0.05),
            first_poll=reader.optional_number("UCAPTCHA_FIRST_POLL", minimum=0.0),
            solve_time_prior=reader.seconds_by_name("UCAPTCHA_SOLVE_TIME_PRIOR"),
            solve_timeout=reader.number("UCAPTCHA_SOLVE_TIMEOUT", 300.0, minimum=0.1),
            max_attempts=reader.integer("UCAPTCHA_MAX_ATTEMPTS", 3, minimum=1),
            max_concurrent_tasks=reader.integer("UCAPTCHA_MAX_CONCURRENT_TASKS", 200, minimum=1),
            budget=reader.optional_number("UCAPTCHA_BUDGET", minimum=0.0),
            prices=reader.prices("UCAPTCHA_PRICES"),
            price_estimates=reader.prices("UCAPTCHA_PRICE_ESTIMATES"),
            balance_interval=reader.number("UCAPTCHA_BALANCE_INTERVAL", 60.0, minimum=1.0),
            selection_mode=selection_mode,
            provider=reader.optional_string("UCAPTCHA_PROVIDER"),
            feedback=reader.boolean("UCAPTCHA_FEEDBACK", True),
            feedback_accepted=reader.boolean("UCAPTCHA_FEEDBACK_ACCEPTED", True),
            reissue_priority=reader.integer("UCAPTCHA_REISSUE_PRIORITY", 100),
            check_balance=reader.boolean("UCAPTCHA_CHECK_BALANCE", True),
            http_timeout=reader.number("UCAPTCHA_HTTP_TIMEOUT", 30.0, minimum=0.01),
            max_retries=reader.integer("UCAPTCHA_MAX_RETRIES", 4, minimum=0),
            backoff_base=reader.number("UCAPTCHA_BACKOFF_BASE", 1.0, minimum=0.0),
            backoff_max=reader.number("UCAPTCHA_BACKOFF_MAX", 30.0, minimum=0.001),
            retry_deadline=reader.number("UCAPTCHA_RETRY_DEADLINE", 120.0, minimum=0.01),
            max_connections=reader.integer("UCAPTCHA_MAX_CONNECTIONS", 10, minimum=1),
            callback_url=callback_url,
            callback_listen=callback_listen,
            protocol=protocol,
            balance_per_usd=reader.number("UCAPTCHA_BALANCE_PER_USD", 1.0, minimum=1e-9),
            dbc_paths=dbc_paths,
            riskbypass_task_types=tuple(riskbypass_types.items()),
            redis_url=redis_url,
            redis_prefix=reader.string("UCAPTCHA_REDIS_PREFIX", "ucaptcha:%(spider)s"),
            lease_time=reader.number("UCAPTCHA_LEASE_TIME", 30.0, minimum=0.3),
            proxy_passthrough=reader.boolean("UCAPTCHA_PROXY_PASSTHROUGH", True),
            proxy_allow_private=reader.boolean("UCAPTCHA_PROXY_ALLOW_PRIVATE", False),
        )
        return replace(config, setting_names=frozenset(reader.seen))

    def make_client(
        self, *, on_call: Callable[[str], None] | None = None, max_connections: int | None = None
    ) -> CaptchaClient:
        """A client for this configuration's protocol, API URL, key, timeouts and retries."""
        transport: dict[str, Any] = {
            "api_url": self.api_url,
            "timeout": self.http_timeout,
            "max_retries": self.max_retries,
            "backoff_base": self.backoff_base,
            "backoff_max": self.backoff_max,
            "retry_deadline": self.retry_deadline,
            "allow_insecure_http": self.allow_insecure_http,
            "max_connections": max_connections or self.max_connections,
            "on_call": on_call,
        }
        if self.protocol == CREATE_TASK:
            return UCaptchaClient(self.api_key, dialect=self.dialect, **transport)
        transport["balance_per_usd"] = self.balance_per_usd
        if self.protocol == DeathByCaptchaClient.protocol:
            return DeathByCaptchaClient(self.api_key, paths=self.dbc_paths, **transport)
        if self.protocol == RiskByPassClient.protocol:
            return RiskByPassClient(
                self.api_key, task_types=dict(self.riskbypass_task_types), **transport
            )
        assert self.protocol == TwoCaptchaLegacyClient.protocol, self.protocol
        return TwoCaptchaLegacyClient(self.api_key, **transport)


class _Reader:
    """Reads settings by type, raising :class:`ConfigError` that names the setting."""

    def __init__(self, settings: BaseSettings) -> None:
        self.settings = settings
        self.seen: set[str] = set()

    def _raw(self, name: str) -> Any:
        self.seen.add(name)
        return self.settings.get(name, _MISSING)

    def raw_or_none(self, name: str) -> Any:
        value = self._raw(name)
        return None if value is _MISSING else value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw(name)
        if value is _MISSING or value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be True or False, got {value!r}")

    def number(self, name: str, default: float, *, minimum: float) -> float:
        value = self.optional_number(name, minimum=minimum)
        return default if value is None else value

    def optional_number(self, name: str, *, minimum: float) -> float | None:
        value = self._raw(name)
        if value is _MISSING or value is None or value == "":
            return None
        try:
            if isinstance(value, bool):
                raise TypeError
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if not number >= minimum or number == float("inf"):
            raise ConfigError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")
        return number

    def integer(self, name: str, default: int, *, minimum: int | None = None) -> int:
        value = self._raw(name)
        if value is _MISSING or value is None or value == "":
            return default
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise TypeError
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
        if minimum is not None and number < minimum:
            raise ConfigError(f"{name} must be >= {minimum}, got {value!r}")
        return number

    def string(self, name: str, default: str) -> str:
        value = self.optional_string(name)
        return default if value is None else value

    def optional_string(self, name: str) -> str | None:
        value = self._raw(name)
        if value is _MISSING or value is None or value == "":
            return None
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
        return value.strip()

    def choice(self, name: str, choices: tuple[_Name, ...]) -> _Name | None:
        """One of ``choices`` (surrounding spaces ignored), or None when unset."""
        value = self.optional_string(name)
        if value is None:
            return None
        for choice in choices:
            if choice == value:
                return choice
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")

    def mapping(self, name: str) -> Mapping[str, Any]:
        value = self._raw(name)
        if value is _MISSING or value is None:
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ConfigError(f"{name} must be a dict (or a JSON object string)") from None
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a dict (or a JSON object string)")
        if isinstance(value, Mapping):
            return dict(value)
        if hasattr(value, "copy_to_dict"):  # a BaseSettings sub-object
            return dict(value.copy_to_dict())
        raise ConfigError(f"{name} must be a dict, got {type(value).__name__}")

    def seconds_by_name(self, name: str) -> Mapping[str, float]:
        """A mapping of names (task types) to positive numbers of seconds."""
        checked: dict[str, float] = {}
        for key, value in self.mapping(name).items():
            if (
                not isinstance(key, str)
                or isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < float("inf")
            ):
                raise ConfigError(
                    f"{name}: {key!r} → {value!r} is not a task type mapped to a positive number "
                    "of seconds"
                )
            checked[key] = float(value)
        return MappingProxyType(checked)

    def redis_url(self) -> str | None:
        """``UCAPTCHA_REDIS_URL``, or scrapy-redis' ``REDIS_URL`` when only that is set."""
        name = "UCAPTCHA_REDIS_URL"
        url = self.optional_string(name)
        if url is None:
            name = "REDIS_URL"
            url = self.optional_string(name)
        if url is None:
            return None
        if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"{name} must be a redis://, rediss:// or unix:// URL")
        try:
            import redis.asyncio  # noqa: F401, PLC0415
        except ImportError:
            raise ConfigError(
                f"{name} is set, and sharing a crawl through Redis needs the redis extra: "
                "pip install 'scrapy-ucaptcha[redis]'"
            ) from None
        return url

    def prices(self, name: str) -> Mapping[str, float]:
        """``{task type or captcha kind: USD}``."""
        table: dict[str, float] = {}
        for key, value in self.mapping(name).items():
            if (
                not isinstance(key, str)
                or not key
                or isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value < float("inf")
            ):
                raise ConfigError(
                    f"{name}: {key!r} → {value!r} is not a task type or captcha kind mapped "
                    f"to a price in USD (a number >= 0)"
                )
            table[key] = float(value)
        return MappingProxyType(table)

    def callbacks(self) -> tuple[str | None, tuple[str, int] | None]:
        url = self.optional_string("UCAPTCHA_CALLBACK_URL")
        listen = self.optional_string("UCAPTCHA_CALLBACK_LISTEN")
        if url is None:
            if listen is not None:
                raise ConfigError("UCAPTCHA_CALLBACK_LISTEN needs UCAPTCHA_CALLBACK_URL")
            return None, None
        parts = urlsplit(url.replace("{port}", "1"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"UCAPTCHA_CALLBACK_URL must be an absolute http(s) URL, got {url!r}")
        if listen is None:
            raise ConfigError(
                "UCAPTCHA_CALLBACK_URL needs UCAPTCHA_CALLBACK_LISTEN, the local 'host:port' "
                "that URL reaches (e.g. '0.0.0.0:8765')"
            )
        host, sep, port = listen.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ConfigError(
                f"UCAPTCHA_CALLBACK_LISTEN must be 'host:port' (port 0: any free), got {listen!r}"
            )
        return url, (host.strip("[]"), int(port))

    def detectors(self, name: str) -> tuple[Detector, ...]:
        from scrapy_ucaptcha.detection import BUILTIN_DETECTORS  # noqa: PLC0415

        value = self._raw(name)
        if value is _MISSING or value is None:
            entries: list[Any] = list(BUILTIN_DETECTORS)
        elif isinstance(value, (list, tuple)):
            entries = list(value)
        else:
            raise ConfigError(f"{name} must be a list of detector classes or import paths")
        result: list[Detector] = []
        for entry in entries:
            try:
                obj = load_object(entry) if isinstance(entry, str) else entry
                detector = obj() if isinstance(obj, type) else obj
            except Exception as exc:
                raise ConfigError(f"{name}: cannot load detector {entry!r}: {exc}") from None
            if not callable(getattr(detector, "detect", None)):
                raise ConfigError(f"{name}: {entry!r} has no detect(response) method")
            result.append(detector)
        return tuple(result)
