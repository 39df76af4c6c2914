"""Edge cases of the middleware's lifecycle: failures of re-issued requests, domain-scope groups,
presolve, stops and shutdown while requests wait, and many challenges at once.

A test marked ``xfail(strict=True)`` asserts the correct behaviour (the README's contract where
it says) of a case the middleware gets wrong today; its reason says what goes wrong.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import pytest
from crawling import (
    HANG_GUARD,
    HOST,
    Env,
    HeldSolves,
    Page,
    RecordingSpider,
    Result,
    crawl,
    page,
    settings_for,
)
from forms import form_fields
from scrapy import Request, signals
from scrapy.core.scheduler import Scheduler
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, JsonRequest, Response
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler
from twisted.internet.error import ConnectionRefusedError as TxConnectionRefused

from scrapy_ucaptcha import CaptchaSolveError, ConfigError, UCaptchaMiddleware
from scrapy_ucaptcha.middleware import ERROR_KEY, STATE_KEY
from scrapy_ucaptcha.testing.demo_site import SITEKEYS, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import Fault

RECAPTCHA = "RecaptchaV2TaskProxyless"
MIDDLEWARE = "scrapy_ucaptcha.UCaptchaMiddleware"
ZONE = [f"/zone/{n}" for n in range(1, 6)]
ZONE_TEMPLATES = {f"{HOST}/zone/*": {"scope": "domain"}}
LOGIN_TASK = {
    "type": RECAPTCHA,
    "websiteKey": SITEKEYS["recaptcha_invisible"],
    "isInvisible": True,
}


# --- helpers -------------------------------------------------------------------------------------


def guarded(env: Env, n: int = 1) -> list[str]:
    items = sorted(env.site.guarded_items)
    assert len(items) >= n
    return [f"/item/{i}" for i in items[:n]]


def plain(env: Env, n: int) -> list[str]:
    items = [i for i in range(1, env.site.config.pages + 1) if i not in env.site.guarded_items]
    assert len(items) >= n
    return [f"/item/{i}" for i in items[:n]]


def assert_content(result: Result, key: str) -> None:
    """``key`` ended once, in its callback, with the real page (not the challenge)."""
    outcome = result.only(key)
    assert outcome.error is None, outcome.error
    assert outcome.status == 200
    assert outcome.title
    assert outcome.content


def solve_error(result: Result, key: str) -> CaptchaSolveError:
    """``key`` ended once, in its errback, with a :class:`CaptchaSolveError`."""
    error = result.only(key).error
    assert isinstance(error, CaptchaSolveError), error
    return error


def middleware_of(result: Result) -> UCaptchaMiddleware:
    found = result.crawler.get_downloader_middleware(UCaptchaMiddleware)
    assert found is not None
    return found


def login(key: str, username: str = "demo") -> Page:
    """A sign-in POST whose token is solved before sending."""
    return page(
        "/login",
        key,
        **form_fields({"username": username, "password": "demo"}),
        meta={"ucaptcha_task": {"presolve": True, "task": LOGIN_TASK}},
    )


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


class Interfere:
    """A downloader middleware of these tests: fails, answers, holds or rewrites chosen requests.

    Rules come from the ``EDGE_RULES`` setting, each a dict: ``stage`` (``"request"``,
    ``"response"`` or ``"scheduled"``), ``method``, ``path``, ``times`` (``None``: always) and
    ``action``:

    * ``refuse``: a connection refused error (request stage);
    * ``answer``: a ``status`` page of the rule instead of the site's (request, response);
    * ``ignore``: dropped silently by ``request_scheduled``, as ``OffsiteMiddleware`` drops
      requests (scheduled stage);
    * ``strip_form``: the response without its ``<form>`` tags (response stage);
    * ``hold``: crawl ``trigger`` (a path) and wait until it ended before going on (request);
    * ``wait``: wait until the page keyed ``until`` ended before going on (request).
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.rules = [dict(rule) for rule in crawler.settings.getlist("EDGE_RULES")]
        self.fired: Counter[str] = Counter()
        crawler.signals.connect(self.request_scheduled, signal=signals.request_scheduled)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Interfere:
        return cls(crawler)

    def _rule(self, stage: str, request: Request) -> dict[str, Any] | None:
        path = urlsplit(request.url).path
        for rule in self.rules:
            if rule["stage"] != stage or rule["path"] != path:
                continue
            if rule.get("method", "GET") != request.method:
                continue
            times = rule.get("times")
            if times is not None and self.fired[rule["name"]] >= times:
                continue
            self.fired[rule["name"]] += 1
            return rule
        return None

    def request_scheduled(self, request: Request, spider: Any) -> None:
        if self._rule("scheduled", request) is not None:
            raise IgnoreRequest("dropped by a test rule")

    async def process_request(self, request: Request, spider: Any = None) -> Response | None:
        rule = self._rule("request", request)
        if rule is None:
            return None
        action = rule["action"]
        if action == "refuse":
            raise TxConnectionRefused("refused by a test rule")  # type: ignore[no-untyped-call]
        if action in ("hold", "wait"):
            edge = self.crawler.spider
            assert isinstance(edge, RecordingSpider)
            until = rule.get("until", "trigger")
            if action == "hold":
                assert self.crawler.engine is not None
                self.crawler.engine.crawl(edge.request_for(page(rule["trigger"], until)))
            await asyncio.wait_for(edge.ended[until].wait(), HANG_GUARD / 2)
            return None
        assert action == "answer"
        return _page(request, rule["status"])

    async def process_response(
        self, request: Request, response: Response, spider: Any = None
    ) -> Response:
        rule = self._rule("response", request)
        if rule is None:
            return response
        if rule["action"] == "strip_form":
            return response.replace(body=re.sub(rb"</?form[^>]*>", b"", response.body))
        assert rule["action"] == "answer"
        return _page(request, rule["status"])


