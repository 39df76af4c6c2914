"""Checks that hold for every test of the suite."""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs pytest in fresh projects

#: Anything shaped like a uCaptcha key (``ucap_`` + 16 or more characters). Redacted forms such as
#: ``ucap_…ef`` do not match.
KEY_SHAPE = re.compile(r"ucap_[A-Za-z0-9]{16,}")
#: Every proxy password of the suite has this shape; ``Basic …`` credentials are decoded first.
PROXY_PASSWORD_SHAPE = re.compile(r"prx-secret-[A-Za-z0-9]+")
_BASIC = re.compile(r"Basic\s+([A-Za-z0-9+/=]{8,})")


def _shows_proxy_password(text: str) -> bool:
    if PROXY_PASSWORD_SHAPE.search(text):
        return True
    for encoded in _BASIC.findall(text):
        try:
            decoded = base64.b64decode(encoded).decode("latin-1")
        except (binascii.Error, ValueError):
            continue
        if PROXY_PASSWORD_SHAPE.search(decoded):
            return True
    return False


@pytest.fixture(autouse=True)
def _api_key_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No log record of any test, at any level, shows an API key or a proxy password: the whole
    suite runs with its logs captured at DEBUG level."""
    caplog.set_level(logging.DEBUG)
    yield
    leaks = []
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):  # type: ignore[arg-type]
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]!s} {record.exc_info[1]!r}"
            if KEY_SHAPE.search(text) or _shows_proxy_password(text):
                leaks.append(f"{record.name}: {text[:200]}")
    assert leaks == [], "an API key or a proxy password appeared in the logs"
