"""The poll lag floor of the benchmarks: the best schedule of the poller's shape, knowing the
solve times, within a number of getTaskResult calls per task."""

from __future__ import annotations

import random

from benchmarks.poll_floor import poll_floor
from scrapy_ucaptcha.polling import PollPlanner

INTERVAL = 0.667


def solve_times(count: int, seed: int = 7) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(0.693, 0.5) for _ in range(count)]


def lag_and_calls(times: list[float], planner: PollPlanner) -> tuple[float, float]:
    """The median ready -> poll lag and the calls per task of the poller's own schedule."""
    schedule = planner.schedule("RecaptchaV2TaskProxyless")
    lags, calls = [], 0
    for solve in times:
        poll = schedule.next_after(0.0)
        calls += 1
        while poll < solve:
            poll = schedule.next_after(poll)
            calls += 1
        lags.append(poll - solve)
    lags.sort()
    return lags[len(lags) // 2], calls / len(times)


def test_no_solve_times_have_no_floor() -> None:
    assert poll_floor([], INTERVAL) is None
    assert poll_floor([1.0], 0.0) is None


def test_the_floor_keeps_to_the_calls_it_is_given() -> None:
    times = solve_times(400)
    for max_calls in (1.5, 2.0, 3.0):
        floor = poll_floor(times, INTERVAL, max_calls)
        assert floor is not None
        assert floor.calls_per_task <= max_calls
    tight, loose = poll_floor(times, INTERVAL, 1.5), poll_floor(times, INTERVAL, 3.0)
    assert tight is not None
    assert loose is not None
    assert loose.lag_p50_s < tight.lag_p50_s  # more calls buy less lag


def test_instant_solves_have_a_floor_of_zero() -> None:
    floor = poll_floor([0.0] * 50, INTERVAL)
    assert floor is not None
    assert floor.lag_p50_s == 0.0
    assert floor.calls_per_task == 1.0


def test_the_poller_prior_schedule_is_no_better_than_the_floor() -> None:
    """The floor knows the solve times; the poller's schedule from its prior alone (whose median
    matches these solve times) cannot beat it at no more calls."""
    times = solve_times(400)
    lag, calls = lag_and_calls(times, PollPlanner(interval=INTERVAL))
    floor = poll_floor(times, INTERVAL, max(calls, 1.0))
    assert floor is not None
    assert floor.lag_p50_s <= lag
