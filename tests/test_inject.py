"""Token → re-issued request, for every inject mode."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import pytest
from forms import form_post
from scrapy import Request
from scrapy.http import HtmlResponse, JsonRequest

from scrapy_ucaptcha import InjectMode
from scrapy_ucaptcha.detection import Challenge, FormLocator
from scrapy_ucaptcha.inject import InjectError, InjectPlan, apply, prepare, prepare_presolve
from scrapy_ucaptcha.templates import InjectSpec

#: A token with every character that must be escaped in a query string or form body.
TOKEN = "03AGdBq2+tok/en==&next=1 x%"
ENCODED = quote_plus(TOKEN)
SITEKEY = "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"
PAGE_URL = "https://shop.example.com/products?page=2"
FIELD = "g-recaptcha-response"

CHALLENGE_PAGE = f"""<!doctype html>
<html><head><title>Just a moment</title></head><body>
<form id="search" action="/search" method="get"><input name="q" value="shoes"></form>
<form id="challenge" action="/verify?src=cp" method="post">
  <input type="hidden" name="csrf" value="abc123">
  <input type="hidden" name="return" value="/products?page=2&amp;sort=asc">
  <div class="g-recaptcha" data-sitekey="{SITEKEY}"></div>
  <textarea name="{FIELD}" style="display:none"></textarea>
  <input type="submit" name="go" value="Continue">
</form>
<form id="gate" action="https://shop.example.com/gate" method="GET">
  <input type="hidden" name="ray" value="7f00">
  <textarea name="{FIELD}"></textarea>
</form>
</body></html>
"""

POST_FORM = FormLocator(xpath='//form[@id="challenge"]', token_field=FIELD)
GET_FORM = FormLocator(xpath='//form[@id="gate"]', token_field=FIELD)


def on_page(response: Any, **kwargs: Any) -> None:
    """The original callback (never called here)."""


def on_error(failure: Any) -> None:
    """The original errback (never called here)."""


def reissue_with_token(request: Request, token: str, solution: Mapping[str, Any]) -> Request:
    """A ``callable`` inject function: puts the token in a header and the solution in meta."""
    return request.replace(
        headers={**request.headers.to_unicode_dict(), "X-Solved": token},
        meta={**request.meta, "solution": solution},
    )


def returns_nothing(request: Request, token: str, solution: Mapping[str, Any]) -> Any:
    return None


def path_of(function: Any) -> str:
    """The ``module:function`` import path of a function of this module."""
    return f"{function.__module__}:{function.__name__}"


def challenge_response(url: str = PAGE_URL, body: str = CHALLENGE_PAGE) -> HtmlResponse:
    return HtmlResponse(url=url, body=body.encode(), encoding="utf-8", status=403)


def challenge(form: FormLocator | None = POST_FORM) -> Challenge:
    return Challenge(kind="recaptcha_v2", solvable=True, sitekey=SITEKEY, form=form)


def original_request(**kwargs: Any) -> Request:
    defaults: dict[str, Any] = {
        "url": PAGE_URL,
        "callback": on_page,
        "errback": on_error,
        "cb_kwargs": {"category": "shoes"},
        "meta": {"depth": 2, "custom": [1, 2]},
        "headers": {"X-Custom": "kept", "Referer": "https://shop.example.com/"},
        "cookies": {"session": "s1"},
        "priority": 7,
        "dont_filter": True,
    }
    defaults.update(kwargs)
    return Request(**defaults)


def assert_kept(new: Request, old: Request) -> None:
    """The re-issued request keeps the original's callbacks, meta, headers and scheduling."""
    assert new is not old
    assert new.callback is old.callback
    assert new.errback is old.errback
    assert new.cb_kwargs == old.cb_kwargs
    assert new.meta == old.meta
    assert new.cookies == old.cookies
    assert new.priority == old.priority
    assert new.dont_filter == old.dont_filter
    for name in old.headers:
        if name not in (b"Content-Type", b"Content-Length", b"User-Agent"):
            assert new.headers.getlist(name) == old.headers.getlist(name), name


# --- page form ------------------------------------------------------------------------------------


