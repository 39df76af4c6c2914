"""Settings of the example project: scrapy-ucaptcha with a template per captcha kind.

Without ``DEMO_SITE_URL``, ``demo_project.offline.OfflineDemo`` starts the uCaptcha simulator and
the demo site and points the crawl at them (an exported ``UCAPTCHA_API_KEY`` is then not used).
With ``DEMO_SITE_URL`` set, the crawl goes there and talks to the API your settings name (the real
one by default, with your key); the templates below describe the demo site's pages, so adapt them
to your own site.
"""

import os

BOT_NAME = "demo_project"
SPIDER_MODULES = ["demo_project.spiders"]
NEWSPIDER_MODULE = "demo_project.spiders"
# `scrapy crawl` exits with status 3 when scrapy-ucaptcha closes the spider (refused key, empty
# balance, budget spent), and reports a refusal at start in one line
COMMANDS_MODULE = "scrapy_ucaptcha.commands"

ADDONS = {
    "scrapy_ucaptcha.Addon": 500,  # the middleware and the extension, at their priorities
    "demo_project.offline.OfflineDemo": 100,
}

if os.environ.get("DEMO_SITE_URL"):
    DEMO_SITE_URL = os.environ["DEMO_SITE_URL"]

ROBOTSTXT_OBEY = False
CONCURRENT_REQUESTS = 16
# the Cloudflare-style managed challenge answers 403: let the spider see it
HTTPERROR_ALLOWED_CODES = [403]
ITEM_PIPELINES = {"demo_project.pipelines.CheckContentPipeline": 300}
FEED_EXPORT_ENCODING = "utf-8"
LOG_LEVEL = "INFO"

# --- scrapy-ucaptcha ------------------------------------------------------------------------------
# The API key comes from the UCAPTCHA_API_KEY environment variable (never commit it).
UCAPTCHA_MAX_ATTEMPTS = 3
UCAPTCHA_BUDGET = 1.00  # USD for the whole crawl

# Interstitial walls (reCAPTCHA v2 and Enterprise, hCaptcha, Turnstile) need no template: the
# built-in detectors read the sitekey and the wall's own form takes the token. Templates cover
# what a page cannot say by itself. Patterns are "host[:port][/path-glob]".
DEMO_HOST = "127.0.0.1"
UCAPTCHA_TASKS = {
    # An image captcha: where the image is and which field takes the answer.
    f"{DEMO_HOST}/*image": {
        "detect": {"image": {"css": "img#captcha-image", "field": "captcha_answer"}},
    },
    # Widgets inside forms that ask for more (an e-mail, a search query) are not walls by
    # default; these pages are, for this crawl.
    f"{DEMO_HOST}/*invisible": {"detect": {"css": "form#newsletter-form"}},
    f"{DEMO_HOST}/*v3": {"detect": {"css": "form#search-form"}},
    # A JSON API that answers 403 without a token header: no widget to read, so the template
    # gives the whole task and says where the token goes.
    f"{DEMO_HOST}/api/*": {
        "detect": {"status": [403], "regex": '"captcha_required"', "builtin": False},
        "task": {
            "type": "TurnstileTaskProxyless",
            "websiteKey": "0x4AAAAAAA47mKTaMaEn1L3m",
        },
        "inject": {"mode": "header", "name": "X-Captcha-Token"},
    },
    # One solve sets a clearance cookie for the whole zone: parked requests share it.
    f"{DEMO_HOST}/zone/*": {"scope": "domain"},
    # A contact form we never submit.
    f"{DEMO_HOST}/contact": {"solve": False},
}
