"""HTML of the demo challenge site (see :mod:`scrapy_ucaptcha.testing.demo_site`).

Every function returns a whole document. Challenge pages carry the markup real sites serve (widget
divs, script URLs, response fields inside the form) inside the usual page noise; everything
interpolated is escaped here, so callers pass plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

RECAPTCHA_API = "https://www.google.com/recaptcha/api.js"
RECAPTCHA_ENTERPRISE_API = "https://www.google.com/recaptcha/enterprise.js"
HCAPTCHA_API = "https://js.hcaptcha.com/1/api.js"
TURNSTILE_API = "https://challenges.cloudflare.com/turnstile/v0/api.js"

_NOISE_HEAD = """\
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/site.css?v=3.4.1">
<link rel="icon" href="/favicon.ico">
<script async src="https://www.googletagmanager.com/gtag/js?id=G-DEMO7Q2X4K"></script>
<script>
  window.dataLayer = window.dataLayer || [];
  function gtag(){dataLayer.push(arguments);}
  gtag('js', new Date());
  gtag('config', 'G-DEMO7Q2X4K', {anonymize_ip: true});
</script>"""

_NAV = """\
<header class="site-header">
  <a class="logo" href="/">Demo Shop</a>
  <nav class="main-nav">
    <a href="/list/1">Catalogue</a>
    <a href="/articles/captchas">Blog</a>
    <a href="/contact">Contact</a>
    <a href="/login">Sign in</a>
  </nav>
</header>"""

_FOOTER = """\
<footer class="site-footer">
  <p>&copy; 2026 Demo Shop Ltd. &middot; <a href="/privacy">Privacy</a> &middot;
  <a href="/terms">Terms</a> &middot; <a href="/contact">Contact</a></p>
  <div id="cookie-banner" hidden>We use cookies to keep you signed in.
  <button type="button" onclick="this.parentNode.hidden = true">OK</button></div>
</footer>"""


def attr(value: str) -> str:
    """Escape ``value`` for a double-quoted attribute."""
    return escape(value, quote=True)


def page(title: str, body: str, *, head: str = "", body_class: str = "page") -> str:
    """A complete document: ``title`` is plain text, ``body`` and ``head`` are markup."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n'
        f"{_NOISE_HEAD}\n<title>{escape(title)}</title>\n{head}"
        f'</head>\n<body class="{attr(body_class)}">\n{_NAV}\n'
        f'<main id="main">\n{body}\n</main>\n{_FOOTER}\n</body>\n</html>\n'
    )


def content_page(title: str, content: str, *, extra: str = "", doc_title: str = "") -> str:
    """A page with the scraped ``h1.title`` and ``p.content`` (plain text), then ``extra``."""
    body = (
        '<article class="entry">\n'
        f'  <h1 class="title">{escape(title)}</h1>\n'
        f'  <p class="content">{escape(content)}</p>\n'
        f"{extra}</article>"
    )
    return page(doc_title or f"{title} | Demo Shop", body)


def link_list(links: Iterable[tuple[str, str]], *, css: str = "links") -> str:
    """``<ul>`` of ``(href, text)`` links."""
    rows = "".join(
        f'  <li><a href="{attr(href)}">{escape(text)}</a></li>\n' for href, text in links
    )
    return f'<ul class="{attr(css)}">\n{rows}</ul>'


def index_page(links: Sequence[tuple[str, str]]) -> str:
    body = (
        "<h1>Demo Shop</h1>\n<p>Browse the catalogue or try one of the special pages.</p>\n"
        + link_list(links)
    )
    return page("Demo Shop", body, body_class="home")


def listing_page(number: int, items: Sequence[tuple[int, str]], next_href: str | None) -> str:
    links = link_list(((f"/item/{i}", title) for i, title in items), css="products")
    pager = ""
    if number > 1:
        pager += f'<a rel="prev" href="/list/{number - 1}">Previous</a>\n'
    if next_href is not None:
        pager += f'<a rel="next" href="{attr(next_href)}">Next page</a>\n'
    body = f'<h1>Catalogue, page {number}</h1>\n{links}\n<nav class="pager">\n{pager}</nav>'
    return page(f"Catalogue - page {number} | Demo Shop", body, body_class="listing")


def _error_note(error: str) -> str:
    return f'<p class="form-error" role="alert">{escape(error)}</p>\n' if error else ""


