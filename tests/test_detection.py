"""Challenge detection on realistic pages (tests/fixtures/pages), negatives and odd input."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from scrapy.exceptions import ScrapyDeprecationWarning
from scrapy.http import FormRequest, HtmlResponse, Response, TextResponse

from scrapy_ucaptcha._detectors._core import Page
from scrapy_ucaptcha.detection import (
    BUILTIN_DETECTORS,
    DEFAULT_DETECTORS,
    AwsWafDetector,
    Challenge,
    ChallengeKind,
    CloudflareChallengeDetector,
    DataDomeDetector,
    Detector,
    FormLocator,
    HCaptchaDetector,
    PerimeterXDetector,
    RecaptchaDetector,
    TurnstileDetector,
    detect,
    detect_image,
)

PAGES = Path(__file__).parent / "fixtures" / "pages"


def page(name: str) -> bytes:
    return (PAGES / name).read_bytes()


def html(
    body: bytes | str,
    url: str = "https://site.example/page",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HtmlResponse:
    data = body.encode() if isinstance(body, str) else body
    return HtmlResponse(url=url, body=data, status=status, headers=headers, encoding=None)


def fixture_response(
    name: str, url: str, status: int = 200, headers: dict[str, str] | None = None
) -> HtmlResponse:
    return html(page(name), url=url, status=status, headers=headers)


def submit(response: TextResponse, xpath: str, formdata: dict[str, str]) -> FormRequest:
    """``FormRequest.from_response(formxpath=...)``, the consumer FormLocator.xpath is made for.

    Scrapy 2.19 deprecates from_response (in favour of form2request, which takes the form
    element: ``response.xpath(xpath)[0]`` works the same way); it still works.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ScrapyDeprecationWarning)
        return FormRequest.from_response(
            response, formxpath=xpath, formdata=formdata, dont_click=True
        )


@pytest.fixture
def no_detector_failures(caplog: pytest.LogCaptureFixture) -> Any:
    """Fails the test if any detector raised (they are caught and logged at DEBUG)."""
    caplog.set_level(logging.DEBUG, logger="scrapy_ucaptcha.detection")
    yield
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert not failures, [r.getMessage() for r in failures]


# --- token widgets --------------------------------------------------------------------------------

RC_FIELD = "g-recaptcha-response"

