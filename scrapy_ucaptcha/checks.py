"""Mistakes caught at start: misspelled settings, a middleware in the wrong place, HttpCache
without the policy that keeps challenge pages out of it.

Each check returns the warnings to log (plain strings), so that it can be tested without a crawl;
:func:`warn_at_start` logs them once, when the middleware is built.
"""

from __future__ import annotations

import difflib
import logging
from typing import TYPE_CHECKING, Any

from scrapy.utils.misc import load_object

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

    from scrapy_ucaptcha.config import Config

__all__ = ["check_cache_policy", "check_position", "check_setting_names", "warn_at_start"]

logger = logging.getLogger(__name__)

PREFIX = "UCAPTCHA_"

#: Read by other components than :class:`~scrapy_ucaptcha.Config`.
OTHER_SETTINGS = frozenset({"UCAPTCHA_HTTPCACHE_POLICY"})

_BUILTIN = "scrapy.downloadermiddlewares."
RETRY = f"{_BUILTIN}retry.RetryMiddleware"
META_REFRESH = f"{_BUILTIN}redirect.MetaRefreshMiddleware"
COMPRESSION = f"{_BUILTIN}httpcompression.HttpCompressionMiddleware"
REDIRECT = f"{_BUILTIN}redirect.RedirectMiddleware"
HTTPCACHE = f"{_BUILTIN}httpcache.HttpCacheMiddleware"

#: Middlewares whose ``process_response`` must run after ours (lower priority), and why.
_BELOW = {
    RETRY: "RetryMiddleware would retry challenge pages served with 429/503 blindly, and log an "
    "ERROR when it gives up on them",
    META_REFRESH: "MetaRefreshMiddleware would follow a challenge page's meta refresh before it "
    "is solved",
}
#: Middlewares whose ``process_response`` must run before ours (higher priority), and why.
_ABOVE = {
    COMPRESSION: "the middleware would see compressed bodies and miss the challenges in them",
    REDIRECT: "the middleware would see the redirect that follows an accepted token instead of "
    "the page, and could not verify the solve",
}


def warn_at_start(settings: BaseSettings, config: Config, middleware: type) -> None:
    """Log every warning of the start checks."""
    warnings = [
        *check_setting_names(settings, config.setting_names | OTHER_SETTINGS),
        *check_position(settings, middleware),
        *check_cache_policy(settings),
    ]
    for warning in warnings:
        logger.warning("%s", warning)


def check_setting_names(settings: BaseSettings, known: frozenset[str]) -> list[str]:
    """A warning for each ``UCAPTCHA_*`` setting no component reads, with the closest name."""
    warnings = []
    for name in sorted(n for n in settings if isinstance(n, str) and n.startswith(PREFIX)):
        if name in known:
            continue
        # compared without the common prefix, which would make every name look close
        suffixes = sorted(k.removeprefix(PREFIX) for k in known)
        close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
        hint = f"; did you mean {PREFIX}{close[0]}?" if close else ""
        warnings.append(f"{name} is not a scrapy-ucaptcha setting, it is ignored{hint}")
    return warnings


def _priorities(settings: BaseSettings) -> dict[str, int]:
    """Enabled downloader middlewares by import path, with their priorities."""
    result: dict[str, int] = {}
    for key, priority in settings.getwithbase("DOWNLOADER_MIDDLEWARES").items():
        if priority is None:
            continue
        result[_path(key)] = int(priority)
    return result


def _path(component: Any) -> str:
    if isinstance(component, str):
        name: str = component
        try:
            component = load_object(name)
        except (ImportError, NameError, ValueError):
            return name
    module = getattr(component, "__module__", "")
    return f"{module}.{getattr(component, '__qualname__', component)}"


def check_position(settings: BaseSettings, middleware: type) -> list[str]:
    """A warning when the middleware's priority puts it on the wrong side of a built-in one."""
    priorities = _priorities(settings)
    ours = priorities.get(_path(middleware))
    if ours is None:
        return []
    wrong = [
        ("above", path, why)
        for path, why in _BELOW.items()
        if path in priorities and priorities[path] >= ours
    ]
    wrong += [
        ("below", path, why)
        for path, why in _ABOVE.items()
        if path in priorities and priorities[path] <= ours
    ]
    if not wrong:
        return []
    low = max((priorities[p] for p in _BELOW if p in priorities), default=0)
    high = min((priorities[p] for p in _ABOVE if p in priorities), default=1000)
    if low + 1 < high:
        right = 585 if low < 585 < high else low + 1
        advice = f"set its DOWNLOADER_MIDDLEWARES priority between {low} and {high}, e.g. {right}"
    else:
        advice = "no priority fits: give the built-in middlewares their default priorities back"
    name = middleware.__name__
    return [
        f"{name} is at priority {ours}, which must be {side} {path.rsplit('.', 1)[-1]}'s "
        f"{priorities[path]}: otherwise {why}; {advice}"
        for side, path, why in wrong
    ]


def check_cache_policy(settings: BaseSettings) -> list[str]:
    """A warning when HttpCache is on without :class:`UCaptchaCachePolicy` (a setup without the
    add-on): challenge pages would be stored and replayed."""
    from scrapy_ucaptcha.httpcache import UCaptchaCachePolicy  # noqa: PLC0415

    if not settings.getbool("HTTPCACHE_ENABLED") or HTTPCACHE not in _priorities(settings):
        return []
    policy = settings.get("HTTPCACHE_POLICY")
    try:
        cls = load_object(policy) if isinstance(policy, str) else policy
    except (ImportError, NameError, ValueError):
        return []  # HttpCache itself reports it
    if isinstance(cls, type) and issubclass(cls, UCaptchaCachePolicy):
        return []
    return [
        "HttpCache is on with HTTPCACHE_POLICY = "
        f"{policy if isinstance(policy, str) else _path(policy)!r}: challenge pages would be "
        "stored and replayed, so every token would look rejected; set HTTPCACHE_POLICY = "
        "'scrapy_ucaptcha.UCaptchaCachePolicy' (and UCAPTCHA_HTTPCACHE_POLICY to the policy to "
        "wrap), or enable scrapy-ucaptcha with its add-on, which does it"
    ]
