"""Detection of Arkose Labs, GeeTest, Friendly Captcha, MTCaptcha, Yandex SmartCaptcha, the AWS
WAF CAPTCHA, Cloudflare blocks and Sucuri CloudProxy, in the deployment styles seen on public
pages (widget attributes, script URLs, JavaScript configuration), and their look-alikes."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.http import HtmlResponse, TextResponse

from scrapy_ucaptcha.detection import (
    AwsWafCaptchaDetector,
    Challenge,
    ChallengeKind,
    CloudflareBlockDetector,
    FormLocator,
    FriendlyCaptchaDetector,
    FunCaptchaDetector,
    GeeTestDetector,
    MTCaptchaDetector,
    SucuriDetector,
    YandexSmartCaptchaDetector,
    detect,
)
from scrapy_ucaptcha.rules import find_challenge
from scrapy_ucaptcha.templates import Template

PAGES = Path(__file__).parent / "fixtures" / "pages"
FC_KEY = "476068BF-9607-4799-B53D-966BE98E2B81"
GT = "c9c4facd1a6feeb80802222cbb74ca8e"
CHALLENGE = "12ab34cd56ef78ab90cd12ef34ab56cd"
CAPTCHA_ID = "3f236c8add769bd4a2b93f2fc6f74b35"
YSC = "ysc1_BG9x7Tr5tDQEbQ3ZXPSCw5OrNAez5ehnwVK89I7Fcea15308"


def html(
    body: str | bytes, status: int = 200, headers: dict[str, str] | None = None
) -> HtmlResponse:
    data = body.encode() if isinstance(body, str) else body
    return HtmlResponse("https://site.example/p", body=data, status=status, headers=headers)


def doc(head: str = "", body: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><title>Sign in</title>{head}</head><body>{body}</body></html>"
    )


def form(inner: str, action: str = "/verify") -> str:
    return (
        f'<form id="f" action="{action}" method="POST">'
        f'<input type="hidden" name="next" value="/">{inner}<button>Go</button></form>'
    )


def found(response: TextResponse) -> Challenge:
    challenge = detect(response)
    assert challenge is not None
    return challenge


# --- Arkose Labs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "body", "params"),
    [
        # the v2 enforcement script with the key in its path (company subdomain, blob in setConfig)
        (
            f'<script src="//acme-api.arkoselabs.com/v2/{FC_KEY}/api.js"'
            ' data-callback="setupEnforcement"></script>',
            form('<input type="hidden" name="fc-token" value="">')
            + "<script>function setupEnforcement(e){e.setConfig({selector:'#b',"
            "data:{blob:'AbC+/9=='},onCompleted:function(r){}})}</script>",
            {"api_subdomain": "acme-api.arkoselabs.com", "data_blob": "AbC+/9=="},
        ),
        # the shared host: no subdomain to pass
        (
            f'<script src="https://client-api.arkoselabs.com/v2/{FC_KEY}/api.js"></script>',
            form('<input type="hidden" name="verification-token">'),
            {},
        ),
        # the older div with data-pkey and the legacy funcaptcha.com script
        (
            '<script src="https://api.funcaptcha.com/fc/api/?onload=loadChallenge" async></script>',
            form(
                f'<div id="FunCaptcha" data-pkey="{FC_KEY}"></div>'
                '<input type="hidden" name="fc-token">'
            ),
            {"api_subdomain": "api.funcaptcha.com"},
        ),
        # key only in a script's configuration
        (
            '<script src="https://js.arkoselabs.com/v2/api.js"></script>',
            form('<input type="hidden" name="fc-token">')
            + f'<script>new ArkoseEnforcement({{public_key: "{FC_KEY}",'
            ' target_html: "arkose"})</script>',
            {"api_subdomain": "js.arkoselabs.com"},
        ),
    ],
    ids=["v2-subdomain-blob", "v2-shared-host", "data-pkey", "public-key-in-js"],
)
def test_funcaptcha(head: str, body: str, params: dict[str, str]) -> None:
    challenge = found(html(doc(head, body)))
    assert challenge.kind == ChallengeKind.FUNCAPTCHA
    assert challenge.solvable
    assert challenge.sitekey == FC_KEY
    assert dict(challenge.params) == params
    assert challenge.form is not None
    assert challenge.form.xpath == '//form[@id="f"]'
    token_field = "verification-token" if "verification-token" in body else "fc-token"
    assert challenge.form.token_field == token_field


def test_funcaptcha_without_a_key_is_not_solvable() -> None:
    body = doc('<script src="https://client-api.arkoselabs.com/v2/api.js"></script>', form(""))
    challenge = found(html(body))
    assert (challenge.kind, challenge.solvable, challenge.sitekey) == ("funcaptcha", False, None)


# --- GeeTest --------------------------------------------------------------------------------------


def test_geetest_v4_from_init_call() -> None:
    body = form('<div id="captcha"></div>') + (
        f"<script>initGeetest4({{captchaId: '{CAPTCHA_ID}', product: 'bind', riskType: 'slide'}},"
        " function (captchaObj) { captchaObj.appendTo('#captcha'); });</script>"
    )
    challenge = found(
        html(doc('<script src="https://static.geetest.com/v4/gt4.js"></script>', body))
    )
    assert challenge == Challenge(
        kind=ChallengeKind.GEETEST_V4,
        solvable=True,
        sitekey=CAPTCHA_ID,
        params={"version": 4, "risk_type": "slide"},
        form=FormLocator('//form[@id="f"]', "captcha_output"),
        detector="geetest",
    )


def test_geetest_v4_captcha_id_from_a_variable_and_the_load_url() -> None:
    body = (
        f"<script>var captchaId = '{CAPTCHA_ID}';"
        " initGeetest4({captchaId: captchaId}, cb);</script>"
    )
    assert found(html(doc("", body))).sitekey == CAPTCHA_ID
    body = f'<iframe src="https://gcaptcha4.geetest.com/load?captcha_id={CAPTCHA_ID}&client_type=web"></iframe>'
    script = f'<script src="https://gcaptcha4.geetest.com/load?captcha_id={CAPTCHA_ID}&callback=x"></script>'
    challenge = found(html(doc(script, body)))
    assert (challenge.kind, challenge.sitekey) == ("geetest_v4", CAPTCHA_ID)


def test_geetest_v3_with_gt_and_challenge_on_the_page() -> None:
    body = form('<div id="embed"></div>') + (
        f"<script>initGeetest({{gt: '{GT}', challenge: '{CHALLENGE}', offline: false,"
        " new_captcha: true, api_server: 'api-na.geetest.com'}, function (captchaObj) {"
        " captchaObj.appendTo('#embed'); });</script>"
    )
    head = '<script src="https://static.geetest.com/static/tools/gt.js"></script>'
    challenge = found(html(doc(head, body)))
    assert challenge == Challenge(
        kind=ChallengeKind.GEETEST_V3,
        solvable=True,
        sitekey=GT,
        params={"version": 3, "challenge": CHALLENGE, "api_server": "api-na.geetest.com"},
        form=FormLocator('//form[@id="f"]', "geetest_validate"),
        detector="geetest",
    )


def test_geetest_v3_whose_parameters_come_from_an_xhr() -> None:
    body = form("") + (
        "<script>$.ajax({url: '/register?t=' + Date.now(), dataType: 'json',"
        " success: function (data)"
        " { initGeetest({gt: data.gt, challenge: data.challenge, new_captcha: data.new_captcha},"
        " handler); }});</script>"
    )
    challenge = found(html(doc('<script src="/static/js/gt.js"></script>', body)))
    assert (challenge.kind, challenge.solvable, challenge.sitekey) == ("geetest_v3", False, None)
    assert dict(challenge.params) == {"version": 3}
    body = body.replace("<script>$", f"<script>var gt = '{GT}'; $")
    challenge = found(html(doc("", body)))
    assert (challenge.solvable, challenge.sitekey) == (False, GT)  # no fresh challenge to solve
    assert "challenge" not in challenge.params


# --- Friendly Captcha, MTCaptcha, Yandex SmartCaptcha ---------------------------------------------


def test_friendly_captcha_v1_and_v2() -> None:
    widget = '<div class="frc-captcha" data-sitekey="FCMV6VL3726JO53T"></div>'
    v1 = '<script type="module" src="https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.12/widget.module.min.js"></script>'
    challenge = found(html(doc(v1, form(widget))))
    assert (challenge.kind, challenge.sitekey) == ("friendly_captcha", "FCMV6VL3726JO53T")
    assert challenge.form == FormLocator('//form[@id="f"]', "frc-captcha-solution")
    v2 = '<script type="module" src="https://cdn.jsdelivr.net/npm/@friendlycaptcha/sdk@0.1.26/site.min.js"></script>'
    challenge = found(html(doc(v2, form(widget))))
    assert challenge.form == FormLocator('//form[@id="f"]', "frc-captcha-response")
    named = widget.replace("<div ", '<div data-solution-field-name="captcha_solution" ')
    assert found(html(doc(v1, form(named)))).form == FormLocator(
        '//form[@id="f"]', "captcha_solution"
    )


def test_mtcaptcha_config_and_iframe() -> None:
    head = (
        "<script>var mtcaptchaConfig = {'sitekey': 'MTPublic-KzqLY1cKH', 'widgetSize': 'mini'};"
        "(function(){var s=document.createElement('script');"
        "s.src='https://service.mtcaptcha.com/mtcv1/client/mtcaptcha.min.js';})();</script>"
    )
    challenge = found(html(doc(head, form('<div class="mtcaptcha"></div>'))))
    assert (challenge.kind, challenge.solvable, challenge.sitekey) == (
        "mtcaptcha",
        True,
        "MTPublic-KzqLY1cKH",
    )
    assert challenge.form == FormLocator('//form[@id="f"]', "mtcaptcha-verifiedtoken")
    frame = '<iframe src="https://service.mtcaptcha.com/mtcv1/client/iframe.html?v=2024&sk=MTPublic-J46lvEOJn&lang=en"></iframe>'
    assert found(html(doc("", form('<div class="mtcaptcha">' + frame + "</div>")))).sitekey == (
        "MTPublic-J46lvEOJn"
    )


def test_yandex_smartcaptcha_widget_and_render_call() -> None:
    head = '<script src="https://smartcaptcha.yandexcloud.net/captcha.js" defer></script>'
    widget = (
        f'<div id="captcha-container" class="smart-captcha" data-sitekey="{YSC}">'
        '<input type="hidden" name="smart-token" value=""></div>'
    )
    challenge = found(html(doc(head, form(widget))))
    assert challenge == Challenge(
        kind=ChallengeKind.YANDEX_SMARTCAPTCHA,
        solvable=True,
        sitekey=YSC,
        form=FormLocator('//form[@id="f"]', "smart-token"),
        detector="yandex_smartcaptcha",
    )
    body = form('<div id="box"></div>') + (
        f"<script>window.smartCaptcha.render('box', {{sitekey: '{YSC}', invisible: true,"
        " callback: onDone});</script>"
    )
    challenge = found(html(doc(head.replace("captcha.js", "captcha.js?render=onload"), body)))
    assert (challenge.sitekey, dict(challenge.params)) == (
        YSC,
        {"invisible": True, "callback": "onDone"},
    )


def test_widgets_in_forms_that_ask_for_more_are_not_walls() -> None:
    """A sign-up form with Friendly Captcha (seen on a public login page) is no challenge."""
    body = form(
        '<input type="email" name="email"><input type="password" name="pwd">'
        '<div class="frc-captcha" data-sitekey="FCMV6VL3726JO53T"></div>'
    )
    finding = find_challenge(html(doc("", body)), Template(), [FriendlyCaptchaDetector()])
    assert finding.challenge is None
    assert finding.widget_ignored


# --- AWS WAF --------------------------------------------------------------------------------------


def test_aws_waf_captcha_page() -> None:
    body = (PAGES / "aws_waf_captcha.html").read_bytes()
    challenge = found(html(body, status=405, headers={"x-amzn-waf-action": "captcha"}))
    assert challenge.kind == ChallengeKind.AWS_WAF_CAPTCHA
    assert challenge.solvable
    assert challenge.sitekey is not None
    assert challenge.sitekey.startswith("AQIDAHjcYu/GjX+QlghicBgQ")
    assert dict(challenge.params) == {
        "iv": "CgAHbjJ2XwAAA7Zt",
        "context": "X2Zha2VfY29udGV4dF9mb3JfdGVzdHNfb25seV9ub3RfYV9yZWFsX2F3c193YWZfY29udGV4dA==",
        "captcha_script": "https://5ec9a5b4b6c4.8d5f3b2e1a0c.us-east-1.captcha.awswaf.com/"
        "5ec9a5b4b6c4/a1b2c3d4e5f6/9f8e7d6c5b4a/captcha.js",
    }
    assert challenge.form is None
    # without the header too (a saved page), and it is a wall at HTTP 405
    assert found(html(body, status=405)).kind == ChallengeKind.AWS_WAF_CAPTCHA
    finding = find_challenge(html(body, status=405), Template(), [AwsWafCaptchaDetector()])
    assert finding.challenge is not None


def test_aws_waf_challenge_page_is_not_the_captcha() -> None:
    body = (PAGES / "aws_waf_challenge.html").read_bytes()
    assert AwsWafCaptchaDetector().detect(html(body, status=202)) is None
    challenge = found(html(body, status=202))
    assert (challenge.kind, challenge.solvable) == (ChallengeKind.AWS_WAF, False)


def test_yandex_captcha_container_is_not_aws() -> None:
    """Yandex's docs name the widget's div ``#captcha-container``, as AWS WAF does."""
    body = doc("", f'<div id="captcha-container" class="smart-captcha" data-sitekey="{YSC}"></div>')
    assert AwsWafCaptchaDetector().detect(html(body)) is None