def test_post_form_plan() -> None:
    plan = prepare(InjectSpec(), challenge(), challenge_response())
    assert plan.mode == "page_form"
    assert plan.name == FIELD
    assert plan.format == "{token}"
    assert plan.form_url == "https://shop.example.com/verify?src=cp"
    assert plan.form_method == "POST"
    assert plan.form_content_type == b"application/x-www-form-urlencoded"
    # the plan keeps plain values only, not the page
    assert all(
        value is None or isinstance(value, (str, bytes))
        for value in vars(plan).values()
        if not isinstance(value, tuple)
    )
    assert plan.fields == ()


def test_post_form_submission() -> None:
    plan = prepare(InjectSpec(mode="form"), challenge(), challenge_response())
    old = original_request()
    new = apply(plan, old, TOKEN, {"gRecaptchaResponse": TOKEN})
    assert new.url == "https://shop.example.com/verify?src=cp"
    assert new.method == "POST"
    assert new.headers[b"Content-Type"] == b"application/x-www-form-urlencoded"
    # hidden fields kept, the textarea filled once, the submit button not clicked
    assert parse_qsl(new.body.decode(), keep_blank_values=True) == [
        ("csrf", "abc123"),
        ("return", "/products?page=2&sort=asc"),
        (FIELD, TOKEN),
    ]
    assert f"{FIELD}={ENCODED}".encode() in new.body
    assert_kept(new, old)
    # the original request is not changed
    assert old.method == "GET"
    assert old.url == PAGE_URL
    assert old.body == b""


def test_get_form_submission() -> None:
    plan = prepare(InjectSpec(), challenge(GET_FORM), challenge_response())
    assert plan.form_method == "GET"
    assert plan.form_content_type is None
    old = original_request(
        method="POST",
        body=b'{"q": 1}',
        headers={"Content-Type": "application/json", "X-Custom": "kept"},
    )
    new = apply(plan, old, TOKEN, {})
    parts = urlsplit(new.url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "shop.example.com", "/gate")
    assert parse_qsl(parts.query, keep_blank_values=True) == [("ray", "7f00"), (FIELD, TOKEN)]
    assert f"{FIELD}={ENCODED}" in parts.query
    assert new.method == "GET"
    assert new.body == b""
    assert b"Content-Type" not in new.headers
    assert_kept(new, old)


def test_form_field_name_and_format_from_the_template() -> None:
    spec = InjectSpec(mode="form", name="captcha_token", format="v1:{token}")
    plan = prepare(spec, challenge(), challenge_response())
    assert plan.name == "captcha_token"
    new = apply(plan, original_request(), TOKEN, {})
    fields = parse_qsl(new.body.decode(), keep_blank_values=True)
    assert ("captcha_token", f"v1:{TOKEN}") in fields
    # the widget's own field is submitted as the page has it (empty)
    assert (FIELD, "") in fields
    assert [name for name, _ in fields].count("captcha_token") == 1


def test_one_plan_serves_several_tokens() -> None:
    plan = prepare(InjectSpec(), challenge(), challenge_response())
    first = apply(plan, original_request(), "token-one", {})
    second = apply(plan, original_request(), "token-two", {})
    assert dict(parse_qsl(first.body.decode()))[FIELD] == "token-one"
    assert dict(parse_qsl(second.body.decode()))[FIELD] == "token-two"


def test_form_of_a_relative_page() -> None:
    page = '<form action="check" method="post"><input type="hidden" name="n" value="1"></form>'
    response = challenge_response(url="https://example.com/a/b/page", body=page)
    plan = prepare(InjectSpec(), challenge(FormLocator(xpath="//form", token_field="t")), response)
    new = apply(plan, Request("https://example.com/a/b/page"), TOKEN, {})
    assert new.url == "https://example.com/a/b/check"
    assert parse_qsl(new.body.decode()) == [("n", "1"), ("t", TOKEN)]


