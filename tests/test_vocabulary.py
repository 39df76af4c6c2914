"""The closed sets of names (inject modes, scopes, kinds, error codes), the token-field table and
the percentile function: each has one owner, and the others agree with it."""

from __future__ import annotations

import pickle
from typing import Any, get_args

import pytest
from scrapy import Request, Spider
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.request import request_from_dict
from scrapy.utils.test import get_crawler

import scrapy_ucaptcha
from scrapy_ucaptcha import ConfigError, UCaptchaMiddleware
from scrapy_ucaptcha.detection import ChallengeKind
from scrapy_ucaptcha.dialects import DIALECTS, KINDS
from scrapy_ucaptcha.errors import (
    CODE_ACTIONS,
    SOLVE_ERROR_CODES,
    ApiErrorCode,
    BadTaskCode,
    ErrorAction,
    FatalCode,
    RetryCode,
    TaskDeadCode,
    classify,
    is_known_code,
)
from scrapy_ucaptcha.fields import (
    FORM_FIELDS,
    SOLUTION_FIELDS,
    WIDGET_FIELDS,
    form_field,
    solution_fields,
)
from scrapy_ucaptcha.planner import family_of, kind_for_task_type
from scrapy_ucaptcha.stats import percentile
from scrapy_ucaptcha.templates import Template
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY
from scrapy_ucaptcha.vocabulary import (
    CAPTCHA_KINDS,
    FAMILIES,
    INJECT_MODES,
    SCOPES,
    SELECTION_MODES,
    WALL_KINDS,
    ChallengeKindName,
    TaskKind,
)

# --- kinds ----------------------------------------------------------------------------------------


def test_challenge_kind_names_are_the_vocabulary() -> None:
    names = {v for k, v in vars(ChallengeKind).items() if k.isupper() and isinstance(v, str)}
    assert names == set(CAPTCHA_KINDS) | set(WALL_KINDS)
    assert set(CAPTCHA_KINDS) == ChallengeKind.SOLVABLE
    assert set(WALL_KINDS) == ChallengeKind.UNSOLVABLE
    assert not set(CAPTCHA_KINDS) & set(WALL_KINDS)
    assert {a for arg in get_args(ChallengeKindName) for a in get_args(arg)} == ChallengeKind.ALL


def test_every_kind_a_dialect_names_is_a_captcha_kind() -> None:
    assert set(CAPTCHA_KINDS) >= KINDS
    for dialect in DIALECTS.values():
        assert set(dialect.task_types) <= set(CAPTCHA_KINDS), dialect.name


def test_task_kinds_come_from_the_vocabulary() -> None:
    task_kinds = {a for arg in get_args(TaskKind) for a in get_args(arg)}
    assert task_kinds == {*CAPTCHA_KINDS, "custom"}
    for dialect in DIALECTS.values():
        for kind, task_type in dialect.task_types.items():
            guessed = kind_for_task_type(task_type, 4 if kind == "geetest_v4" else None)
            assert guessed in task_kinds, (dialect.name, task_type)
            assert family_of(guessed) == family_of(kind), (dialect.name, task_type)


def test_every_captcha_kind_has_a_family_and_a_token_field() -> None:
    assert FAMILIES[-1] == "custom"  # tried last: the others are prefixes of kinds
    for kind in CAPTCHA_KINDS:
        family = family_of(kind)
        assert family != "custom", kind
        assert form_field(family)
    assert family_of("a_kind_of_my_own") == "custom"


# --- token fields ---------------------------------------------------------------------------------


def test_one_table_of_token_fields() -> None:
    assert set(FORM_FIELDS) == set(FAMILIES)
    assert all(names and len(set(names)) == len(names) for names in FORM_FIELDS.values())
    # the fields widgets add to a form: what tells a wall's form from a login form
    assert {
        "g-recaptcha-response",
        "h-captcha-response",
        "cf-turnstile-response",
        "fc-token",
        "verification-token",
        "frc-captcha-solution",
        "frc-captcha-response",
        "mtcaptcha-verifiedtoken",
        "smart-token",
        "geetest_challenge",
        "geetest_validate",
        "geetest_seccode",
        "lot_number",
        "captcha_output",
        "pass_token",
        "gen_time",
        "captcha_id",
    } == WIDGET_FIELDS
    assert not {"captcha", "aws-waf-token", "captcha-response"} & WIDGET_FIELDS


def test_solution_fields_by_kind() -> None:
    assert set(SOLUTION_FIELDS) == {"geetest_v3", "geetest_v4"}
    assert solution_fields("geetest_v3") == SOLUTION_FIELDS["geetest_v3"]
    assert form_field("geetest") in dict(solution_fields("geetest_v3"))
    assert solution_fields("recaptcha_v2") == ()
    assert solution_fields("a_kind_of_my_own") == ()


# --- inject modes, scopes, selection modes --------------------------------------------------------