def recaptcha_interstitial(sitekey: str, next_path: str, error: str = "") -> str:
    """A reCAPTCHA v2 checkbox wall in front of a page; the sitekey keeps its leading space."""
    head = f'<script src="{RECAPTCHA_API}" async defer></script>\n'
    body = f"""\
<div class="challenge-wrapper">
  <h1>One more step</h1>
  <p>Please complete the security check to access this page.</p>
  {_error_note(error)}<form id="challenge-form" action="/verify/recaptcha" method="POST">
    <input type="hidden" name="next" value="{attr(next_path)}">
    <div class="g-recaptcha" data-sitekey=" {attr(sitekey)}" data-callback="onCaptchaDone"></div>
    <textarea id="g-recaptcha-response" name="g-recaptcha-response" class="g-recaptcha-response"
      style="width: 250px; height: 40px; display: none;"></textarea>
    <button type="submit" class="btn">Continue</button>
  </form>
  <script>function onCaptchaDone(){{document.getElementById('challenge-form').submit();}}</script>
  <p class="muted">Why am I seeing this? Unusual traffic was detected from your network.</p>
</div>"""
    return page("Security check | Demo Shop", body, head=head, body_class="challenge")


def invisible_page(sitekey: str, error: str = "") -> str:
    """A newsletter sign-up protected by an invisible reCAPTCHA run from ``onsubmit``."""
    head = f'<script src="{RECAPTCHA_API}" async defer></script>\n'
    body = f"""\
<section class="newsletter">
  <h1>Join our newsletter</h1>
  <p>Members get early access to the members-only catalogue.</p>
  {_error_note(error)}<form id="newsletter-form" action="/submit/invisible" method="POST"
        onsubmit="event.preventDefault(); grecaptcha.execute(); return false;">
    <label>E-mail <input type="email" name="email" value="reader@example.com"></label>
    <div class="g-recaptcha" data-sitekey="{attr(sitekey)}" data-size="invisible"
         data-callback="onNewsletterToken"></div>
    <textarea name="g-recaptcha-response" class="g-recaptcha-response"
      style="display:none"></textarea>
    <button type="submit">Subscribe</button>
  </form>
  <script>
    function onNewsletterToken(token) {{ document.getElementById('newsletter-form').submit(); }}
  </script>
</section>"""
    return page("Newsletter | Demo Shop", body, head=head)


def v3_page(sitekey: str, action: str, error: str = "") -> str:
    """A search form scored by reCAPTCHA v3 (token fetched by ``grecaptcha.execute``)."""
    key = attr(sitekey)
    head = f'<script src="{RECAPTCHA_API}?render={key}"></script>\n'
    body = f"""\
<section class="search">
  <h1>Search the archive</h1>
  {_error_note(error)}<form id="search-form" action="/submit/v3" method="POST">
    <input type="search" name="q" value="lanterns" placeholder="Search">
    <input type="hidden" id="g-recaptcha-response" name="g-recaptcha-response" value="">
    <button type="submit">Search</button>
  </form>
  <script>
    grecaptcha.ready(function() {{
      grecaptcha.execute('{key}', {{action: '{attr(action)}'}}).then(function(token) {{
        document.getElementById('g-recaptcha-response').value = token;
      }});
    }});
  </script>
</section>"""
    return page("Search | Demo Shop", body, head=head)


def enterprise_page(sitekey: str, action: str, next_path: str, error: str = "") -> str:
    """A reCAPTCHA Enterprise checkbox wall posting to ``/verify/enterprise``."""
    head = f'<script src="{RECAPTCHA_ENTERPRISE_API}" async defer></script>\n'
    body = f"""\
<div class="challenge-wrapper">
  <h1>Verify to continue</h1>
  <p>Our partner portal is protected by reCAPTCHA Enterprise.</p>
  {_error_note(error)}<form id="enterprise-form" action="/verify/enterprise" method="POST">
    <input type="hidden" name="next" value="{attr(next_path)}">
    <div class="g-recaptcha" data-sitekey="{attr(sitekey)}" data-action="{attr(action)}"></div>
    <textarea name="g-recaptcha-response" class="g-recaptcha-response"
      style="display:none"></textarea>
    <button type="submit">Continue</button>
  </form>
</div>"""
    return page("Partner portal | Demo Shop", body, head=head, body_class="challenge")


def hcaptcha_page(sitekey: str, next_path: str, error: str = "") -> str:
    """An hCaptcha wall posting to ``/verify/hcaptcha``."""
    head = f'<script src="{HCAPTCHA_API}" async defer></script>\n'
    body = f"""\
<div class="challenge-wrapper">
  <h1>Are you a robot?</h1>
  <p>Complete the check below to see the deals of the day.</p>
  {_error_note(error)}<form id="hcaptcha-form" action="/verify/hcaptcha" method="POST">
    <input type="hidden" name="next" value="{attr(next_path)}">
    <div class="h-captcha" data-sitekey="{attr(sitekey)}" data-theme="light"></div>
    <textarea name="h-captcha-response" style="display:none"></textarea>
    <button type="submit">Submit</button>
  </form>
</div>"""
    return page("Checking your request | Demo Shop", body, head=head, body_class="challenge")


