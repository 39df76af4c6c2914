"""Checks that hold for every test of the suite, and the servers most tests crawl (``env``)."""

from __future__ import annotations

import base64
import binascii
import copy
import inspect
import logging
import re
from collections.abc import Callable, Iterator
from typing import cast

import pytest
from crawling import Env, default_sim_config, default_site_config

from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import Simulator, SimulatorConfig

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
        for record in caplog.get_records(when):  # type: ignore[arg-type,unused-ignore]
            text = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                text += f" {record.exc_info[1]!s} {record.exc_info[1]!r}"
            if KEY_SHAPE.search(text) or _shows_proxy_password(text):
                leaks.append(f"{record.name}: {text[:200]}")
    assert leaks == [], "an API key or a proxy password appeared in the logs"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "simulator(config, from_params=None): the SimulatorConfig of the test's simulator (the"
        " env fixture), or a function of the test's parameters that returns it",
    )
    config.addinivalue_line(
        "markers",
        "demo_site(config, from_params=None): the DemoSiteConfig of the test's demo site (the"
        " env fixture), or a function of the test's parameters that returns it",
    )


def _marked(request: pytest.FixtureRequest, name: str) -> object:
    """The configuration that the test's ``name`` mark gives: ``@pytest.mark.simulator(config)``,
    or ``@pytest.mark.simulator(from_params=function)``, which is called with the test's
    parameters of the same names (``dialect``, say); None without the mark. Each named parameter
    of the function must be one of the test's: a renamed parameter fails the test instead of
    quietly leaving the function's default."""
    marker = request.node.get_closest_marker(name)
    if marker is None:
        return None
    factory: Callable[..., object] | None = marker.kwargs.get("from_params")
    if factory is None:
        (config,) = marker.args
        return copy.deepcopy(cast("object", config))  # tests may change their server's config
    params: dict[str, object] = getattr(getattr(request.node, "callspec", None), "params", {})
    named = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [n for n in named if n not in params]
    if missing:
        raise TypeError(
            f"the {name} mark's from_params function takes {', '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not among the parameters of the test "
            f"({', '.join(sorted(params)) or 'none'})"
        )
    return factory(**{n: params[n] for n in named})


@pytest.fixture
def ucaptcha_simulator_config(request: pytest.FixtureRequest) -> SimulatorConfig:
    """The plugin's default (every task solved in 50 ms), or the test's ``simulator`` mark."""
    config = _marked(request, "simulator") or default_sim_config()
    assert isinstance(config, SimulatorConfig)
    return config


@pytest.fixture
def ucaptcha_demo_site_config(request: pytest.FixtureRequest) -> DemoSiteConfig:
    """The plugin's default (20 pages, a quarter challenged), or the test's ``demo_site`` mark."""
    config = _marked(request, "demo_site") or default_site_config()
    assert isinstance(config, DemoSiteConfig)
    return config


@pytest.fixture
def env(ucaptcha_simulator: Simulator, ucaptcha_demo_site: DemoSite) -> Env:
    """The simulator and the demo site, each on a free loopback port for one test, stopped after
    it: the plugin's fixtures, configured by the ``simulator`` and ``demo_site`` marks."""
    return Env(ucaptcha_simulator, ucaptcha_demo_site)
