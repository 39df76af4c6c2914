"""Start checks: misspelled settings, the middleware's position, HttpCache without our policy."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from crawling import Env, crawl, page
from scrapy import Spider
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import Addon, Config, ConfigError, UCaptchaMiddleware
from scrapy_ucaptcha.checks import (
    OTHER_SETTINGS,
    check_cache_policy,
    check_position,
    check_setting_names,
)
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
MW = "scrapy_ucaptcha.UCaptchaMiddleware"


def _known(**settings: Any) -> frozenset[str]:
    config = Config.from_settings(Settings({"UCAPTCHA_API_KEY": DEFAULT_API_KEY, **settings}))
    return config.setting_names | OTHER_SETTINGS


def test_a_misspelled_setting_is_named_with_the_closest_one() -> None:
    settings = Settings({"UCAPTCHA_POLL_INTERVALL": 1, "UCAPTCHA_BUGDET": 2, "UCAPTCHA_XYZZY": 3})
    assert check_setting_names(settings, _known()) == [
        "UCAPTCHA_BUGDET is not a scrapy-ucaptcha setting, it is ignored; "
        "did you mean UCAPTCHA_BUDGET?",
        "UCAPTCHA_POLL_INTERVALL is not a scrapy-ucaptcha setting, it is ignored; "
        "did you mean UCAPTCHA_POLL_INTERVAL?",
        "UCAPTCHA_XYZZY is not a scrapy-ucaptcha setting, it is ignored",
    ]


def test_every_documented_setting_is_known() -> None:
    documented = set(re.findall(r"^\| `(UCAPTCHA_[A-Z_]+)` \|", README, re.M))
    assert len(documented) >= 27
    assert documented <= _known()
    settings = Settings(dict.fromkeys(documented, None))
    assert check_setting_names(settings, _known()) == []


def _position(priority: int, **extra: int) -> list[str]:
    return check_position(
        Settings({"DOWNLOADER_MIDDLEWARES": {MW: priority, **extra}}), UCaptchaMiddleware
    )


def test_the_default_position_passes() -> None:
    assert _position(585) == []
    assert _position(581) == []


def test_below_retry_says_what_goes_wrong_and_the_right_priority() -> None:
    assert _position(50) == [
        "UCaptchaMiddleware is at priority 50, which must be above RetryMiddleware's 550: "
        "otherwise RetryMiddleware would retry challenge pages served with 429/503 blindly, and "
        "log an ERROR when it gives up on them; set its DOWNLOADER_MIDDLEWARES priority between "
        "580 and 590, e.g. 585",
        "UCaptchaMiddleware is at priority 50, which must be above MetaRefreshMiddleware's 580: "
        "otherwise MetaRefreshMiddleware would follow a challenge page's meta refresh before it "
        "is solved; set its DOWNLOADER_MIDDLEWARES priority between 580 and 590, e.g. 585",
    ]


def test_above_compression_and_redirect() -> None:
    warnings = _position(950)
    assert len(warnings) == 2
    assert (
        "below HttpCompressionMiddleware's 590: otherwise the middleware would see "
        in (warnings[0])
    )
    assert "compressed bodies" in warnings[0]
    assert "below RedirectMiddleware's 600" in warnings[1]
    assert warnings[1].endswith("between 580 and 590, e.g. 585")


def test_moved_builtins_move_the_advice() -> None:
    retry = "scrapy.downloadermiddlewares.retry.RetryMiddleware"
    (warning,) = _position(585, **{retry: 586})
    assert warning.endswith("between 586 and 590, e.g. 587")
    compression = "scrapy.downloadermiddlewares.httpcompression.HttpCompressionMiddleware"
    warnings = _position(585, **{retry: 600, compression: 550})
    assert all(
        w.endswith("give the built-in middlewares their default priorities back") for w in warnings
    )


def test_a_disabled_builtin_is_not_checked() -> None:
    retry = "scrapy.downloadermiddlewares.retry.RetryMiddleware"
    meta_refresh = "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware"
    assert _position(50, **{retry: None, meta_refresh: None}) == []  # type: ignore[arg-type]


def test_httpcache_without_our_policy_is_warned() -> None:
    manual = Settings({"HTTPCACHE_ENABLED": True})
    (warning,) = check_cache_policy(manual)
    assert "'scrapy.extensions.httpcache.DummyPolicy'" in warning
    assert "HTTPCACHE_POLICY = 'scrapy_ucaptcha.UCaptchaCachePolicy'" in warning
    assert check_cache_policy(Settings({})) == []
    ours = Settings(
        {"HTTPCACHE_ENABLED": True, "HTTPCACHE_POLICY": "scrapy_ucaptcha.UCaptchaCachePolicy"}
    )
    assert check_cache_policy(ours) == []
    with_addon = get_crawler(
        Spider,
        {"ADDONS": {Addon: 500}, "HTTPCACHE_ENABLED": True, "UCAPTCHA_API_KEY": DEFAULT_API_KEY},
    )
    assert check_cache_policy(with_addon.settings) == []


def test_the_insecure_http_refusal_names_the_setting_that_allows_it() -> None:
    settings = Settings(
        {"UCAPTCHA_API_KEY": DEFAULT_API_KEY, "UCAPTCHA_API_URL": "http://api.example.com"}
    )
    with pytest.raises(ConfigError, match=r"UCAPTCHA_ALLOW_INSECURE_HTTP = True allows it"):
        Config.from_settings(settings)
    settings.set("UCAPTCHA_ALLOW_INSECURE_HTTP", True)
    assert Config.from_settings(settings).api_url == "http://api.example.com"


@deferred_f_from_coro_f
async def test_a_crawl_logs_each_warning_once(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    path = f"/item/{min(env.site.guarded_items)}"
    result = await crawl(
        env,
        [page(path)],
        DOWNLOADER_MIDDLEWARES={},
        ADDONS={Addon: 500},
        UCAPTCHA_POLL_INTERVALL=1,
    )
    assert result.stats["ucaptcha/solved"] == 1
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "scrapy_ucaptcha.checks" and r.levelno == logging.WARNING
    ]
    assert warnings == [
        "UCAPTCHA_POLL_INTERVALL is not a scrapy-ucaptcha setting, it is ignored; "
        "did you mean UCAPTCHA_POLL_INTERVAL?"
    ]
