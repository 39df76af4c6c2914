"""Full crawls: the middleware against the simulator and the demo site, exact ucaptcha/* stats."""

from __future__ import annotations

from typing import Any

import pytest
from crawling import (
    HOST,
    SOLVE_MS,
    Env,
    HeldSolves,
    RecordingSpider,
    crawl,
    page,
    solved_stats,
)
from forms import form_fields
from scrapy.utils.defer import deferred_f_from_coro_f
from twisted.python.failure import Failure

from scrapy_ucaptcha import CaptchaSolveError
from scrapy_ucaptcha.testing._serving import get_reactor
from scrapy_ucaptcha.testing.demo_site import SITEKEYS, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY, Fault

RECAPTCHA = "RecaptchaV2TaskProxyless"
RECAPTCHA_COST = 0.0045


def guarded(env: Any, n: int = 1) -> list[int]:
    items = sorted(env.site.guarded_items)
    assert len(items) >= n
    return items[:n]


def plain(env: Any, n: int) -> list[int]:
    items = [i for i in range(1, env.site.config.pages + 1) if i not in env.site.guarded_items]
    assert len(items) >= n
    return items[:n]


def assert_content(outcome: Any) -> None:
    """The callback got the real page: its guarded content, not the challenge."""
    assert outcome.error is None, outcome.error
    assert outcome.status == 200
    assert outcome.title
    assert outcome.content


# --- one challenge of each kind ------------------------------------------------------------------

#: The newsletter and search forms ask for more than the CAPTCHA (an e-mail, a query), so they are
#: no walls by default: a template's detect rules declare them challenges.
FORM_TEMPLATES = {
    f"{HOST}/invisible": {"detect": {"css": "form#newsletter-form"}},
    f"{HOST}/submit/invisible": {"detect": {"css": "form#newsletter-form"}},
    f"{HOST}/v3": {"detect": {"css": "form#search-form"}},
    f"{HOST}/submit/v3": {"detect": {"css": "form#search-form"}},
}

KINDS = [
    ("item", "recaptcha_v2", RECAPTCHA, 0.0045),
    ("/invisible", "recaptcha_v2_invisible", RECAPTCHA, 0.0045),
    ("/v3", "recaptcha_v3", "RecaptchaV3TaskProxyless", 0.0045),
    ("/enterprise", "recaptcha_enterprise", "RecaptchaV2EnterpriseTaskProxyless", 0.0045),
    ("/hcaptcha", "hcaptcha", "HCaptchaTaskProxyless", 0.002),
    ("/turnstile", "turnstile", "TurnstileTaskProxyless", 0.003),
]


@pytest.mark.parametrize(("path", "kind", "task_type", "cost"), KINDS)
@deferred_f_from_coro_f
async def test_each_detector_kind_is_solved(
    env: Env, path: str, kind: str, task_type: str, cost: float
) -> None:
    if path == "item":
        path = f"/item/{guarded(env)[0]}"
    result = await crawl(env, [page(path)], UCAPTCHA_TASKS=FORM_TEMPLATES)
    outcome = result.only(path)
    assert_content(outcome)
    assert outcome.info is not None
    assert outcome.info["type"] == task_type
    assert outcome.info["cost"] == cost
    assert outcome.info["solve_time_ms"] == SOLVE_MS
    assert outcome.info["attempts"] == 1
    assert outcome.info["task_id"] in env.sim.tasks
    assert result.stats == solved_stats(kind=kind, task_type=task_type, cost=cost)
    assert result.reason == "finished"
    task = env.sim.tasks[outcome.info["task_id"]]
    assert task.website_url == env.url(path)
    assert task.website_key


@deferred_f_from_coro_f
async def test_image_captcha_is_downloaded_through_scrapy_and_solved(env: Env) -> None:
    result = await crawl(
        env,
        [page("/image")],
        UCAPTCHA_TASKS={f"{HOST}/image": {"detect": {"image": {"css": "img#captcha-image"}}}},
    )
    assert_content(result.only("/image"))
    assert result.stats == solved_stats(
        kind="image", task_type="ImageToTextTask", cost=0.001, polls=0
    )
    captcha_fetches = [hit for hit in env.site.log if hit.path == "/captcha.png"]
    assert len(captcha_fetches) == 1


