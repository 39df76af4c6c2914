"""The pytest plugin of scrapy-ucaptcha: loopback servers and a crawl helper for spider tests.

Installed with the package (entry point ``pytest11``, name ``ucaptcha``), so a project that has
scrapy-ucaptcha and pytest-twisted installed gets these fixtures without any import:

* ``ucaptcha_simulator`` -- a running :class:`~scrapy_ucaptcha.testing.simulator.Simulator` on a
  free loopback port (its configuration: the ``ucaptcha_simulator_config`` fixture);
* ``ucaptcha_demo_site`` -- a running :class:`~scrapy_ucaptcha.testing.demo_site.DemoSite` (its
  configuration: ``ucaptcha_demo_site_config``);
* ``ucaptcha_settings`` -- Scrapy settings that point the middleware at the simulator;
* ``ucaptcha_crawl`` -- ``await ucaptcha_crawl(SpiderClass, **spider_kwargs)`` runs one crawl with
  those settings and returns a :class:`CrawlResult` (items, stats, the crawler).

It also makes ``--reactor=asyncio`` work on every supported Python: it installs the asyncio
reactor on a new event loop before pytest-twisted asks for the current one (which Python 3.12+
warns about, and Twisted before 26 does).
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Install the asyncio reactor on a fresh event loop when pytest-twisted is asked for it."""
    try:
        reactor_name = config.getoption("reactor")
    except ValueError:  # pytest-twisted is not installed: it is the one that runs the reactor
        return
    if reactor_name != "asyncio":
        return
    from scrapy.utils.reactor import install_reactor  # noqa: PLC0415  (imports asyncio support)

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
