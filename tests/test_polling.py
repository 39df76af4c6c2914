"""The poll schedule: a prior in poll intervals, learning from solves, dense polls near the bulk."""

from __future__ import annotations

import itertools
import math
import random
from bisect import bisect_left

import pytest
from scrapy.settings import Settings

from scrapy_ucaptcha.config import Config
from scrapy_ucaptcha.polling import (
    DENSE_GAP,
    PRIOR_WEIGHT,
    WINDOW,
    PollPlanner,
    PollSchedule,
    SolveTimes,
    prior_intervals,
)

RECAPTCHA = "RecaptchaV2TaskProxyless"


def poll_times(schedule: PollSchedule, count: int) -> list[float]:
    times: list[float] = []
    moment = 0.0
    for _ in range(count):
        moment = schedule.next_after(moment)
        times.append(moment)
    return times


def test_prior_is_expressed_in_poll_intervals() -> None:
    assert prior_intervals(RECAPTCHA) == 3.0
    assert prior_intervals("HCaptchaTaskProxyless") == 3.0
    assert prior_intervals("ImageToTextTask") == 1.5
    for interval in (0.5, 5.0):
        planner = PollPlanner(interval=interval)
        times = planner.times(RECAPTCHA)
        assert times.quantile(0.5) == pytest.approx(3 * interval)


def test_schedule_before_any_solve() -> None:
    planner = PollPlanner(interval=5.0)
    schedule = planner.schedule(RECAPTCHA)
    # 65 % of log-normal(15 s, sigma 0.5) solves: 15 * exp(0.5 * 0.3853)
    assert schedule.first == pytest.approx(15 * math.exp(0.5 * 0.38532), rel=1e-3)
    times = poll_times(schedule, 12)
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(times)]
    assert gaps == sorted(gaps), "polls never come closer together later on"
    assert gaps[0] == pytest.approx(DENSE_GAP * 5.0)
    assert gaps[-1] == pytest.approx(5.0)
    assert all(gap in (pytest.approx(DENSE_GAP * 5.0), pytest.approx(5.0)) for gap in gaps)
    assert times[-1] > schedule.dense_until


def test_next_after_is_strictly_later_even_on_a_poll_time() -> None:
    schedule = PollPlanner(interval=0.667).schedule(RECAPTCHA)
    times = poll_times(schedule, 40)
    assert all(b > a for a, b in itertools.pairwise(times))
    # Asked between polls (a callback woke the task), the next scheduled poll comes.
    assert schedule.next_after((times[3] + times[4]) / 2) == pytest.approx(times[4])


def test_solves_seen_move_the_schedule() -> None:
    planner = PollPlanner(interval=5.0)
    before = planner.schedule(RECAPTCHA).first
    for _ in range(WINDOW):
        planner.observe(RECAPTCHA, 40.0)
    after = planner.schedule(RECAPTCHA).first
    assert after > before
    # The prior weighs as PRIOR_WEIGHT solves among the WINDOW latest.
    mu, _ = planner.times(RECAPTCHA).fit()
    expected = (PRIOR_WEIGHT * math.log(15) + WINDOW * math.log(40)) / (PRIOR_WEIGHT + WINDOW)
    assert mu == pytest.approx(expected)
    # Other types keep their prior.
    assert planner.schedule("HCaptchaTaskProxyless").first == pytest.approx(before)


def test_instant_solves_have_a_finite_schedule() -> None:
    times = SolveTimes(prior_median=1.0)
    for _ in range(WINDOW):
        times.add(0.0)
    assert 0 < times.quantile(0.65) < 1.0


def test_user_prior_in_seconds_wins() -> None:
    planner = PollPlanner(interval=5.0, priors={RECAPTCHA: 30.0})
    assert planner.times(RECAPTCHA).quantile(0.5) == pytest.approx(30.0)


def test_first_poll_setting_pins_then_every_interval() -> None:
    schedule = PollPlanner(interval=5.0, first_poll=0.2).schedule(RECAPTCHA)
    assert poll_times(schedule, 4) == pytest.approx([0.2, 5.2, 10.2, 15.2])


def test_with_callbacks_the_schedule_is_a_safety_net() -> None:
    polling = PollPlanner(interval=5.0).schedule(RECAPTCHA)
    safety = PollPlanner(interval=5.0, callbacks=True).schedule(RECAPTCHA)
    assert safety.first > polling.dense_until
    times = poll_times(safety, 3)
    assert times[1] - times[0] == pytest.approx(5.0)


def calls_per_task(schedule: PollSchedule, solves: list[float]) -> float:
    times = poll_times(schedule, 200)
    return sum(bisect_left(times, solve) + 1 for solve in solves) / len(solves)


def test_calls_per_task_from_the_first_task() -> None:
    """Log-normal solves (median three intervals, sigma 0.5), seeded: at most two calls per task
    with the prior alone, and about two over a crawl that learns as its tasks are solved."""
    rng = random.Random(7)
    solves = [rng.lognormvariate(math.log(15), 0.5) for _ in range(3000)]
    planner = PollPlanner(interval=5.0)
    assert calls_per_task(planner.schedule(RECAPTCHA), solves) <= 2.0
    calls = 0
    for solve in solves:
        calls += bisect_left(poll_times(planner.schedule(RECAPTCHA), 200), solve) + 1
        planner.observe(RECAPTCHA, solve)
    assert calls / len(solves) <= 2.05


def test_setting_reaches_the_config() -> None:
    config = Config.from_settings(
        Settings({"UCAPTCHA_API_KEY": "k", "UCAPTCHA_SOLVE_TIME_PRIOR": {RECAPTCHA: 12}})
    )
    assert dict(config.solve_time_prior) == {RECAPTCHA: 12.0}