# (fixture, url, status, kind, sitekey, params, form xpath, token field, form action after join)
WidgetCase = tuple[str, str, int, str, str, dict[str, Any], str, str, str]
WIDGETS: list[WidgetCase] = [
    (
        "recaptcha_v2_checkbox.html",
        "https://forum.example.org/login/",
        200,
        ChallengeKind.RECAPTCHA_V2,
        "6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p",  # the page has a leading space
        {"version": "v2", "api_domain": "google.com", "callback": "onCaptchaSolved"},
        '//form[@id="login-form"]',
        RC_FIELD,
        "https://forum.example.org/login/login",
    ),
    (
        "recaptcha_v2_invisible.html",
        "https://shoply.example/account/register",
        200,
        ChallengeKind.RECAPTCHA_V2_INVISIBLE,
        "6LfkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeOZIiB",
        {
            "version": "v2",
            "invisible": True,
            "api_domain": "google.com",
            "callback": "submitSignup",
        },
        "(//form)[2]",  # the header search form comes first and neither has an id
        RC_FIELD,
        "https://shoply.example/account/register",
    ),
    (
        "recaptcha_v2_js_render.html",
        "https://dmv.example.gov/Registration/Lookup",
        200,
        ChallengeKind.RECAPTCHA_V2,
        "6LeB_Y6sHrFH2ZUCr_lgotu2iXW7GboIRoL3u6aH",
        {"version": "v2", "api_domain": "google.com", "callback": "verifyCallback"},
        '//form[@name="lookup"]',
        RC_FIELD,
        "https://dmv.example.gov/Registration/Status",
    ),
    (
        "recaptcha_v2_data_s.html",
        "https://www.google.com/sorry/index?continue=https://www.google.com/search%3Fq%3Dscrapy",
        429,
        ChallengeKind.RECAPTCHA_V2,
        "6LfwuyUTAAAAAOAmoS0fdqijC2PbbdH4kjq62Y1b",
        {
            "version": "v2",
            "data_s": "Jdq0ziFS8pvy6nIt8aVL4qYzr9HT3EB5ZnOHa3sLO1b5Yq6wgUUjw0vfv3XjSg6gYOaGNuTvhdw"
            "Yw5Mv4tc-c1Or7hLvCWC7ZxT6E2s8a0vt5_-CgC9X0zSXhX9c3U9QN7x5PnHyyd8I0kXa",
            "api_domain": "google.com",
            "callback": "submitCallback",
        },
        '//form[@id="captcha-form"]',
        RC_FIELD,
        "https://www.google.com/sorry/index",
    ),
    (
        "recaptcha_net.html",
        "https://yun.example.cn/passport/login",
        200,
        ChallengeKind.RECAPTCHA_V2,
        "6LdnMztVuaP-coUNEhEkk-iqq8vH2BzNZV45pFCi",
        {"version": "v2", "api_domain": "recaptcha.net"},
        '//form[@id="loginForm"]',
        RC_FIELD,
        "https://yun.example.cn/passport/login",
    ),
    (
        "recaptcha_v3.html",
        "https://parcelway.example/track/",
        200,
        ChallengeKind.RECAPTCHA_V3,
        "6LecDCajhDieQjEJ-Bq8F80ymm3T207gmhZRnFyy",
        {"version": "v3", "action": "track_parcel", "api_domain": "google.com"},
        '//form[@id="track-form"]',
        "recaptcha_response",  # the page copies the token into its own hidden input
        "https://parcelway.example/track/result/",
    ),
    (
        "recaptcha_enterprise_checkbox.html",
        "https://online.northbank.example/auth/challenge?flow=signin",
        200,
        ChallengeKind.RECAPTCHA_ENTERPRISE,
        "6Lfr2xJ7Fj4mgblEv0-9BZhvWaXH6K2-tyLBhhOh",
        {
            "version": "v2",
            "action": "LOGIN",
            "enterprise": True,
            "enterprise_payload": {"s": "ZmFrZS1zLXZhbHVlLWZvci1lbnRlcnByaXNlLTEyMzQ1"},
            "api_domain": "google.com",
            "callback": "onVerified",
        },
        '//form[@id="challenge"]',
        RC_FIELD,
        "https://online.northbank.example/auth/challenge/verify?flow=signin&step=3",
    ),
    (
        "recaptcha_enterprise_v3.html",
        "https://tickethub.example/signin",
        200,
        ChallengeKind.RECAPTCHA_ENTERPRISE,
        "6Lc9uhkxiiEZpFfk1OHAOEHYqM6Ojb6mjBHqSiFV",
        {"version": "v3", "action": "LOGIN", "enterprise": True, "api_domain": "google.com"},
        "(//form)[1]",
        RC_FIELD,
        "https://tickethub.example/api/auth/signin",
    ),
    (
        "hcaptcha.html",
        "https://faucetly.example/claim",
        200,
        ChallengeKind.HCAPTCHA,
        "b1a6b1f1-620e-49d3-bb33-f3d8269cd696",
        {
            "rqdata": "bX0pZ9Kc1Uq8vT3sWn4yRe7hLa2jFo6dGi5mNb0xQc-1710150000",
            "callback": "onHcaptchaDone",
        },
        '//form[@id="claim-form"]',
        "h-captcha-response",
        "https://faucetly.example/claim",
    ),
    (
        "hcaptcha_js_render.html",
        "https://chat.example/invite/makers",
        200,
        ChallengeKind.HCAPTCHA,
        "10714d51-36c5-4dac-b4d7-e28e271e3ee2",  # from `sitekey: HCAPTCHA_SITEKEY`
        {
            "rqdata": "Vb7Qx0yNq3Jk2mZ1-rqdata-Lp9sW4tU",
            "invisible": True,
            "callback": "onInviteCaptcha",
        },
        "(//form)[1]",
        "h-captcha-response",
        "https://chat.example/api/v9/invites/makers/accept",
    ),
    (
        "turnstile.html",
        "https://docketly.example/login",
        200,
        ChallengeKind.TURNSTILE,
        "0x4AAAAAAA1Ay5XL8Sb24WKy",
        {"action": "login", "cdata": "sess-7f3a91c2", "callback": "turnstileDone"},
        '//form[@id="session-form"]',
        "cf-turnstile-response",
        "https://docketly.example/session",
    ),
    (
        "turnstile_js_render.html",
        "https://www.stadtblatt.example/newsletter",
        200,
        ChallengeKind.TURNSTILE,
        "0x4AAAAAAAEa8wtWy2591AIV",
        {"action": "newsletter", "cdata": "nl-2024-03"},  # the callback is an inline function
        "(//form)[1]",
        "cf-turnstile-response",
        "https://www.stadtblatt.example/newsletter/subscribe",
    ),
    (
        "cloudflare_turnstile_login.html",  # behind Cloudflare (jsd script), own Turnstile widget
        "https://linkpile.example/item?id=4242",
        403,
        ChallengeKind.TURNSTILE,
        "0x4AAAAAAAVIZM5oForBFbyv",
        {},
        "(//form)[1]",
        "turnstile_token",  # data-response-field-name
        "https://linkpile.example/verify?next=%2Fitem%3Fid%3D4242",
    ),
    (
        "cloudflare_attention_recaptcha.html",  # sitekey on cf.challenge.js, empty .g-recaptcha
        "https://shop.example.com/products/widget-42",
        403,
        ChallengeKind.RECAPTCHA_V2,
        "6Leu4MbMnrHontIKARAH-Ggl2JfaQqHu42bojteV",
        {"version": "v2", "api_domain": "google.com"},  # domain of the noscript fallback iframe
        '//form[@id="challenge-form"]',
        RC_FIELD,
        "https://shop.example.com/products/widget-42?__cf_chl_captcha_tk__="
        "a1b2c3d4e5f60718293a4b5c6d7e8f9001122334-1580000000-0-AdLmN3o4P5q6R7s8T9u0",
    ),
    (
        "contact_recaptcha.html",  # a widget, not necessarily a challenge: templates decide
        "https://hillsidebakery.example/contact/",
        200,
        ChallengeKind.RECAPTCHA_V2,
        "6Ld3qfNUfTAFnT0tEuw0dwQ0FIunWe8Cz6SNDCdy",
        {"version": "v2", "api_domain": "google.com"},  # render(el, {callback: function…})
        '//form[@id="wpforms-form-88"]',
        RC_FIELD,
        "https://hillsidebakery.example/contact/",
    ),
]


@pytest.mark.usefixtures("no_detector_failures")
@pytest.mark.parametrize("case", WIDGETS, ids=[w[0].removesuffix(".html") for w in WIDGETS])
def test_token_widget(case: WidgetCase) -> None:
    name, url, status, kind, sitekey, params, xpath, field, action = case
    response = fixture_response(name, url, status)
    challenge = detect(response)
    assert challenge is not None
    assert challenge.kind == kind
    assert challenge.solvable is True
    assert challenge.sitekey == sitekey
    assert dict(challenge.params) == params
    assert challenge.image_url is None
    assert challenge.detector == kind.split("_", maxsplit=1)[0]
    assert challenge.form == FormLocator(xpath=xpath, token_field=field)
    assert len(response.xpath(xpath)) == 1

    request = submit(response, challenge.form.xpath, {field: "TOKEN"})
    assert request.url == action
    assert request.method == "POST"
    assert f"{field}=TOKEN".encode() in request.body