@pytest.mark.parametrize("scope", SCOPES)
@pytest.mark.parametrize("mode", INJECT_MODES)
def test_template_values_stay_plain_strings_on_requests(mode: str, scope: str) -> None:
    inject: dict[str, Any] = {"mode": mode}
    if mode in ("header", "cookie", "query", "json"):
        inject["name"] = "X-Token"
    if mode == "callable":
        inject["function"] = "scrapy_ucaptcha.inject.apply"
    task = {"inject": inject, "scope": scope, "selectionMode": SELECTION_MODES[0]}
    request = Request("https://example.com/", meta={"ucaptcha_task": task})
    pickled = pickle.loads(pickle.dumps(request))  # noqa: S301  (data this test just wrote)
    for copy in (pickled, request_from_dict(request.to_dict())):
        carried = copy.meta["ucaptcha_task"]
        assert carried == task
        assert type(carried["inject"]["mode"]) is str
        template = Template.parse("*", carried)
        assert (template.inject.mode, template.scope) == (mode, scope)
        assert template.selection_mode == "autoCheapest"


class _Idle(Spider):
    name = "idle"


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("UCAPTCHA_SELECTION_MODE", "cheapest", "UCAPTCHA_SELECTION_MODE must be one of"),
        ("UCAPTCHA_TASKS", {"*": {"scope": "planet"}}, "UCAPTCHA_TASKS: .*'scope' must be one"),
        ("UCAPTCHA_TASKS", {"*": {"inject": "body"}}, "UCAPTCHA_TASKS: .*inject 'mode' must be"),
        ("UCAPTCHA_TASKS", {"*": {"selectionMode": "fast"}}, "UCAPTCHA_TASKS: .*'selectionMode'"),
    ],
)
@deferred_f_from_coro_f
async def test_a_value_not_in_its_set_stops_the_crawl_at_start(
    setting: str, value: object, message: str
) -> None:
    settings = {
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "DOWNLOADER_MIDDLEWARES": {UCaptchaMiddleware: 585},
        setting: value,
    }
    crawler = get_crawler(_Idle, settings)
    with pytest.raises(ConfigError, match=message):
        await crawler.crawl_async()
    assert not crawler.crawling


# --- error codes ----------------------------------------------------------------------------------


def test_error_codes_by_action() -> None:
    groups = {
        ErrorAction.FATAL: get_args(FatalCode),
        ErrorAction.BAD_TASK: get_args(BadTaskCode),
        ErrorAction.RETRY: get_args(RetryCode),
        ErrorAction.TASK_DEAD: get_args(TaskDeadCode),
    }
    every = [code for codes in groups.values() for code in codes]
    assert len(every) == len(set(every)) == len(CODE_ACTIONS)  # no code in two groups
    assert {a for arg in get_args(ApiErrorCode) for a in get_args(arg)} == set(CODE_ACTIONS)
    for action, codes in groups.items():
        for code in codes:
            assert classify(code) is action
            assert classify(code.lower(), 500) is action
            assert is_known_code(code)
    assert not is_known_code("ERROR_SOMETHING_NEW")
    assert not set(SOLVE_ERROR_CODES) & set(CODE_ACTIONS)


def test_the_public_names_are_exported() -> None:
    for name in (
        "InjectMode",
        "Scope",
        "SelectionMode",
        "CaptchaKind",
        "WallKind",
        "ChallengeKindName",
        "TaskKind",
        "ApiErrorCode",
        "SolveErrorCode",
    ):
        assert name in scrapy_ucaptcha.__all__
        assert getattr(scrapy_ucaptcha, name) is not None


# --- percentiles ----------------------------------------------------------------------------------


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None
    assert percentile([], 0) is None


@pytest.mark.parametrize("pct", [0, 1, 50, 95, 99.9, 100])
def test_percentile_of_one_value_is_that_value(pct: float) -> None:
    assert percentile([7], pct) == 7
    assert percentile([0.25], pct) == 0.25


@pytest.mark.parametrize(
    ("values", "pct", "expected"),
    [
        ([1, 2, 3, 4], 50, 2),  # nearest rank: no interpolation, never 2.5
        ([1, 2, 3, 4], 51, 3),
        ([1, 2, 3, 4], 25, 1),
        ([1, 2, 3, 4], 0, 1),
        ([1, 2, 3, 4], 100, 4),
        (list(range(1, 21)), 95, 19),
        (list(range(1, 21)), 96, 20),
        (list(range(1, 101)), 1, 1),
        (list(range(1, 101)), 99, 99),
        ([1, 1, 1, 5], 75, 1),
        ([0.5, 1.5, 2.5], 50, 1.5),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], pct: float, expected: float) -> None:
    assert percentile(values, pct) == expected
    assert percentile(values, pct) in values


@pytest.mark.parametrize("pct", [-1, 100.5, float("nan")])
def test_percentile_outside_0_to_100_is_refused(pct: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1, 2], pct)
