"""Templates: pattern matching, template checking, meta overrides and createTask task building."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import FrozenInstanceError
from typing import Any

import pytest

from scrapy_ucaptcha import InjectMode
from scrapy_ucaptcha.fields import FORM_FIELDS
from scrapy_ucaptcha.templates import (
    DEFAULT_TASK_TYPES,
    INJECT_MODES,
    DetectRules,
    InjectSpec,
    Template,
    TemplateSet,
    build_task,
    family_of,
    kind_for_task_type,
)

PAGE = "https://shop.example.com/login?next=%2Fcart"


def reissue(request: Any, token: str, solution: Mapping[str, Any]) -> Any:
    """An inject function for the ``callable`` mode checks (never called here)."""
    return request


#: Import path of :func:`reissue`, whatever name pytest imported this module under.
REISSUE_PATH = f"{reissue.__module__}:{reissue.__name__}"

#: A value that is not callable, for the "function must be callable" check.
NOT_CALLABLE = 42


# --- TemplateSet.for_url --------------------------------------------------------------------------

SPECIFIC = {
    "*": {"provider": "any-host"},
    "*.example.com": {"provider": "subdomains"},
    "example.com": {"provider": "exact"},
    "example.com/api/*": {"provider": "exact-api"},
    "example.com/api/v2/*": {"provider": "exact-api-v2"},
    "shop.example.com": {"provider": "shop"},
    "*/login": {"provider": "any-login"},
}


@pytest.mark.parametrize("reverse", [False, True], ids=["given-order", "reversed-order"])
@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://example.com/", "exact"),
        ("https://example.com", "exact"),
        ("https://EXAMPLE.com/products/1", "exact"),
        ("https://example.com/api/items", "exact-api"),
        ("https://example.com:8443/api/items?page=2#top", "exact-api"),
        ("https://example.com/api/v2/items/7", "exact-api-v2"),
        ("https://example.com/apix", "exact"),
        ("https://www.example.com/", "subdomains"),
        ("https://a.b.example.com/api/items", "subdomains"),
        ("https://shop.example.com/login", "shop"),
        ("https://other.org/", "any-host"),
        ("https://other.org/login", "any-login"),
        ("https://notexample.com/", "any-host"),
        ("https://example.com.evil.org/", "any-host"),
    ],
)
def test_for_url_picks_the_most_specific_pattern(url: str, provider: str, reverse: bool) -> None:
    items = list(SPECIFIC.items())
    if reverse:
        items.reverse()
    templates = TemplateSet.from_setting(dict(items))
    chosen = templates.for_url(url)
    assert chosen.provider == provider
    assert chosen.pattern in SPECIFIC


def test_exact_host_beats_wildcard_host_with_a_longer_path() -> None:
    templates = TemplateSet.from_setting(
        {"*.example.com/api/*": {"provider": "wild-api"}, "www.example.com": {"provider": "www"}}
    )
    assert templates.for_url("https://www.example.com/api/x").provider == "www"
    assert templates.for_url("https://img.example.com/api/x").provider == "wild-api"
    assert templates.for_url("https://img.example.com/other").pattern == "*"


def test_wildcard_host_does_not_match_the_bare_domain() -> None:
    templates = TemplateSet.from_setting({"*.example.com": {"provider": "subs"}})
    assert templates.for_url("https://example.com/").provider is None
    assert templates.for_url("https://www.example.com/").provider == "subs"


def test_pattern_host_is_case_insensitive_and_stripped() -> None:
    templates = TemplateSet.from_setting({"  Shop.Example.COM/Cart/*  ": {"provider": "p"}})
    assert templates.for_url("https://shop.example.com/Cart/1").provider == "p"
    # the path glob stays case-sensitive
    assert templates.for_url("https://shop.example.com/cart/1").provider is None


def test_path_glob_without_wildcard_matches_only_that_path() -> None:
    templates = TemplateSet.from_setting({"example.com/login": {"provider": "login"}})
    assert templates.for_url("https://example.com/login?x=1").provider == "login"
    assert templates.for_url("https://example.com/login/2fa").provider is None
    assert templates.for_url("https://example.com/").provider is None


def test_no_match_gives_the_default_template() -> None:
    templates = TemplateSet.from_setting({"example.com": {"provider": "p"}})
    default = templates.for_url("https://other.org/")
    assert default == Template()
    assert default.pattern == "*"
    assert dict(default.task) == {}
    assert default.detect is None
    assert default.inject == InjectSpec(mode="auto", name=None, format="{token}", function=None)
    assert (default.scope, default.solve, default.presolve) == ("request", True, False)
    assert TemplateSet.from_setting({}).for_url("https://example.com/") == Template()


def test_template_keeps_its_original_pattern() -> None:
    templates = TemplateSet.from_setting({"Example.com/api/*": {"task": {"type": "T"}}})
    chosen = templates.for_url("https://example.com/api/1")
    assert chosen.pattern == "Example.com/api/*"
    assert chosen.task["type"] == "T"


@pytest.mark.parametrize(
    "pattern",
    ["", "   ", "ex*ample.com", "example.*", "*.exa*mple.com", "/api/*", "*foo.*"],
)
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="pattern"):
        TemplateSet.from_setting({pattern: {}})


def test_non_string_pattern_is_refused() -> None:
    with pytest.raises(ValueError, match="patterns must be non-empty strings"):
        TemplateSet.from_setting({5: {}})  # type: ignore[dict-item]


def test_bad_template_in_set_names_its_pattern() -> None:
    with pytest.raises(ValueError, match=r"template 'example\.com': unknown key"):
        TemplateSet.from_setting({"example.com": {"taks": {}}})


@pytest.mark.parametrize("pattern", ["*example.com", "**.example.com", "*.*.example.com", "*."])
def test_malformed_wildcards_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="bad pattern"):
        TemplateSet.from_setting({pattern: {}})


def test_longer_wildcard_host_beats_a_shorter_one() -> None:
    templates = TemplateSet.from_setting(
        {"*.example.com": {"provider": "broad"}, "*.shop.example.com": {"provider": "narrow"}}
    )
    assert templates.for_url("https://eu.shop.example.com/").provider == "narrow"


# --- Template.parse -------------------------------------------------------------------------------


def test_parse_reads_every_key() -> None:
    template = Template.parse(
        "example.com",
        {
            "task": {"type": "RecaptchaV3TaskProxyless", "minScore": 0.7},
            "detect": {
                "status": [403, 429],
                "css": "div.captcha",
                "xpath": "//form[@id='challenge']",
                "regex": r"verify you are (human|a person)",
                "builtin": False,
                "image": {"css": "img#cap", "field": "answer"},
            },
            "inject": {"mode": "header", "name": "X-Captcha", "format": "Bearer {token}"},
            "selectionMode": "autoFastest",
            "provider": "acme",
            "scope": "domain",
            "solve": False,
            "presolve": True,
        },
    )
    assert template.pattern == "example.com"
    assert dict(template.task) == {"type": "RecaptchaV3TaskProxyless", "minScore": 0.7}
    assert template.detect is not None
    assert template.detect.status == frozenset({403, 429})
    assert template.detect.css == "div.captcha"
    assert template.detect.xpath == "//form[@id='challenge']"
    assert isinstance(template.detect.regex, re.Pattern)
    assert template.detect.regex.search("Please verify you are a person")
    assert template.detect.builtin is False
    assert template.detect.image_css == "img#cap"
    assert template.detect.image_xpath is None
    assert template.detect.image_field == "answer"
    assert template.detect.has_markers
    assert template.detect.is_image
    assert template.inject == InjectSpec(mode="header", name="X-Captcha", format="Bearer {token}")
    assert template.selection_mode == "autoFastest"
    assert template.provider == "acme"
    assert template.scope == "domain"
    assert template.solve is False
    assert template.presolve is True


def test_parsed_template_is_immutable_and_copies_its_task() -> None:
    task = {"type": "T"}
    template = Template.parse("*", {"task": task})
    task["type"] = "changed"
    assert template.task["type"] == "T"
    with pytest.raises(TypeError):
        template.task["type"] = "x"  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        template.scope = "domain"  # type: ignore[misc]


def test_parse_defaults() -> None:
    template = Template.parse("example.com", {})
    assert template == Template(pattern="example.com")
    assert template.detect is None
    assert template.inject == InjectSpec()


def test_single_status_and_detect_defaults() -> None:
    rules = Template.parse("*", {"detect": {"status": 403}}).detect
    assert rules == DetectRules(status=frozenset({403}))
    assert rules.builtin is True
    assert not rules.has_markers
    assert not rules.is_image


def test_image_detect_by_xpath() -> None:
    rules = Template.parse("*", {"detect": {"image": {"xpath": "//img[@id='c']"}}}).detect
    assert rules is not None
    assert rules.image_xpath == "//img[@id='c']"
    assert rules.image_css is None
    assert rules.image_field is None
    assert rules.is_image
    assert not rules.has_markers


@pytest.mark.parametrize("mode", INJECT_MODES)
def test_inject_given_as_a_mode_name(mode: InjectMode) -> None:
    if mode in ("header", "cookie", "query", "json", "callable"):
        with pytest.raises(ValueError, match=f"inject mode '{mode}' needs"):
            Template.parse("*", {"inject": mode})
    else:
        assert Template.parse("*", {"inject": mode}).inject == InjectSpec(mode=mode)


@pytest.mark.parametrize("mode", ["header", "cookie", "query", "json"])
def test_named_inject_modes(mode: InjectMode) -> None:
    spec = Template.parse("*", {"inject": {"mode": mode, "name": "cap"}}).inject
    assert spec == InjectSpec(mode=mode, name="cap", format="{token}", function=None)


def test_form_inject_takes_an_optional_name() -> None:
    assert Template.parse("*", {"inject": {"mode": "form"}}).inject.name is None
    assert Template.parse("*", {"inject": {"mode": "form", "name": "tok"}}).inject.name == "tok"


def test_callable_inject_with_an_importable_function() -> None:
    spec = Template.parse("*", {"inject": {"mode": "callable", "function": REISSUE_PATH}}).inject
    assert spec.mode == "callable"
    assert spec.function == REISSUE_PATH
    dotted = REISSUE_PATH.replace(":", ".")
    assert Template.parse("*", {"inject": {"mode": "callable", "function": dotted}}).inject


BAD_TEMPLATES: list[tuple[Any, str]] = [
    ("recaptcha", "must be a dict, got str"),
    (["task"], "must be a dict, got list"),
    ({"tasks": {}}, r"unknown key\(s\) \['tasks'\]"),
    ({"task": "RecaptchaV2TaskProxyless"}, "'task' must be a dict"),
    ({"task": {1: "x"}}, "'task' must be a dict"),
    ({"task": {"type": ""}}, "task 'type' must be a non-empty string"),
    ({"task": {"type": 5}}, "task 'type' must be a non-empty string"),
    ({"scope": "global"}, "'scope' must be one of"),
    ({"scope": None}, "'scope' must be one of"),
    ({"selectionMode": 5}, "'selectionMode' must be a string"),
    ({"provider": ["a"]}, "'provider' must be a string"),
    ({"solve": "yes"}, "'solve' must be True or False"),
    ({"presolve": 1}, "'presolve' must be True or False"),
    ({"detect": "recaptcha"}, "'detect' must be a dict"),
    ({"detect": {"stat": 403}}, r"unknown detect key\(s\) \['stat'\]"),
    ({"detect": {"status": "403"}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"status": [99]}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"status": [600]}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"status": [True]}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"status": True}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"status": [403.0]}}, "detect 'status' must be a list of HTTP status codes"),
    ({"detect": {"css": 5}}, "detect 'css' must be a string"),
    ({"detect": {"xpath": ["//div"]}}, "detect 'xpath' must be a string"),
    ({"detect": {"regex": 5}}, "detect 'regex' must be a string"),
    ({"detect": {"xpath": "//div["}}, "bad selector"),
    ({"detect": {"image": {"xpath": "//img["}}}, "bad selector"),
    ({"detect": {"regex": "(unclosed"}}, "detect 'regex' does not compile"),
    ({"detect": {"image": "img#cap"}}, "detect 'image' must be a dict with 'css' or 'xpath'"),
    ({"detect": {"image": {}}}, "detect 'image' must be a dict with 'css' or 'xpath'"),
    ({"detect": {"image": {"field": "a"}}}, "detect 'image' must be a dict with 'css' or 'xpath'"),
    ({"detect": {"builtin": "no"}}, "detect 'builtin' must be True or False"),
    ({"inject": 5}, "'inject' must be a dict"),
    ({"inject": {"mod": "header"}}, r"unknown inject key\(s\) \['mod'\]"),
    ({"inject": "body"}, "inject 'mode' must be one of"),
    ({"inject": {"mode": "header", "name": ""}}, "inject 'name' must be a non-empty string"),
    ({"inject": {"mode": "form", "name": 5}}, "inject 'name' must be a non-empty string"),
    ({"inject": {"mode": "header"}}, "inject mode 'header' needs a 'name'"),
    ({"inject": {"mode": "cookie"}}, "inject mode 'cookie' needs a 'name'"),
    ({"inject": {"mode": "query"}}, "inject mode 'query' needs a 'name'"),
    ({"inject": {"mode": "json"}}, "inject mode 'json' needs a 'name'"),
    ({"inject": {"mode": "header", "name": "A", "format": "Bearer"}}, "'format' must be a string"),
    ({"inject": {"mode": "header", "name": "A", "format": 5}}, "'format' must be a string"),
    ({"inject": {"mode": "callable"}}, "inject mode 'callable' needs 'function'"),
    ({"inject": {"mode": "callable", "function": ""}}, "inject mode 'callable' needs 'function'"),
    (
        {"inject": {"mode": "callable", "function": "no_such_module_xyz:fn"}},
        "inject function 'no_such_module_xyz:fn' cannot be imported",
    ),
    (
        {"inject": {"mode": "callable", "function": f"{__name__}:no_such_function"}},
        "cannot be imported",
    ),
    (
        {"inject": {"mode": "callable", "function": f"{__name__}:NOT_CALLABLE"}},
        "cannot be imported",
    ),
]


@pytest.mark.parametrize(("raw", "message"), BAD_TEMPLATES)
def test_bad_templates_are_refused(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Template.parse("example.com", raw)
    assert str(info.value).startswith("template 'example.com'")


@pytest.mark.parametrize(
    "detect", [{"css": "div["}, {"css": "!!!"}, {"image": {"css": "img::text::text"}}]
)
def test_bad_css_selector_is_a_value_error(detect: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="bad selector"):
        Template.parse("example.com", {"detect": detect})


def test_non_string_image_selector_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="image"):
        Template.parse("example.com", {"detect": {"image": {"css": 123}}})


# --- Template.merged ------------------------------------------------------------------------------

BASE_RAW: dict[str, Any] = {
    "task": {"type": "RecaptchaV2TaskProxyless", "websiteKey": "base-key", "isInvisible": False},
    "detect": {"status": [403], "css": "div.g-recaptcha"},
    "inject": {"mode": "header", "name": "X-Token"},
    "selectionMode": "autoCheapest",
    "provider": "acme",
    "scope": "domain",
    "solve": True,
    "presolve": False,
}


@pytest.fixture
def base() -> Template:
    return Template.parse("example.com", BASE_RAW)


def test_merged_task_is_key_wise(base: Template) -> None:
    merged = base.merged({"task": {"websiteKey": "meta-key", "pageAction": "login"}})
    assert dict(merged.task) == {
        "type": "RecaptchaV2TaskProxyless",
        "websiteKey": "meta-key",
        "isInvisible": False,
        "pageAction": "login",
    }
    # everything else is kept
    assert merged.pattern == "example.com"
    assert merged.detect == base.detect
    assert merged.inject == base.inject
    assert merged.selection_mode == "autoCheapest"
    assert merged.provider == "acme"
    assert merged.scope == "domain"
    assert merged.solve is True
    assert merged.presolve is False
    # the template itself is untouched
    assert base.task["websiteKey"] == "base-key"
    assert "pageAction" not in base.task


def test_merged_with_nothing_is_the_same_template(base: Template) -> None:
    assert base.merged({}) == base


@pytest.mark.parametrize(
    ("override", "attribute", "expected"),
    [
        ({"inject": "auto"}, "inject", InjectSpec()),
        (
            {"inject": {"mode": "cookie", "name": "cf"}},
            "inject",
            InjectSpec(mode="cookie", name="cf"),
        ),
        ({"detect": {"status": [429]}}, "detect", DetectRules(status=frozenset({429}))),
        ({"detect": None}, "detect", None),
        ({"selectionMode": "priority"}, "selection_mode", "priority"),
        ({"selectionMode": None}, "selection_mode", None),
        ({"provider": "other"}, "provider", "other"),
        ({"scope": "request"}, "scope", "request"),
        ({"solve": False}, "solve", False),
        ({"presolve": True}, "presolve", True),
    ],
)
def test_merged_replaces_given_keys(
    base: Template, override: dict[str, Any], attribute: str, expected: Any
) -> None:
    merged = base.merged(override)
    assert getattr(merged, attribute) == expected
    assert dict(merged.task) == dict(base.task)
    for other in ("detect", "inject", "selection_mode", "provider", "scope", "solve", "presolve"):
        if other != attribute:
            assert getattr(merged, other) == getattr(base, other), other


def test_merged_keeps_defaults_when_the_override_omits_them() -> None:
    # parse() fills defaults (scope "request", solve True...) for the override; those defaults
    # must not replace the template's own values
    template = Template.parse("*", {"scope": "domain", "solve": False, "presolve": True})
    merged = template.merged({"task": {"type": "T"}})
    assert (merged.scope, merged.solve, merged.presolve) == ("domain", False, True)
    assert merged.task["type"] == "T"


@pytest.mark.parametrize(
    "override",
    [{"scope": "everywhere"}, {"bogus": 1}, {"inject": {"mode": "query"}}, {"task": "x"}],
)
def test_merged_refuses_bad_overrides(base: Template, override: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"template 'example\.com'"):
        base.merged(override)


# --- build_task -----------------------------------------------------------------------------------


def task_for(
    kind: str,
    *,
    task: Mapping[str, Any] | None = None,
    sitekey: str | None = "SITEKEY",
    params: Mapping[str, Any] | None = None,
    task_types: Mapping[str, str] = DEFAULT_TASK_TYPES,
) -> dict[str, Any]:
    template = Template.parse("*", {"task": dict(task or {})})
    return build_task(
        template,
        kind=kind,
        page_url=PAGE,
        sitekey=sitekey,
        params=params or {},
        task_types=task_types,
    )


def test_recaptcha_v2_task() -> None:
    assert task_for("recaptcha_v2") == {
        "type": "RecaptchaV2TaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
    }


def test_recaptcha_params() -> None:
    task = task_for(
        "recaptcha_v2",
        params={
            "data_s": "DATA-S",
            "action": "login",
            "api_domain": "recaptcha.net",
            "enterprise_payload": {"s": "payload"},
            "rqdata": "not-for-recaptcha",
            "cdata": "not-for-recaptcha",
        },
    )
    assert task == {
        "type": "RecaptchaV2TaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
        "recaptchaDataSValue": "DATA-S",
        "pageAction": "login",
        "apiDomain": "recaptcha.net",
        "enterprisePayload": {"s": "payload"},
    }


def test_recaptcha_v3_task() -> None:
    task = task_for("recaptcha_v3", params={"action": "submit"})
    assert task == {
        "type": "RecaptchaV3TaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
        "pageAction": "submit",
    }


def test_invisible_recaptcha() -> None:
    assert task_for("recaptcha_v2_invisible")["isInvisible"] is True
    assert task_for("recaptcha_v2", params={"invisible": True})["isInvisible"] is True
    assert "isInvisible" not in task_for("recaptcha_v2", params={"invisible": False})


def test_enterprise_flag() -> None:
    flagged = task_for("recaptcha_v2", params={"enterprise": True})
    assert flagged["type"] == "RecaptchaV2TaskProxyless"
    assert flagged["isEnterprise"] is True
    # an Enterprise task type needs no flag
    enterprise = task_for("recaptcha_enterprise", params={"enterprise": True})
    assert enterprise["type"] == "RecaptchaV2EnterpriseTaskProxyless"
    assert "isEnterprise" not in enterprise
    assert "isEnterprise" not in task_for("recaptcha_v2")
    assert "isEnterprise" not in task_for("hcaptcha", params={"enterprise": True})


def test_hcaptcha_task() -> None:
    task = task_for("hcaptcha", params={"rqdata": "RQ", "action": "a", "data_s": "s"})
    assert task == {
        "type": "HCaptchaTaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
        "rqdata": "RQ",
    }


def test_turnstile_task() -> None:
    task = task_for("turnstile", params={"action": "login", "cdata": "CD", "data_s": "s"})
    assert task == {
        "type": "TurnstileTaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
        "action": "login",
        "cData": "CD",
    }


def test_empty_params_are_skipped() -> None:
    task = task_for("recaptcha_v2", params={"data_s": "", "action": None, "enterprise_payload": {}})
    assert set(task) == {"type", "websiteURL", "websiteKey"}


def test_template_fields_win() -> None:
    fixed = {
        "type": "RecaptchaV2Task",
        "websiteURL": "https://fixed.example.com/",
        "websiteKey": "TEMPLATE-KEY",
        "pageAction": "template-action",
        "recaptchaDataSValue": "template-s",
        "isInvisible": False,
        "proxy": "http://p:8080",
    }
    task = task_for(
        "recaptcha_v2_invisible",
        task=fixed,
        params={"action": "page-action", "data_s": "page-s", "api_domain": "recaptcha.net"},
    )
    assert task == {**fixed, "apiDomain": "recaptcha.net"}


def test_template_task_is_not_changed() -> None:
    template = Template.parse("*", {"task": {"minScore": 0.9}})
    task = build_task(
        template,
        kind="recaptcha_v3",
        page_url=PAGE,
        sitekey="K",
        params={"action": "a"},
        task_types=DEFAULT_TASK_TYPES,
    )
    task["extra"] = 1
    assert dict(template.task) == {"minScore": 0.9}


def test_no_sitekey_means_no_website_key() -> None:
    task = task_for("turnstile", sitekey=None)
    assert task == {"type": "TurnstileTaskProxyless", "websiteURL": PAGE}
    assert "websiteKey" not in task_for("turnstile", sitekey="")


def test_image_task_gets_no_page_fields() -> None:
    task = task_for(
        "image", task={"case": True, "numeric": 1}, params={"action": "x", "invisible": True}
    )
    assert task == {"type": "ImageToTextTask", "case": True, "numeric": 1}


def test_task_types_override() -> None:
    task = task_for("hcaptcha", task_types={"hcaptcha": "HCaptchaTask"})
    assert task["type"] == "HCaptchaTask"


def test_unknown_kind_needs_a_template_type() -> None:
    with pytest.raises(ValueError, match="no task type for a 'lemin' challenge"):
        task_for("lemin")
    task = task_for("lemin", task={"type": "LeminTaskProxyless"}, params={"x": 1})
    assert task == {
        "type": "LeminTaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "SITEKEY",
    }


# --- kinds and families ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task_type", "kind"),
    [
        ("RecaptchaV2TaskProxyless", "recaptcha_v2"),
        ("RecaptchaV2Task", "recaptcha_v2"),
        ("NoCaptchaTaskProxyless", "recaptcha_v2"),
        ("RecaptchaV3TaskProxyless", "recaptcha_v3"),
        ("RecaptchaV3EnterpriseTask", "recaptcha_v3"),
        ("RecaptchaV2EnterpriseTaskProxyless", "recaptcha_enterprise"),
        ("HCaptchaTaskProxyless", "hcaptcha"),
        ("HCaptchaEnterpriseTask", "hcaptcha"),
        ("HardCaptchaTask", "hcaptcha"),
        ("TurnstileTaskProxyless", "turnstile"),
        ("AntiTurnstileTaskProxyLess", "turnstile"),
        ("ImageToTextTask", "image"),
        ("FunCaptchaTaskProxyless", "funcaptcha"),
        ("GeeTestTask", "geetest_v3"),
        ("FriendlyCaptchaTaskProxyless", "friendly_captcha"),
        ("MtCaptchaTaskProxyLess", "mtcaptcha"),
        ("YandexCaptchaTaskProxyLess", "yandex_smartcaptcha"),
        ("AmazonTaskProxyless", "aws_waf_captcha"),
        ("AntiAwsWafTaskProxyLess", "aws_waf_captcha"),
        ("LeminTaskProxyless", "custom"),
    ],
)
def test_kind_for_task_type(task_type: str, kind: str) -> None:
    assert kind_for_task_type(task_type) == kind


def test_geetest_version_picks_the_kind() -> None:
    assert kind_for_task_type("GeeTestTaskProxyless", 4) == "geetest_v4"
    assert kind_for_task_type("GeeTestTaskProxyless", "4") == "geetest_v4"
    assert kind_for_task_type("GeeTestTaskProxyless", 3) == "geetest_v3"


def test_every_default_task_type_maps_back_to_its_family() -> None:
    for kind, task_type in DEFAULT_TASK_TYPES.items():
        assert family_of(kind_for_task_type(task_type)) == family_of(kind), task_type


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("recaptcha_v2", "recaptcha"),
        ("recaptcha_v2_invisible", "recaptcha"),
        ("recaptcha_v3", "recaptcha"),
        ("recaptcha_enterprise", "recaptcha"),
        ("hcaptcha", "hcaptcha"),
        ("turnstile", "turnstile"),
        ("image", "image"),
        ("custom", "custom"),
        ("funcaptcha", "funcaptcha"),
        ("geetest_v3", "geetest"),
        ("geetest_v4", "geetest"),
        ("friendly_captcha", "friendly_captcha"),
        ("mtcaptcha", "mtcaptcha"),
        ("yandex_smartcaptcha", "yandex_smartcaptcha"),
        ("aws_waf_captcha", "aws_waf"),
        ("lemin", "custom"),
        ("cloudflare_challenge", "custom"),
    ],
)
def test_family_of(kind: str, family: str) -> None:
    assert family_of(kind) == family
    assert family in FORM_FIELDS
