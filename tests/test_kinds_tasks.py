"""Tasks and token injection of Arkose Labs, GeeTest, Friendly Captcha, MTCaptcha, Yandex
SmartCaptcha and the AWS WAF CAPTCHA: the createTask fields and how each solution goes back."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from scrapy_ucaptcha.detection import detect
from scrapy_ucaptcha.inject import InjectError, apply, prepare, prepare_presolve
from scrapy_ucaptcha.templates import DEFAULT_TASK_TYPES, Template, build_task

PAGE = "https://shop.example/account"


def task_of(raw_template: dict[str, Any], body: str, status: int = 200) -> dict[str, Any]:
    response = HtmlResponse(PAGE, body=body.encode(), status=status)
    challenge = detect(response)
    assert challenge is not None
    return build_task(
        Template.parse("*", raw_template),
        kind=challenge.kind,
        page_url=PAGE,
        sitekey=challenge.sitekey,
        params=challenge.params,
        task_types=DEFAULT_TASK_TYPES,
    )


FC_KEY = "476068BF-9607-4799-B53D-966BE98E2B81"
FUNCAPTCHA = (
    f'<script src="https://acme-api.arkoselabs.com/v2/{FC_KEY}/api.js"></script>'
    '<form id="f" action="/v" method="POST"><input type="hidden" name="fc-token"></form>'
    "<script>e.setConfig({data: {blob: 'B10B'}})</script>"
)
GT, CHALLENGE, CAPTCHA_ID = "a" * 32, "b" * 32, "c" * 32
GEETEST_V3 = (
    '<form id="f" action="/v" method="POST"><input type="hidden" name="next" value="/a?b=c">'
    '<div id="box"></div></form>'
    f"<script>initGeetest({{gt: '{GT}', challenge: '{CHALLENGE}'}}, function (captchaObj)"
    " { captchaObj.appendTo('#box'); });</script>"
)
GEETEST_V4 = (
    '<form id="f" action="/v" method="POST"><div id="box"></div></form>'
    f"<script>initGeetest4({{captchaId: '{CAPTCHA_ID}', riskType: 'slide'}}, cb)</script>"
)
AWS = (
    '<script>window.gokuProps = {"key":"K3y+/=","iv":"IV1","context":"C0ntext"};</script>'
    '<script src="https://ab.cd.us-east-1.captcha.awswaf.com/ab/cd/ef/captcha.js"></script>'
    '<div id="captcha-container"></div>'
)


def test_task_fields_per_kind() -> None:
    assert task_of({}, FUNCAPTCHA) == {
        "type": "FunCaptchaTaskProxyless",
        "websiteURL": PAGE,
        "websitePublicKey": FC_KEY,
        "funcaptchaApiJSSubdomain": "acme-api.arkoselabs.com",
        "data": json.dumps({"blob": "B10B"}),
    }
    assert task_of({}, GEETEST_V3) == {
        "type": "GeeTestTaskProxyless",
        "websiteURL": PAGE,
        "gt": GT,
        "version": 3,
        "challenge": CHALLENGE,
    }
    assert task_of({}, GEETEST_V4) == {
        "type": "GeeTestTaskProxyless",
        "websiteURL": PAGE,
        "gt": CAPTCHA_ID,
        "version": 4,
        "initParameters": {"captcha_id": CAPTCHA_ID, "riskType": "slide"},
    }
    assert task_of({}, AWS, status=405) == {
        "type": "AmazonTaskProxyless",
        "websiteURL": PAGE,
        "websiteKey": "K3y+/=",
        "iv": "IV1",
        "context": "C0ntext",
        "captchaScript": "https://ab.cd.us-east-1.captcha.awswaf.com/ab/cd/ef/captcha.js",
    }
    for body, task_type, key in [
        (
            '<div class="frc-captcha" data-sitekey="FCMV6VL3726JO53T"></div>',
            "FriendlyCaptchaTaskProxyless",
            "FCMV6VL3726JO53T",
        ),
        (
            '<script>var mtcaptchaConfig = {"sitekey": "MTPublic-KzqLY1cKH"};</script>',
            "MtCaptchaTaskProxyless",
            "MTPublic-KzqLY1cKH",
        ),
        (
            '<div class="smart-captcha" data-sitekey="ysc1_abcdefghijklmnop"></div>',
            "YandexCaptchaTaskProxyless",
            "ysc1_abcdefghijklmnop",
        ),
    ]:
        assert task_of({}, body) == {"type": task_type, "websiteURL": PAGE, "websiteKey": key}


def test_template_fields_win_and_types_can_be_changed() -> None:
    task = task_of(
        {"task": {"type": "FunCaptchaTask", "funcaptchaApiJSSubdomain": "x.example"}}, FUNCAPTCHA
    )
    assert task["type"] == "FunCaptchaTask"
    assert task["funcaptchaApiJSSubdomain"] == "x.example"


def test_geetest_v3_without_a_challenge_is_refused_before_paying() -> None:
    body = GEETEST_V3.replace(f", challenge: '{CHALLENGE}'", "")
    with pytest.raises(ValueError, match="no 'challenge'"):
        task_of({}, body)
    assert task_of({"task": {"challenge": "d" * 32}}, body)["challenge"] == "d" * 32


def _page_plan(body: str, spec_raw: Any = None, status: int = 200) -> tuple[Any, HtmlResponse]:
    response = HtmlResponse(PAGE, body=body.encode(), status=status)
    challenge = detect(response)
    template = Template.parse("*", {"inject": spec_raw} if spec_raw is not None else {})
    return prepare(template.inject, challenge, response), response


def test_geetest_v3_solution_fills_its_three_fields() -> None:
    plan, _ = _page_plan(GEETEST_V3)
    solution = {"challenge": CHALLENGE + "x1", "validate": "v&1", "seccode": "v&1|jordan"}
    new = apply(plan, Request(PAGE), "v&1", solution)
    assert new.method == "POST"
    assert new.url == "https://shop.example/v"
    assert parse_qsl(new.body.decode(), keep_blank_values=True) == [
        ("next", "/a?b=c"),
        ("geetest_challenge", CHALLENGE + "x1"),
        ("geetest_validate", "v&1"),
        ("geetest_seccode", "v&1|jordan"),
    ]


def test_geetest_v4_solution_fills_its_five_fields() -> None:
    plan, _ = _page_plan(GEETEST_V4)
    solution = {
        "captcha_id": CAPTCHA_ID,
        "lot_number": "lot",
        "pass_token": "pass",
        "gen_time": "1700000000",
        "captcha_output": "out",
    }
    new = apply(plan, Request(PAGE), "out", solution)
    assert dict(parse_qsl(new.body.decode())) == {
        "lot_number": "lot",
        "captcha_output": "out",
        "pass_token": "pass",
        "gen_time": "1700000000",
        "captcha_id": CAPTCHA_ID,
    }
    with pytest.raises(InjectError, match="no 'pass_token'"):
        apply(plan, Request(PAGE), "out", {k: v for k, v in solution.items() if k != "pass_token"})


def test_multi_field_solution_as_json_keys_or_query_parameters() -> None:
    solution = {"lot_number": "lot", "captcha_output": "out"}
    fields = {"lotNumber": "lot_number", "captchaOutput": "captcha_output"}
    plan, _ = _page_plan(GEETEST_V4, {"mode": "json", "fields": fields})
    new = apply(plan, Request(PAGE, method="POST", body=b'{"q": 1}'), "out", solution)
    assert json.loads(new.body) == {"q": 1, "lotNumber": "lot", "captchaOutput": "out"}
    plan, _ = _page_plan(GEETEST_V4, {"mode": "query", "fields": fields})
    assert apply(plan, Request(PAGE), "out", solution).url == (
        PAGE + "?lotNumber=lot&captchaOutput=out"
    )


def test_presolved_request_with_fields() -> None:
    spec = Template.parse("*", {"inject": {"fields": {"lot_number": "lot_number"}}}).inject
    plan = prepare_presolve(spec, "captcha_output", Request(PAGE))
    assert apply(plan, Request(PAGE), "out", {"lot_number": "L"}).url == PAGE + "?lot_number=L"


def test_aws_waf_token_goes_into_its_cookie_by_default() -> None:
    plan, _ = _page_plan(AWS, status=405)
    assert (plan.mode, plan.name) == ("cookie", "aws-waf-token")
    new = apply(plan, Request(PAGE, cookies={"session": "s"}), "tok", {"cookie": "tok"})
    assert new.url == PAGE
    assert new.cookies == {"session": "s", "aws-waf-token": "tok"}
    plan, _ = _page_plan(AWS, {"mode": "header", "name": "x-aws-waf-token"}, status=405)
    assert (plan.mode, plan.name) == ("header", "x-aws-waf-token")


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        ({"fields": {}}, "inject 'fields' must be"),
        ({"fields": {"a": 1}}, "inject 'fields' must be"),
        ({"fields": ["a"]}, "inject 'fields' must be"),
        ({"mode": "header", "name": "h", "fields": {"a": "b"}}, "works with modes"),
    ],
)
def test_bad_inject_fields(inject: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Template.parse("*", {"inject": inject})


def test_challenge_url_is_checked_and_lets_a_page_without_challenge_plan_a_task() -> None:
    with pytest.raises(ValueError, match="'challenge_url' must be a URL"):
        Template.parse("*", {"challenge_url": 5})
    body = GEETEST_V3.replace(f", challenge: '{CHALLENGE}'", "")
    task = task_of({"challenge_url": "/register"}, body)
    assert "challenge" not in task  # fetched before each task


def test_with_challenge_reads_the_register_answer() -> None:
    from scrapy_ucaptcha.geetest import with_challenge

    answer = json.dumps({"success": 1, "gt": GT, "challenge": CHALLENGE}).encode()
    assert with_challenge({"type": "T"}, 200, answer) == {
        "type": "T",
        "gt": GT,
        "challenge": CHALLENGE,
    }
    wrapped = json.dumps({"code": 0, "data": {"challenge": CHALLENGE}}).encode()
    assert with_challenge({"gt": GT}, 200, wrapped)["challenge"] == CHALLENGE
    for status, body, message in [
        (500, answer, "HTTP 500"),
        (200, b"<html>", "not JSON"),
        (200, b"[1]", "not a JSON object"),
        (200, b'{"gt": "x"}', "no challenge"),
        (200, json.dumps({"challenge": CHALLENGE, "gt": "bad"}).encode(), "gt is malformed"),
        (200, json.dumps({"challenge": CHALLENGE}).encode(), "neither the page"),
    ]:
        with pytest.raises(ValueError, match=message):
            with_challenge({}, status, body)
