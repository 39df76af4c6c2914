"""Money: the ledger, the budget, and crawls where every cent and every paid token is counted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from crawling import HOST, Env, crawl, page
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import CaptchaSolveError, UCaptchaMiddleware
from scrapy_ucaptcha.accounting import DEFAULT_ESTIMATES, Ledger
from scrapy_ucaptcha.budget import Budget, BudgetExhausted, LocalBudgetStore
from scrapy_ucaptcha.dialects import DIALECTS
from scrapy_ucaptcha.stats import StatsRecorder
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import Fault, SimulatorConfig, SolveTime

RECAPTCHA = "RecaptchaV2TaskProxyless"
NAMES = ["ucaptcha", "2captcha", "anticaptcha", "capsolver", "capmonster"]


def _ledger(**kwargs: Any) -> tuple[Ledger, dict[str, Any]]:
    collector = MemoryStatsCollector(get_crawler())
    ledger = Ledger(StatsRecorder(collector), **kwargs)
    return ledger, collector._stats


# --- the ledger -----------------------------------------------------------------------------------


def test_prices_come_from_the_api_then_the_table_then_the_estimates() -> None:
    ledger, stats = _ledger(
        prices={"hcaptcha": 0.0021}, estimates={"TurnstileTaskProxyless": 0.0011}
    )
    assert ledger.price(RECAPTCHA).source == "estimate"
    assert ledger.price(RECAPTCHA).amount == DEFAULT_ESTIMATES["recaptcha_v2"]
    assert ledger.price("TurnstileTaskProxyless").amount == 0.0011
    assert ledger.price("HCaptchaTaskProxyless").source == "price_table"
    assert ledger.charge(RECAPTCHA, "a.example", 0.0045).source == "api"
    assert ledger.price(RECAPTCHA).amount == 0.0045
    assert ledger.charge("HCaptchaTaskProxyless", "b.example").amount == 0.0021
    assert stats["ucaptcha/cost_usd"] == pytest.approx(0.0066)
    assert stats["ucaptcha/cost_usd/a.example"] == 0.0045
    assert stats["ucaptcha/cost_source/price_table"] == 0.0021
    assert "ucaptcha/cost_source/estimate" not in stats  # every other figure is the API's


def test_a_charge_without_a_price_is_estimated_then_reconciled_from_the_balance() -> None:
    ledger, stats = _ledger()
    for domain in ("a.example", "a.example", "b.example"):
        ledger.charge("ReCaptchaV2TaskProxyLess", domain)
    ledger.charge("AntiTurnstileTaskProxyLess", "b.example")
    estimated = 3 * 0.005 + 0.003
    assert stats["ucaptcha/cost_usd"] == pytest.approx(estimated)
    assert stats["ucaptcha/cost_source/estimate"] == pytest.approx(estimated)
    # the balance fell by $0.0162: prices are 0.9 times the estimates
    assert ledger.reconcile(10.0, 10.0 - 0.0162)
    assert stats["ucaptcha/cost_usd"] == pytest.approx(0.0162)
    assert stats["ucaptcha/cost_source/balance"] == pytest.approx(0.0162)
    assert stats["ucaptcha/cost_source/estimate"] == 0.0
    assert stats["ucaptcha/cost_usd/a.example"] == pytest.approx(0.009)
    assert stats["ucaptcha/cost_usd/b.example"] == pytest.approx(0.0072)
    assert ledger.price("ReCaptchaV2TaskProxyLess").source == "balance"
    assert ledger.price("ReCaptchaV2TaskProxyLess").amount == pytest.approx(0.0045)
    assert not ledger.reconcile(10.0, 10.5)  # a top-up explains nothing: figures kept
    assert stats["ucaptcha/cost_usd"] == pytest.approx(0.0162)


def test_reconciliation_counts_tasks_in_flight_at_their_estimate() -> None:
    ledger, _ = _ledger()
    ledger.charge("ReCaptchaV2TaskProxyLess", "a.example")
    flight = ledger.begin("ReCaptchaV2TaskProxyLess")  # debited at createTask, not ready yet
    assert ledger.reconcile(1.0, 1.0 - 0.008)
    assert ledger.spent == pytest.approx(0.004)  # half of it: the other half is in flight
    ledger.end(flight)


# --- the budget -----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_the_budget_reserves_settles_and_releases() -> None:
    budget = Budget(0.010)
    first = await budget.try_reserve(0.004)
    second = await budget.try_reserve(0.004)
    assert first is not None
    assert second is not None
    assert await budget.try_reserve(0.004) is None  # fits once one of those ends
    assert budget.remaining == pytest.approx(0.002)
    await budget.release(first)
    third = await budget.try_reserve(0.004)
    assert third is not None
    await budget.settle(second, 0.005)
    await budget.settle(third, 0.005)
    assert budget.spent == pytest.approx(0.010)
    with pytest.raises(BudgetExhausted) as info:
        await budget.try_reserve(0.001)
    assert info.value.spent == pytest.approx(0.010)
    assert "budget $0.0100" in str(info.value)


@deferred_f_from_coro_f
async def test_a_reservation_waits_for_room_and_gives_up_on_request() -> None:
    budget = Budget(0.005)
    held = await budget.try_reserve(0.004)
    assert held is not None
    waiting = asyncio.ensure_future(budget.reserve(0.004))
    await asyncio.sleep(0)
    assert not waiting.done()
    await budget.release(held)
    assert (await waiting) is not None
    stop = False
    given_up = asyncio.ensure_future(budget.reserve(0.004, give_up=lambda: stop))
    await asyncio.sleep(0)
    stop = True
    budget.wake()
    assert await given_up is None


class CountingStore(LocalBudgetStore):
    """A stand-in for a shared store: every change goes through ``add``."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple[float, float]] = []

    async def add(self, *, spent: float = 0.0, reserved: float = 0.0) -> tuple[float, float]:
        self.changes.append((spent, reserved))
        return await super().add(spent=spent, reserved=reserved)


