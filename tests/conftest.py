"""Checks that hold for every test of the suite."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

pytest_plugins = ["pytester"]  # tests/test_pytest_plugin.py runs pytest in fresh projects

#: Anything shaped like a uCaptcha key (``ucap_`` + 16 or more characters). Redacted forms such as
#: ``ucap_…ef`` do not match.
KEY_SHAPE = re.compile(r"ucap_[A-Za-z0-9]{16,}")


@pytest.fixture(autouse=True)
def _api_key_never_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No log record of any test, at any level, shows an API key."""
    caplog.set_level(logging.DEBUG)
    yield
    leaks = []
    for when in ("setup", "call", "teardown"):
        for record in caplog.get_records(when):  # type: ignore[arg-type]
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]!s} {record.exc_info[1]!r}"
            if KEY_SHAPE.search(text):
                leaks.append(f"{record.name}: {text[:200]}")
    assert leaks == [], "an API key appeared in the logs"
