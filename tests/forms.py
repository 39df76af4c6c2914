"""Form-encoded POST requests built without ``scrapy.http.FormRequest``.

Scrapy 2.16 deprecates ``FormRequest`` (later releases keep it), so the suite builds the same
request from a plain ``Request``: the body ``FormRequest(url, formdata=...)`` would send, with its
``Content-Type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from scrapy import Request

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def form_fields(formdata: Mapping[str, str], encoding: str = "utf-8") -> dict[str, Any]:
    """The ``Request`` keyword arguments of a form POST of ``formdata``."""
    return {
        "method": "POST",
        "body": urlencode(list(formdata.items()), doseq=True, encoding=encoding),
        "headers": {"Content-Type": FORM_CONTENT_TYPE},
        "encoding": encoding,
    }


def form_post(
    url: str, formdata: Mapping[str, str], *, encoding: str = "utf-8", **kwargs: Any
) -> Request:
    """What ``FormRequest(url, formdata=formdata, ...)`` sends, as a plain ``Request``."""
    return Request(url, **form_fields(formdata, encoding), **kwargs)