# --- blocks ---------------------------------------------------------------------------------------

CF_BLOCK = doc(
    "",
    '<div id="cf-wrapper"><div id="cf-error-details" class="cf-error-details-wrapper">'
    '<div class="cf-wrapper cf-header cf-error-overview">'
    '<h1 data-translate="block_headline">Sorry, you have been blocked</h1>'
    '<h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to access'
    "</span> shop.example</h2></div>"
    '<p>Error code: <span class="cf-error-code">1020</span></p>'
    '<span class="cf-footer-item sm:block sm:mb-1">Cloudflare Ray ID: '
    '<strong class="font-semibold">'
    "8c1f2e3d4a5b6c7d</strong></span></div></div>",
).replace("Sign in", "Attention Required! | Cloudflare")


def test_cloudflare_block() -> None:
    challenge = found(html(CF_BLOCK, status=403, headers={"Server": "cloudflare"}))
    assert challenge == Challenge(
        kind=ChallengeKind.CLOUDFLARE_BLOCK,
        solvable=False,
        params={"error_code": "1020", "ray_id": "8c1f2e3d4a5b6c7d"},
        detector="cloudflare_block",
    )
    # a trimmed block page (no cf-error-details), known by Cloudflare's 403
    trimmed = doc(
        "",
        '<h1 data-translate="block_headline">Sorry, you have been blocked</h1><p>Ray ID: abc</p>',
    )
    assert CloudflareBlockDetector().detect(html(trimmed)) is None
    challenge = found(html(trimmed, status=403, headers={"Server": "cloudflare"}))
    assert challenge.kind == ChallengeKind.CLOUDFLARE_BLOCK


