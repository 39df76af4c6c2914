"""Clients for uCaptcha's compatibility protocols, with the createTask client's interface.

``UCAPTCHA_PROTOCOL`` picks one: ``createTask`` (the JSON API, spoken by
:class:`~scrapy_ucaptcha.UCaptchaClient`), ``2captcha-legacy``, ``deathbycaptcha`` or
``riskbypass``.
"""

from __future__ import annotations

from scrapy_ucaptcha.protocols._base import ProtocolClient
from scrapy_ucaptcha.protocols.deathbycaptcha import DBC_PATHS, DeathByCaptchaClient
from scrapy_ucaptcha.protocols.legacy import TwoCaptchaLegacyClient
from scrapy_ucaptcha.protocols.riskbypass import DEFAULT_RISKBYPASS_TASK_TYPES, RiskByPassClient

__all__ = [
    "CREATE_TASK",
    "DBC_PATHS",
    "DEFAULT_RISKBYPASS_TASK_TYPES",
    "PROTOCOLS",
    "DeathByCaptchaClient",
    "ProtocolClient",
    "RiskByPassClient",
    "TwoCaptchaLegacyClient",
]

#: The ``UCAPTCHA_PROTOCOL`` value of the createTask JSON API (the default).
CREATE_TASK = "createTask"

#: ``UCAPTCHA_PROTOCOL`` values of the compatibility protocols, and their clients.
PROTOCOLS: dict[str, type[ProtocolClient]] = {
    TwoCaptchaLegacyClient.protocol: TwoCaptchaLegacyClient,
    DeathByCaptchaClient.protocol: DeathByCaptchaClient,
    RiskByPassClient.protocol: RiskByPassClient,
}
