"""The pytest plugin: its fixtures in this suite, and the README's example in a fresh project."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.pytest_plugin import Crawl, crawl, crawl_settings
from scrapy_ucaptcha.testing.simulator import Fault, Simulator, SimulatorConfig, SolveTime

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


class ItemSpider(Spider):
    name = "items"

    def __init__(self, base: str, numbers: list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.base, self.numbers = base, numbers

    async def start(self) -> Any:
        for n in self.numbers:
            yield Request(f"{self.base}/item/{n}", callback=self.parse)

    def parse(self, response: Response) -> Any:
        yield {"n": int(response.url.rsplit("/", 1)[1]), "status": response.status}


def test_the_plugin_is_registered(pytestconfig: pytest.Config) -> None:
    assert pytestconfig.pluginmanager.has_plugin("ucaptcha")


@deferred_f_from_coro_f
async def test_fixtures_crawl_through_the_middleware(
    ucaptcha_simulator: Simulator, ucaptcha_demo_site: DemoSite, ucaptcha_crawl: Crawl
) -> None:
    site = ucaptcha_demo_site
    numbers = list(range(1, site.config.pages + 1))
    result = await ucaptcha_crawl(ItemSpider, base=site.url, numbers=numbers)
    assert sorted(item["n"] for item in result.items) == numbers
    assert {item["status"] for item in result.items} == {200}
    assert result.finish_reason == "finished"
    guarded = len(site.guarded_items)
    assert guarded == 5
    assert result.ucaptcha_stats["ucaptcha/solved"] == guarded
    assert result.ucaptcha_stats["ucaptcha/tasks/created"] == guarded
    assert ucaptcha_simulator.count("createTask") == guarded
    assert site.counts()["token_accepted/recaptcha_v2"] == guarded


class TestOverriddenConfigs:
    """A test module or class overrides the configuration fixtures as usual."""

    @pytest.fixture
    def ucaptcha_demo_site_config(self) -> DemoSiteConfig:
        return DemoSiteConfig(pages=8, challenge_share=0.5, seed=1)

    @pytest.fixture
    def ucaptcha_simulator_config(self) -> SimulatorConfig:
        return SimulatorConfig(solve_time={"*": SolveTime.fixed(0.01)}, seed=2)

    @deferred_f_from_coro_f
    async def test_a_failing_task_is_solved_again(
        self, ucaptcha_simulator: Simulator, ucaptcha_demo_site: DemoSite, ucaptcha_crawl: Crawl
    ) -> None:
        assert ucaptcha_demo_site.config.pages == 8
        assert ucaptcha_simulator.config.seed == 2
        ucaptcha_simulator.add_fault(Fault(kind="fail", times=1))  # the first task fails
        numbers = sorted(ucaptcha_demo_site.guarded_items)
        result = await ucaptcha_crawl(
            ItemSpider,
            settings={"UCAPTCHA_MAX_ATTEMPTS": 2},
            base=ucaptcha_demo_site.url,
            numbers=numbers,
        )
        assert sorted(item["n"] for item in result.items) == numbers
        assert result.ucaptcha_stats["ucaptcha/tasks/failed"] == 1
        assert result.ucaptcha_stats["ucaptcha/tasks/created"] == len(numbers) + 1
        assert result.ucaptcha_stats["ucaptcha/solved"] == len(numbers)


def test_settings_point_at_the_simulator(
    ucaptcha_simulator: Simulator, ucaptcha_settings: dict[str, Any]
) -> None:
    assert ucaptcha_settings["UCAPTCHA_API_URL"] == ucaptcha_simulator.url
    assert ucaptcha_settings["ADDONS"] == {"scrapy_ucaptcha.Addon": 500}
    assert ucaptcha_settings["TELNETCONSOLE_ENABLED"] is False
    assert crawl_settings(ucaptcha_simulator, LOG_LEVEL="INFO")["LOG_LEVEL"] == "INFO"


@deferred_f_from_coro_f
async def test_crawl_coroutine_in_an_async_test(
    ucaptcha_simulator: Simulator, ucaptcha_demo_site: DemoSite
) -> None:
    numbers = [min(ucaptcha_demo_site.guarded_items)]
    result = await crawl(
        ItemSpider, crawl_settings(ucaptcha_simulator), base=ucaptcha_demo_site.url, numbers=numbers
    )
    assert [item["n"] for item in result.items] == numbers
    assert result.ucaptcha_stats["ucaptcha/solved"] == 1


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    (example,) = [str(b) for b in blocks if "def test_" in b and "ucaptcha_crawl" in b]
    return example


def test_readme_example_passes_in_a_fresh_project(pytester: pytest.Pytester) -> None:
    """A project with none of this suite's configuration: the plugin alone provides the fixtures."""
    pytester.makepyfile(test_catalog=readme_example())
    result = pytester.runpytest_subprocess(
        "--reactor=asyncio", "-W", "error", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