def test_cloudflare_error_pages_that_are_not_blocks() -> None:
    origin_down = CF_BLOCK.replace(
        'data-translate="block_headline"', 'data-translate="error_headline"'
    )
    origin_down = origin_down.replace(">1020<", ">522<")
    assert detect(html(origin_down, status=522, headers={"Server": "cloudflare"})) is None
    attention = (PAGES / "cloudflare_attention_recaptcha.html").read_bytes()
    assert detect(html(attention, status=403)).kind == ChallengeKind.RECAPTCHA_V2  # type: ignore[union-attr]


SUCURI_JS = (
    "<html><title>You are being redirected...</title><noscript>Javascript is required.</noscript>"
    "<script>var s={},u,c,U,r,i,l=0,a,e=eval,w=String.fromCharCode,sucuri_cloudproxy_js='',"
    "S='ZG9jdW1lbnQuY29va2llPSdzdWN1cmlfY2xvdWRwcm94eV91dWlkPTEnOw==';e(r);</script></html>"
)


def test_sucuri() -> None:
    headers = {"Server": "Sucuri/Cloudproxy", "X-Sucuri-ID": "16012"}
    challenge = found(html(SUCURI_JS, headers=headers))
    assert challenge == Challenge(
        kind=ChallengeKind.SUCURI, solvable=False, params={"blocked": False}, detector="sucuri"
    )
    assert found(html(SUCURI_JS)).kind == ChallengeKind.SUCURI  # a saved page, no headers
    block = doc("", "<h1>Sucuri WebSite Firewall - Access Denied</h1><p>Block ID: BL01</p>")
    challenge = found(html(block, status=403, headers={"Server": "Sucuri/Cloudproxy"}))
    assert dict(challenge.params) == {"blocked": True}
    assert found(html("", status=403, headers={"X-Sucuri-Block": "BL01"})).kind == "sucuri"
    # prose about Sucuri's CloudProxy is no block
    prose = doc("", "<p>We moved to Sucuri CloudProxy; the sucuri_cloudproxy_js cookie is set.</p>")
    assert SucuriDetector().detect(html(prose)) is None