def test_each_widget_detector_works_alone() -> None:
    cases = [
        (RecaptchaDetector(), "recaptcha_v2_checkbox.html", ChallengeKind.RECAPTCHA_V2),
        (HCaptchaDetector(), "hcaptcha.html", ChallengeKind.HCAPTCHA),
        (TurnstileDetector(), "turnstile.html", ChallengeKind.TURNSTILE),
    ]
    for detector, name, kind in cases:
        found = detector.detect(fixture_response(name, "https://a.example/"))
        assert found is not None
        assert found.kind == kind
        assert detector.detect(fixture_response("plain_article.html", "https://a.example/")) is None


def test_recaptcha_render_with_a_variable_sitekey() -> None:
    body = page("recaptcha_v2_js_render.html").decode()
    body = body.replace(
        "'sitekey' : '6LeB_Y6sHrFH2ZUCr_lgotu2iXW7GboIRoL3u6aH'", "'sitekey' : window.CFG.siteKey"
    ).replace(
        "var onloadCallback",
        'window.CFG = {"siteKey": "6LeB_Y6sHrFH2ZUCr_lgotu2iXW7GboIRoL3u6aH"};\n var x',
    )
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.sitekey == "6LeB_Y6sHrFH2ZUCr_lgotu2iXW7GboIRoL3u6aH"


def test_recaptcha_render_explicit_is_not_a_v3_key() -> None:
    body = """<html><head><script src="https://www.google.com/recaptcha/api.js?render=explicit">
    </script></head><body><form action="/f"><div id="box"></div></form><script>
    grecaptcha.render("box", {"sitekey": "6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"});</script>
    </body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.sitekey == "6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"
    assert challenge.params["version"] == "v2"
    assert challenge.form == FormLocator("(//form)[1]", RC_FIELD)


def test_recaptcha_v3_from_execute_only() -> None:
    body = """<html><body><form id="f" action="/send"><button>Go</button></form>
    <script src="/static/bundle.js"></script><script>
    grecaptcha.ready(() => grecaptcha.execute("6LecDCajhDieQjEJ-Bq8F80ymm3T207gmhZRnFyy",
      {action: "homepage"}));</script></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V3
    assert challenge.sitekey == "6LecDCajhDieQjEJ-Bq8F80ymm3T207gmhZRnFyy"
    assert dict(challenge.params) == {"version": "v3", "action": "homepage"}
    assert challenge.form == FormLocator('//form[@id="f"]', RC_FIELD)  # the only form


def test_recaptcha_widget_bound_to_a_button_is_invisible() -> None:
    body = """<html><head><script src="https://www.google.com/recaptcha/api.js"></script></head>
    <body><form action="/c" method="post"><input name="q">
    <button class="g-recaptcha btn" data-sitekey="6LfkLUyifDLkDmWJ6UuVTAIjvFu7WICPhDeOZIiB"
      data-callback="onSubmit">Send</button></form></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2_INVISIBLE
    assert challenge.params["invisible"] is True


def test_sitewide_v3_execute_does_not_make_a_checkbox_invisible() -> None:
    checkbox = "6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"
    body = f"""<html><head><script src="https://www.google.com/recaptcha/api.js"></script></head>
    <body><form action="/c" method="post"><div class="g-recaptcha" data-sitekey="{checkbox}">
    </div></form><script>grecaptcha.ready(function () {{
      grecaptcha.execute('6LecDCajhDieQjEJ-Bq8F80ymm3T207gmhZRnFyy', {{action: 'pageview'}});
    }});</script></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.sitekey == checkbox
    same_key = body.replace("6LecDCajhDieQjEJ-Bq8F80ymm3T207gmhZRnFyy", checkbox)
    challenge = detect(html(same_key))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2_INVISIBLE


def test_saved_page_with_only_the_anchor_iframe() -> None:
    body = """<html><body><form id="f" method="post" action="/s"><div><div style="width:304px">
    <iframe title="reCAPTCHA" src="https://www.recaptcha.net/recaptcha/api2/anchor?ar=1&amp;k=6LdnM
    ztVuaP-coUNEhEkk-iqq8vH2BzNZV45pFCi&amp;co=aHR0cHM6Ly9hLmV4YW1wbGU6NDQz&amp;hl=en&amp;v=pCoGBhjs9s8
    EhFOHJFe8cqis&amp;size=invisible&amp;cb=1x2y3z"></iframe></div>
    <textarea id="g-recaptcha-response" name="g-recaptcha-response" class="g-recaptcha-response">
    </textarea></div></form></body></html>""".replace("\n    ", "")
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2_INVISIBLE
    assert challenge.sitekey == "6LdnMztVuaP-coUNEhEkk-iqq8vH2BzNZV45pFCi"
    assert dict(challenge.params) == {
        "version": "v2",
        "invisible": True,
        "api_domain": "recaptcha.net",
    }
    assert challenge.form == FormLocator('//form[@id="f"]', RC_FIELD)


def test_widget_without_sitekey_is_not_solvable() -> None:
    body = """<html><body><form action="/x"><div id="c"></div></form>
    <script src="https://www.google.com/recaptcha/api.js?onload=init&render=explicit"></script>
    <script src="/js/captcha-init.js"></script></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.solvable is False
    assert challenge.sitekey is None


def test_widget_outside_any_form_uses_the_response_field_form() -> None:
    body = """<html><body>
    <div class="h-captcha" data-sitekey="b1a6b1f1-620e-49d3-bb33-f3d8269cd696"></div>
    <form id="a" action="/a"></form><form action="/b" method="post">
    <textarea name="h-captcha-response"></textarea></form>
    <script src="https://js.hcaptcha.com/1/api.js"></script></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.form == FormLocator("(//form)[2]", "h-captcha-response")


def test_checkbox_widget_outside_a_form_has_no_form() -> None:
    body = """<html><body><form action="/search"><input name="q"></form>
    <div class="g-recaptcha" data-sitekey="6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"></div>
    <script src="https://www.google.com/recaptcha/api.js"></script></body></html>"""
    challenge = detect(html(body))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.form is None  # never the unrelated search form