@deferred_f_from_coro_f
async def test_the_figures_live_in_the_store() -> None:
    store = CountingStore()
    budget = Budget(1.0, store)
    reservation = await budget.try_reserve(0.25)
    assert reservation is not None
    await budget.resize(reservation, 0.5)
    await budget.settle(reservation, 0.4)
    await budget.correct(-0.1)
    assert store.changes == [(0.0, 0.25), (0.0, 0.25), (0.4, -0.5), (-0.1, 0.0)]
    assert (store.spent, store.reserved) == pytest.approx((0.3, 0.0))


# --- crawls: cost in every dialect ----------------------------------------------------------------


#: Solve times of 0.3 s: the first price is known only then.
SLOW = {"*": SolveTime.fixed(0.3)}


def _sim(dialect: str = "ucaptcha", **config: Any) -> SimulatorConfig:
    settings: dict[str, Any] = {"solve_time": {"*": SolveTime.fixed(0.05)}, "seed": 0, **config}
    return SimulatorConfig(dialect=dialect, **settings)


@pytest.mark.parametrize("dialect", NAMES)
@pytest.mark.simulator(from_params=_sim)
@deferred_f_from_coro_f
async def test_the_cost_stat_is_what_the_provider_charged(env: Env, dialect: str) -> None:
    """Including a failed task (charged at Anti-Captcha only) and a rejected token."""
    types = DIALECTS[dialect].task_types
    env.sim.add_fault(Fault(kind="fail", task_type=types["hcaptcha"], times=1))
    env.sim.add_fault(Fault(kind="bad_token", task_type=types["turnstile"], times=1))
    items = sorted(env.site.guarded_items)[:3]
    paths = [f"/item/{i}" for i in items] + ["/hcaptcha", "/turnstile"]
    result = await crawl(env, [page(p) for p in paths], UCAPTCHA_DIALECT=dialect)
    for path in paths:
        assert result.only(path).content
    charged = env.sim.charged()
    stats = result.stats
    assert stats["ucaptcha/cost_usd"] == pytest.approx(charged, rel=0.01)
    assert stats[f"ucaptcha/cost_usd/{HOST}"] == pytest.approx(charged, rel=0.01)
    assert stats["ucaptcha/tasks/created"] == 7
    assert stats["ucaptcha/tasks/failed"] == 1
    if dialect == "anticaptcha":
        assert stats["ucaptcha/tasks/failed_charged"] == 1
    if not DIALECTS[dialect].reconciles:
        assert "ucaptcha/api_calls/getBalance" not in stats
    else:  # priced from the balance: before the first task and at the close
        assert stats["ucaptcha/api_calls/getBalance"] == 2
        if not DIALECTS[dialect].cost_in_result:
            assert stats["ucaptcha/cost_source/balance"] == pytest.approx(charged, rel=0.01)