@deferred_f_from_coro_f
async def test_a_task_that_fails_is_created_again(env: Env) -> None:
    env.sim.add_fault(Fault(kind="fail", times=1))
    path = f"/item/{guarded(env)[0]}"
    result = await crawl(env, [page(path)])
    outcome = result.only(path)
    assert_content(outcome)
    assert outcome.info is not None
    assert outcome.info["attempts"] == 2
    expected = solved_stats(kind="recaptcha_v2", task_type=RECAPTCHA, cost=RECAPTCHA_COST)
    expected.update(
        {
            "ucaptcha/tasks/created": 2,
            "ucaptcha/tasks/failed": 1,
            "ucaptcha/errors/error_captcha_unsolvable": 1,
            "ucaptcha/api_calls/createTask": 2,
            "ucaptcha/api_calls/getTaskResult": 2,
        }
    )
    assert result.stats == expected


@deferred_f_from_coro_f
async def test_a_rejected_token_is_reported_and_solved_again(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token", times=1))
    path = f"/item/{guarded(env)[0]}"
    result = await crawl(env, [page(path)])
    outcome = result.only(path)
    assert_content(outcome)
    assert outcome.info is not None
    assert outcome.info["attempts"] == 2
    expected = solved_stats(kind="recaptcha_v2", task_type=RECAPTCHA, cost=RECAPTCHA_COST * 2)
    expected.update(
        {
            "ucaptcha/challenges": 2,
            "ucaptcha/challenges/recaptcha_v2": 2,
            "ucaptcha/tasks/created": 2,
            "ucaptcha/tasks/ready": 2,
            f"ucaptcha/tasks/ready/{RECAPTCHA}": 2,
            "ucaptcha/tokens/rejected": 1,
            "ucaptcha/feedback/invalid": 1,
            "ucaptcha/api_calls/createTask": 2,
            "ucaptcha/api_calls/getTaskResult": 2,
            "ucaptcha/api_calls/feedbackTask": 2,
        }
    )
    assert result.stats == expected
    first = next(t for t in env.sim.tasks.values() if t.bad_token)
    assert [f["invalid"] for f in first.feedback] == [True]
    second = next(t for t in env.sim.tasks.values() if not t.bad_token)
    assert [f["invalid"] for f in second.feedback] == [False]


@deferred_f_from_coro_f
async def test_giving_up_reaches_the_errback_with_captcha_solve_error(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_token"))
    path = f"/item/{guarded(env)[0]}"
    result = await crawl(env, [page(path)], UCAPTCHA_MAX_ATTEMPTS=2)
    error = result.only(path).error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "max_attempts"
    assert error.attempts == 2
    assert len(error.task_ids) == 2
    assert set(error.task_ids) == set(env.sim.tasks)
    assert error.url == env.url(path)
    assert result.stats == {
        "ucaptcha/challenges": 3,
        "ucaptcha/challenges/recaptcha_v2": 3,
        "ucaptcha/tasks/created": 2,
        "ucaptcha/tasks/ready": 2,
        f"ucaptcha/tasks/ready/{RECAPTCHA}": 2,
        "ucaptcha/tokens/rejected": 2,
        "ucaptcha/feedback/invalid": 2,
        "ucaptcha/gave_up": 1,
        "ucaptcha/cost_usd": RECAPTCHA_COST * 2,
        f"ucaptcha/cost_usd/{HOST}": RECAPTCHA_COST * 2,
        "ucaptcha/api_calls/createTask": 2,
        "ucaptcha/api_calls/getTaskResult": 2,
        "ucaptcha/api_calls/feedbackTask": 2,
        **{f"ucaptcha/solve_time_ms/{s}": SOLVE_MS for s in ("min", "max", "mean", "p50", "p95")},
    }


# --- inject modes, presolve, opt-out -------------------------------------------------------------

API_TEMPLATE = {
    "detect": {"status": [403], "regex": "captcha_required", "builtin": False},
    "task": {"type": "TurnstileTaskProxyless", "websiteKey": SITEKEYS["turnstile"]},
    "inject": {"mode": "header", "name": "X-Captcha-Token"},
}


@deferred_f_from_coro_f
async def test_header_inject_on_a_json_api(env: Env) -> None:
    result = await crawl(
        env,
        [page("/api/items?page=1"), page("/api/items?page=2")],
        UCAPTCHA_TASKS={f"{HOST}/api/*": API_TEMPLATE},
    )
    for key in ("/api/items?page=1", "/api/items?page=2"):
        outcome = result.only(key)
        assert outcome.status == 200
        assert outcome.info is not None
    expected = solved_stats(kind="turnstile", task_type="TurnstileTaskProxyless", cost=0.003)
    for name in (
        "ucaptcha/challenges",
        "ucaptcha/challenges/turnstile",
        "ucaptcha/tasks/created",
        "ucaptcha/tasks/ready",
        "ucaptcha/tasks/ready/TurnstileTaskProxyless",
        "ucaptcha/solved",
        "ucaptcha/api_calls/createTask",
        "ucaptcha/api_calls/getTaskResult",
        "ucaptcha/feedback/valid",
        "ucaptcha/api_calls/feedbackTask",
    ):
        expected[name] = 2
    expected["ucaptcha/cost_usd"] = expected[f"ucaptcha/cost_usd/{HOST}"] = 0.006
    assert result.stats == expected
    assert env.site.counts()["token_accepted/api"] == 2


def add_token_as_query(request: Any, token: str, solution: dict[str, Any]) -> Any:
    """An inject function: the token as a query parameter (the callable mode's test)."""
    assert solution["token"] == token
    return request.replace(url=f"{request.url}&captcha={token}")


INJECT_MODES = [
    ("cookie", {"mode": "cookie", "name": "captcha_token"}, {}),
    ("query", {"mode": "query", "name": "captcha"}, {}),
    (
        "json",
        {"mode": "json", "name": "captchaToken"},
        {"method": "POST", "body": b'{"page": 2}', "headers": {"Content-Type": "application/json"}},
    ),
    ("callable", {"mode": "callable", "function": f"{__name__}:add_token_as_query"}, {}),
]


@pytest.mark.parametrize(("mode", "inject", "request_kwargs"), INJECT_MODES)
@deferred_f_from_coro_f
async def test_inject_modes(
    env: Env, mode: str, inject: dict[str, Any], request_kwargs: dict[str, Any]
) -> None:
    template = {**API_TEMPLATE, "inject": inject}
    result = await crawl(
        env,
        [page("/api/items?page=1", "api", **request_kwargs)],
        UCAPTCHA_TASKS={f"{HOST}/api/*": template},
    )
    outcome = result.only("api")
    assert outcome.status == 200
    assert outcome.info is not None
    assert result.stats == solved_stats(
        kind="turnstile", task_type="TurnstileTaskProxyless", cost=0.003
    )
    assert env.site.counts()["token_accepted/api"] == 1
    accepted = [hit for hit in env.site.log if hit.outcome == "token_accepted"]
    assert accepted[0].method == request_kwargs.get("method", "GET")


@deferred_f_from_coro_f
async def test_presolve_solves_before_sending(env: Env) -> None:
    login = page(
        "/login",
        **form_fields({"username": "demo", "password": "demo"}),
        meta={
            "ucaptcha_task": {
                "presolve": True,
                "task": {
                    "type": RECAPTCHA,
                    "websiteKey": SITEKEYS["recaptcha_invisible"],
                    "isInvisible": True,
                },
            }
        },
    )
    result = await crawl(env, [login])
    outcome = result.only("/login")
    assert_content(outcome)
    assert outcome.info is not None
    expected = solved_stats(kind="recaptcha_v2", task_type=RECAPTCHA, cost=RECAPTCHA_COST)
    del expected["ucaptcha/challenges"], expected["ucaptcha/challenges/recaptcha_v2"]
    expected["ucaptcha/presolve"] = 1
    assert result.stats == expected
    posts = [hit for hit in env.site.log if hit.path == "/login"]
    assert [hit.status for hit in posts] == [200]  # sent once, with the token


@deferred_f_from_coro_f
async def test_meta_false_opts_out(env: Env) -> None:
    path = f"/item/{guarded(env)[0]}"
    result = await crawl(env, [page(path, meta={"ucaptcha_task": False})])
    outcome = result.only(path)
    assert outcome.title is None  # the challenge page itself
    assert outcome.info is None
    assert result.stats == {}
    assert env.sim.calls == []


@deferred_f_from_coro_f
async def test_negative_and_unsolvable_pages(env: Env) -> None:
    paths = ["/articles/just-a-moment", "/articles/captchas", "/protected/managed"]
    result = await crawl(
        env, [page(p) for p in paths], UCAPTCHA_TASKS={f"{HOST}/contact": {"solve": False}}
    )
    for path in paths[:2]:
        assert_content(result.only(path))
    assert result.only("/protected/managed").status == 403
    assert result.stats == {
        "ucaptcha/challenges": 1,
        "ucaptcha/challenges/cloudflare_challenge": 1,
        "ucaptcha/unsolvable": 1,
    }
    assert env.sim.calls == []


@pytest.mark.parametrize("path", ["/contact", "/invisible", "/v3"])
@deferred_f_from_coro_f
async def test_widget_in_a_form_asking_for_more_is_no_wall_by_default(env: Env, path: str) -> None:
    result = await crawl(env, [page(path)])
    outcome = result.only(path)
    assert outcome.status == 200
    assert outcome.info is None
    assert result.stats == {"ucaptcha/widgets_ignored": 1}
    assert env.sim.calls == []


@deferred_f_from_coro_f
async def test_template_solve_false_leaves_a_widget_page_alone(env: Env) -> None:
    result = await crawl(
        env, [page("/contact")], UCAPTCHA_TASKS={f"{HOST}/contact": {"solve": False}}
    )
    assert_content(result.only("/contact"))
    assert result.stats == {}


# --- sharing, fatal errors, budget ---------------------------------------------------------------


@deferred_f_from_coro_f
async def test_domain_scope_one_task_serves_every_parked_request(env: Env) -> None:
    paths = [f"/zone/{n}" for n in range(1, 6)]
    result = await crawl(
        env,
        [page(p) for p in paths],
        UCAPTCHA_TASKS={f"{HOST}/zone/*": {"scope": "domain"}},
    )
    infos = []
    for path in paths:
        outcome = result.only(path)
        assert_content(outcome)
        assert outcome.info is not None
        infos.append(outcome.info)
    assert len({info["task_id"] for info in infos}) == 1
    assert sum(info["cost"] for info in infos) == 0.003
    assert len(env.sim.tasks) == 1
    stats = result.stats
    assert stats["ucaptcha/tasks/created"] == 1
    assert stats["ucaptcha/solved"] == 5
    assert stats["ucaptcha/challenges"] == stats["ucaptcha/challenges/turnstile"]
    assert stats["ucaptcha/challenges"] == 1 + stats["ucaptcha/shared"]
    assert stats["ucaptcha/cost_usd"] == 0.003


@deferred_f_from_coro_f
async def test_fatal_account_error_closes_the_spider(env: Env) -> None:
    env.sim.add_fault(Fault(kind="error_code", endpoint="createTask", code="ERROR_ZERO_BALANCE"))
    items = guarded(env, 3)
    paths = [f"/item/{i}" for i in items]
    # the spider closes on the first refusal: a page still in the scheduler then is dropped by
    # Scrapy unseen, so only the pages that reached the middleware end (each exactly once)
    result = await crawl(
        env,
        [page(p) for p in paths],
        expect=(),
        CONCURRENT_REQUESTS=1,
        UCAPTCHA_MAX_CONCURRENT_TASKS=1,
    )
    assert result.reason == "ucaptcha_error_zero_balance"
    errors = [result.only(p).error for p in paths if result.outcomes.get(p)]
    assert errors
    for error in errors:
        assert isinstance(error, CaptchaSolveError)
        assert error.code == "ERROR_ZERO_BALANCE"
    assert env.sim.count("createTask") == 1
    assert result.stats["ucaptcha/errors/error_zero_balance"] == 1
    assert result.stats["ucaptcha/gave_up"] == len(errors)


class _ReleasingSpider(RecordingSpider):
    """Calls ``on_parsed`` for a request ended in its errback too (key ``"errback"``)."""

    def errback(self, failure: Failure) -> None:
        super().errback(failure)
        if self.on_parsed is not None:
            self.on_parsed("errback")


class _ReleaseOnFirstEnd:
    """Holds the first ``tasks`` tasks (``stuck``) until a request has ended, then lets them
    finish; a guard releases them after ``guard`` seconds so that a broken crawl ends."""

    def __init__(self, env: Env, tasks: int, guard: float = 30.0) -> None:
        self.sim = env.sim
        env.sim.add_fault(Fault(kind="stuck", times=tasks))
        self.by: str | None = None
        self._reactor = get_reactor()
        self._guard = self._reactor.callLater(guard, lambda: self._release("guard"))

    def parsed(self, key: str) -> None:
        self._reactor.callLater(0, lambda: self._release(key))

    def _release(self, by: str) -> None:
        if self.by is not None:
            return
        self.by = by
        if self._guard.active():
            self._guard.cancel()
        self.sim.release()


@deferred_f_from_coro_f
async def test_zero_balance_lets_the_tasks_in_flight_finish_and_uses_their_tokens(env: Env) -> None:
    # the account pays for two tasks: the third createTask finds the balance empty while
    # the first two are still being solved (held until the refused request has ended)
    env.sim.set_balance(DEFAULT_API_KEY, 2 * RECAPTCHA_COST)
    held = _ReleaseOnFirstEnd(env, tasks=2)
    paths = [f"/item/{i}" for i in guarded(env, 3)]
    result = await crawl(
        env,
        [page(p) for p in paths],
        spider_cls=_ReleasingSpider,
        spider_kwargs={"on_parsed": held.parsed},
        UCAPTCHA_MAX_CONCURRENT_TASKS=3,
    )
    assert held.by == "errback"
    assert result.reason == "ucaptcha_error_zero_balance"
    delivered = [p for p in paths if result.only(p).error is None]
    refused = [p for p in paths if result.only(p).error is not None]
    assert len(delivered) == 2
    for path in delivered:
        assert_content(result.only(path))
    (path,) = refused
    error = result.only(path).error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "ERROR_ZERO_BALANCE"
    assert env.sim.count("createTask") == 3
    assert len(env.sim.tasks) == 2
    assert env.sim.charged() == 2 * RECAPTCHA_COST
    expected = solved_stats(kind="recaptcha_v2", task_type=RECAPTCHA, cost=2 * RECAPTCHA_COST)
    for name in (
        "ucaptcha/tasks/created",
        "ucaptcha/tasks/ready",
        f"ucaptcha/tasks/ready/{RECAPTCHA}",
        "ucaptcha/solved",
        "ucaptcha/feedback/valid",
        "ucaptcha/api_calls/feedbackTask",
    ):
        expected[name] = 2
    expected.update(
        {
            "ucaptcha/challenges": 3,
            "ucaptcha/challenges/recaptcha_v2": 3,
            "ucaptcha/api_calls/createTask": 3,
            "ucaptcha/api_calls/getTaskResult": env.sim.count("getTaskResult"),
            "ucaptcha/errors/error_zero_balance": 1,
            "ucaptcha/gave_up": 1,
        }
    )
    assert result.stats == expected


@deferred_f_from_coro_f
async def test_a_refused_key_ends_the_tasks_in_flight_at_once(env: Env) -> None:
    # the key stops working while two tasks are held: no poll can succeed any more
    held = _ReleaseOnFirstEnd(env, tasks=2)
    env.sim.add_fault(
        Fault(kind="error_code", endpoint="getTaskResult", code="ERROR_KEY_DOES_NOT_EXIST")
    )
    paths = [f"/item/{i}" for i in guarded(env, 2)]
    result = await crawl(
        env,
        [page(p) for p in paths],
        spider_cls=_ReleasingSpider,
        spider_kwargs={"on_parsed": held.parsed},
    )
    assert result.reason == "ucaptcha_error_key_does_not_exist"
    codes = [
        error.code
        for error in (result.only(p).error for p in paths)
        if isinstance(error, CaptchaSolveError)
    ]
    assert codes == ["ERROR_KEY_DOES_NOT_EXIST"] * 2
    assert result.stats["ucaptcha/tasks/created"] == 2
    assert result.stats["ucaptcha/gave_up"] == 2
    assert "ucaptcha/tasks/ready" not in result.stats


@deferred_f_from_coro_f
async def test_budget_reached_stops_new_tasks_and_closes(env: Env) -> None:
    paths = [f"/item/{i}" for i in guarded(env, 3)]
    result = await crawl(
        env,
        [page(p) for p in paths],
        expect=(),
        UCAPTCHA_BUDGET=0.006,  # one task fits at the estimate ($0.005), two do not
        UCAPTCHA_MAX_CONCURRENT_TASKS=1,
    )
    assert result.reason == "ucaptcha_budget_exhausted"
    assert env.sim.count("createTask") == 1
    delivered = [p for p in paths if result.outcomes.get(p) and result.outcomes[p][0].info]
    failed = [
        p
        for p in paths
        if result.outcomes.get(p) and isinstance(result.outcomes[p][0].error, CaptchaSolveError)
    ]
    assert len(delivered) == 1
    assert len(failed) == 2
    assert all(result.outcomes[p][0].error.code == "budget_exhausted" for p in failed)  # type: ignore[union-attr]
    assert result.stats["ucaptcha/gave_up"] == 2
    assert result.stats["ucaptcha/cost_usd"] == RECAPTCHA_COST


# --- concurrency ---------------------------------------------------------------------------------


@pytest.mark.demo_site(DemoSiteConfig(pages=80, challenge_share=0.2, seed=3))
@deferred_f_from_coro_f
async def test_pending_solves_do_not_hold_concurrency(env: Env) -> None:
    """CONCURRENT_REQUESTS=2, 10 challenged pages whose solves are held, 50 plain pages: every
    plain page is fetched and parsed before any solve completes.

    The simulator holds every task until the spider has parsed the last plain page; were the
    parked requests holding the two slots, the plain pages would never be parsed.
    """
    challenged = [f"/item/{i}" for i in guarded(env, 10)]
    plain_pages = [f"/item/{i}" for i in plain(env, 50)]
    held = HeldSolves(env, plain_pages)
    # challenged pages first, so that they take the slots first
    result = await crawl(
        env,
        [page(p) for p in challenged + plain_pages],
        spider_kwargs={"on_parsed": held.parsed},
        CONCURRENT_REQUESTS=2,
        UCAPTCHA_FIRST_POLL=0.1,
        UCAPTCHA_POLL_INTERVAL=0.1,
    )
    assert held.in_order, "the plain pages were not all parsed while the solves were held"
    assert held.fault.fired == 10
    for path in challenged + plain_pages:
        assert_content(result.only(path))
    first_ready = min(t.ready_at for t in env.sim.tasks.values() if t.ready_at is not None)
    last_plain_parsed = max(result.spider.parsed_at[p] for p in plain_pages)
    assert last_plain_parsed < first_ready
    hits = env.site.log
    last_plain_hit = max(h.seq for h in hits if h.path in plain_pages)
    first_verify = min(h.seq for h in hits if h.path == "/verify/recaptcha")
    assert last_plain_hit < first_verify
    assert result.stats["ucaptcha/solved"] == 10
    assert result.stats["ucaptcha/tasks/created"] == 10