def test_form_xpath_avoids_duplicate_ids_and_quotes() -> None:
    body = """<html><body><form id="x" action="/one"></form>
    <form id="x" name='say "hi"' action="/two" method="post">
    <div class="cf-turnstile" data-sitekey="0x4AAAAAAA1Ay5XL8Sb24WKy"></div></form>
    <script src="https://challenges.cloudflare.com/turnstile/v0/api.js"></script></body></html>"""
    response = html(body)
    challenge = detect(response)
    assert challenge is not None
    assert challenge.form is not None
    assert challenge.form.xpath == """//form[@name='say "hi"']"""
    request = submit(response, challenge.form.xpath, {})
    assert request.url == "https://site.example/two"


# --- walls ----------------------------------------------------------------------------------------

MITIGATED = {"cf-mitigated": "challenge", "Server": "cloudflare", "CF-RAY": "8a2b3c4d5e6f7a8b-FRA"}

# (fixture, status, headers, kind, sitekey, params)
WallCase = tuple[str, int, dict[str, str], str, str | None, dict[str, Any]]
WALLS: list[WallCase] = [
    ("cloudflare_managed.html", 403, MITIGATED, ChallengeKind.CLOUDFLARE_CHALLENGE, None, {}),
    ("cloudflare_managed.html", 503, MITIGATED, ChallengeKind.CLOUDFLARE_CHALLENGE, None, {}),
    ("cloudflare_managed.html", 403, {}, ChallengeKind.CLOUDFLARE_CHALLENGE, None, {}),
    (
        "cloudflare_iuam.html",
        503,
        {"Server": "cloudflare"},
        ChallengeKind.CLOUDFLARE_IUAM,
        None,
        {},
    ),
    (
        "datadome_bv.html",
        403,
        {"X-DataDome": "protected"},
        ChallengeKind.DATADOME,
        None,
        {"banned": True},
    ),
    (
        "datadome_fe.html",
        403,
        {"X-DataDome": "protected"},
        ChallengeKind.DATADOME,
        None,
        {
            "banned": False,
            # what c.js would load: the dd object's cid, hsh, t, s, e and the page as referer
            "captcha_url": "https://geo.captcha-delivery.com/captcha/"
            "?initialCid=AHrlqAAAAAMAsWm3Fl9Q0J0AAOaM2Q%3D%3D&hash=2211F522B61E269B869FA6EAFFB5E1"
            "&cid=&t=fe&referer=https%3A%2F%2Fshop.example.com%2Fp%2F1&s=44705"
            "&e=5d6c0b1f2a3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b5a6f7e8d9c",
        },
    ),
    ("perimeterx.html", 403, {}, ChallengeKind.PERIMETERX, None, {}),
    (
        "aws_waf_challenge.html",
        202,
        {},  # no header: recognised from gokuProps + challenge.js
        ChallengeKind.AWS_WAF,
        "AQIDAHjcYu/GjX+QlghicBgQ/7bFaQZ+m5FKCMDnO+vTbNg96AGkc2J0b2tlbi1rZXktZm9yLXRlc3Q=",
        {
            "waf_action": "challenge",
            "iv": "CgAFRjIxNwAAAbbn",
            "context": "Y2hhbGxlbmdlLWNvbnRleHQtZm9yLXRlc3Rz",
            "challenge_script": "https://9a8b7c6d5e4f.e1d2c3b4a596.eu-west-1.token.awswaf.com"
            "/9a8b7c6d5e4f/0f1e2d3c4b5a/challenge.js",
        },
    ),
]


@pytest.mark.usefixtures("no_detector_failures")
@pytest.mark.parametrize(
    "case",
    WALLS,
    ids=[f"{w[0].removesuffix('.html')}-{w[1]}{'-hdr' if w[2] else ''}" for w in WALLS],
)
def test_wall(case: WallCase) -> None:
    name, status, headers, kind, sitekey, params = case
    challenge = detect(fixture_response(name, "https://shop.example.com/p/1", status, headers))
    assert challenge is not None
    assert challenge == Challenge(
        kind=kind, solvable=False, sitekey=sitekey, params=params, detector=challenge.detector
    )
    assert challenge.form is None
    assert kind in ChallengeKind.UNSOLVABLE


def test_cloudflare_header_alone_is_a_challenge() -> None:
    challenge = detect(html(b"", status=403, headers=MITIGATED))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.CLOUDFLARE_CHALLENGE
    assert challenge.solvable is False
    assert detect(html(b"<html><body>ok</body></html>", headers={"cf-mitigated": "other"})) is None


def test_turnstile_widget_on_a_cloudflare_challenge_page_is_turnstile() -> None:
    body = page("cloudflare_managed.html").replace(
        b'<div class="main-content">',
        b'<div class="main-content"><form id="cf-form" action="/verify" method="post">'
        b'<div class="cf-turnstile" data-sitekey="0x4AAAAAAAQRZzUk1D6iNIb6"></div></form>',
    )
    challenge = detect(html(body, status=403, headers=MITIGATED))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.TURNSTILE
    assert challenge.solvable is True
    assert challenge.sitekey == "0x4AAAAAAAQRZzUk1D6iNIb6"
    assert challenge.form == FormLocator('//form[@id="cf-form"]', "cf-turnstile-response")


def test_wall_detectors_work_alone() -> None:
    cases = [
        (CloudflareChallengeDetector(), "cloudflare_managed.html"),
        (DataDomeDetector(), "datadome_fe.html"),
        (PerimeterXDetector(), "perimeterx.html"),
        (AwsWafDetector(), "aws_waf_captcha.html"),
    ]
    for detector, name in cases:
        found = detector.detect(fixture_response(name, "https://a.example/", 403))
        assert found is not None
        assert found.detector == detector.name
        assert not found.solvable


