"""Config.from_settings: defaults, parsing of every setting, a message naming each bad one."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from scrapy.exceptions import NotConfigured
from scrapy.http import Response
from scrapy.settings import Settings

from scrapy_ucaptcha.client import DEFAULT_API_URL
from scrapy_ucaptcha.config import SELECTION_MODES, Config, ConfigError
from scrapy_ucaptcha.templates import DEFAULT_TASK_TYPES, Template, TemplateSet

KEY = "ucap_ConfigTestKey0123456789SECRET"


class StubDetector:
    """A minimal detector: anything with ``detect(response)`` qualifies."""

    name = "stub"

    def detect(self, response: Response) -> None:
        return None


class BrokenDetector:
    """A detector class that cannot be instantiated."""

    name = "broken"

    def __init__(self) -> None:
        raise RuntimeError("no detector for you")

    def detect(self, response: Response) -> None:  # pragma: no cover - never built
        return None


class NotADetector:
    """Has no ``detect`` method."""


STUB_PATH = f"{StubDetector.__module__}.{StubDetector.__qualname__}"
BROKEN_PATH = f"{BrokenDetector.__module__}.{BrokenDetector.__qualname__}"


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UCAPTCHA_API_KEY", raising=False)


def build(**values: Any) -> Config:
    settings: dict[str, Any] = {"UCAPTCHA_API_KEY": KEY}
    settings.update(values)
    return Config.from_settings(Settings(settings))


# --- defaults -------------------------------------------------------------------------------------


def test_defaults() -> None:
    config = build()
    assert config.api_key == KEY
    assert config.api_url == DEFAULT_API_URL
    assert config.allow_insecure_http is False
    assert dict(config.task_types) == dict(DEFAULT_TASK_TYPES)
    assert config.templates.for_url("https://example.com/") == Template()
    assert config.poll_interval == 5.0
    assert config.first_poll is None
    assert config.solve_timeout == 300.0
    assert config.max_attempts == 3
    assert config.max_concurrent_tasks == 200
    assert config.budget is None
    assert config.selection_mode is None
    assert config.provider is None
    assert config.feedback is True
    assert config.reissue_priority == 100
    assert config.check_balance is True
    assert config.http_timeout == 30.0
    assert config.max_retries == 4
    assert config.backoff_base == 1.0
    assert config.backoff_max == 30.0
    assert config.retry_deadline == 120.0
    assert config.max_connections == 10


def test_defaults_match_the_dataclass_defaults() -> None:
    config = build()
    for f in dataclasses.fields(Config):
        if f.name in ("api_key", "templates", "task_types", "detectors", "setting_names"):
            continue
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        assert getattr(config, f.name) == default, f.name


def test_config_is_frozen_and_read_only() -> None:
    config = build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_attempts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.task_types["hcaptcha"] = "X"  # type: ignore[index]


def test_repr_hides_the_api_key() -> None:
    assert KEY not in repr(build())
    assert "api_key" not in repr(build())


def test_empty_strings_and_none_mean_default() -> None:
    config = build(
        UCAPTCHA_POLL_INTERVAL="",
        UCAPTCHA_FIRST_POLL=None,
        UCAPTCHA_MAX_ATTEMPTS="",
        UCAPTCHA_BUDGET="",
        UCAPTCHA_SELECTION_MODE="",
        UCAPTCHA_PROVIDER=None,
        UCAPTCHA_API_URL="",
        UCAPTCHA_FEEDBACK=None,
        UCAPTCHA_TASKS=None,
        UCAPTCHA_TASK_TYPES=None,
    )
    assert config.poll_interval == 5.0
    assert config.first_poll is None
    assert config.max_attempts == 3
    assert config.budget is None
    assert config.selection_mode is None
    assert config.provider is None
    assert config.api_url == DEFAULT_API_URL
    assert config.feedback is True
    assert dict(config.task_types) == dict(DEFAULT_TASK_TYPES)


# --- enabling -------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [False, 0, "False", "false", "0", "no", "off", " OFF "])
def test_disabled_raises_not_configured(value: Any) -> None:
    # checked first: no key, reactorless mode and bad values do not matter then
    settings = Settings(
        {
            "UCAPTCHA_ENABLED": value,
            "TWISTED_REACTOR_ENABLED": False,
            "UCAPTCHA_MAX_ATTEMPTS": "many",
        }
    )
    with pytest.raises(NotConfigured, match="UCAPTCHA_ENABLED"):
        Config.from_settings(settings)


@pytest.mark.parametrize("value", [True, 1, "True", "true", "1", "yes", "on"])
def test_enabled_values(value: Any) -> None:
    assert build(UCAPTCHA_ENABLED=value).api_key == KEY


@pytest.mark.parametrize("value", [False, "False", "0"])
def test_reactorless_mode_is_refused(value: Any) -> None:
    with pytest.raises(ConfigError, match="TWISTED_REACTOR_ENABLED"):
        build(TWISTED_REACTOR_ENABLED=value)


def test_reactor_enabled_is_fine() -> None:
    assert build(TWISTED_REACTOR_ENABLED=True).api_key == KEY


# --- API key --------------------------------------------------------------------------------------


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAPTCHA_API_KEY", "  env-key  ")
    assert Config.from_settings(Settings()).api_key == "env-key"


def test_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAPTCHA_API_KEY", "env-key")
    assert build(UCAPTCHA_API_KEY="setting-key").api_key == "setting-key"


def test_empty_setting_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UCAPTCHA_API_KEY", "env-key")
    assert build(UCAPTCHA_API_KEY="").api_key == "env-key"
    assert build(UCAPTCHA_API_KEY=None).api_key == "env-key"


def test_api_key_is_stripped() -> None:
    assert build(UCAPTCHA_API_KEY="\tkey-with-spaces \n").api_key == "key-with-spaces"


@pytest.mark.parametrize("env", [None, "", "   "])
@pytest.mark.parametrize("value", [None, "", "   ", 12345, ["k"]])
def test_missing_api_key(monkeypatch: pytest.MonkeyPatch, value: Any, env: str | None) -> None:
    if env is not None:
        monkeypatch.setenv("UCAPTCHA_API_KEY", env)
    with pytest.raises(ConfigError, match="UCAPTCHA_API_KEY is not set"):
        build(UCAPTCHA_API_KEY=value)


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


# --- API URL --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.example.com/", "https://api.example.com"),
        ("https://api.example.com:8443/v1", "https://api.example.com:8443/v1"),
        ("  https://api.example.com  ", "https://api.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_api_url(value: str, expected: str) -> None:
    config = build(UCAPTCHA_API_URL=value)
    assert config.api_url == expected
    assert config.allow_insecure_http is False


@pytest.mark.parametrize("allow", [True, "true", "1"])
def test_insecure_http_opt_in(allow: Any) -> None:
    config = build(UCAPTCHA_API_URL="http://api.example.com", UCAPTCHA_ALLOW_INSECURE_HTTP=allow)
    assert config.api_url == "http://api.example.com"
    assert config.allow_insecure_http is True


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"^UCAPTCHA_API_URL: .*https://"):
        build(UCAPTCHA_API_URL="http://api.example.com")
    with pytest.raises(ConfigError, match="UCAPTCHA_API_URL"):
        build(UCAPTCHA_API_URL="http://api.example.com", UCAPTCHA_ALLOW_INSECURE_HTTP=False)


# --- values that parse ----------------------------------------------------------------------------


def test_numbers_are_parsed() -> None:
    config = build(
        UCAPTCHA_POLL_INTERVAL="2.5",
        UCAPTCHA_FIRST_POLL=0,
        UCAPTCHA_SOLVE_TIMEOUT=60,
        UCAPTCHA_MAX_ATTEMPTS="5",
        UCAPTCHA_MAX_CONCURRENT_TASKS=4.0,
        UCAPTCHA_BUDGET="0",
        UCAPTCHA_REISSUE_PRIORITY=-10,
        UCAPTCHA_HTTP_TIMEOUT=0.5,
        UCAPTCHA_MAX_RETRIES=0,
        UCAPTCHA_BACKOFF_BASE=0,
        UCAPTCHA_BACKOFF_MAX="0.25",
        UCAPTCHA_RETRY_DEADLINE=10,
        UCAPTCHA_MAX_CONNECTIONS=" 2 ",
    )
    assert config.poll_interval == 2.5
    assert config.first_poll == 0.0
    assert config.solve_timeout == 60.0
    assert config.max_attempts == 5
    assert isinstance(config.max_attempts, int)
    assert config.max_concurrent_tasks == 4
    assert isinstance(config.max_concurrent_tasks, int)
    assert config.budget == 0.0
    assert config.reissue_priority == -10
    assert config.http_timeout == 0.5
    assert config.max_retries == 0
    assert config.backoff_base == 0.0
    assert config.backoff_max == 0.25
    assert config.retry_deadline == 10.0
    assert config.max_connections == 2


def test_minimums_are_inclusive() -> None:
    config = build(
        UCAPTCHA_POLL_INTERVAL=0.05,
        UCAPTCHA_SOLVE_TIMEOUT=0.1,
        UCAPTCHA_MAX_ATTEMPTS=1,
        UCAPTCHA_HTTP_TIMEOUT=0.01,
        UCAPTCHA_BACKOFF_MAX=0.001,
        UCAPTCHA_RETRY_DEADLINE=0.01,
    )
    assert config.poll_interval == 0.05
    assert config.solve_timeout == 0.1
    assert config.max_attempts == 1
    assert config.http_timeout == 0.01
    assert config.backoff_max == 0.001
    assert config.retry_deadline == 0.01


@pytest.mark.parametrize(
    ("value", "expected"), [(False, False), ("no", False), (0, False), ("yes", True), (1, True)]
)
def test_booleans_are_parsed(value: Any, expected: bool) -> None:
    config = build(UCAPTCHA_FEEDBACK=value, UCAPTCHA_CHECK_BALANCE=value)
    assert config.feedback is expected
    assert config.check_balance is expected


@pytest.mark.parametrize("mode", SELECTION_MODES)
def test_selection_modes(mode: str) -> None:
    assert build(UCAPTCHA_SELECTION_MODE=mode).selection_mode == mode
    assert build(UCAPTCHA_SELECTION_MODE=f" {mode} ").selection_mode == mode


def test_provider_is_stripped() -> None:
    assert build(UCAPTCHA_PROVIDER="  acme  ").provider == "acme"


@pytest.mark.parametrize(
    "value", [{"hcaptcha": "HCaptchaTask"}, '{"hcaptcha": "HCaptchaTask"}'], ids=["dict", "json"]
)
def test_task_type_overrides(value: Any) -> None:
    config = build(UCAPTCHA_TASK_TYPES=value)
    assert config.task_types["hcaptcha"] == "HCaptchaTask"
    assert {k: v for k, v in config.task_types.items() if k != "hcaptcha"} == {
        k: v for k, v in DEFAULT_TASK_TYPES.items() if k != "hcaptcha"
    }
    assert DEFAULT_TASK_TYPES["hcaptcha"] == "HCaptchaTaskProxyless"


@pytest.mark.parametrize(
    "value",
    [
        {"example.com": {"provider": "acme"}, "*": {"scope": "domain"}},
        '{"example.com": {"provider": "acme"}, "*": {"scope": "domain"}}',
    ],
    ids=["dict", "json"],
)
def test_templates(value: Any) -> None:
    config = build(UCAPTCHA_TASKS=value)
    assert isinstance(config.templates, TemplateSet)
    assert config.templates.for_url("https://example.com/x").provider == "acme"
    assert config.templates.for_url("https://other.org/").scope == "domain"


# --- detectors ------------------------------------------------------------------------------------


def test_builtin_detectors_by_default() -> None:
    from scrapy_ucaptcha.detection import BUILTIN_DETECTORS

    detectors = build().detectors
    assert len(detectors) == len(BUILTIN_DETECTORS) > 0
    for detector, builtin in zip(detectors, BUILTIN_DETECTORS, strict=True):
        expected = builtin if isinstance(builtin, type) else type(builtin)
        assert type(detector) is expected
        assert callable(detector.detect)


def test_detectors_from_classes_instances_and_paths() -> None:
    instance = StubDetector()
    detectors = build(UCAPTCHA_DETECTORS=[StubDetector, instance, STUB_PATH]).detectors
    assert len(detectors) == 3
    assert all(type(d) is StubDetector for d in detectors)
    assert detectors[1] is instance
    assert detectors[0] is not instance
    assert detectors[2] is not instance


def test_no_detectors() -> None:
    assert build(UCAPTCHA_DETECTORS=[]).detectors == ()
    assert build(UCAPTCHA_DETECTORS=()).detectors == ()


# --- bad values -----------------------------------------------------------------------------------

BAD_VALUES: list[tuple[str, Any]] = [
    ("UCAPTCHA_ENABLED", "maybe"),
    ("UCAPTCHA_ENABLED", 2),
    ("UCAPTCHA_FEEDBACK", "nah"),
    ("UCAPTCHA_CHECK_BALANCE", []),
    ("UCAPTCHA_ALLOW_INSECURE_HTTP", "sure"),
    ("UCAPTCHA_POLL_INTERVAL", "fast"),
    ("UCAPTCHA_POLL_INTERVAL", 0.01),
    ("UCAPTCHA_POLL_INTERVAL", True),
    ("UCAPTCHA_POLL_INTERVAL", float("nan")),
    ("UCAPTCHA_POLL_INTERVAL", float("inf")),
    ("UCAPTCHA_POLL_INTERVAL", "inf"),
    ("UCAPTCHA_POLL_INTERVAL", -1),
    ("UCAPTCHA_POLL_INTERVAL", [5]),
    ("UCAPTCHA_FIRST_POLL", -0.5),
    ("UCAPTCHA_FIRST_POLL", "soon"),
    ("UCAPTCHA_SOLVE_TIME_PRIOR", {"RecaptchaV2TaskProxyless": 0}),
    ("UCAPTCHA_SOLVE_TIME_PRIOR", {"RecaptchaV2TaskProxyless": "15"}),
    ("UCAPTCHA_SOLVE_TIME_PRIOR", {"RecaptchaV2TaskProxyless": True}),
    ("UCAPTCHA_SOLVE_TIME_PRIOR", {"RecaptchaV2TaskProxyless": float("inf")}),
    ("UCAPTCHA_SOLVE_TIME_PRIOR", [15]),
    ("UCAPTCHA_SOLVE_TIMEOUT", 0),
    ("UCAPTCHA_SOLVE_TIMEOUT", "nan"),
    ("UCAPTCHA_BUDGET", -1),
    ("UCAPTCHA_BUDGET", {"usd": 1}),
    ("UCAPTCHA_HTTP_TIMEOUT", 0),
    ("UCAPTCHA_BACKOFF_BASE", -0.1),
    ("UCAPTCHA_BACKOFF_MAX", 0),
    ("UCAPTCHA_RETRY_DEADLINE", 0),
    ("UCAPTCHA_MAX_ATTEMPTS", 0),
    ("UCAPTCHA_MAX_ATTEMPTS", 2.5),
    ("UCAPTCHA_MAX_ATTEMPTS", "three"),
    ("UCAPTCHA_MAX_ATTEMPTS", "1.5"),
    ("UCAPTCHA_MAX_ATTEMPTS", True),
    ("UCAPTCHA_MAX_ATTEMPTS", float("inf")),
    ("UCAPTCHA_MAX_ATTEMPTS", float("nan")),
    ("UCAPTCHA_MAX_CONCURRENT_TASKS", 0),
    ("UCAPTCHA_MAX_RETRIES", -1),
    ("UCAPTCHA_MAX_CONNECTIONS", 0),
    ("UCAPTCHA_REISSUE_PRIORITY", "high"),
    ("UCAPTCHA_REISSUE_PRIORITY", 1.5),
    ("UCAPTCHA_SELECTION_MODE", "cheapest"),
    ("UCAPTCHA_SELECTION_MODE", "   "),
    ("UCAPTCHA_SELECTION_MODE", 5),
    ("UCAPTCHA_PROVIDER", 5),
    ("UCAPTCHA_API_URL", 5),
    ("UCAPTCHA_API_URL", "   "),
    ("UCAPTCHA_API_URL", "api.example.com"),
    ("UCAPTCHA_API_URL", "ftp://api.example.com"),
    ("UCAPTCHA_API_URL", "https://user:pw@api.example.com"),
    ("UCAPTCHA_API_URL", "https://api.example.com/?key=1"),
    ("UCAPTCHA_API_URL", "https://api.example.com/#frag"),
    ("UCAPTCHA_API_URL", "http://api.example.com"),
    ("UCAPTCHA_TASK_TYPES", {"lemin": "LeminTask"}),
    ("UCAPTCHA_TASK_TYPES", {"hcaptcha": ""}),
    ("UCAPTCHA_TASK_TYPES", {"hcaptcha": 5}),
    ("UCAPTCHA_TASK_TYPES", ["hcaptcha"]),
    ("UCAPTCHA_TASK_TYPES", "{not json"),
    ("UCAPTCHA_TASKS", 5),
    ("UCAPTCHA_TASKS", "{not json"),
    ("UCAPTCHA_TASKS", {"example.com": {"bogus": 1}}),
    ("UCAPTCHA_TASKS", {"example.com": "recaptcha"}),
    ("UCAPTCHA_TASKS", {"ex*ample.com": {}}),
    ("UCAPTCHA_TASKS", {"": {}}),
    ("UCAPTCHA_TASKS", {"*": {"detect": {"xpath": "//div["}}}),
    ("UCAPTCHA_TASKS", {"*": {"inject": {"mode": "header"}}}),
    ("UCAPTCHA_DETECTORS", STUB_PATH),
    ("UCAPTCHA_DETECTORS", StubDetector),
    ("UCAPTCHA_DETECTORS", [NotADetector]),
    ("UCAPTCHA_DETECTORS", [object()]),
    ("UCAPTCHA_DETECTORS", ["no_such_module_xyz.Detector"]),
    ("UCAPTCHA_DETECTORS", [f"{StubDetector.__module__}.NoSuchDetector"]),
    ("UCAPTCHA_DETECTORS", [BROKEN_PATH]),
    ("UCAPTCHA_DETECTORS", [BrokenDetector]),
]


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_bad_value_names_its_setting(name: str, value: Any) -> None:
    with pytest.raises(ConfigError) as info:
        build(**{name: value})
    assert name in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UCAPTCHA_MAX_ATTEMPTS", 0, "must be >= 1"),
        ("UCAPTCHA_MAX_ATTEMPTS", "three", "must be a whole number"),
        ("UCAPTCHA_POLL_INTERVAL", "fast", "must be a number"),
        ("UCAPTCHA_POLL_INTERVAL", 0.01, "must be a finite number >= 0.05"),
        ("UCAPTCHA_FEEDBACK", "nah", "must be True or False"),
        ("UCAPTCHA_SELECTION_MODE", "cheapest", "must be one of autoCheapest"),
        ("UCAPTCHA_PROVIDER", 5, "must be a string"),
        ("UCAPTCHA_TASK_TYPES", {"lemin": "X"}, "not a known captcha kind"),
        ("UCAPTCHA_TASKS", {"example.com": {"bogus": 1}}, "template 'example.com'"),
        ("UCAPTCHA_DETECTORS", [NotADetector], "has no detect"),
        ("UCAPTCHA_DETECTORS", [BROKEN_PATH], "no detector for you"),
    ],
)
def test_bad_value_message_says_what_is_wrong(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build(**{name: value})
    assert str(info.value).startswith(name)


@pytest.mark.parametrize("value", ["5", "[1, 2]"])
@pytest.mark.parametrize("name", ["UCAPTCHA_TASKS", "UCAPTCHA_TASK_TYPES"])
def test_non_object_json_names_its_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        build(**{name: value})


def test_bad_css_selector_names_its_setting() -> None:
    with pytest.raises(ConfigError, match="UCAPTCHA_TASKS"):
        build(UCAPTCHA_TASKS={"*": {"detect": {"css": "div["}}})


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"UCAPTCHA_CALLBACK_URL": "https://hooks.example.net/cb"}, "UCAPTCHA_CALLBACK_LISTEN"),
        ({"UCAPTCHA_CALLBACK_LISTEN": "0.0.0.0:8765"}, "UCAPTCHA_CALLBACK_URL"),
        ({"UCAPTCHA_CALLBACK_URL": "hooks/cb", "UCAPTCHA_CALLBACK_LISTEN": ":1"}, "CALLBACK_URL"),
        (
            {"UCAPTCHA_CALLBACK_URL": "https://h.example/cb", "UCAPTCHA_CALLBACK_LISTEN": "8765"},
            "UCAPTCHA_CALLBACK_LISTEN",
        ),
        (
            {
                "UCAPTCHA_CALLBACK_URL": "https://h.example/cb",
                "UCAPTCHA_CALLBACK_LISTEN": "h:99999",
            },
            "UCAPTCHA_CALLBACK_LISTEN",
        ),
    ],
)
def test_bad_callback_settings_name_themselves(settings: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Config.from_settings(Settings({"UCAPTCHA_API_KEY": KEY, **settings}))


def test_callback_settings() -> None:
    config = Config.from_settings(
        Settings(
            {
                "UCAPTCHA_API_KEY": KEY,
                "UCAPTCHA_CALLBACK_URL": "https://hooks.example.net:{port}/cb",
                "UCAPTCHA_CALLBACK_LISTEN": "[::]:0",
            }
        )
    )
    assert config.callback_url == "https://hooks.example.net:{port}/cb"
    assert config.callback_listen == ("::", 0)
