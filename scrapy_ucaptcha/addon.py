"""``ADDONS = {"scrapy_ucaptcha.Addon": 500}``: enables the middleware and the extension."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy_ucaptcha.extension import UCaptchaExtension
from scrapy_ucaptcha.middleware import UCaptchaMiddleware

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

__all__ = ["MIDDLEWARE_PRIORITY", "Addon"]

#: After HttpCompression (590, body decompressed) and Redirect (600); before MetaRefresh (580) and
#: Retry (550), which would otherwise retry challenge pages blindly.
MIDDLEWARE_PRIORITY = 585
EXTENSION_PRIORITY = 500


class Addon:
    """Adds :class:`UCaptchaMiddleware` and :class:`UCaptchaExtension` unless already configured."""

    def update_settings(self, settings: BaseSettings) -> None:
        settings.setdefault_in_component_priority_dict(
            "DOWNLOADER_MIDDLEWARES", UCaptchaMiddleware, MIDDLEWARE_PRIORITY
        )
        settings.setdefault_in_component_priority_dict(
            "EXTENSIONS", UCaptchaExtension, EXTENSION_PRIORITY
        )