@pytest.mark.simulator(_sim("capsolver"))
@deferred_f_from_coro_f
async def test_a_price_table_prices_tasks_where_answers_carry_no_cost(env: Env) -> None:
    item = min(env.site.guarded_items)
    result = await crawl(
        env,
        [page(f"/item/{item}")],
        UCAPTCHA_DIALECT="capsolver",
        UCAPTCHA_PRICES={"recaptcha_v2": 0.0045},
    )
    assert result.only(f"/item/{item}").info == {
        **result.only(f"/item/{item}").info,  # type: ignore[dict-item]
        "cost": 0.0045,
    }
    assert result.stats["ucaptcha/cost_usd"] == 0.0045
    assert result.stats["ucaptcha/cost_source/price_table"] == 0.0045


# --- the budget in a crawl ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", ["ucaptcha", "capsolver"])
@pytest.mark.simulator(from_params=lambda dialect: _sim(dialect, solve_time=SLOW))
@pytest.mark.demo_site(DemoSiteConfig(pages=80, challenge_share=1.0))
@deferred_f_from_coro_f
async def test_many_challenges_before_any_price_is_known_stay_within_the_budget(
    env: Env, dialect: str
) -> None:
    """80 challenges at once, no price known (the first answer is ready after 0.3 s): spending
    stays within the budget plus what the tasks in flight when it was reached cost."""
    paths = [f"/item/{i}" for i in sorted(env.site.guarded_items)]
    budget = 0.05
    crawler_result = await crawl(
        env,
        [page(p) for p in paths],
        expect=(),
        UCAPTCHA_DIALECT=dialect,
        UCAPTCHA_BUDGET=budget,
    )
    middleware = crawler_result.crawler.get_downloader_middleware(UCaptchaMiddleware)
    assert middleware is not None
    solver = middleware.solver
    assert solver.budget_reached is not None
    assert solver.in_flight_at_budget is not None
    price = 0.0045  # the simulator's reCAPTCHA price
    in_flight_cost = solver.in_flight_at_budget * price
    charged = env.sim.charged()
    assert charged <= budget + in_flight_cost + 1e-9
    # the estimate ($0.005) is above the price: not a cent over
    assert charged <= budget + 1e-9
    stats = crawler_result.stats
    assert crawler_result.reason == "ucaptcha_budget_exhausted"
    assert stats["ucaptcha/cost_usd"] == pytest.approx(charged, rel=0.01)
    assert stats["ucaptcha/tasks/created"] == len(env.sim.tasks)
    delivered = stats.get("ucaptcha/solved", 0)
    assert delivered == stats["ucaptcha/tasks/ready"]  # every paid token was used
    assert "ucaptcha/tokens/wasted" not in stats
    ended = [p for p in paths if crawler_result.outcomes.get(p)]
    errors = [crawler_result.outcomes[p][0].error for p in ended]
    refused = [e for e in errors if isinstance(e, CaptchaSolveError)]
    assert all(e.code == "budget_exhausted" for e in refused)
    assert len(refused) + delivered == len(ended)
    print(
        f"{dialect}: budget ${budget} spent ${charged:.4f} with {len(env.sim.tasks)} tasks, "
        f"{solver.in_flight_at_budget} in flight at the stop"
    )


