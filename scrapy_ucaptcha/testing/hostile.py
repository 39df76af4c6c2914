"""Hostile pages for detectors: bodies built to hit the slow paths of an HTML parser or a
regular expression, for tests and benchmarks of a detector's cost.

Each page repeats an opening that never closes, or piles up what one query walks, to fill
``size`` bytes. :func:`hostile_pages` returns them by name::

    from scrapy_ucaptcha.testing.hostile import hostile_pages

    for name, body in hostile_pages(200_000).items():
        ...  # HtmlResponse(url=..., body=body) through your detector
"""

from __future__ import annotations

__all__ = ["SITEKEY", "hostile_pages"]

#: Google's public test site key, used by the pages that carry a widget.
SITEKEY = "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"


def _widget(extra: str = "") -> str:
    return (
        f'<form action="/v" method="post"><div class="g-recaptcha" data-sitekey="{SITEKEY}"'
        f"{extra}></div></form>"
    )


def hostile_pages(size: int) -> dict[str, bytes]:
    """Pages of about ``size`` bytes (a few are smaller), by name."""
    n = max(1, size // 20)  # repetitions of a ~20-byte opening
    pages = {
        "aws-goku-unclosed": "<div id='captcha-container'></div><script src='captcha.js'>"
        "</script><script>" + "window.gokuProps = {" * n + "</script>",
        "datadome-object-unclosed": "<script>" + "dd={'cid':" * (n * 2) + "</script>"
        "captcha-delivery",
        "datadome-urls": "<script>" + "captcha-delivery.com/captcha/" * (n * 2 // 3) + "</script>",
        "hcaptcha-rqdata-unclosed": '<div class="h-captcha"></div><script>'
        + "rqdata: '" * (n * 2)
        + "</script>",
        "recaptcha-render-calls": _widget() + "<script>" + "grecaptcha.render(" * n + "</script>",
        "recaptcha-execute-strings": "<script>" + "grecaptcha.execute('" * n + "</script>",
        "recaptcha-render-options-variable": "<script>grecaptcha.render('b', o);"
        + "o = {" * (n * 4)
        + "</script>",
        "sitekey-assignments": _widget() + "<script>" + "sitekey='" * (n * 2) + "</script>",
        "api-url-tail": "<script src='https://www.google.com/recaptcha/api.js?"
        + "a" * max(0, size - 100)
        + "'></script>",
        "string-literal-backtracking": _widget()
        + '<script>grecaptcha.render("'
        + " " * size
        + '"x</script>',
        "deep-nesting": "<div>" * (size // 5) + _widget(),
        "huge-attribute": f'<div class="{"g-recaptcha " * (size // 12)}"></div>' + _widget(),
        "many-forms": _widget() + '<form><input name="q">' * (size // 23),
        "many-scripts": '<script src="https://www.google.com/recaptcha/api.js"></script>'
        * (size // 63),
        "many-widgets": _widget() * (size // 110),
        "many-iframes": '<iframe src="https://www.google.com/recaptcha/api2/anchor?k=x"></iframe>'
        * (size // 75),
        "control-characters": "\x00\x01\x0b\x1f<html>\x00"
        + _widget(' data-callback="a\x00b"') * (size // 120)
        + "\x7f\ufffe",
        "control-characters-in-target": "<script>grecaptcha.render('a\x01b', "
        f"{{sitekey: '{SITEKEY}'}})</script><input id='a\x01b' type=submit>",
        "markers-only": "captcha" * (size // 7),
        # attribute names lxml refuses to hand back ("Invalid tag name")
        "broken-attribute-names": '<button class="g-recaptcha" data-sitekey="x" data-call('
        '="1" {window.gokuprops="2">' * (size // 80),
    }
    return {name: text.encode("utf-8") for name, text in pages.items()}
