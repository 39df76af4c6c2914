"""Distributed crawls: two worker processes with scrapy-redis' scheduler and dupefilter and our
middleware, a real redis-server, the simulator and the demo site of this process. Normal run,
graceful stop of one worker mid-solve, ``kill -9`` of one worker mid-solve, and the shared budget.
The simulator holds every task until the test releases it, so what waits where is decided by
counts, not by timing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from crawling import HOST, environment
from redis_cluster import Cluster, redis_server, until, worker_settings
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.cluster import Cluster as SharedState
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import Fault

PAGES = 30
SLOTS = 3  # UCAPTCHA_MAX_CONCURRENT_TASKS of each worker


@asynccontextmanager
async def cluster(tmp_path: Path, **settings: Any) -> AsyncIterator[Cluster]:
    site = DemoSiteConfig(pages=PAGES, challenge_share=0.4)
    async with environment(site_config=site) as env, redis_server() as url:
        paths = [f"/item/{i}" for i in range(1, PAGES + 1)]
        overrides = {"UCAPTCHA_MAX_CONCURRENT_TASKS": SLOTS, **settings}
        running = Cluster(env, url, tmp_path, paths, worker_settings(env, url, **overrides))
        try:
            yield running
        finally:
            for worker in running.workers:
                if worker.process.returncode is None:
                    await worker.kill()


def challenged(running: Cluster) -> list[str]:
    return [f"/item/{i}" for i in sorted(running.env.site.guarded_items)]


def assert_each_delivered_once(running: Cluster) -> None:
    deliveries = running.deliveries()
    for path in running.paths:
        got = deliveries.get(path, [])
        assert len(got) == 1, f"{path} delivered {len(got)} times: {got}"
        assert got[0]["event"] == "page", got[0]
        assert got[0]["title"], got[0]


@deferred_f_from_coro_f
async def test_two_workers_deliver_each_challenged_page_once(tmp_path: Path) -> None:
    async with cluster(tmp_path) as running:
        guarded = challenged(running)
        first = await running.start_worker("a")
        second = await running.start_worker("b")
        await until(lambda: running.delivered() == PAGES, "every page delivered")
        await running.stop_all()
        assert_each_delivered_once(running)
        assert len(running.env.sim.tasks) == len(guarded)
        stats = [first.stats(), second.stats()]
        assert sum(s.get("ucaptcha/solved", 0) for s in stats) == len(guarded)
        assert sum(s.get("ucaptcha/tasks/created", 0) for s in stats) == len(guarded)
        for worker_stats in stats:
            assert "ucaptcha/abandoned" not in worker_stats
            assert "ucaptcha/gave_up" not in worker_stats
            assert "ucaptcha/recovered" not in worker_stats


@pytest.mark.parametrize("stop", ["graceful", "kill"])
@deferred_f_from_coro_f
async def test_a_worker_stopped_mid_solve_loses_no_challenged_page(
    tmp_path: Path, stop: str
) -> None:
    async with cluster(tmp_path) as running:
        guarded = challenged(running)
        held = running.env.sim.add_fault(Fault(kind="stuck"))
        first = await running.start_worker("a")
        second = await running.start_worker("b")
        sim = running.env.sim

        def all_parked() -> bool:
            parked = [first.parked(), second.parked()]
            return sum(parked) == len(guarded) and len(sim.tasks) == sum(
                min(n, SLOTS) for n in parked
            )

        await until(all_parked, "every challenged page parked, every task slot taken")
        await until(lambda: running.delivered() == PAGES - len(guarded), "plain pages")
        # stop the worker holding the most
        victim, survivor = (first, second) if first.parked() >= second.parked() else (second, first)
        lost_with_victim = victim.parked()
        victim_tasks = min(lost_with_victim, SLOTS)
        if stop == "graceful":
            await victim.stop()
        else:
            await victim.kill()
        sim.remove_fault(held)
        sim.release()  # the survivor's tasks are solved; the victim's are paid for, unused
        await until(lambda: running.delivered() == PAGES, "every page delivered")
        await survivor.stop()

        assert_each_delivered_once(running)
        survived = survivor.stats()
        assert survived["ucaptcha/recovered"] == lost_with_victim
        assert "ucaptcha/abandoned" not in survived
        assert "ucaptcha/gave_up" not in survived
        # the victim's requests were solved afresh: one more task for each of its parked pages
        # that had one
        assert len(sim.tasks) == len(guarded) + victim_tasks
        if stop == "graceful":
            stopped = victim.stats()
            assert stopped["ucaptcha/released"] == lost_with_victim
            assert stopped["ucaptcha/tasks/abandoned"] == victim_tasks
            assert "ucaptcha/abandoned" not in stopped


PRICE = 0.0045  # the simulator's price of a reCAPTCHA v2 task


@deferred_f_from_coro_f
async def test_the_budget_is_shared_by_the_workers(tmp_path: Path) -> None:
    budget = 4 * PRICE
    async with cluster(tmp_path, UCAPTCHA_BUDGET=budget) as running:
        guarded = challenged(running)
        first = await running.start_worker("a")
        second = await running.start_worker("b")

        def settled() -> bool:
            ended = running.deliveries()
            return all(w.process.returncode is not None for w in running.workers) or all(
                p in ended for p in guarded
            )

        await until(settled, "both workers stopped by the budget, or every page ended")
        await running.stop_all()
        charged = running.env.sim.charged()
        # the budget holds for both together (each alone could spend all of it: 8 tasks)
        assert charged <= budget + 1e-9
        assert len(running.env.sim.tasks) <= 4
        stats = [first.stats(), second.stats()]
        spent = sum(s.get("ucaptcha/cost_usd", 0.0) for s in stats)
        assert spent == pytest.approx(charged)
        assert len(running.env.sim.tasks) < len(guarded)
        for path, ended in running.deliveries().items():
            assert len(ended) == 1, f"{path} ended {len(ended)} times"
            if ended[0]["event"] == "error":
                assert ended[0]["code"] == "budget_exhausted"
        print(  # the figure for the README (pytest -s)
            f"budget ${budget:.4f}: charged ${charged:.4f} for {len(running.env.sim.tasks)} "
            f"task(s), overshoot ${max(0.0, charged - budget):.4f}"
        )


ZONE = [f"/zone/{n}" for n in range(1, 6)]


@deferred_f_from_coro_f
async def test_a_worker_leading_a_group_claims_it_again_and_no_other_worker_can() -> None:
    """Two requests of one worker challenged at once both claim the group before either joined
    it in the worker; the claim answered second (or first) must say "you lead", not "another
    worker does", or both requests follow a solve that nobody runs until the lock expires."""
    group = (f"{HOST}/zone/*", HOST)
    async with redis_server() as url:
        shared = SharedState.from_url(url, "crawl", lease_time=8.0)
        try:
            assert await shared.claim(group, "worker-a")
            assert await shared.claim(group, "worker-a")  # its second request: it leads
            assert not await shared.claim(group, "worker-b")
            assert (await shared.clearance(group)).solving
            assert await shared.publish(group, ["cf_clearance=1"], "worker-a") == 1
            assert await shared.claim(group, "worker-b")  # the lead ended: the next solve
            assert not await shared.claim(group, "worker-a")
        finally:
            await shared.close()


