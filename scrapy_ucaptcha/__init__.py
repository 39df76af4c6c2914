"""Automatic CAPTCHA solving for Scrapy through the uCaptcha API."""

from scrapy_ucaptcha._version import __version__
from scrapy_ucaptcha.addon import Addon
from scrapy_ucaptcha.carry import UCaptchaCookieCarrier
from scrapy_ucaptcha.client import (
    CaptchaClient,
    RateLimit,
    TaskResult,
    TaskStatus,
    UCaptchaClient,
)
from scrapy_ucaptcha.config import Config, ConfigError
from scrapy_ucaptcha.detection import Challenge, Detector
from scrapy_ucaptcha.dialects import DIALECTS, Dialect
from scrapy_ucaptcha.errors import (
    ApiErrorCode,
    CaptchaSolveError,
    SolveErrorCode,
    UCaptchaBadTaskError,
    UCaptchaError,
    UCaptchaFatalError,
    UCaptchaProtocolError,
    UCaptchaRateLimitError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    UCaptchaTimeoutError,
)
from scrapy_ucaptcha.extension import UCaptchaExtension
from scrapy_ucaptcha.httpcache import UCaptchaCachePolicy
from scrapy_ucaptcha.identity import UCaptchaIdentityMiddleware
from scrapy_ucaptcha.middleware import UCaptchaMiddleware
from scrapy_ucaptcha.vocabulary import (
    CaptchaKind,
    ChallengeKindName,
    InjectMode,
    Scope,
    SelectionMode,
    TaskKind,
    WallKind,
)

__all__ = [
    "DIALECTS",
    "Addon",
    "ApiErrorCode",
    "CaptchaClient",
    "CaptchaKind",
    "CaptchaSolveError",
    "Challenge",
    "ChallengeKindName",
    "Config",
    "ConfigError",
    "Detector",
    "Dialect",
    "InjectMode",
    "RateLimit",
    "Scope",
    "SelectionMode",
    "SolveErrorCode",
    "TaskKind",
    "TaskResult",
    "TaskStatus",
    "UCaptchaBadTaskError",
    "UCaptchaCachePolicy",
    "UCaptchaClient",
    "UCaptchaCookieCarrier",
    "UCaptchaError",
    "UCaptchaExtension",
    "UCaptchaFatalError",
    "UCaptchaIdentityMiddleware",
    "UCaptchaMiddleware",
    "UCaptchaProtocolError",
    "UCaptchaRateLimitError",
    "UCaptchaRetryableError",
    "UCaptchaTaskDeadError",
    "UCaptchaTimeoutError",
    "WallKind",
    "__version__",
]
