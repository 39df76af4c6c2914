"""``ADDONS = {"scrapy_ucaptcha.Addon": 500}``: enables the middleware and the extension."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.settings import SETTINGS_PRIORITIES
from scrapy.utils.misc import load_object

from scrapy_ucaptcha.carry import CARRIER_PRIORITY, UCaptchaCookieCarrier
from scrapy_ucaptcha.extension import UCaptchaExtension
from scrapy_ucaptcha.httpcache import UCaptchaCachePolicy
from scrapy_ucaptcha.identity import UCaptchaIdentityMiddleware
from scrapy_ucaptcha.middleware import UCaptchaMiddleware

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["MIDDLEWARE_PRIORITY", "Addon", "wrap_cache_policy"]

#: After HttpCompression (590, body decompressed) and Redirect (600); before MetaRefresh (580) and
#: Retry (550), which would otherwise retry challenge pages blindly.
MIDDLEWARE_PRIORITY = 585
#: After HttpProxyMiddleware (750) and the rotating-proxy and User-Agent middlewares before it.
IDENTITY_MIDDLEWARE_PRIORITY = 760
EXTENSION_PRIORITY = 500


class Addon:
    """Adds :class:`UCaptchaMiddleware`, :class:`UCaptchaIdentityMiddleware` and
    :class:`UCaptchaExtension` unless already configured (and :class:`UCaptchaCookieCarrier` in a
    distributed crawl); with HttpCache on, wraps its policy in :class:`UCaptchaCachePolicy`."""

    def update_settings(self, settings: BaseSettings) -> None:
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", UCaptchaMiddleware, MIDDLEWARE_PRIORITY
        )
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", UCaptchaIdentityMiddleware, IDENTITY_MIDDLEWARE_PRIORITY
        )
        settings.setdefault_in_component_priority_dict(
            "EXTENSIONS", UCaptchaExtension, EXTENSION_PRIORITY
        )
        if settings.get("UCAPTCHA_REDIS_URL") or settings.get("REDIS_URL"):
            settings.setdefault_in_component_priority_dict(
                "DOWNLOADER_MIDDLEWARES", UCaptchaCookieCarrier, CARRIER_PRIORITY
            )
        if settings.getbool("HTTPCACHE_ENABLED"):
            wrap_cache_policy(settings)


CACHE_POLICY_PATH = "scrapy_ucaptcha.UCaptchaCachePolicy"


def wrap_cache_policy(settings: BaseSettings) -> None:
    """Make :class:`UCaptchaCachePolicy` the HttpCache policy, wrapping the configured one.

    The configured policy moves to ``UCAPTCHA_HTTPCACHE_POLICY`` (unless set there already at a
    higher priority) and keeps deciding everything but challenge pages.
    """
    current = settings.get("HTTPCACHE_POLICY")
    if _is_ours(current):
        return
    priority = max(settings.getpriority("HTTPCACHE_POLICY") or 0, SETTINGS_PRIORITIES["addon"])
    settings.set("UCAPTCHA_HTTPCACHE_POLICY", current, priority=priority)
    settings.set("HTTPCACHE_POLICY", CACHE_POLICY_PATH, priority=priority)


def _is_ours(policy: object) -> bool:
    if isinstance(policy, str):
        try:
            policy = load_object(policy)
        except (ImportError, NameError, ValueError):
            return False
    return isinstance(policy, type) and issubclass(policy, UCaptchaCachePolicy)