def _page(request: Request, status: int) -> HtmlResponse:
    body = b"<html><body><p>Service unavailable, try again.</p></body></html>"
    return HtmlResponse(request.url, status=status, body=body, request=request)


def rules(*items: dict[str, Any]) -> dict[str, Any]:
    """Settings that enable :class:`Interfere` with ``items`` (named after their position)."""
    return {
        "DOWNLOADER_MIDDLEWARES": {MIDDLEWARE: 585, Interfere: 750},
        "EDGE_RULES": [{"name": str(n), **item} for n, item in enumerate(items)],
    }


def fired(result: Result) -> Counter[str]:
    found = result.crawler.get_downloader_middleware(Interfere)
    assert isinstance(found, Interfere)
    return found.fired


VERIFY = {"method": "POST", "path": "/verify/recaptcha"}
ZONE_VERIFY = {"method": "POST", "path": "/zone/verify"}


# --- re-issued requests that fail ----------------------------------------------------------------


@deferred_f_from_coro_f
async def test_reissued_request_refused_once_is_retried_and_delivered_once(env: Env) -> None:
    path = guarded(env)[0]
    settings = rules({"stage": "request", **VERIFY, "action": "refuse", "times": 1})
    result = await crawl(env, [page(path)], **settings)
    assert_content(result, path)
    assert fired(result)["0"] == 1
    assert result.all_stats["retry/count"] == 1
    assert result.stats["ucaptcha/solved"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert middleware_of(result).waiting == 0


@deferred_f_from_coro_f
async def test_reissued_request_refused_without_retry_reaches_the_errback_once(env: Env) -> None:
    path = guarded(env)[0]
    settings = rules({"stage": "request", **VERIFY, "action": "refuse"})
    result = await crawl(env, [page(path)], RETRY_ENABLED=False, **settings)
    error = result.only(path).error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "download_failed"
    assert isinstance(error.__cause__, TxConnectionRefused)
    assert len(error.task_ids) == 1
    assert result.reason == "finished"
    assert "ucaptcha/solved" not in result.stats
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert middleware_of(result).waiting == 0


@deferred_f_from_coro_f
async def test_reissued_request_refused_every_time_keeps_its_ticket_through_retries(
    env: Env,
) -> None:
    path = guarded(env)[0]
    settings = rules({"stage": "request", **VERIFY, "action": "refuse"})
    result = await crawl(env, [page(path)], RETRY_TIMES=2, **settings)
    error = solve_error(result, path)
    assert error.code == "download_failed"
    assert isinstance(error.__cause__, TxConnectionRefused)
    assert error.task_ids == (env.sim.tasks[next(iter(env.sim.tasks))].id,)
    assert fired(result)["0"] == 3  # the re-issue and RetryMiddleware's two copies
    assert result.all_stats["retry/count"] == 2
    assert result.all_stats["retry/max_reached"] == 1
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.stats["ucaptcha/challenges"] == 1
    assert "ucaptcha/abandoned" not in result.stats
    assert middleware_of(result).waiting == 0


class RefusingScheduler(Scheduler):
    """A scheduler that cannot store the first request carrying a token (as a queue whose
    serialiser fails would)."""

    refused = 0

    def enqueue_request(self, request: Request) -> bool:
        state = request.meta.get(STATE_KEY)
        if isinstance(state, dict) and state.get("solution") and not self.refused:
            self.refused += 1
            raise ValueError("cannot store this request")
        return super().enqueue_request(request)


@deferred_f_from_coro_f
async def test_reissue_the_engine_cannot_take_ends_in_the_errback_as_internal(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = guarded(env)[0]
    result = await crawl(env, [page(path)], SCHEDULER=RefusingScheduler)
    error = solve_error(result, path)
    assert error.code == "internal"
    assert "cannot store this request" in error.reason
    assert len(error.task_ids) == 1
    assert error.task_ids[0] in env.sim.tasks
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert "ucaptcha/abandoned" not in result.stats
    assert middleware_of(result).waiting == 0
    assert any("could not be handed back" in m for m in errors_logged(caplog))


@deferred_f_from_coro_f
async def test_reissued_request_answered_503_before_the_site_is_retried_and_delivered(
    env: Env,
) -> None:
    path = guarded(env)[0]
    settings = rules({"stage": "request", **VERIFY, "action": "answer", "status": 503, "times": 1})
    result = await crawl(env, [page(path)], **settings)
    assert_content(result, path)
    assert result.only(path).info is not None
    assert result.stats["ucaptcha/solved"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 1


@deferred_f_from_coro_f
async def test_reissued_request_answered_503_after_the_site_used_the_token_counts_once(
    env: Env,
) -> None:
    path = guarded(env)[0]
    # the site took the token (302 + clearance cookie); the crawler sees a 503 instead
    settings = rules({"stage": "response", **VERIFY, "action": "answer", "status": 503, "times": 1})
    result = await crawl(env, [page(path)], **settings)
    assert_content(result, path)
    assert result.stats["ucaptcha/tasks/created"] == 2
    assert result.stats["ucaptcha/solved"] == 1


# --- presolve ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dont_filter", [False, True])
@deferred_f_from_coro_f
async def test_a_duplicate_challenged_request_follows_dont_filter(
    env: Env, dont_filter: bool
) -> None:
    path = guarded(env)[0]
    twice = [page(path, key, dont_filter=dont_filter) for key in ("first", "second")]
    result = await crawl(env, twice, expect=["first"])
    assert_content(result, "first")
    if dont_filter:  # each is solved with its own single-use token
        assert_content(result, "second")
        assert len(env.sim.tasks) == 2
    else:  # the dupefilter drops the second before anything is paid
        assert "second" not in result.outcomes
        assert len(env.sim.tasks) == 1
        assert result.all_stats["dupefilter/filtered"] == 1


@deferred_f_from_coro_f
async def test_presolve_with_failing_tasks_reaches_the_errback_unsent(env: Env) -> None:
    env.sim.add_fault(Fault(kind="fail"))
    result = await crawl(env, [login("login")], UCAPTCHA_MAX_ATTEMPTS=2)
    error = solve_error(result, "login")
    assert error.code == "ERROR_CAPTCHA_UNSOLVABLE"
    assert error.attempts == 2
    assert len(error.task_ids) == 2
    assert [hit for hit in env.site.log if hit.path == "/login"] == []
    assert result.stats["ucaptcha/presolve"] == 1
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.stats["ucaptcha/tasks/failed"] == 2


@deferred_f_from_coro_f
async def test_presolve_without_a_task_type_is_a_bad_template(env: Env) -> None:
    spec = page(
        "/login",
        "login",
        **form_fields({"username": "demo"}),
        meta={"ucaptcha_task": {"presolve": True}},
    )
    result = await crawl(env, [spec])
    assert solve_error(result, "login").code == "bad_template"
    assert env.sim.calls == []
    assert env.site.log == []


@deferred_f_from_coro_f
async def test_a_duplicate_presolved_request_is_filtered_before_paying(env: Env) -> None:
    result = await crawl(env, [login("first"), login("second")], expect=[])
    assert len(env.sim.tasks) == 1
    assert len([hit for hit in env.site.log if hit.path == "/login"]) == 1
    assert result.all_stats.get("dupefilter/filtered") == 1


@deferred_f_from_coro_f
async def test_template_presolve_solves_before_sending(env: Env) -> None:
    spec = page(
        "/login",
        **form_fields({"username": "demo", "password": "demo"}),
    )
    result = await crawl(
        env,
        [spec],
        UCAPTCHA_TASKS={f"{HOST}/login": {"presolve": True, "task": LOGIN_TASK}},
    )
    assert_content(result, "/login")
    assert result.stats.get("ucaptcha/presolve") == 1
    assert [hit.status for hit in env.site.log if hit.path == "/login"] == [200]


@deferred_f_from_coro_f
async def test_presolve_form_inject_on_a_json_body_is_a_bad_template_before_paying(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    spec = page(
        "/api/items",
        "api",
        cls=JsonRequest,
        data={"page": 1},
        meta={
            "ucaptcha_task": {
                "presolve": True,
                "task": {"type": "TurnstileTaskProxyless", "websiteKey": SITEKEYS["turnstile"]},
            }
        },
    )
    result = await crawl(env, [spec])
    assert solve_error(result, "api").code == "bad_template"
    assert env.sim.count("createTask") == 0
    assert errors_logged(caplog) == []


# --- templates and meta --------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_a_bad_ucaptcha_task_meta_is_logged_and_the_page_passed_on(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = guarded(env)[0]
    result = await crawl(env, [page(path, meta={"ucaptcha_task": {"scope": "planet"}})])
    outcome = result.only(path)
    assert outcome.title is None  # the challenge page itself
    assert outcome.info is None
    assert env.sim.calls == []
    assert result.stats == {}
    assert any("ucaptcha_task" in message for message in errors_logged(caplog))


@deferred_f_from_coro_f
async def test_a_rejected_form_post_is_verified_with_the_template_that_detected_it(
    env: Env,
) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    result = await crawl(
        env,
        [page("/invisible")],
        UCAPTCHA_TASKS={f"{HOST}/invisible": {"detect": {"css": "form#newsletter-form"}}},
    )
    assert_content(result, "/invisible")
    assert result.only("/invisible").title == "Welcome to the newsletter"
    assert result.stats["ucaptcha/tokens/rejected"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 2


@deferred_f_from_coro_f
async def test_builtin_false_without_a_website_key_is_refused_at_start(env: Env) -> None:
    template = {
        "detect": {"status": [403], "regex": "captcha_required", "builtin": False},
        "task": {"type": "TurnstileTaskProxyless"},
        "inject": {"mode": "header", "name": "X-Captcha-Token"},
    }
    settings = settings_for(env, UCAPTCHA_TASKS={f"{HOST}/api/*": template})
    crawler = get_crawler(RecordingSpider, settings)
    with pytest.raises(ConfigError, match="UCAPTCHA_TASKS"):
        await crawler.crawl_async(base=env.site.url, pages=[page("/api/items?page=1")])
    assert env.sim.count("createTask") == 0


# --- image captchas ------------------------------------------------------------------------------

IMAGE_TEMPLATES = {f"{HOST}/image": {"detect": {"image": {"css": "img#captcha-image"}}}}
CAPTCHA_PNG = {"method": "GET", "path": "/captcha.png"}


@deferred_f_from_coro_f
async def test_an_image_that_answers_404_gives_up_without_a_task(env: Env) -> None:
    settings = rules({"stage": "request", **CAPTCHA_PNG, "action": "answer", "status": 404})
    result = await crawl(
        env,
        [page("/image")],
        UCAPTCHA_TASKS=IMAGE_TEMPLATES,
        UCAPTCHA_MAX_ATTEMPTS=2,
        **settings,
    )
    error = solve_error(result, "/image")
    assert error.code == "image_download"
    assert error.task_ids == ()
    assert fired(result)["0"] == 2  # one download per attempt
    assert env.sim.calls == []
    assert result.stats["ucaptcha/gave_up"] == 1


@deferred_f_from_coro_f
async def test_an_image_download_network_error_is_an_image_download_failure(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = rules({"stage": "request", **CAPTCHA_PNG, "action": "refuse"})
    result = await crawl(
        env,
        [page("/image")],
        UCAPTCHA_TASKS=IMAGE_TEMPLATES,
        UCAPTCHA_MAX_ATTEMPTS=2,
        RETRY_ENABLED=False,
        **settings,
    )
    error = solve_error(result, "/image")
    assert error.code == "image_download"
    assert fired(result)["0"] == 2
    assert errors_logged(caplog) == []


# --- domain scope --------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_domain_leader_rejected_once_solves_again_and_serves_its_followers(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    result = await crawl(env, [page(p) for p in ZONE], UCAPTCHA_TASKS=ZONE_TEMPLATES)
    for path in ZONE:
        assert_content(result, path)
    assert len(env.sim.tasks) == 2
    assert result.stats["ucaptcha/tokens/rejected"] == 1
    assert result.stats["ucaptcha/solved"] == 5
    assert result.stats["ucaptcha/shared"] >= 1


@deferred_f_from_coro_f
async def test_domain_leader_whose_tasks_fail_fails_its_followers_with_one_task(env: Env) -> None:
    env.sim.add_fault(Fault(kind="fail"))
    result = await crawl(
        env, [page(p) for p in ZONE], UCAPTCHA_TASKS=ZONE_TEMPLATES, UCAPTCHA_MAX_ATTEMPTS=1
    )
    for path in ZONE:
        assert solve_error(result, path).code == "ERROR_CAPTCHA_UNSOLVABLE"
    assert len(env.sim.tasks) == 1
    assert result.stats["ucaptcha/gave_up"] == 5


@deferred_f_from_coro_f
async def test_domain_leader_giving_up_on_rejected_tokens_fails_its_followers(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token"))
    result = await crawl(
        env, [page(p) for p in ZONE], UCAPTCHA_TASKS=ZONE_TEMPLATES, UCAPTCHA_MAX_ATTEMPTS=1
    )
    assert result.stats["ucaptcha/shared"] >= 1
    for path in ZONE:
        assert solve_error(result, path).code == "max_attempts"
    assert len(env.sim.tasks) == 1


@deferred_f_from_coro_f
async def test_domain_leader_refused_on_reissue_lets_the_followers_solve(env: Env) -> None:
    settings = rules({"stage": "request", **ZONE_VERIFY, "action": "refuse", "times": 1})
    result = await crawl(
        env,
        [page(p) for p in ZONE],
        UCAPTCHA_TASKS=ZONE_TEMPLATES,
        RETRY_ENABLED=False,
        **settings,
    )
    outcomes = [result.only(p) for p in ZONE]
    refused = [
        o
        for o in outcomes
        if isinstance(o.error, CaptchaSolveError)
        and o.error.code == "download_failed"
        and isinstance(o.error.__cause__, TxConnectionRefused)
    ]
    assert len(refused) == 1
    assert all(o.title for o in outcomes if o not in refused)
    assert len(env.sim.tasks) == 2
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.reason == "finished"


@deferred_f_from_coro_f
async def test_domain_leader_reissue_dropped_releases_the_followers_when_idle(env: Env) -> None:
    settings = rules({"stage": "scheduled", **ZONE_VERIFY, "action": "ignore", "times": 1})
    result = await crawl(
        env, [page(p) for p in ZONE], expect=[], UCAPTCHA_TASKS=ZONE_TEMPLATES, **settings
    )
    ended = [p for p in ZONE if result.outcomes.get(p)]
    # the dropped leader never ends, as any request a component drops; the others are served
    assert len(ended) == 4
    for path in ended:
        assert_content(result, path)
    assert result.reason == "finished"
    assert middleware_of(result).waiting == 0


@pytest.mark.demo_site(DemoSiteConfig(pages=20, challenge_status=403))
@deferred_f_from_coro_f
async def test_domain_followers_end_when_the_reparked_leader_is_a_bad_template(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    # the leader's refusal page comes without its form
    settings = rules({"stage": "response", **ZONE_VERIFY, "action": "strip_form", "times": 1})
    result = await crawl(
        env, [page(p) for p in ZONE], expect=[], UCAPTCHA_TASKS=ZONE_TEMPLATES, **settings
    )
    assert result.stats["ucaptcha/shared"] >= 1
    ended = [p for p in ZONE if result.outcomes.get(p)]
    assert ended == ZONE


@deferred_f_from_coro_f
async def test_domain_followers_end_when_solving_stops_while_the_leader_token_is_out(
    env: Env,
) -> None:
    env.sim.add_fault(Fault(kind="bad_token", task_type="turnstile", times=1))
    env.sim.add_fault(
        Fault(
            kind="error_code",
            endpoint="createTask",
            task_type="recaptcha",
            code="ERROR_ZERO_BALANCE",
        )
    )
    # the leader's re-issued request waits until a reCAPTCHA page stopped the solver
    hold = {"stage": "request", **ZONE_VERIFY, "action": "hold", "times": 1}
    settings = rules({**hold, "trigger": guarded(env)[0]})
    result = await crawl(
        env, [page(p) for p in ZONE], expect=[], UCAPTCHA_TASKS=ZONE_TEMPLATES, **settings
    )
    assert result.reason == "ucaptcha_error_zero_balance"
    assert solve_error(result, "trigger").code == "ERROR_ZERO_BALANCE"
    assert result.stats["ucaptcha/shared"] >= 1
    for path in ZONE:
        assert solve_error(result, path).code == "ERROR_ZERO_BALANCE"


@deferred_f_from_coro_f
async def test_a_page_challenged_again_after_delivery_is_solved_again(env: Env) -> None:
    path = guarded(env)[0]
    # the same page again, in a cookie jar without the clearance cookie
    again = page(path, "again", dont_filter=True, meta={"cookiejar": 2})
    result = await crawl(
        env, [page(path, "first")], spider_kwargs={"followups": {"first": [again]}}
    )
    for key in ("first", "again"):
        assert_content(result, key)
        info = result.only(key).info
        assert info is not None
        assert info["attempts"] == 1
    assert result.only("first").info != result.only("again").info
    assert result.stats["ucaptcha/solved"] == 2
    assert result.stats["ucaptcha/challenges"] == 2
    assert len(env.sim.tasks) == 2


@deferred_f_from_coro_f
async def test_domain_request_answered_after_the_clearance_is_resent_with_it(env: Env) -> None:
    # /zone/2 leaves with the cookies of before the clearance, and is answered after it
    settings = rules({"stage": "request", "path": "/zone/2", "action": "wait", "until": "/zone/1"})
    result = await crawl(
        env,
        [page("/zone/1", priority=1), page("/zone/2")],
        UCAPTCHA_TASKS=ZONE_TEMPLATES,
        **settings,
    )
    for path in ("/zone/1", "/zone/2"):
        assert_content(result, path)
    info = result.only("/zone/2").info
    assert info is not None
    assert info["shared"] is True
    assert info["cost"] == 0.0
    assert len(env.sim.tasks) == 1
    assert result.stats["ucaptcha/solved"] == 2


@pytest.mark.demo_site(DemoSiteConfig(pages=20, challenge_status=503))
@deferred_f_from_coro_f
async def test_a_wall_served_with_503_is_solved_not_retried(env: Env) -> None:
    path = guarded(env)[0]
    result = await crawl(env, [page(path)])
    assert_content(result, path)
    assert "retry/count" not in result.all_stats
    assert result.stats["ucaptcha/solved"] == 1


@deferred_f_from_coro_f
async def test_a_stuck_task_times_out_and_reaches_the_errback(env: Env) -> None:
    env.sim.add_fault(Fault(kind="stuck"))
    path = guarded(env)[0]
    result = await crawl(env, [page(path)], UCAPTCHA_SOLVE_TIMEOUT=0.3, UCAPTCHA_MAX_ATTEMPTS=1)
    error = solve_error(result, path)
    assert error.code == "solve_timeout"
    assert len(error.task_ids) == 1
    assert result.stats["ucaptcha/tasks/timeout"] == 1
    assert result.stats["ucaptcha/gave_up"] == 1
    assert result.reason == "finished"


# --- stops ---------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_budget_reached_while_requests_are_being_parked_fails_them_all(env: Env) -> None:
    # the first sign-in spends the budget; its callback sends three more at once
    more = [login(f"more{n}", f"user{n}") for n in range(3)]
    result = await crawl(
        env,
        [login("first")],
        expect=["first", *[spec.key for spec in more]],
        spider_kwargs={"followups": {"first": more}},
        UCAPTCHA_BUDGET=0.006,  # one task at the estimate ($0.005)
    )
    assert result.only("first").info is not None
    for spec in more:
        assert solve_error(result, spec.key).code == "budget_exhausted"
    assert result.reason == "ucaptcha_budget_exhausted"


@deferred_f_from_coro_f
async def test_tasks_in_flight_at_a_budget_stop_are_waited_for_and_counted(env: Env) -> None:
    """The budget stop lets the tasks in flight end (they are paid for): the stuck one times
    out, is counted at its price, and only then the spider closes."""
    env.sim.add_fault(Fault(kind="stuck", times=1))
    paths = guarded(env, 3)
    result = await crawl(
        env,
        [page(p) for p in paths],
        UCAPTCHA_BUDGET=0.007,  # room for two tasks at this estimate
        UCAPTCHA_PRICE_ESTIMATES={"recaptcha_v2": 0.003},
        UCAPTCHA_MAX_CONCURRENT_TASKS=2,
        UCAPTCHA_SOLVE_TIMEOUT=1.0,
    )
    assert result.reason == "ucaptcha_budget_exhausted"
    stats = result.stats
    assert stats["ucaptcha/tasks/created"] == 2
    assert stats["ucaptcha/tasks/ready"] == 1
    assert stats["ucaptcha/tasks/timeout"] == 1
    assert stats["ucaptcha/gave_up"] == 2
    assert "ucaptcha/tasks/abandoned" not in stats
    assert stats["ucaptcha/cost_usd"] == pytest.approx(env.sim.charged())


@deferred_f_from_coro_f
async def test_the_last_rejected_token_is_reported_before_close(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token"))
    env.sim.add_fault(Fault(kind="slow", endpoint="feedbackTask", delay=0.3))
    path = guarded(env)[0]
    result = await crawl(env, [page(path)], UCAPTCHA_MAX_ATTEMPTS=1)
    assert solve_error(result, path).code == "max_attempts"
    assert result.stats["ucaptcha/tokens/rejected"] == 1
    assert result.stats.get("ucaptcha/feedback/invalid") == 1
    assert [len(task.feedback) for task in env.sim.tasks.values()] == [1]


@deferred_f_from_coro_f
async def test_one_task_slot_solves_many_parked_requests_one_after_another(env: Env) -> None:
    paths = guarded(env, 5)
    result = await crawl(env, [page(p) for p in paths], UCAPTCHA_MAX_CONCURRENT_TASKS=1)
    for path in paths:
        assert_content(result, path)
    tasks = sorted(env.sim.tasks.values(), key=lambda task: task.created_at)
    assert len(tasks) == 5
    for before, after in itertools.pairwise(tasks):
        assert before.ready_at is not None
        assert before.ready_at <= after.created_at


# --- closing while requests wait -----------------------------------------------------------------


class CloseFromCallback(RecordingSpider):
    """The ``closer`` page's callback closes the spider as Ctrl-C does; with ``wait_for_handback``
    it then waits, keeping the close pending, until the middleware hands a request back to the
    engine (a re-issue or a failure)."""

    wait_for_handback = False

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.handed_back = asyncio.Event()
        self.closing: asyncio.Future[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> CloseFromCallback:
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.scheduled, signal=signals.request_scheduled)
        return spider

    def scheduled(self, request: Request, spider: Any) -> None:
        if STATE_KEY in request.meta or ERROR_KEY in request.meta:
            self.handed_back.set()

    async def parse(self, response: Response, key: str) -> None:  # type: ignore[override]
        super().parse(response, key)
        if key != "closer":
            return
        assert self.crawler.engine is not None
        self.closing = asyncio.ensure_future(
            self.crawler.engine.close_spider_async(reason="test_stop")
        )
        if self.wait_for_handback:
            await asyncio.wait_for(self.handed_back.wait(), HANG_GUARD / 2)


class CloseWhileHandingBack(CloseFromCallback):
    wait_for_handback = True


@deferred_f_from_coro_f
async def test_close_while_parked_and_waiting_for_a_task_slot(
    env: Env,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env.sim.add_fault(Fault(kind="stuck"))
    paths = guarded(env, 3)
    closer = page(plain(env, 1)[0], "closer", priority=-10)
    result = await crawl(
        env,
        [page(p, priority=10) for p in paths] + [closer],
        spider_cls=CloseFromCallback,
        expect=["closer"],
        CONCURRENT_REQUESTS=1,
        UCAPTCHA_MAX_CONCURRENT_TASKS=1,
    )
    assert result.reason == "test_stop"
    assert all(not result.outcomes.get(p) for p in paths)
    assert result.stats["ucaptcha/abandoned"] == 3
    assert result.stats["ucaptcha/tasks/abandoned"] == 1
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert errors_logged(caplog) == []
    middleware = middleware_of(result)
    assert middleware.waiting == 0
    assert middleware.solver.in_flight == 0


@pytest.mark.parametrize("fault", [None, "fail"], ids=["reissue", "failure"])
@deferred_f_from_coro_f
async def test_a_request_handed_back_while_closing_counts_as_abandoned(
    env: Env, fault: str | None
) -> None:
    if fault is not None:
        env.sim.add_fault(Fault(kind=fault))
    path = guarded(env)[0]
    closer = page(plain(env, 1)[0], "closer", priority=-10)
    result = await crawl(
        env,
        [page(path, priority=10), closer],
        spider_cls=CloseWhileHandingBack,
        expect=["closer"],
        CONCURRENT_REQUESTS=1,
        UCAPTCHA_MAX_ATTEMPTS=1,
    )
    assert result.reason == "test_stop"
    assert result.stats["ucaptcha/tasks/created"] == 1
    # the stats agree with what the spider saw: an errback per gave_up, else abandoned
    ended = result.outcomes.get(path, [])
    assert len(ended) <= 1
    errbacks = sum(isinstance(outcome.error, CaptchaSolveError) for outcome in ended)
    assert result.stats.get("ucaptcha/gave_up", 0) == errbacks
    assert result.stats.get("ucaptcha/abandoned", 0) == 1 - len(ended)


# --- many at once --------------------------------------------------------------------------------


@pytest.mark.demo_site(DemoSiteConfig(pages=40, challenge_share=0.25))
@deferred_f_from_coro_f
async def test_one_concurrent_request_is_enough_for_challenges_and_plain_pages(env: Env) -> None:
    challenged, plain_pages = guarded(env, 5), plain(env, 10)
    logins = [login(f"login{n}", f"user{n}") for n in range(2)]
    # every solve is held until the last plain page is parsed: were a unit held meanwhile,
    # that would never happen
    held = HeldSolves(env, plain_pages)
    result = await crawl(
        env,
        [page(p, priority=1) for p in challenged] + logins + [page(p) for p in plain_pages],
        spider_kwargs={"on_parsed": held.parsed},
        CONCURRENT_REQUESTS=1,
    )
    assert held.in_order, "the plain pages were not all parsed while the solves were held"
    for path in challenged + plain_pages:
        assert_content(result, path)
    for spec in logins:
        assert_content(result, spec.key)
    hits = env.site.log
    last_plain = max(h.seq for h in hits if h.path in plain_pages)
    first_token = min(h.seq for h in hits if h.path in ("/verify/recaptcha", "/login"))
    # no unit was held while the five walls and the two sign-ins were solved
    assert last_plain < first_token
    assert result.stats["ucaptcha/solved"] == 7


@pytest.mark.demo_site(DemoSiteConfig(pages=200, challenge_share=1.0))
@deferred_f_from_coro_f
async def test_hundreds_of_challenges_at_once(env: Env) -> None:
    paths = guarded(env, 200)
    result = await crawl(env, [page(p) for p in paths])
    for path in paths:
        assert_content(result, path)
    assert result.stats["ucaptcha/solved"] == 200
    assert result.stats["ucaptcha/tasks/created"] == 200
    assert result.reason == "finished"
    assert middleware_of(result).waiting == 0