@pytest.mark.parametrize("mode", ["auto", "form"])
def test_no_form_on_the_page(mode: InjectMode) -> None:
    spec = InjectSpec(mode=mode)
    with pytest.raises(InjectError, match="no form"):
        prepare(spec, challenge(form=None), challenge_response())
    with pytest.raises(InjectError, match="no form"):
        prepare(spec, None, challenge_response())
    with pytest.raises(InjectError, match="no form"):
        prepare(spec, challenge(), None)


def test_form_locator_that_matches_nothing() -> None:
    form = FormLocator(xpath='//form[@id="gone"]', token_field=FIELD)
    with pytest.raises(InjectError, match="cannot read the challenge form"):
        prepare(InjectSpec(), challenge(form), challenge_response())


def test_page_form_uses_no_deprecated_scrapy_api() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = prepare(InjectSpec(), challenge(), challenge_response())
    assert plan.mode == "page_form"


def test_inject_error_is_a_value_error() -> None:
    assert issubclass(InjectError, ValueError)


# --- own form (presolve) --------------------------------------------------------------------------


def test_presolve_plan() -> None:
    get = original_request()
    assert prepare_presolve(InjectSpec(), FIELD, get) == InjectPlan(mode="own_form", name=FIELD)
    spec = InjectSpec(mode="form", name="tok", format="x{token}")
    assert prepare_presolve(spec, FIELD, get) == (
        InjectPlan(mode="own_form", name="tok", format="x{token}")
    )


def test_presolve_plan_checks_the_body_before_any_task() -> None:
    json_post = JsonRequest("https://shop.example.com/api/login", data={"user": "bob"})
    with pytest.raises(InjectError, match="form-encoded body"):
        prepare_presolve(InjectSpec(), FIELD, json_post)
    form = form_post("https://shop.example.com/login", {"user": "bob"})
    with pytest.raises(InjectError, match="JSON object body"):
        prepare_presolve(InjectSpec(mode="json", name="t"), FIELD, form)


def test_presolve_plan_for_other_modes() -> None:
    spec = InjectSpec(mode="header", name="X-Captcha", format="Bearer {token}")
    plan = prepare_presolve(spec, FIELD, original_request())
    assert plan == InjectPlan(mode="header", name="X-Captcha", format="Bearer {token}")
    callable_spec = InjectSpec(mode="callable", function=path_of(reissue_with_token))
    assert prepare_presolve(callable_spec, FIELD, original_request()) == InjectPlan(
        mode="callable", name="", function=path_of(reissue_with_token)
    )


def test_own_form_replaces_the_field() -> None:
    old = form_post(
        "https://shop.example.com/login",
        {"user": "bob", FIELD: "stale", "note": "a&b c"},
        callback=on_page,
        meta={"m": 1},
        priority=3,
    )
    new = apply(prepare_presolve(InjectSpec(), FIELD, old), old, TOKEN, {})
    assert new.method == "POST"
    assert new.url == old.url
    fields = parse_qsl(new.body.decode(), keep_blank_values=True)
    assert sorted(fields) == sorted([("user", "bob"), ("note", "a&b c"), (FIELD, TOKEN)])
    assert [name for name, _ in fields].count(FIELD) == 1
    assert new.headers[b"Content-Type"] == b"application/x-www-form-urlencoded"
    assert_kept(new, old)
    assert dict(parse_qsl(old.body.decode()))[FIELD] == "stale"


def test_own_form_on_an_empty_post() -> None:
    old = Request("https://shop.example.com/login", method="POST")
    new = apply(prepare_presolve(InjectSpec(), FIELD, old), old, TOKEN, {})
    assert new.body == f"{FIELD}={ENCODED}".encode()
    assert new.headers[b"Content-Type"] == b"application/x-www-form-urlencoded"


def test_own_form_keeps_blank_fields() -> None:
    old = form_post("https://e.com/f", {"empty": "", "a": "1"})
    new = apply(prepare_presolve(InjectSpec(), FIELD, old), old, TOKEN, {})
    assert ("empty", "") in parse_qsl(new.body.decode(), keep_blank_values=True)


