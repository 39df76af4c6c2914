"""Stats keys in one place, and the recorder that keeps cost and solve-time figures current."""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

__all__ = ["PREFIX", "StatsRecorder", "percentile"]

_Number = TypeVar("_Number", int, float)

PREFIX = "ucaptcha"

CHALLENGES = f"{PREFIX}/challenges"
UNSOLVABLE = f"{PREFIX}/unsolvable"
WIDGETS_IGNORED = f"{PREFIX}/widgets_ignored"
TASKS_CREATED = f"{PREFIX}/tasks/created"
TASKS_READY = f"{PREFIX}/tasks/ready"
TASKS_FAILED = f"{PREFIX}/tasks/failed"
TASKS_TIMEOUT = f"{PREFIX}/tasks/timeout"
TASKS_ABANDONED = f"{PREFIX}/tasks/abandoned"
TASKS_FAILED_CHARGED = f"{PREFIX}/tasks/failed_charged"
POLL_ERRORS = f"{PREFIX}/tasks/poll_errors"
TASKS_ABANDONED_CHARGED = f"{PREFIX}/tasks/abandoned/charged"
SOLVED = f"{PREFIX}/solved"
SHARED = f"{PREFIX}/shared"
GAVE_UP = f"{PREFIX}/gave_up"
REJECTED = f"{PREFIX}/tokens/rejected"
WASTED = f"{PREFIX}/tokens/wasted"
FEEDBACK_INVALID = f"{PREFIX}/feedback/invalid"
FEEDBACK_VALID = f"{PREFIX}/feedback/valid"
FEEDBACK_UNSUPPORTED = f"{PREFIX}/feedback/not_supported"
PRESOLVED = f"{PREFIX}/presolve"
ABANDONED = f"{PREFIX}/abandoned"
KEPT = f"{PREFIX}/kept"
RESUMED = f"{PREFIX}/resumed"
RELEASED = f"{PREFIX}/released"
RECOVERED = f"{PREFIX}/recovered"
LEASES_LOST = f"{PREFIX}/leases_lost"
ERRORS = f"{PREFIX}/errors"
COST = f"{PREFIX}/cost_usd"
COST_SOURCE = f"{PREFIX}/cost_source"
COST_UNREADABLE = f"{PREFIX}/cost_unreadable"
SOLVE_TIME = f"{PREFIX}/solve_time_ms"
API_CALLS = f"{PREFIX}/api_calls"
CALLBACKS_RECEIVED = f"{PREFIX}/callbacks/received"
CALLBACKS_UNKNOWN = f"{PREFIX}/callbacks/unknown"
BALANCE_START = f"{PREFIX}/balance/start"
BALANCE_END = f"{PREFIX}/balance/end"
WAITING = f"{PREFIX}/waiting"
TASKS_IN_FLIGHT = f"{PREFIX}/tasks/in_flight"
IDENTITY_CHANGED = f"{PREFIX}/identity/changed"
COOKIE_WALLS = f"{PREFIX}/cookie_walls"


class StatsRecorder:
    """Writes ``ucaptcha/...`` stats; cost sums and solve-time percentiles stay current."""

    def __init__(self, stats: StatsCollector) -> None:
        self.stats = stats
        self._solve_times: list[int] = []

    def inc(self, key: str, count: int = 1) -> None:
        self.stats.inc_value(key, count)

    def api_call(self, endpoint: str) -> None:
        self.inc(f"{API_CALLS}/{endpoint}")

    def error(self, code: str) -> None:
        self.inc(f"{ERRORS}/{code.lower()}")

    def solve_time(self, ms: int) -> None:
        bisect.insort(self._solve_times, ms)
        times = self._solve_times
        self.stats.set_value(f"{SOLVE_TIME}/min", times[0])
        self.stats.set_value(f"{SOLVE_TIME}/max", times[-1])
        self.stats.set_value(f"{SOLVE_TIME}/mean", round(sum(times) / len(times)))
        self.stats.set_value(f"{SOLVE_TIME}/p50", percentile(times, 50))
        self.stats.set_value(f"{SOLVE_TIME}/p95", percentile(times, 95))

    @property
    def solve_times(self) -> list[int]:
        return list(self._solve_times)


def percentile(ordered: Sequence[_Number], pct: float) -> _Number | None:
    """The nearest-rank percentile of ``ordered`` (ascending): its smallest value with at least
    ``pct`` percent of the values at or below it. No interpolation, so the answer is always one
    of the values: ``pct`` 0 gives the smallest, 100 the largest, 50 of ``[1, 2, 3, 4]`` gives 2.
    ``None`` when there are no values; :class:`ValueError` when ``pct`` is not in [0, 100]."""
    if not 0 <= pct <= 100:
        raise ValueError(f"a percentile is between 0 and 100, got {pct!r}")
    if not ordered:
        return None
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[rank - 1]