def test_datadome_json_answer_to_an_xhr() -> None:
    body = (
        b'{"url":"https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAAAAMAsWm3Fl9Q0J0AAOaM2Q'
        b"%3D%3D&hash=2211F522B61E269B869FA6EAFFB5E1&cid=Qx8~mzOeZ4g_7Kc3&t=bv&referer=https%3A%2F%2F"
        b'tickets.example.com%2Fapi%2Fsearch&s=44705&e=5d6c0b1f"}'
    )
    response = TextResponse(
        url="https://tickets.example.com/api/search",
        body=body,
        status=403,
        headers={"Content-Type": "application/json", "X-DataDome": "protected"},
    )
    challenge = detect(response)
    assert challenge is not None
    assert challenge.kind == ChallengeKind.DATADOME
    assert dict(challenge.params) == {"banned": True}


@pytest.mark.usefixtures("no_detector_failures")
def test_json_and_text_bodies_with_markers() -> None:
    for body in (
        b'{"error": "captcha required", "recaptcha": {"v": 2}, "hcaptcha": null}',
        b"plain text: please solve the captcha; cf_chl; challenges.cloudflare.com/turnstile",
    ):
        response = TextResponse(url="https://a.example/api", body=body, status=403)
        assert detect(response) is None


def test_perimeterx_json_block_answer() -> None:
    body = (
        b'{"appId":"PXu6b0qd2S","jsClientSrc":"/u6b0qd2S/init.js","firstPartyEnabled":true,'
        b'"vid":"","uuid":"4b4a4e10-dfa2-11ee-9f1b-0d7a5e6f7a8b","hostUrl":"/u6b0qd2S/xhr",'
        b'"blockScript":"/u6b0qd2S/captcha/captcha.js?a=c&u=4b4a4e10&v=&m=0",'
        b'"altBlockScript":"https://captcha.px-cdn.net/PXu6b0qd2S/captcha.js?a=c&u=4b4a4e10&v=&m=0"}'
    )
    response = TextResponse(url="https://a.example/api", body=body, status=403)
    challenge = detect(response)
    assert challenge is not None
    assert challenge.kind == ChallengeKind.PERIMETERX


def test_aws_waf_header_alone() -> None:
    challenge = detect(html(b"", status=405, headers={"x-amzn-waf-action": "CAPTCHA"}))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.AWS_WAF_CAPTCHA
    assert not challenge.solvable  # no gokuProps: nothing to build a task from
    assert dict(challenge.params) == {}
    challenge = detect(html(b"", status=202, headers={"x-amzn-waf-action": "challenge"}))
    assert challenge is not None
    assert challenge.kind == ChallengeKind.AWS_WAF
    assert dict(challenge.params) == {"waf_action": "challenge"}


def test_aws_waf_sdk_on_an_ordinary_page_is_not_a_wall() -> None:
    body = page("plain_article.html").replace(
        b"</head>",
        b'<script src="https://9a8b7c6d5e4f.edge.sdk.awswaf.com/9a8b7c6d5e4f/0f1e2d3c/challenge.js"'
        b" defer></script></head>",
    )
    assert detect(html(body)) is None


# --- negatives ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_detector_failures")
@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("neg_just_a_moment_article.html", 200),
        ("neg_just_a_moment_article.html", 503),
        ("neg_captcha_article.html", 200),
        ("neg_cf_bot_management.html", 200),
        ("plain_article.html", 200),
        ("image_captcha.html", 200),  # image captchas are template-driven: detect_image()
    ],
)
def test_negative_pages(name: str, status: int) -> None:
    response = fixture_response(name, "https://blog.example/post", status, {"Server": "cloudflare"})
    assert detect(response) is None
    for detector in DEFAULT_DETECTORS:
        assert detector.detect(response) is None


def test_empty_and_binary_responses() -> None:
    assert detect(html(b"")) is None
    assert detect(html(b"   \n")) is None
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"recaptcha captcha-delivery _cf_chl_opt" * 10
    assert detect(Response(url="https://a.example/i.png", body=png)) is None
    pdf = b"%PDF-1.7\n1 0 obj<</Type/Catalog>>endobj g-recaptcha data-sitekey\n%%EOF"
    assert detect(Response(url="https://a.example/d.pdf", body=pdf, status=403)) is None
    for detector in DEFAULT_DETECTORS:
        assert detector.detect(Response(url="https://a.example/i.png", body=png)) is None
    assert detect_image(Response(url="https://a.example/i.png", body=png)) is None


@pytest.mark.usefixtures("no_detector_failures")
def test_non_utf8_page_with_a_widget() -> None:
    body = (
        '<html><head><meta charset="windows-1252"><title>Anmeldung für Kunden</title>'
        '<script src="https://www.google.com/recaptcha/api.js"></script></head><body>'
        '<form action="/anmelden" method="post"><p>Bitte bestätigen Sie — “danke”.</p>'
        '<div class="g-recaptcha" data-sitekey="6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"></div>'
        "</form></body></html>"
    ).encode("cp1252")
    response = HtmlResponse(url="https://a.example/", body=body)
    challenge = detect(response)
    assert challenge is not None
    assert challenge.kind == ChallengeKind.RECAPTCHA_V2
    assert challenge.form == FormLocator("(//form)[1]", RC_FIELD)


ODD_BODIES = [
    b"\xff\xfe<\x00h\x00t\x00m\x00l\x00>\x00",  # UTF-16 with a BOM
    b"<html><body>\xc3\x28\xa0\xa1 invalid utf-8 g-recaptcha \xf0\x28\x8c\x28</body></html>",
    b'<div class="g-recaptcha" data-sitekey="6LcdJFCrnl2edl',  # cut in an attribute
    b'<div class="g-recaptcha" data-sitekey="   "></div><script src="//www.google.com/recaptcha/',
    b"<script>grecaptcha.render(",
    b"<script>grecaptcha.execute('",
    b"<script>hcaptcha.render('x', {sitekey: ",
    b"<script>turnstile.render({{{{[[[(('\"`",
    b"<script>var dd={'rt':'c','host':'geo.captcha-delivery.com'",
    b"<form><form><div class='h-captcha' data-sitekey='x'></form></form></div>captcha",
    b"<script>window._cf_chl_opt={</script><form action='/?__cf_chl_f_tk=1'>",
    b"\x00\x00<html>\x00captcha\x00challenge\x00cf_chl\x00</html>",
    b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'captcha'>]><x>&a;&a;</x>",
    b"<" * 5000 + b"captcha",
    b"<img src='captcha.png'><form><input name='captcha'></form>",
]