def turnstile_page(
    sitekey: str,
    *,
    form_action: str,
    next_path: str,
    widget_action: str = "",
    cdata: str = "",
    heading: str = "Verify you are human",
    error: str = "",
) -> str:
    """A Cloudflare Turnstile wall; ``data-action``/``data-cdata`` only when given."""
    head = f'<script src="{TURNSTILE_API}" async defer></script>\n'
    extra = ""
    if widget_action:
        extra += f' data-action="{attr(widget_action)}"'
    if cdata:
        extra += f' data-cdata="{attr(cdata)}"'
    body = f"""\
<div class="challenge-wrapper">
  <h1>{escape(heading)}</h1>
  <p>This takes a second and keeps bots away from our checkout.</p>
  {_error_note(error)}<form id="turnstile-form" action="{attr(form_action)}" method="POST">
    <input type="hidden" name="next" value="{attr(next_path)}">
    <div class="cf-turnstile" data-sitekey="{attr(sitekey)}"{extra} data-theme="auto"></div>
    <input type="hidden" name="cf-turnstile-response" value="">
    <button type="submit">Continue</button>
  </form>
</div>"""
    return page(f"{heading} | Demo Shop", body, head=head, body_class="challenge")


def image_page(cid: str, error: str = "") -> str:
    """A classic text-in-image captcha form posting to ``/verify/image``."""
    body = f"""\
<div class="challenge-wrapper">
  <h1>Type the characters you see</h1>
  {_error_note(error)}<form id="image-captcha-form" action="/verify/image" method="POST">
    <input type="hidden" name="cid" value="{attr(cid)}">
    <img id="captcha-image" src="/captcha.png?cid={attr(cid)}" alt="captcha" width="84" height="28">
    <label>Characters <input type="text" name="captcha_answer" autocomplete="off"></label>
    <button type="submit">Check</button>
  </form>
</div>"""
    return page("Image check | Demo Shop", body, body_class="challenge")


def login_page(sitekey: str, username: str = "", error: str = "") -> str:
    """A sign-in form with an invisible reCAPTCHA, posting back to ``/login``."""
    head = f'<script src="{RECAPTCHA_API}" async defer></script>\n'
    body = f"""\
<section class="login">
  <h1>Sign in</h1>
  {_error_note(error)}<form id="login-form" action="/login" method="POST"
        onsubmit="event.preventDefault(); grecaptcha.execute(); return false;">
    <label>User name <input type="text" name="username" value="{attr(username)}"></label>
    <label>Password <input type="password" name="password"></label>
    <div class="g-recaptcha" data-sitekey="{attr(sitekey)}" data-size="invisible"
         data-callback="onLoginToken"></div>
    <textarea name="g-recaptcha-response" class="g-recaptcha-response"
      style="display:none"></textarea>
    <button type="submit">Sign in</button>
  </form>
  <script>function onLoginToken(t){{document.getElementById('login-form').submit();}}</script>
</section>"""
    return page("Sign in | Demo Shop", body, head=head)


def contact_page(sitekey: str, note: str = "") -> str:
    """A contact form with a visible reCAPTCHA v2 checkbox: a widget, not a wall."""
    head = f'<script src="{RECAPTCHA_API}" async defer></script>\n'
    body = f"""\
<section class="contact">
  <h1 class="title">Contact us</h1>
  <p class="content">Questions about an order? Write to us and we answer within two days.</p>
  {_error_note(note)}<form id="contact-form" action="/contact" method="POST">
    <label>Name <input type="text" name="name"></label>
    <label>Message <textarea name="message" rows="5"></textarea></label>
    <div class="g-recaptcha" data-sitekey="{attr(sitekey)}"></div>
    <button type="submit">Send</button>
  </form>
  <address>Demo Shop Ltd., 1 Loopback Lane, 127.0.0.1</address>
</section>"""
    return page("Contact | Demo Shop", body, head=head)