def test_own_form_on_a_get_request_uses_the_query() -> None:
    old = original_request(url=f"https://shop.example.com/search?q=a&{FIELD}=old")
    new = apply(prepare_presolve(InjectSpec(format="t:{token}"), FIELD, old), old, TOKEN, {})
    assert new.method == "GET"
    query = parse_qsl(urlsplit(new.url).query)
    assert sorted(query) == sorted([("q", "a"), (FIELD, f"t:{TOKEN}")])
    assert new.body == b""
    assert_kept(new, old)


def test_own_form_refuses_a_json_body() -> None:
    old = JsonRequest("https://shop.example.com/api/login", data={"user": "bob"})
    plan = InjectPlan(mode="own_form", name=FIELD)  # as if the body changed after planning
    with pytest.raises(InjectError, match="form-encoded body"):
        apply(plan, old, TOKEN, {})


def test_own_form_keeps_a_latin1_body() -> None:
    old = form_post("https://e.com/f", {"name": "café"}, encoding="latin-1")
    assert old.body == b"name=caf%E9"
    new = apply(prepare_presolve(InjectSpec(), FIELD, old), old, "tok", {})
    assert new.body == f"name=caf%E9&{FIELD}=tok".encode()


# --- header, cookie, query, json ------------------------------------------------------------------


def test_header() -> None:
    spec = InjectSpec(mode="header", name="Authorization", format="Bearer {token}")
    plan = prepare(spec, challenge(), challenge_response())
    assert plan.mode == "header"
    old = original_request(headers={"Authorization": "Bearer old", "X-Custom": "kept"})
    new = apply(plan, old, TOKEN, {})
    assert new.headers.getlist("Authorization") == [f"Bearer {TOKEN}".encode()]
    assert new.url == old.url
    assert new.method == old.method
    assert new.headers[b"X-Custom"] == b"kept"
    assert old.headers[b"Authorization"] == b"Bearer old"
    assert new.callback is old.callback
    assert new.meta == old.meta
    assert new.priority == old.priority


def test_cookie_dict() -> None:
    plan = prepare(InjectSpec(mode="cookie", name="cf_token"), None, None)
    old = original_request(cookies={"session": "s1", "cf_token": "old"})
    new = apply(plan, old, TOKEN, {})
    assert new.cookies == {"session": "s1", "cf_token": TOKEN}
    assert old.cookies == {"session": "s1", "cf_token": "old"}
    assert new.callback is old.callback
    assert new.cb_kwargs == old.cb_kwargs


def test_cookie_list() -> None:
    plan = prepare(InjectSpec(mode="cookie", name="cf_token", format="v={token}"), None, None)
    session = {"name": "session", "value": "s1", "domain": "shop.example.com", "path": "/"}
    old = original_request(cookies=[session, {"name": "cf_token", "value": "old"}])
    new = apply(plan, old, TOKEN, {})
    assert new.cookies == [session, {"name": "cf_token", "value": f"v={TOKEN}"}]
    assert old.cookies == [session, {"name": "cf_token", "value": "old"}]


def test_cookie_on_a_request_without_cookies() -> None:
    plan = prepare(InjectSpec(mode="cookie", name="cf_token"), None, None)
    new = apply(plan, Request("https://e.com/"), TOKEN, {})
    assert new.cookies == {"cf_token": TOKEN}


def test_query() -> None:
    plan = prepare(InjectSpec(mode="query", name="token"), None, None)
    old = original_request(url="https://shop.example.com/api?token=old&a=1")
    new = apply(plan, old, TOKEN, {})
    parts = urlsplit(new.url)
    assert (parts.netloc, parts.path) == ("shop.example.com", "/api")
    assert parse_qsl(parts.query) == [("token", TOKEN), ("a", "1")]
    assert old.url == "https://shop.example.com/api?token=old&a=1"
    assert_kept(new, old)


def test_query_added_when_absent() -> None:
    plan = prepare(InjectSpec(mode="query", name="token"), None, None)
    new = apply(plan, Request("https://e.com/p"), TOKEN, {})
    assert parse_qsl(urlsplit(new.url).query) == [("token", TOKEN)]