@pytest.mark.usefixtures("no_detector_failures")
@pytest.mark.parametrize("body", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_input_never_raises(body: bytes) -> None:
    response = html(body, status=403, headers=MITIGATED if b"cf_chl" in body else None)
    detect(response)
    detect_image(response)
    detect_image(response, image_css="img", answer_field="captcha")


@pytest.mark.usefixtures("no_detector_failures")
def test_truncated_fixtures_never_raise() -> None:
    for path in sorted(PAGES.glob("*.html")):
        body = path.read_bytes()
        for cut in range(0, len(body), max(1, len(body) // 23)):
            response = html(body[:cut], status=403)
            detect(response)
            detect_image(response)


def test_a_failing_detector_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        name = "broken"

        def detect(self, response: Response) -> Challenge | None:
            raise RuntimeError("boom")

    class Always:
        name = "always"

        def detect(self, response: Response) -> Challenge | None:
            return Challenge(kind="custom", solvable=True, detector=self.name)

    caplog.set_level(logging.DEBUG, logger="scrapy_ucaptcha.detection")
    response = fixture_response("plain_article.html", "https://a.example/")
    found = detect(response, [Broken(), *DEFAULT_DETECTORS, Always()])
    assert found is not None
    assert found.detector == "always"
    assert any("broken detector failed" in r.getMessage() for r in caplog.records)
    assert isinstance(Broken(), Detector)


# --- image captchas -------------------------------------------------------------------------------

IMAGE_URL = "https://registry.example.gov/search/search.php"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"image_css": "#captchaImage"},
        {"image_xpath": "//img[@alt='security image']"},
        {"image_xpath": "//img[@id='captchaImage']/@src"},
        {"image_css": "td > img", "answer_field": "verify_code"},
    ],
)
def test_image_captcha(kwargs: dict[str, str]) -> None:
    response = fixture_response("image_captcha.html", IMAGE_URL)
    challenge = detect_image(response, **kwargs)
    assert challenge is not None
    assert challenge.kind == ChallengeKind.IMAGE
    assert challenge.solvable is True
    assert challenge.sitekey is None
    assert (
        challenge.image_url
        == "https://registry.example.gov/search/captcha/image.php?sid=6f1e2d3c4b5a"
    )
    assert challenge.form == FormLocator('//form[@name="searchForm"]', "verify_code")
    assert challenge.detector == "image"
    request = submit(response, challenge.form.xpath, {"verify_code": "x7k2p"})
    assert request.url == "https://registry.example.gov/search/results.php"
    assert b"verify_code=x7k2p" in request.body
    assert b"company=" in request.body


def test_image_captcha_answer_field_fallbacks() -> None:
    body = """<html><head><base href="https://cdn.example/"></head><body>
    <form action="/go" method="post"><input type="hidden" name="t" value="1">
    <input type="text" name="hidden_one" style="display: none"><input type="TEXT" name="q1">
    <img class="cap" src="img/c.png?x=1"></form></body></html>"""
    challenge = detect_image(html(body), image_css="img.cap")
    assert challenge is not None
    assert challenge.image_url == "https://cdn.example/img/c.png?x=1"
    assert challenge.form == FormLocator("(//form)[1]", "q1")
    assert detect_image(html(body), image_css="img.cap", answer_field="ans") == dataclasses.replace(
        challenge, form=FormLocator("(//form)[1]", "ans")
    )


def test_image_captcha_misses_and_bad_selectors() -> None:
    response = fixture_response("image_captcha.html", IMAGE_URL)
    assert detect_image(response, image_css="img.nope") is None
    assert detect_image(fixture_response("plain_article.html", IMAGE_URL)) is None
    with pytest.raises(ValueError, match="invalid captcha image selector"):
        detect_image(response, image_xpath="//img[")
    with pytest.raises(ValueError, match="invalid captcha image selector"):
        detect_image(response, image_css="img[")
    both = detect_image(response, image_css="img.nope", image_xpath="//img[@id='captchaImage']")
    assert both == detect_image(response)


# --- types and registry ---------------------------------------------------------------------------


def test_challenge_is_immutable() -> None:
    source = {"action": "x", "enterprise_payload": {"s": "1"}}
    challenge = Challenge(kind="recaptcha_v2", solvable=True, sitekey="  6Lc key \n", params=source)
    assert challenge.sitekey == "6Lc key"
    assert isinstance(challenge.params, MappingProxyType)
    source["action"] = "changed"
    assert challenge.params["action"] == "x"
    with pytest.raises(TypeError):
        challenge.params["action"] = "y"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        challenge.kind = "x"  # type: ignore[misc]
    assert hash(challenge) == hash(dataclasses.replace(challenge))
    assert Challenge(kind="datadome", solvable=False).params == {}
    assert Challenge(kind="x", solvable=False, sitekey="  ").sitekey is None


def test_kinds_and_builtin_detectors() -> None:
    assert ChallengeKind.RECAPTCHA_V2 == "recaptcha_v2"
    assert ChallengeKind.CLOUDFLARE_CHALLENGE == "cloudflare_challenge"
    assert len(ChallengeKind.ALL) == 21
    assert ChallengeKind.SOLVABLE.isdisjoint(ChallengeKind.UNSOLVABLE)
    assert {cls.__name__ for cls in BUILTIN_DETECTORS} == {
        "RecaptchaDetector",
        "HCaptchaDetector",
        "TurnstileDetector",
        "CloudflareChallengeDetector",
        "DataDomeDetector",
        "PerimeterXDetector",
        "AwsWafDetector",
        "AwsWafCaptchaDetector",
        "CloudflareBlockDetector",
        "SucuriDetector",
        "FunCaptchaDetector",
        "GeeTestDetector",
        "FriendlyCaptchaDetector",
        "MTCaptchaDetector",
        "YandexSmartCaptchaDetector",
    }
    names = [d.name for d in DEFAULT_DETECTORS]
    assert len(set(names)) == len(names) == 15
    for cls in BUILTIN_DETECTORS:
        assert isinstance(cls(), Detector)