# --- look-alikes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        doc(
            "",
            "<p>We compared GeeTest, Arkose Labs (FunCaptcha), MTCaptcha, Friendly Captcha "
            "and Yandex SmartCaptcha for our shop.</p>",
        ),
        doc(
            "",
            '<a href="https://www.geetest.com/en/">GeeTest</a> <a href="https://www.arkoselabs.com/">Arkose</a>',
        ),
        doc("", '<pre>&lt;div class="frc-captcha" data-sitekey="..."&gt;</pre>'),
        doc("", "<p>error code: 1020 is how Cloudflare reports a firewall rule.</p>"),
    ],
    ids=["prose", "vendor-links", "escaped-snippet", "cf-code-prose"],
)
def test_look_alikes_are_not_challenges(body: str) -> None:
    assert detect(html(body)) is None


def test_each_new_detector_works_alone() -> None:
    cases = [
        (
            FunCaptchaDetector(),
            doc(f'<script src="https://client-api.arkoselabs.com/v2/{FC_KEY}/api.js"></script>'),
        ),
        (
            GeeTestDetector(),
            doc("", f"<script>initGeetest4({{captchaId: '{CAPTCHA_ID}'}})</script>"),
        ),
        (
            FriendlyCaptchaDetector(),
            doc("", '<div class="frc-captcha" data-sitekey="FCMV6VL3726JO53T"></div>'),
        ),
        (
            MTCaptchaDetector(),
            doc('<script>var mtcaptchaConfig = {"sitekey": "MTPublic-KzqLY1cKH"};</script>'),
        ),
        (
            YandexSmartCaptchaDetector(),
            doc("", f'<div class="smart-captcha" data-sitekey="{YSC}"></div>'),
        ),
        (SucuriDetector(), SUCURI_JS),
    ]
    for detector, body in cases:
        challenge = detector.detect(html(body))
        assert challenge is not None, detector
        assert challenge.detector == detector.name
