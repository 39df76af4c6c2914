"""Demo pages for Arkose Labs, GeeTest v3/v4, Friendly Captcha, MTCaptcha, Yandex SmartCaptcha and
the AWS WAF CAPTCHA, and two blocks no solve passes (Cloudflare 1020, Sucuri CloudProxy).

Each token page is a wall with the markup the real widget's integration guide shows; its verify
endpoint checks what the simulator's solution is bound to (see ``_sim_kinds``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING, Final

from scrapy_ucaptcha.testing import _demo_html as html
from scrapy_ucaptcha.testing._demo_model import Incoming, Reply, local_path
from scrapy_ucaptcha.testing._sim_kinds import geetest_pass_token, geetest_v3_seccode
from scrapy_ucaptcha.testing.tokens import InvalidToken

if TYPE_CHECKING:
    import re

    from scrapy_ucaptcha.testing._demo_app import DemoApp, Handler, _Clearance

_MAX_CHALLENGES: Final = 10_000
_REJECTED: Final = "The security check failed. Please try again."
AWS_IV: Final = "CgAHbjJ2XwAAA7Zt"


def _digest(secret: str, label: str) -> str:
    return hmac.new(secret.encode(), label.encode(), hashlib.sha256).hexdigest()


def _page(status: int, doc: str, kind: str, outcome: str, *headers: tuple[str, str]) -> Reply:
    return Reply(status, doc.encode(), kind, outcome, headers=headers)


def _wall_form(action: str, next_path: str, inner: str, error: str) -> str:
    note = f'<p class="form-error" role="alert">{escape(error)}</p>\n' if error else ""
    return (
        f'{note}<form id="captcha-form" action="{html.attr(action)}" method="POST">\n'
        f'    <input type="hidden" name="next" value="{html.attr(next_path)}">\n'
        f"{inner}"
        '    <button type="submit" id="verify-button">Continue</button>\n'
        "  </form>"
    )


def _wall_page(title: str, head: str, form: str, script: str = "") -> str:
    body = (
        '<div class="challenge-wrapper">\n'
        f"  <h1>{escape(title)}</h1>\n"
        "  <p>Please complete the security check to continue.</p>\n"
        f"  {form}\n{script}</div>"
    )
    return html.page(f"{title} | Demo Shop", body, head=head, body_class="challenge")


class MoreKinds:
    """The pages of the extra kinds, sharing the demo app's tokens and clearance cookies."""

    def __init__(self, app: DemoApp) -> None:
        self.app = app
        self.secret = app.config.secret
        self.blob = _digest(self.secret, "arkose-blob")[:40]
        self.aws_context = _digest(self.secret, "aws-context")[:48]
        self._challenges: dict[str, None] = {}  # GeeTest v3 challenges handed out, unanswered

    def routes(self) -> list[tuple[str, dict[str, Handler]]]:
        get, post = "GET", "POST"
        return [
            ("/arkose", {get: self._wall("funcaptcha", self._arkose_doc)}),
            ("/verify/arkose", {post: self._verify_single("funcaptcha", "fc-token")}),
            ("/geetest4", {get: self._wall("geetest_v4", self._geetest4_doc)}),
            ("/verify/geetest4", {post: self._verify_geetest4}),
            ("/geetest3", {get: self._wall("geetest_v3", self._geetest3_doc)}),
            ("/geetest3/xhr", {get: self._wall("geetest_v3_xhr", self._geetest3_xhr_doc)}),
            ("/geetest3/register", {get: self._geetest3_register}),
            ("/verify/geetest3", {post: self._verify_geetest3}),
            ("/friendly", {get: self._wall("friendly_captcha", self._friendly_doc)}),
            (
                "/verify/friendly",
                {post: self._verify_single("friendly_captcha", "frc-captcha-solution")},
            ),
            ("/mtcaptcha", {get: self._wall("mtcaptcha", self._mtcaptcha_doc)}),
            (
                "/verify/mtcaptcha",
                {post: self._verify_single("mtcaptcha", "mtcaptcha-verifiedtoken")},
            ),
            ("/yandex", {get: self._wall("yandex_smartcaptcha", self._yandex_doc)}),
            (
                "/verify/yandex",
                {post: self._verify_single("yandex_smartcaptcha", "smart-token")},
            ),
            ("/aws-waf", {get: self._aws_waf}),
            ("/blocked", {get: self._cloudflare_block}),
            ("/sucuri", {get: self._sucuri}),
        ]

    # --- shared ---------------------------------------------------------------------------------

    def _clearance(self, kind: str) -> _Clearance:
        from scrapy_ucaptcha.testing._demo_app import _Clearance  # noqa: PLC0415  (a cycle)

        return _Clearance(f"clearance_{kind}", _PATHS[kind], kind)

    def _key(self, kind: str) -> str:
        return self.app.config.sitekeys[kind].strip()

    def _wall(self, kind: str, doc: Callable[[str, str], str]) -> Handler:
        def handler(req: Incoming, match: re.Match[str]) -> Reply:
            clearance = self._clearance(kind)
            if self.app._cleared(req, clearance):
                title = _TITLES[kind]
                text = f"{title}: the {kind} check passed, here is the page."
                return _page(200, html.content_page(title, text), kind, "content")
            status = self.app.config.challenge_status
            return _page(status, doc(req.path, ""), kind, "challenge_shown")

        return handler

    def _accept(self, req: Incoming, kind: str, next_path: str) -> Reply:
        headers = [("Location", next_path)]
        clearance = self._clearance(kind)
        if next_path == clearance.path:
            headers.append(self.app._clearance_cookie(clearance, req.now))
        return _page(302, html.redirect_page(next_path), kind, "token_accepted", *headers)

    def _refuse(self, kind: str, doc: Callable[[str, str], str], nxt: str, why: str) -> Reply:
        status = self.app.config.challenge_status
        return _page(status, doc(nxt, _REJECTED), kind, f"token_rejected:{why}")

    def _check(self, token: str, kind: str, url: str, now: float, bound: str | None) -> str | None:
        try:
            self.app.verifier.verify(
                token, sitekey=self._key(kind), page_url=url, now=now, action=bound
            )
        except InvalidToken as exc:
            return exc.reason
        return None

    def _verify_single(self, kind: str, field: str) -> Handler:
        doc = _DOCS[kind](self)
        bound = self.blob if kind == "funcaptcha" else None

        def handler(req: Incoming, match: re.Match[str]) -> Reply:
            next_path = local_path(req.arg("next"), _PATHS[kind])
            why = self._check(req.arg(field), kind, req.url_for(next_path), req.now, bound)
            if why is not None:
                return self._refuse(kind, doc, next_path, why)
            return self._accept(req, kind, next_path)

        return handler

    # --- Arkose Labs ----------------------------------------------------------------------------

    def _arkose_doc(self, next_path: str, error: str) -> str:
        key = html.attr(self._key("funcaptcha"))
        head = (
            f'<script src="https://demo-api.arkoselabs.com/v2/{key}/api.js" '
            'data-callback="setupEnforcement" async defer></script>\n'
        )
        inner = '    <input type="hidden" id="FunCaptcha-Token" name="fc-token" value="">\n'
        script = f"""<script>
  function setupEnforcement(myEnforcement) {{
    myEnforcement.setConfig({{
      selector: '#verify-button',
      data: {{ blob: '{html.attr(self.blob)}' }},
      onCompleted: function(response) {{
        document.getElementById('FunCaptcha-Token').value = response.token;
        document.getElementById('captcha-form').submit();
      }}
    }});
  }}
</script>
"""
        form = _wall_form("/verify/arkose", next_path, inner, error)
        return _wall_page("Verify your account", head, form, script)

    # --- GeeTest --------------------------------------------------------------------------------

    def _geetest4_doc(self, next_path: str, error: str) -> str:
        head = '<script src="https://static.geetest.com/v4/gt4.js"></script>\n'
        inner = '    <div id="captcha"></div>\n' + "".join(
            f'    <input type="hidden" name="{name}" value="">\n' for name in _V4_FIELDS
        )
        fill = " ".join(f"form.elements['{name}'].value = result.{name};" for name in _V4_FIELDS)
        script = f"""<script>
  initGeetest4({{captchaId: '{self._key("geetest_v4")}', product: 'bind'}}, function (captchaObj) {{
    captchaObj.appendTo('#captcha');
    captchaObj.onSuccess(function () {{
      var result = captchaObj.getValidate(), form = document.getElementById('captcha-form');
      {fill}
      form.submit();
    }});
  }});
</script>
"""
        form = _wall_form("/verify/geetest4", next_path, inner, error)
        return _wall_page("Slide to verify", head, form, script)

    def _verify_geetest4(self, req: Incoming, match: re.Match[str]) -> Reply:
        kind = "geetest_v4"
        next_path = local_path(req.arg("next"), _PATHS[kind])
        doc = self._geetest4_doc
        if req.arg("captcha_id") != self._key(kind):
            return self._refuse(kind, doc, next_path, "wrong-captcha-id")
        lot, output = req.arg("lot_number"), req.arg("captcha_output")
        if not req.arg("gen_time").isdigit():
            return self._refuse(kind, doc, next_path, "missing")
        pass_token = geetest_pass_token(self.secret, lot, output)
        if not hmac.compare_digest(req.arg("pass_token").encode(), pass_token.encode()):
            return self._refuse(kind, doc, next_path, "bad-pass-token")
        why = self._check(output, kind, req.url_for(next_path), req.now, lot)
        if why is not None:
            return self._refuse(kind, doc, next_path, why)
        return self._accept(req, kind, next_path)

    def _new_challenge(self) -> str:
        while len(self._challenges) >= _MAX_CHALLENGES:
            del self._challenges[next(iter(self._challenges))]
        challenge = secrets.token_hex(16)
        self._challenges[challenge] = None
        return challenge

    def _geetest3_form(self, next_path: str, error: str) -> str:
        inner = '    <div id="captcha-box"></div>\n' + "".join(
            f'    <input type="hidden" name="{name}" value="">\n'
            for name in ("geetest_challenge", "geetest_validate", "geetest_seccode")
        )
        return _wall_form("/verify/geetest3", next_path, inner, error)

    def _geetest3_doc(self, next_path: str, error: str) -> str:
        head = '<script src="https://static.geetest.com/static/tools/gt.js"></script>\n'
        gt, challenge = self._key("geetest_v3"), self._new_challenge()
        script = f"""<script>
  initGeetest({{
    gt: '{gt}',
    challenge: '{challenge}',
    offline: false,
    new_captcha: true,
    product: 'float'
  }}, function (captchaObj) {{
    captchaObj.appendTo('#captcha-box');
  }});
</script>
"""
        return _wall_page("Security check", head, self._geetest3_form(next_path, error), script)

    def _geetest3_xhr_doc(self, next_path: str, error: str) -> str:
        """The usual deployment: ``gt`` and ``challenge`` come from an XHR after the page."""
        head = '<script src="https://static.geetest.com/static/tools/gt.js"></script>\n'
        script = """<script>
  fetch('/geetest3/register?t=' + Date.now()).then(function (r) { return r.json(); })
    .then(function (data) {
      initGeetest({gt: data.gt, challenge: data.challenge, offline: !data.success,
                   new_captcha: data.new_captcha, product: 'float'}, function (captchaObj) {
        captchaObj.appendTo('#captcha-box');
      });
    });
</script>
"""
        return _wall_page("Security check", head, self._geetest3_form(next_path, error), script)

    def _geetest3_register(self, req: Incoming, match: re.Match[str]) -> Reply:
        payload = {
            "success": 1,
            "gt": self._key("geetest_v3"),
            "challenge": self._new_challenge(),
            "new_captcha": True,
        }
        body = json.dumps(payload, separators=(",", ":")).encode()
        return Reply(200, body, "geetest_v3", "challenge_issued", content_type="application/json")

    def _verify_geetest3(self, req: Incoming, match: re.Match[str]) -> Reply:
        next_path = local_path(req.arg("next"), "/geetest3")
        kind = "geetest_v3_xhr" if next_path == "/geetest3/xhr" else "geetest_v3"
        doc = self._geetest3_xhr_doc if kind == "geetest_v3_xhr" else self._geetest3_doc
        challenge, validate = req.arg("geetest_challenge"), req.arg("geetest_validate")
        if challenge not in self._challenges:
            return self._refuse(kind, doc, next_path, "unknown-challenge")
        del self._challenges[challenge]
        if req.arg("geetest_seccode") != geetest_v3_seccode(validate):
            return self._refuse(kind, doc, next_path, "bad-seccode")
        why = self._check(validate, "geetest_v3", req.url_for(next_path), req.now, challenge)
        if why is not None:
            return self._refuse(kind, doc, next_path, why)
        return self._accept(req, kind, next_path)

    # --- Friendly Captcha, MTCaptcha, Yandex SmartCaptcha ---------------------------------------

    def _friendly_doc(self, next_path: str, error: str) -> str:
        head = (
            '<script type="module" src="https://cdn.jsdelivr.net/npm/friendly-challenge@0.9.18/'
            'widget.module.min.js" async defer></script>\n'
        )
        key = html.attr(self._key("friendly_captcha"))
        inner = f'    <div class="frc-captcha" data-sitekey="{key}"></div>\n'
        form = _wall_form("/verify/friendly", next_path, inner, error)
        return _wall_page("Almost there", head, form)

    def _mtcaptcha_doc(self, next_path: str, error: str) -> str:
        key = self._key("mtcaptcha")
        head = f"""<script>
  var mtcaptchaConfig = {{"sitekey": "{key}", "widgetSize": "mini", "lang": "en"}};
  (function () {{
    var mt_service = document.createElement('script');
    mt_service.async = true;
    mt_service.src = 'https://service.mtcaptcha.com/mtcv1/client/mtcaptcha.min.js';
    (document.getElementsByTagName('head')[0] || document.body).appendChild(mt_service);
  }})();
</script>
"""
        inner = '    <div class="mtcaptcha"></div>\n'
        form = _wall_form("/verify/mtcaptcha", next_path, inner, error)
        return _wall_page("Quick check", head, form)

    def _yandex_doc(self, next_path: str, error: str) -> str:
        head = '<script src="https://smartcaptcha.yandexcloud.net/captcha.js" defer></script>\n'
        key = html.attr(self._key("yandex_smartcaptcha"))
        inner = (
            '    <div style="height: 100px" id="captcha-container" class="smart-captcha"\n'
            f'         data-sitekey="{key}"></div>\n'
        )
        form = _wall_form("/verify/yandex", next_path, inner, error)
        return _wall_page("Подтвердите, что вы не робот", head, form)

    # --- AWS WAF CAPTCHA ------------------------------------------------------------------------

    def _aws_waf(self, req: Incoming, match: re.Match[str]) -> Reply:
        kind = "aws_waf_captcha"
        token = req.cookies.get("aws-waf-token", "")
        why: str | None = "missing"
        if token:  # a session cookie: good for every request until it expires
            try:  # the simulator signs cookie-wall solutions with the wall's name as the key
                self.app.verifier.verify(
                    token,
                    sitekey="aws_waf",
                    page_url=req.url,
                    now=req.now,
                    identity=req.identity,
                    single_use=False,
                )
                why = None
            except InvalidToken as exc:
                why = exc.reason
        if why is None:
            text = "Price list: the AWS WAF captcha was passed with the aws-waf-token cookie."
            return _page(200, html.content_page("Price list", text), kind, "token_accepted")
        key = self._key("aws_waf")
        script_base = "https://0a1b2c3d4e5f.9f8e7d6c5b4a.eu-west-1.captcha.awswaf.com/0a1b2c3d4e5f"
        doc = f"""<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <title></title>
    <script type="text/javascript">
    window.awsWafCookieDomainList = [];
    window.gokuProps = {{
"key":"{key}",
          "iv":"{AWS_IV}",
          "context":"{self.aws_context}"
}};
    </script>
    <script src="{script_base}/5a4b3c2d1e0f/challenge.js"></script>
    <script src="{script_base}/5a4b3c2d1e0f/captcha.js"></script>
</head>
<body>
    <div id="captcha-container"></div>
    <script type="text/javascript">
        AwsWafIntegration.saveReferrer();
        window.addEventListener("load", function() {{
            const container = document.querySelector("#captcha-container");
            CaptchaScript.renderCaptcha(container, async (voucher) => {{
                await ChallengeScript.submitCaptcha(voucher);
                window.location.reload(true);
            }});
        }});
    </script>
    <noscript>
        <h1>JavaScript is disabled</h1>
        In order to continue, we need to verify that you're not a robot.
    </noscript>
</body>
</html>
"""
        outcome = "challenge_shown" if why == "missing" else f"token_rejected:{why}"
        headers = (("x-amzn-waf-action", "captcha"), ("Cache-Control", "no-store"))
        return Reply(405, doc.encode(), kind, outcome, headers=headers)

    # --- blocks ---------------------------------------------------------------------------------

    def _cloudflare_block(self, req: Incoming, match: re.Match[str]) -> Reply:
        ray = secrets.token_hex(8)
        host = escape(req.origin.split("://", 1)[-1])
        doc = f"""<!DOCTYPE html>
<!--[if lt IE 7]> <html class="no-js ie6 oldie" lang="en-US"> <![endif]-->
<!--[if gt IE 8]><!--> <html class="no-js" lang="en-US"> <!--<![endif]-->
<head>
<title>Attention Required! | Cloudflare</title>
<meta charset="UTF-8" />
<meta name="robots" content="noindex, nofollow" />
</head>
<body>
  <div id="cf-wrapper">
    <div id="cf-error-details" class="cf-error-details-wrapper">
      <div class="cf-wrapper cf-header cf-error-overview">
        <h1 data-translate="block_headline">Sorry, you have been blocked</h1>
        <h2 class="cf-subheadline"><span data-translate="unable_to_access">You are unable to
          access</span> {host}</h2>
      </div>
      <div class="cf-section cf-wrapper">
        <h2 data-translate="blocked_why_headline">Why have I been blocked?</h2>
        <p data-translate="blocked_why_detail">This website is using a security service to
          protect itself from online attacks.</p>
        <p>Error code: <span class="cf-error-code">1020</span></p>
      </div>
      <div class="cf-error-footer cf-wrapper">
        <p><span class="cf-footer-item">Cloudflare Ray ID: <strong
          class="font-semibold">{ray}</strong></span></p>
      </div>
    </div>
  </div>
</body>
</html>
"""
        headers = (("Server", "cloudflare"), ("CF-RAY", f"{ray}-AMS"))
        return Reply(403, doc.encode(), "cloudflare_block", "blocked", headers=headers)

    def _sucuri(self, req: Incoming, match: re.Match[str]) -> Reply:
        script = (
            "document.cookie='sucuri_cloudproxy_uuid_0a1b2c3d4=deadbeef;path=/';location.reload();"
        )
        encoded = base64.b64encode(script.encode()).decode()
        doc = (
            "<html><title>You are being redirected...</title>\n"
            "<noscript>Javascript is required. Please enable javascript before you are allowed "
            "to see this page.</noscript>\n"
            "<script>var s={},u,c,U,r,i,l=0,a,e=eval,w=String.fromCharCode,"
            f"sucuri_cloudproxy_js='',S='{encoded}';"
            "L=S.length;U=0;r='';var A='ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            "0123456789+/';for(u=0;u<64;u++){s[A.charAt(u)]=u;}for(i=0;i<L;i++){c=s[S.charAt(i)];"
            "U=(U<<6)+c;l+=6;while(l>=8){((a=(U>>>(l-=8))&0xff)||(i<(L-2)))&&(r+=w(a));}}e(r);"
            "</script></html>\n"
        )
        headers = (("Server", "Sucuri/Cloudproxy"), ("X-Sucuri-ID", "16012"))
        return Reply(200, doc.encode(), "sucuri", "blocked", headers=headers)


_V4_FIELDS: Final = ("lot_number", "captcha_output", "pass_token", "gen_time", "captcha_id")
_PATHS: Final = {
    "funcaptcha": "/arkose",
    "geetest_v4": "/geetest4",
    "geetest_v3": "/geetest3",
    "geetest_v3_xhr": "/geetest3/xhr",
    "friendly_captcha": "/friendly",
    "mtcaptcha": "/mtcaptcha",
    "yandex_smartcaptcha": "/yandex",
}
_TITLES: Final = {
    "funcaptcha": "Account settings",
    "geetest_v4": "Order history",
    "geetest_v3": "Wish list",
    "geetest_v3_xhr": "Saved searches",
    "friendly_captcha": "Download centre",
    "mtcaptcha": "Gift registry",
    "yandex_smartcaptcha": "Личный кабинет",
}
_DOCS: Final[dict[str, Callable[[MoreKinds], Callable[[str, str], str]]]] = {
    "funcaptcha": lambda kinds: kinds._arkose_doc,
    "friendly_captcha": lambda kinds: kinds._friendly_doc,
    "mtcaptcha": lambda kinds: kinds._mtcaptcha_doc,
    "yandex_smartcaptcha": lambda kinds: kinds._yandex_doc,
}
