"""``ucaptcha_task`` as a spider attribute: laid over the URL's template, the request meta wins."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from crawling import Env, RecordingSpider, crawl, page, settings_for
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import ConfigError


class CheapSpider(RecordingSpider):
    ucaptcha_task: ClassVar[Any] = {"selectionMode": "autoCheapest"}


class NeverSpider(RecordingSpider):
    ucaptcha_task: Any = False


def _guarded(env: Any, n: int) -> list[str]:
    return [f"/item/{i}" for i in sorted(env.site.guarded_items)[:n]]


@deferred_f_from_coro_f
async def test_the_spider_template_applies_and_the_meta_wins(env: Env) -> None:
    first, second = _guarded(env, 2)
    result = await crawl(
        env,
        [page(first), page(second, meta={"ucaptcha_task": {"selectionMode": "autoFastest"}})],
        spider_cls=CheapSpider,
    )
    modes = {}
    for path in (first, second):
        info = result.only(path).info
        assert info is not None
        modes[path] = env.sim.tasks[info["task_id"]].selection_mode
    assert modes == {first: "autoCheapest", second: "autoFastest"}
    assert result.stats["ucaptcha/solved"] == 2


@deferred_f_from_coro_f
async def test_false_never_solves_unless_a_request_asks(env: Env) -> None:
    first, second = _guarded(env, 2)
    result = await crawl(
        env, [page(first), page(second, meta={"ucaptcha_task": {}})], spider_cls=NeverSpider
    )
    assert result.only(first).info is None  # the challenge page, passed on untouched
    assert not result.only(first).content
    assert result.only(second).info is not None
    assert result.stats["ucaptcha/challenges"] == 1
    assert result.stats["ucaptcha/solved"] == 1
    assert env.sim.count("createTask") == 1


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"sope": "domain"}, r"the 'bad' spider's ucaptcha_task attribute: .*sope"),
        ({"scope": "everywhere"}, r"the 'bad' spider's ucaptcha_task attribute: .*scope"),
        ("yes", r"the 'bad' spider's ucaptcha_task attribute must be a template dict or False"),
    ],
)
@deferred_f_from_coro_f
async def test_a_bad_spider_template_stops_the_crawl_naming_the_spider(
    env: Env, value: Any, message: str
) -> None:
    class Bad(RecordingSpider):
        name = "bad"
        ucaptcha_task = value

    crawler = get_crawler(Bad, settings_for(env))
    with pytest.raises(ConfigError, match=message):
        await crawler.crawl_async(base=env.site.url, pages=[page("/")])
    assert env.sim.calls == []


@deferred_f_from_coro_f
async def test_an_instance_attribute_counts_too(env: Env) -> None:
    class Configured(RecordingSpider):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.ucaptcha_task = False

    (path,) = _guarded(env, 1)
    result = await crawl(env, [page(path)], spider_cls=Configured)
    assert result.only(path).info is None
    assert env.sim.count("createTask") == 0