def test_json_merges_into_the_body() -> None:
    plan = prepare(InjectSpec(mode="json", name="captcha"), None, None)
    old = JsonRequest(
        "https://shop.example.com/api/login",
        data={"user": "bob", "captcha": "old", "n": [1, 2]},
        callback=on_page,
        meta={"m": 1},
    )
    new = apply(plan, old, TOKEN, {})
    assert json.loads(new.body) == {"user": "bob", "captcha": TOKEN, "n": [1, 2]}
    assert new.headers[b"Content-Type"] == b"application/json"
    assert new.method == "POST"
    assert json.loads(old.body)["captcha"] == "old"
    assert_kept(new, old)


def test_json_on_an_empty_body() -> None:
    plan = prepare(InjectSpec(mode="json", name="captcha", format="x{token}"), None, None)
    new = apply(plan, Request("https://e.com/api", method="POST"), TOKEN, {})
    assert json.loads(new.body) == {"captcha": f"x{TOKEN}"}
    assert new.headers[b"Content-Type"] == b"application/json"


@pytest.mark.parametrize("body", [b"user=bob", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_json_refuses_other_bodies(body: bytes) -> None:
    plan = prepare(InjectSpec(mode="json", name="captcha"), None, None)
    request = Request("https://e.com/api", method="POST", body=body)
    with pytest.raises(InjectError, match="JSON object body"):
        apply(plan, request, TOKEN, {})


# --- callable -------------------------------------------------------------------------------------


@pytest.mark.parametrize("separator", [":", "."])
def test_callable(separator: str) -> None:
    function = f"{reissue_with_token.__module__}{separator}{reissue_with_token.__name__}"
    plan = prepare(InjectSpec(mode="callable", function=function), challenge(), None)
    assert plan == InjectPlan(mode="callable", name="", function=function)
    old = original_request()
    solution = {"gRecaptchaResponse": TOKEN, "extra": 1}
    new = apply(plan, old, TOKEN, solution)
    assert new.headers[b"X-Solved"] == TOKEN.encode()
    assert new.meta["solution"] == solution
    assert new.callback is old.callback
    assert new.url == old.url
    assert "solution" not in old.meta


def test_callable_must_return_a_request() -> None:
    plan = prepare(InjectSpec(mode="callable", function=path_of(returns_nothing)), None, None)
    with pytest.raises(InjectError, match="returned NoneType"):
        apply(plan, original_request(), TOKEN, {})


# --- userAgent ------------------------------------------------------------------------------------

PLANS = {
    "page_form": lambda: prepare(InjectSpec(), challenge(), challenge_response()),
    "own_form": lambda: prepare_presolve(InjectSpec(), FIELD, original_request()),
    "header": lambda: prepare(InjectSpec(mode="header", name="X-Captcha"), None, None),
    "cookie": lambda: prepare(InjectSpec(mode="cookie", name="cf"), None, None),
    "query": lambda: prepare(InjectSpec(mode="query", name="t"), None, None),
    "json": lambda: prepare(InjectSpec(mode="json", name="t"), None, None),
    "callable": lambda: prepare(
        InjectSpec(mode="callable", function=path_of(reissue_with_token)), None, None
    ),
}


@pytest.mark.parametrize(
    "mode",
    list(PLANS),
)
def test_user_agent_from_the_solution(mode: str) -> None:
    old = original_request(headers={"User-Agent": "Scrapy/original"})
    new = apply(PLANS[mode](), old, TOKEN, {"userAgent": "Mozilla/5.0 (Solver)"})
    assert new.headers.getlist(b"User-Agent") == [b"Mozilla/5.0 (Solver)"]
    assert old.headers[b"User-Agent"] == b"Scrapy/original"


@pytest.mark.parametrize("user_agent", [None, "", 5])
def test_no_usable_user_agent_keeps_the_original(user_agent: Any) -> None:
    old = original_request(headers={"User-Agent": "Scrapy/original"})
    plan = prepare(InjectSpec(mode="header", name="X-Captcha"), None, None)
    new = apply(plan, old, TOKEN, {"userAgent": user_agent})
    assert new.headers[b"User-Agent"] == b"Scrapy/original"