def managed_page(ray: str, host: str, path: str, token: str) -> str:
    """Cloudflare's current managed challenge: machinery only, no token widget."""
    host_a, ray_a, path_a, token_a = (attr(part) for part in (host, ray, path, token))
    opt = (
        f"window._cf_chl_opt={{cvId: '3',cZone: '{host_a}',cType: 'managed',cRay: '{ray_a}',"
        f"cH: '{token_a[:24]}',cUPMDTk: '{path_a}?__cf_chl_tk={token_a}',cFPWv: 'g',"
        f"cOgUQuery: '',cTplC: 0,cTplV: 5,cTplB: 'cf',"
        f"fa: '{path_a}?__cf_chl_f_tk={token_a}',md: '{token_a[::-1]}',mdrd: ''}};"
    )
    body = f"""\
<div class="main-wrapper" role="main">
  <div class="main-content">
    <h1 class="zone-name-title h1">{escape(host)}</h1>
    <h2 id="challenge-running" class="h2">Verifying you are human. This may take a few seconds.</h2>
    <noscript><div id="challenge-error-title"><div class="h2"><span id="challenge-error-text">
      Enable JavaScript and cookies to continue</span></div></div></noscript>
    <div id="challenge-body-text" class="core-msg spacer">
      {escape(host)} needs to review the security of your connection before proceeding.</div>
  </div>
</div>
<script>(function(){{{opt}var cpo = document.createElement('script');
cpo.src = '/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1?ray={ray_a}';
window._cf_chl_opt.cOgUHash = location.hash === '' &&
  location.href.indexOf('#') !== -1 ? '#' : location.hash;
if (window.history && window.history.replaceState) {{
  history.replaceState(null, null,
    "{path_a}?__cf_chl_rt_tk={token_a}" + window._cf_chl_opt.cOgUHash); }}
document.getElementsByTagName('head')[0].appendChild(cpo);}}());</script>
<div class="footer" role="contentinfo"><div class="footer-inner">
<div class="clearfix diagnostic-wrapper">
<div class="ray-id">Ray ID: <code>{escape(ray)}</code></div></div>
<div class="text-center" id="footer-text">Performance &amp; security by Cloudflare</div>
</div></div>"""
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="Content-Type" content="text/html; charset=UTF-8">'
        '<meta http-equiv="X-UA-Compatible" content="IE=Edge">'
        '<meta name="robots" content="noindex,nofollow">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        "<style>*{box-sizing:border-box;margin:0;padding:0}html{line-height:1.15}</style>"
        f'</head><body class="no-js">{body}</body></html>\n'
    )


def redirect_page(location: str) -> str:
    return page(
        "Redirecting | Demo Shop",
        f'<p>Continue to <a href="{attr(location)}">{escape(location)}</a>.</p>',
    )


def not_found_page(path: str) -> str:
    body = f"<h1>Page not found</h1>\n<p>Nothing lives at <code>{escape(path)}</code>.</p>"
    return page("Page not found | Demo Shop", body, body_class="error")


def method_not_allowed_page(method: str) -> str:
    body = f"<h1>Method not allowed</h1>\n<p>{escape(method)} is not supported here.</p>"
    return page("Method not allowed | Demo Shop", body, body_class="error")


def datadome_page(cid: str, hsh: str, t: str, s: int, e: str) -> str:
    """DataDome's block page as served to an XHR-less visit: the ``dd`` object (``t`` is ``fe``
    for the slider captcha, ``bv`` for a banned IP) and the script that draws the captcha."""
    dd = (
        f"var dd={{'rt':'c','cid':'{attr(cid)}','hsh':'{attr(hsh)}','t':'{attr(t)}',"
        f"'s':{s},'e':'{attr(e)}','host':'geo.captcha-delivery.com','cookie':''}}"
    )
    return (
        "<html><head><title>example.com</title>"
        "<style>#cmsg{animation: A 1.5s;}@keyframes A{0%{opacity:0;}99%{opacity:0;}"
        "100%{opacity:1;}}</style></head>"
        '<body style="margin:0"><p id="cmsg">Please enable JS and disable any ad blocker</p>'
        f'<script data-cfasync="false">{dd}</script>'
        '<script data-cfasync="false" src="https://ct.captcha-delivery.com/c.js"></script>'
        "</body></html>\n"
    )


def aws_waf_challenge_page(key: str, iv: str, context: str) -> str:
    """AWS WAF's challenge interstitial (HTTP 202): ``window.gokuProps`` and ``challenge.js``."""
    goku = (
        f'window.gokuProps = {{"key":"{attr(key)}","iv":"{attr(iv)}","context":"{attr(context)}"}};'
    )
    script = "https://5ec7b9a1c0d2.edge.sdk.awswaf.com/5ec7b9a1c0d2/3e2cb24d1a0f/challenge.js"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<script>{goku}</script>"
        f'<script src="{script}"></script></head><body>'
        '<div id="challenge-container"></div>'
        "<noscript><h1>JavaScript is disabled</h1>In order to continue, you need to verify that "
        "you're not a robot by solving a CAPTCHA puzzle.</noscript>"
        "<script>AwsWafIntegration.saveReferrer();AwsWafIntegration.checkForceRefresh().then("
        "(forceRefresh) => { if (forceRefresh) { AwsWafIntegration.forceRefreshToken().then(() => "
        "{ window.location.reload(true); }); } else { AwsWafIntegration.getToken().then(() => "
        "{ window.location.reload(true); }); } });</script></body></html>\n"
    )
