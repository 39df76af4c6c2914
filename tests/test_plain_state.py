"""Every request the middleware hands to the engine survives pickling and Scrapy's
``Request.to_dict``/``request_from_dict`` (what JOBDIR disk queues and scrapy-redis use), and a
crawl with a disk queue keeps every one of them on disk."""

from __future__ import annotations

import pickle
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from crawling import HOST, Env, RecordingSpider, crawl, page
from forms import form_fields
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.request import request_from_dict

from scrapy_ucaptcha import CaptchaSolveError
from scrapy_ucaptcha.state import ERROR_KEY, PARK_KEY, STATE_KEY, RequestState
from scrapy_ucaptcha.testing.demo_site import SITEKEYS
from scrapy_ucaptcha.testing.simulator import Fault

ZONE = [f"/zone/{n}" for n in range(1, 5)]


def kind_of(request: Request) -> str | None:
    """What the middleware handed back: ``marker``, ``reissue``, ``follower``, ``give_up``,
    ``presolved``; ``None`` for the spider's own requests."""
    meta = request.meta
    if PARK_KEY in meta:
        return "marker"
    if ERROR_KEY in meta:
        return "give_up"
    state = RequestState.from_meta(meta.get(STATE_KEY))
    if state is None:
        return None
    if state.role == "follower":
        return "follower"
    assert state.solution is not None
    return "presolved" if state.presolve else "reissue"


class RoundTripSpider(RecordingSpider):
    """Sends every request handed back through ``request_to_dict`` → pickle → ``request_from_dict``
    when it is scheduled, and checks nothing changed."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kinds: Counter[str] = Counter()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> RoundTripSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.scheduled, signal=signals.request_scheduled)
        return spider

    def scheduled(self, request: Request, spider: Any) -> None:
        kind = kind_of(request)
        if kind is None:
            return
        as_dict = request.to_dict(spider=self)
        back = request_from_dict(round_trip(as_dict), spider=self)
        assert back.to_dict(spider=self) == as_dict
        assert back.meta == request.meta
        assert back.callback == request.callback
        assert back.errback == request.errback
        self.kinds[kind] += 1


def login() -> Any:
    return page(
        "/login",
        **form_fields({"username": "demo", "password": "demo"}),
        meta={
            "ucaptcha_task": {
                "presolve": True,
                "task": {
                    "type": "RecaptchaV2TaskProxyless",
                    "websiteKey": SITEKEYS["recaptcha_invisible"],
                    "isInvisible": True,
                },
            }
        },
    )


@deferred_f_from_coro_f
async def test_every_request_handed_back_round_trips_and_stays_on_the_disk_queue(
    env: Env,
    tmp_path: Path,
) -> None:
    item = f"/item/{sorted(env.site.guarded_items)[0]}"
    result = await crawl(
        env,
        [page(item), login(), *(page(p) for p in ZONE)],
        spider_cls=RoundTripSpider,
        JOBDIR=str(tmp_path / "job"),
        UCAPTCHA_TASKS={f"{HOST}/zone/*": {"scope": "domain"}},
    )
    spider = result.spider
    assert isinstance(spider, RoundTripSpider)
    # a marker per parked or following request; the item's and the zone leader's token
    # POSTs and the redirects after them; the login sent with its token; three followers
    assert spider.kinds == {"marker": 6, "reissue": 4, "presolved": 1, "follower": 3}
    for key in [item, "/login", *ZONE]:
        outcome = result.only(key)
        assert outcome.error is None
        assert outcome.title
    stats = result.all_stats
    assert stats.get("scheduler/unserializable", 0) == 0
    assert stats.get("scheduler/enqueued/memory", 0) == 0
    assert stats["scheduler/enqueued/disk"] == stats["scheduler/enqueued"]
    assert result.stats["ucaptcha/solved"] == 6
    assert result.stats["ucaptcha/tasks/created"] == 3


@pytest.mark.parametrize("presolve", [False, True], ids=["challenge", "presolve"])
@deferred_f_from_coro_f
async def test_a_give_up_carrying_its_error_round_trips_through_the_disk_queue(
    env: Env, tmp_path: Path, presolve: bool
) -> None:
    env.sim.add_fault(Fault(kind="fail"))
    item = f"/item/{sorted(env.site.guarded_items)[0]}"
    spec = login() if presolve else page(item)
    result = await crawl(
        env,
        [spec],
        spider_cls=RoundTripSpider,
        JOBDIR=str(tmp_path / "job"),
        UCAPTCHA_MAX_ATTEMPTS=2,
    )
    spider = result.spider
    assert isinstance(spider, RoundTripSpider)
    assert spider.kinds == {"marker": 1, "give_up": 1}
    error = result.only(spec.key).error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "ERROR_CAPTCHA_UNSOLVABLE"
    assert error.attempts == 2
    assert len(error.task_ids) == 2
    stats = result.all_stats
    assert stats.get("scheduler/unserializable", 0) == 0
    assert stats.get("scheduler/enqueued/memory", 0) == 0
    assert result.stats["ucaptcha/gave_up"] == 1


def round_trip(value: Any) -> Any:
    """``value`` pickled and read back, as a disk queue does."""
    return pickle.loads(pickle.dumps(value))  # noqa: S301  (data this test just wrote)