# --- cost -----------------------------------------------------------------------------------------


def _padded_plain_page() -> bytes:
    """plain_article.html padded to 50 KB with more of its own paragraphs."""
    source = page("plain_article.html")
    start, end = source.index(b"<p>For most"), source.index(b"<aside")
    copies = -(-(50_000 - len(source)) // (end - start))
    return source[:end] + source[start:end] * copies + source[end:]


@pytest.mark.parametrize(
    "body",
    [
        _padded_plain_page(),
        page("neg_cf_bot_management.html"),  # "challenge-platform" on every Cloudflare page
        page("neg_just_a_moment_article.html"),
        page("plain_article.html").replace(b"</p>", b" A challenge, a challenge.</p>"),
        page("plain_article.html").replace(b"</p>", b" Type the CAPTCHA, the captcha!</p>"),
    ],
    ids=["plain-50k", "cf-bot-management", "just-a-moment", "challenge-prose", "captcha-prose"],
)
def test_ordinary_pages_are_not_parsed(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_parsing(self: Page) -> None:
        pytest.fail("the page was parsed")

    monkeypatch.setattr(Page, "sel", property(no_parsing))
    response = html(body, headers={"Server": "cloudflare"})
    assert detect(response) is None


# --- the wall test --------------------------------------------------------------------------------


def _verdict(body: str, status: int = 200) -> str:
    from scrapy_ucaptcha.rules import find_challenge
    from scrapy_ucaptcha.templates import Template

    finding = find_challenge(html(body, status=status), Template.parse("*", {}), DEFAULT_DETECTORS)
    if finding.widget_ignored:
        return "ignored"
    found = finding.challenge
    return "none" if found is None else ("task" if found.solvable else "unsolvable")


V3_SITEWIDE = (
    '<html><head><script src="https://www.google.com/recaptcha/api.js?render='
    '6LcR_okUAAAAAPYrPe-HK_0RULO1aZM15ENyM-Mf"></script></head><body>{form}<article><p>Text</p>'
    "</article></body></html>"
)


@pytest.mark.parametrize(
    "form",
    [
        '<form action="/search"><input type="search" placeholder="Search"><button>Go</button>'
        "</form>",  # an input without a name still asks the user for something
        '<form action="/cart" method="post"><input type="hidden" name="id" value="7">'
        "<button>Add to cart</button></form>",  # the page's only form, but v3 is not bound to it
        "",
    ],
)
def test_sitewide_v3_on_an_ordinary_page_is_never_a_task(form: str) -> None:
    body = V3_SITEWIDE.format(form=form)
    found = detect(html(body))
    assert found is not None
    assert found.kind == ChallengeKind.RECAPTCHA_V3
    assert _verdict(body) == "ignored"  # a widget, but no wall: counted, never paid


def test_a_form_with_unnamed_fields_is_not_a_wall() -> None:
    key = "6LcdJFCrnl2edlBDdz1C5Jau2RJtBRnlWmTSHf6p"
    wall = f'<form id="w" method="post"><div class="g-recaptcha" data-sitekey="{key}"></div></form>'
    assert _verdict(wall) == "task"
    asks = wall.replace("</div>", '</div><input type="email" placeholder="you@example">')
    assert _verdict(asks) == "ignored"
    found = detect(html(asks))
    assert found is not None
    assert found.form is not None
    assert found.form.asks_only_captcha is False
    assert _verdict(asks, status=403) == "task"


# --- deployments seen on real pages ---------------------------------------------------------------

V3_KEY = "6LcR_okUAAAAAPYrPe-HK_0RULO1aZM15ENyM-Mf"
API = '<script src="https://www.google.com/recaptcha/api.js"></script>'


def test_v3_bound_to_a_button_is_v3() -> None:
    """Google's documented v3 binding: a button with class g-recaptcha and data-action."""
    body = (
        f'<html><head>{API}</head><body><form id="demo" action="/s" method="post">'
        f'<button class="g-recaptcha" data-sitekey="{V3_KEY}" data-callback="onSubmit" '
        'data-action="submit">Submit</button></form></body></html>'
    )
    found = detect(html(body))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V3, V3_KEY)
    assert dict(found.params) == {
        "version": "v3",
        "action": "submit",
        "api_domain": "google.com",
        "callback": "onSubmit",
    }
    assert found.form == FormLocator('//form[@id="demo"]', RC_FIELD)
    assert _verdict(body) == "task"  # the form asks for nothing else
    # the same button without data-action is Google's invisible v2 binding
    found = detect(html(body.replace(' data-action="submit"', "")))
    assert found is not None
    assert found.kind == ChallengeKind.RECAPTCHA_V2_INVISIBLE


@pytest.mark.parametrize(
    "options",
    [
        f"{{sitekey: '{V3_KEY}', callback: onSubmit, size: 'invisible'}}",
        f"{{'sitekey': '{V3_KEY}', 'callback': onSubmit}}",  # no size: the target is a button
        "opts",  # the options object held in a variable
    ],
)
def test_invisible_v2_rendered_onto_a_submit_button(options: str) -> None:
    body = (
        f'<html><head><script>var opts = {{sitekey: "{V3_KEY}", callback: onSubmit}};'
        "function onload() { grecaptcha.render('submit', " + options + "); }</script>"
        '<script src="https://www.google.com/recaptcha/api.js?onload=onload&render=explicit">'
        '</script></head><body><form id="login" method="post"><input type="hidden" name="t">'
        '<input type="submit" id="submit" value="Go"></form></body></html>'
    )
    found = detect(html(body))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V2_INVISIBLE, V3_KEY)
    assert found.params["invisible"] is True
    assert found.params["callback"] == "onSubmit"
    assert found.form == FormLocator('//form[@id="login"]', RC_FIELD)