@deferred_f_from_coro_f
async def test_a_lead_taken_over_is_not_ended_by_the_worker_that_lost_it() -> None:
    """A worker whose lock expired (it missed its renewals) and another worker took over: its
    late publish or abandon must leave the new leader's lock, or a third worker solves too."""
    group = (f"{HOST}/zone/*", HOST)
    async with redis_server() as url:
        shared = SharedState.from_url(url, "crawl", lease_time=8.0)
        try:
            assert await shared.claim(group, "worker-a")
            await shared.redis.delete(shared._scope_keys(group)[1])  # its lock expires
            assert await shared.claim(group, "worker-b")
            assert not await shared.abandon(group, "worker-a")
            assert await shared.publish(group, ["cf_clearance=a"], "worker-a") == 1
            assert not await shared.claim(group, "worker-c")  # worker-b still leads
            assert (await shared.clearance(group)).solving
            assert await shared.abandon(group, "worker-b")
            assert await shared.claim(group, "worker-c")
        finally:
            await shared.close()


@deferred_f_from_coro_f
async def test_a_domain_scope_clearance_is_solved_once_for_the_whole_crawl(tmp_path: Path) -> None:
    zone = {f"{HOST}/zone/*": {"scope": "domain"}}
    async with cluster(tmp_path, UCAPTCHA_TASKS=zone) as running:
        running.paths = ZONE
        sim = running.env.sim
        held = sim.add_fault(Fault(kind="stuck"))
        # each worker its own queue (the rest shared), so that which worker meets which zone page
        # is decided by the test: the first leads the solve, the second only follows it
        first = await running.start_worker(
            "a", ZONE[:2], SCHEDULER_QUEUE_KEY="%(spider)s:requests:a"
        )
        await until(lambda: first.parked() == 2 and len(sim.tasks) == 1, "the first worker leads")
        second = await running.start_worker(
            "b", ZONE[2:], SCHEDULER_QUEUE_KEY="%(spider)s:requests:b"
        )
        await until(lambda: second.parked() == 3, "the second worker's pages follow")
        assert len(sim.tasks) == 1
        sim.remove_fault(held)
        sim.release()
        await until(lambda: running.delivered() == len(ZONE), "every zone page delivered")
        await running.stop_all()
        assert_each_delivered_once(running)
        assert len(sim.tasks) == 1
        led, followed = first.stats(), second.stats()
        assert led["ucaptcha/tasks/created"] == 1
        assert "ucaptcha/tasks/created" not in followed
        assert followed["ucaptcha/shared"] == 3
        assert "ucaptcha/abandoned" not in led
        assert "ucaptcha/abandoned" not in followed
