"""Solver alone, against the simulator: first poll, budget reservation, error mapping, close.

No crawl here: a real client talks to the simulator on loopback, and the solver's stats go to a
Scrapy stats collector. Held tasks (a ``stuck`` fault, then ``Simulator.release``) stand in for
slow solves, so that what happens while a task is in flight is decided by order, not by time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from scrapy import Spider
from scrapy.settings import Settings
from scrapy.statscollectors import StatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import Config
from scrapy_ucaptcha.polling import PollPlanner
from scrapy_ucaptcha.solver import Abandoned, Reckoning, SolveFailed, Solver
from scrapy_ucaptcha.stats import StatsRecorder
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY, Fault, Simulator

RECAPTCHA = "RecaptchaV2TaskProxyless"
COST = 0.0045  # the simulator's price of a reCAPTCHA v2 task
TASK = {"type": RECAPTCHA, "websiteURL": "https://shop.example/", "websiteKey": "site-key"}
DOMAIN = "shop.example"
#: Seconds a test waits for something that happens at once, before it counts as hung.
HANG_GUARD = 30.0


@dataclass
class Rig:
    solver: Solver
    stats: StatsCollector
    stops: list[str] = field(default_factory=list)

    def stat(self, key: str) -> Any:
        return self.stats.get_value(key)


@asynccontextmanager
async def solver_for(sim: Simulator, **settings: Any) -> AsyncIterator[Rig]:
    config = Config.from_settings(
        Settings(
            {
                "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
                "UCAPTCHA_API_URL": sim.url,
                "UCAPTCHA_POLL_INTERVAL": 0.1,
                "UCAPTCHA_BACKOFF_BASE": 0.01,
                "UCAPTCHA_BACKOFF_MAX": 0.02,
                **settings,
            }
        )
    )
    stats = get_crawler(Spider).stats
    assert stats is not None
    client = config.make_client()
    stops: list[str] = []
    rig = Rig(Solver(config, client, StatsRecorder(stats), stops.append), stats, stops)
    try:
        yield rig
    finally:
        rig.solver.close()
        await client.close()


async def until(predicate: Callable[[], object]) -> None:
    """Wait (yielding to the reactor) until ``predicate()`` holds; a guard against hanging only."""
    loop = asyncio.get_running_loop()
    guard = loop.time() + HANG_GUARD
    while not predicate():
        assert loop.time() < guard, "the awaited event never happened"
        await asyncio.sleep(0.01)


# --- first poll -----------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_first_poll_starts_from_the_prior_and_follows_the_solves_seen(
    ucaptcha_simulator: Simulator,
) -> None:
    sim = ucaptcha_simulator  # every task solved in 50 ms
    async with solver_for(sim) as rig:
        prior = PollPlanner(interval=0.1).schedule(RECAPTCHA).first
        delays = [rig.solver.first_poll_delay(RECAPTCHA)]
        assert delays[0] == pytest.approx(prior)
        for _ in range(6):
            solution = await rig.solver.solve(TASK, domain=DOMAIN)
            assert solution.solve_time_ms == 50
            delays.append(rig.solver.first_poll_delay(RECAPTCHA))
        # each 50 ms solve pulls the first poll earlier, never below the solves themselves
        assert delays == sorted(delays, reverse=True)
        assert len(set(delays)) == len(delays)
        assert delays[-1] > 0.05
        # so the first poll always finds the task ready: one getTaskResult per task
        assert [task.polls for task in sim.tasks.values()] == [1] * 6
        assert sim.count("getTaskResult") == 6


@deferred_f_from_coro_f
async def test_a_pinned_first_poll_does_not_move(ucaptcha_simulator: Simulator) -> None:
    async with solver_for(ucaptcha_simulator, UCAPTCHA_FIRST_POLL=0.2) as rig:
        assert rig.solver.first_poll_delay(RECAPTCHA) == 0.2
        for _ in range(3):
            await rig.solver.solve(TASK, domain=DOMAIN)
        assert rig.solver.first_poll_delay(RECAPTCHA) == 0.2
        assert ucaptcha_simulator.count("getTaskResult") == 3


# --- budget ---------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_budget_holds_a_task_in_flight_at_its_price(ucaptcha_simulator: Simulator) -> None:
    sim = ucaptcha_simulator
    async with solver_for(sim, UCAPTCHA_BUDGET=0.01) as rig:
        first = await rig.solver.solve(TASK, domain=DOMAIN)
        assert first.cost == pytest.approx(COST)
        assert rig.solver.spent == pytest.approx(COST)
        sim.add_fault(Fault(kind="stuck", times=1))
        second = asyncio.ensure_future(rig.solver.solve(TASK, domain=DOMAIN))
        await until(lambda: len(sim.tasks) == 2)
        assert rig.solver.in_flight == 1
        # spent 0.0045 + 0.0045 held for the task in flight + 0.0045 > 0.01: the third waits,
        # uncreated, for the second to settle
        third = asyncio.ensure_future(rig.solver.solve(TASK, domain=DOMAIN))
        await until(lambda: rig.solver.in_flight_at_budget is not None)
        assert rig.solver.in_flight_at_budget == 1
        assert sim.count("createTask") == 2
        assert not third.done()
        # the task in flight is still solved and paid for: its token is not thrown away; then
        # 0.009 spent leaves no room for a third task at all
        sim.release()
        assert (await second).cost == pytest.approx(COST)
        with pytest.raises(SolveFailed) as refused:
            await third
        assert (refused.value.code, refused.value.retry) == ("budget_exhausted", False)
        assert rig.stops == ["budget_exhausted"]
        assert rig.solver.spent == pytest.approx(2 * COST)
        assert rig.solver.in_flight == 0
        with pytest.raises(SolveFailed, match="budget_exhausted"):
            await rig.solver.solve(TASK, domain=DOMAIN)
        assert rig.stops == ["budget_exhausted"]
        assert sim.count("createTask") == 2
        assert rig.stat("ucaptcha/tasks/created") == 2
        assert rig.stat("ucaptcha/tasks/ready") == 2


# --- error mapping --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorCase:
    fault: Fault
    code: str
    retry: bool
    stops: bool = False
    settings: dict[str, Any] = field(default_factory=dict)


ERRORS = {
    "fatal account error stops": ErrorCase(
        Fault("error_code", endpoint="createTask", code="ERROR_ZERO_BALANCE"),
        "ERROR_ZERO_BALANCE",
        retry=False,
        stops=True,
    ),
    "bad task is not retried": ErrorCase(
        Fault("error_code", endpoint="createTask", code="ERROR_BAD_PARAMETERS"),
        "ERROR_BAD_PARAMETERS",
        retry=False,
    ),
    "failed task may be created again": ErrorCase(
        Fault("fail", code="ERROR_CAPTCHA_UNSOLVABLE"), "ERROR_CAPTCHA_UNSOLVABLE", retry=True
    ),
    "dead task id may be created again": ErrorCase(
        Fault("error_code", endpoint="getTaskResult", code="ERROR_WRONG_CAPTCHA_ID"),
        "ERROR_WRONG_CAPTCHA_ID",
        retry=True,
    ),
    "network errors past the retries": ErrorCase(
        Fault("drop", endpoint="createTask"),
        "network",
        retry=True,
        settings={"UCAPTCHA_MAX_RETRIES": 1},
    ),
    "a call that does not answer": ErrorCase(
        Fault("slow", endpoint="createTask", delay=30.0),
        "timeout",
        retry=True,
        settings={"UCAPTCHA_MAX_RETRIES": 0, "UCAPTCHA_HTTP_TIMEOUT": 0.2},
    ),
    "a task never ready": ErrorCase(
        Fault("stuck"), "solve_timeout", retry=True, settings={"UCAPTCHA_SOLVE_TIMEOUT": 0.3}
    ),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
@deferred_f_from_coro_f
async def test_errors_map_to_a_code_and_whether_to_retry(
    ucaptcha_simulator: Simulator, name: str
) -> None:
    case = ERRORS[name]
    sim = ucaptcha_simulator
    sim.add_fault(case.fault)
    async with solver_for(sim, **case.settings) as rig:
        with pytest.raises(SolveFailed) as info:
            await rig.solver.solve(TASK, domain=DOMAIN)
        failure = info.value
        assert (failure.code, failure.retry) == (case.code, case.retry)
        assert rig.stops == ([case.code] if case.stops else [])
        assert rig.solver.stop_reason == (case.code if case.stops else None)
        assert rig.solver.in_flight == 0
        if case.code == "solve_timeout":  # alive at the API when given up: it may be charged
            assert rig.solver.spent > 0.0
        else:
            assert rig.solver.spent == 0.0
        if case.code == "solve_timeout":
            assert rig.stat("ucaptcha/tasks/timeout") == 1
        else:
            assert rig.stat(f"ucaptcha/errors/{case.code.lower()}") == 1
        created = sim.count("createTask")
        if case.stops:  # no request at all once stopped
            with pytest.raises(SolveFailed, match=case.code):
                await rig.solver.solve(TASK, domain=DOMAIN)
            assert sim.count("createTask") == created


# --- close ----------------------------------------------------------------------------------------


@deferred_f_from_coro_f
async def test_close_ends_the_poll_loop_and_the_abandoned_task_is_reckoned(
    ucaptcha_simulator: Simulator,
) -> None:
    sim = ucaptcha_simulator
    sim.add_fault(Fault(kind="stuck"))
    async with solver_for(sim) as rig:
        job = asyncio.ensure_future(rig.solver.solve(TASK, domain=DOMAIN))
        await until(lambda: rig.stat("ucaptcha/tasks/created") == 1)  # its id is known
        rig.solver.close()
        with pytest.raises(asyncio.CancelledError):
            await job
        (task_id,) = sim.tasks
        assert rig.solver.abandoned == [Abandoned(task_id, RECAPTCHA, DOMAIN)]
        assert rig.solver.in_flight == 0
        assert rig.stat("ucaptcha/tasks/abandoned") == 1
        # the provider finishes it anyway: the reckoning finds it charged
        sim.release()
        reckoning = await rig.solver.reckon_abandoned(timeout=HANG_GUARD)
        assert reckoning == Reckoning(tasks=1, charged=1, cost=COST, pending=0)
        assert rig.solver.spent == pytest.approx(COST)
        assert rig.stat("ucaptcha/tasks/abandoned/charged") == 1
        assert rig.solver.abandoned == []
        # still in flight when reckoned: pending, not charged
        assert await rig.solver.reckon_abandoned(timeout=HANG_GUARD) == Reckoning()


@deferred_f_from_coro_f
async def test_an_abandoned_task_still_solving_is_pending(ucaptcha_simulator: Simulator) -> None:
    sim = ucaptcha_simulator
    sim.add_fault(Fault(kind="stuck"))
    async with solver_for(sim) as rig:
        job = asyncio.ensure_future(rig.solver.solve(TASK, domain=DOMAIN))
        await until(lambda: rig.stat("ucaptcha/tasks/created") == 1)  # its id is known
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        reckoning = await rig.solver.reckon_abandoned(timeout=HANG_GUARD)
        assert reckoning == Reckoning(tasks=1, charged=0, cost=0.0, pending=1)
        assert rig.solver.spent == 0.0
        assert rig.stat("ucaptcha/tasks/abandoned/charged") is None