LOADER = (
    "(function(){var w=window,C='___grecaptcha_cfg',cfg=w[C]=w[C]||{},N='grecaptcha';"
    "var gr=w[N]=w[N]||{};gr.ready=gr.ready||function(f){(cfg['fns']=cfg['fns']||[]).push(f);};"
    "w['__recaptcha_api']='https://www.google.com/recaptcha/api2/';"
    "(cfg['render']=cfg['render']||[]).push('{key}');w['__google_recaptcha_client']=true;"
    "var d=document,po=d.createElement('script');po.async=true;"
    "po.src='https://www.gstatic.com/recaptcha/releases/x/recaptcha__en.js';"
    "var e=d.querySelector('script[nonce]');d.head.appendChild(po);}})();"
)


def test_v3_known_only_by_the_loader_api_js_writes() -> None:
    """A saved page carries api.js's loader inline: ``___grecaptcha_cfg`` and its render list."""
    body = f"<html><body><p>Article</p><script>{LOADER.replace('{key}', V3_KEY)}</script>"
    found = detect(html(body, status=403))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V3, V3_KEY)
    assert found.params["api_domain"] == "google.com"
    explicit = LOADER.replace("{key}", "explicit")  # a v2 page's loader names no key
    found = detect(html(f"<html><body><script>{explicit}</script>", status=403))
    assert found is not None
    assert found.kind == ChallengeKind.RECAPTCHA_V2
    assert not found.solvable
    enterprise = (
        LOADER.replace("{key}", V3_KEY)
        .replace("api2/", "enterprise/")
        .replace("www.google.com", "www.recaptcha.net")
    )
    found = detect(html(f"<html><body><script>{enterprise}</script>", status=403))
    assert found is not None
    assert found.kind == ChallengeKind.RECAPTCHA_ENTERPRISE
    assert found.params["api_domain"] == "recaptcha.net"


def _badge(key: str) -> str:
    return (
        '<div class="grecaptcha-badge" data-style="bottomright"><div class="grecaptcha-logo">'
        '<iframe title="reCAPTCHA" src="https://www.google.com/recaptcha/api2/anchor?ar=1&amp;'
        f'k={key}&amp;co=aHR0cHM6Ly9leGFtcGxlLmNvbTo0NDM.&amp;hl=en&amp;size=invisible">'
        "</iframe></div></div>"
    )


def test_v3_seen_only_through_its_badge() -> None:
    """A rendered page saved from a browser: api.js put the v3 badge in a bare div in body."""
    body = f"<html><body><p>Text</p><div>{_badge(V3_KEY)}</div></body></html>"
    found = detect(html(body, status=403))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V3, V3_KEY)
    # a v2 invisible widget's badge sits inside the widget's own element
    inside = f'<html><body><form><div id="rc">{_badge(V3_KEY)}</div></form></body></html>'
    found = detect(html(inside, status=403))
    assert found is not None
    assert (found.kind, found.sitekey) == (ChallengeKind.RECAPTCHA_V2_INVISIBLE, V3_KEY)


PX_BLOCK = (
    "<html><head><title>Access to this page has been denied</title></head><body>"
    "<script>window._pxAppId = 'PXabc123';</script>"
    '<script src="https://captcha.px-cdn.net/PXabc123/captcha.js?a=c&u=1&v=&m=0"></script>'
    "</body></html>"
)


def test_perimeterx_block_without_its_box() -> None:
    """The captcha script creates #px-captcha: its URL alone marks the block page."""
    found = detect(html(PX_BLOCK, status=403))
    assert found is not None
    assert found.kind == ChallengeKind.PERIMETERX
    first_party = PX_BLOCK.replace("https://captcha.px-cdn.net/PXabc123", "/abc123/captcha")
    assert detect(html(first_party.replace("Access to this page", "Hi"), status=403)) is not None
    # the sensor alone, on every page of a protected site, is not a block
    sensor = (
        "<html><head><title>Shop</title></head><body><script>window._pxAppId = 'PXabc123';"
        '</script><script src="//client.perimeterx.net/PXabc123/main.min.js"></script>'
        "<p>captcha-free content</p></body></html>"
    )
    assert detect(html(sensor)) is None


@pytest.mark.parametrize(
    "frame",
    [
        "https://geo.captcha-delivery.com/captcha/?initialCid=AHrlqAAAAAMA&cid=x&t=fe",
        "https://c.datadome.co/captcha/?initialCid=AHrlqAAAAAMA&t=fe",
    ],
)
def test_datadome_by_header_and_captcha_iframe(frame: str) -> None:
    body = f'<html><body><iframe src="{frame}" width="100%"></iframe></body></html>'
    found = detect(html(body, status=403, headers={"X-DataDome": "protected"}))
    assert found is not None
    assert found.kind == ChallengeKind.DATADOME
    assert found.params == {"banned": False, "captcha_url": frame}


def test_datadome_header_alone_marks_no_wall() -> None:
    """X-DataDome and a datadome cookie come with every page of a protected site."""
    headers = {"X-DataDome": "protected", "Set-Cookie": "datadome=abc; Path=/"}
    article = "<html><body><article>A captcha-free article</article></body></html>"
    assert detect(html(article, headers=headers)) is None
    # with a 403 and DataDome's own data object, the page is the wall even without its host
    wall = "<html><body><script>var dd={'rt':'c','cid':'AHrlqAAAAAMA','t':'bv'}</script>"
    found = detect(html(wall, status=403, headers=headers))
    assert found is not None
    assert found.kind == ChallengeKind.DATADOME
    assert found.params == {"banned": True}