# --- no paid token thrown away --------------------------------------------------------------------


@pytest.mark.simulator(_sim())
@deferred_f_from_coro_f
async def test_a_ready_answer_lost_in_transit_is_polled_again_and_paid_once(env: Env) -> None:
    # the first poll finds the task ready; its answer is lost twice (every attempt)
    env.sim.add_fault(Fault(kind="drop", endpoint="getTaskResult", times=2))
    item = min(env.site.guarded_items)
    result = await crawl(env, [page(f"/item/{item}")], UCAPTCHA_MAX_RETRIES=1)
    outcome = result.only(f"/item/{item}")
    assert outcome.content
    (task,) = env.sim.tasks.values()
    assert outcome.info is not None
    assert outcome.info["task_id"] == task.id
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert result.stats["ucaptcha/tasks/poll_errors"] == 1
    assert result.stats["ucaptcha/api_calls/getTaskResult"] == 3
    assert env.sim.charged() == task.cost
    assert result.stats["ucaptcha/cost_usd"] == task.cost


@pytest.mark.simulator(_sim())
@deferred_f_from_coro_f
async def test_garbage_in_a_poll_answer_is_polled_again(env: Env) -> None:
    env.sim.add_fault(Fault(kind="malformed_json", endpoint="getTaskResult", times=1))
    item = min(env.site.guarded_items)
    result = await crawl(env, [page(f"/item/{item}")], UCAPTCHA_MAX_RETRIES=0)
    assert result.only(f"/item/{item}").content
    assert result.stats["ucaptcha/tasks/created"] == 1
    assert result.stats["ucaptcha/tasks/poll_errors"] == 1


@pytest.mark.simulator(_sim())
@deferred_f_from_coro_f
async def test_an_unreadable_cost_keeps_the_token(env: Env) -> None:
    env.sim.add_fault(Fault(kind="bad_cost", times=1))
    item = min(env.site.guarded_items)
    result = await crawl(env, [page(f"/item/{item}")])
    outcome = result.only(f"/item/{item}")
    assert outcome.content
    assert outcome.info is not None
    assert outcome.info["cost"] == DEFAULT_ESTIMATES["recaptcha_v2"]
    stats = result.stats
    assert stats["ucaptcha/tasks/created"] == 1
    assert stats["ucaptcha/cost_unreadable"] == 1
    assert stats["ucaptcha/cost_source/estimate"] == DEFAULT_ESTIMATES["recaptcha_v2"]


# --- early callbacks ------------------------------------------------------------------------------


@pytest.mark.simulator(_sim())
@deferred_f_from_coro_f
async def test_a_callback_that_overtakes_create_tasks_answer_is_used(env: Env) -> None:
    # the task is solved in 50 ms, its callback sent at once; createTask answers after 0.5 s
    env.sim.add_fault(Fault(kind="late_answer", endpoint="createTask", delay=0.5, times=1))
    item = min(env.site.guarded_items)
    result = await crawl(
        env,
        [page(f"/item/{item}")],
        UCAPTCHA_CALLBACK_URL=f"http://{HOST}:{{port}}/cb",
        UCAPTCHA_CALLBACK_LISTEN=f"{HOST}:0",
        UCAPTCHA_FIRST_POLL=30,
        UCAPTCHA_POLL_INTERVAL=30,
    )
    assert result.only(f"/item/{item}").content
    (task,) = env.sim.tasks.values()
    (callback,) = env.sim.callbacks
    assert callback.delivered
    create = next(c for c in env.sim.calls if c.endpoint == "createTask")
    polls = [c for c in env.sim.calls if c.endpoint == "getTaskResult"]
    assert callback.time < create.time + 0.5  # it came before createTask's answer
    assert len(polls) == 1  # answered at once, not after the 30 s schedule
    assert polls[0].time < task.created_at + 30
    assert result.stats["ucaptcha/callbacks/received"] == 1
    assert "ucaptcha/callbacks/unknown" not in result.stats
