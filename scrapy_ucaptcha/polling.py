"""When to poll a task: a schedule placed on the solve times of its type.

Each task type's solve times are modelled as log-normal. Before any solve is seen the model is a
prior expressed in poll intervals (``UCAPTCHA_POLL_INTERVAL`` is meant to be about a third of a
typical solve, so a reCAPTCHA's prior median is three intervals), or the seconds the user set in
``UCAPTCHA_SOLVE_TIME_PRIOR``; every solve seen moves it, the prior weighing as
:data:`PRIOR_WEIGHT` solves. The first poll comes when :data:`FIRST_QUANTILE` of the tasks of the
type are done; polls then follow every :data:`DENSE_GAP` intervals while most of the remaining
tasks finish (until the :data:`DENSE_UNTIL` quantile), then every interval. With log-normal solves
(sigma 0.5) that is about 2.0 getTaskResult calls per task and a median lag of about three
quarters of an interval (see benchmarks/README.md).

With webhook callbacks the callback wakes the poll; the schedule is then only a safety net for
callbacks that never come: the first poll once nearly every task of the type is done
(:data:`CALLBACK_QUANTILE`, plus one interval), then every interval.

``UCAPTCHA_FIRST_POLL`` pins the first poll; polls then come every interval.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from statistics import NormalDist

from scrapy_ucaptcha.planner import kind_for_task_type

__all__ = ["PollPlanner", "PollSchedule", "SolveTimes", "prior_intervals"]

#: Prior median solve time, in poll intervals, by what the task type asks for.
PRIOR_INTERVALS: Mapping[str, float] = {"image": 1.5, "token": 3.0}
#: The prior's log-normal sigma and its weight, in solves.
PRIOR_SIGMA = 0.5
PRIOR_WEIGHT = 4
#: How many of the latest solves of a type the model keeps.
WINDOW = 50
FIRST_QUANTILE = 0.65
DENSE_UNTIL = 0.95
DENSE_GAP = 0.7
CALLBACK_QUANTILE = 0.995
#: Solve times are read as at least this (an instant solve has no logarithm).
MIN_SOLVE = 0.01
_SIGMA_RANGE = (0.1, 1.5)
_NORMAL = NormalDist()


def prior_intervals(task_type: str) -> float:
    """The default prior median of ``task_type``, in poll intervals."""
    return PRIOR_INTERVALS["image" if kind_for_task_type(task_type) == "image" else "token"]


class SolveTimes:
    """The solve times of one task type: a log-normal fitted to a prior and the latest solves."""

    def __init__(self, prior_median: float) -> None:
        self._prior_log = math.log(max(prior_median, MIN_SOLVE))
        self._logs: deque[float] = deque(maxlen=WINDOW)

    def add(self, seconds: float) -> None:
        self._logs.append(math.log(max(seconds, MIN_SOLVE)))

    def __len__(self) -> int:
        return len(self._logs)

    def fit(self) -> tuple[float, float]:
        """The log-normal's ``(mu, sigma)``: the prior and the solves seen, weighed together."""
        weight = PRIOR_WEIGHT + len(self._logs)
        mu = (PRIOR_WEIGHT * self._prior_log + sum(self._logs)) / weight
        spread = PRIOR_WEIGHT * (PRIOR_SIGMA**2 + (self._prior_log - mu) ** 2)
        spread += sum((x - mu) ** 2 for x in self._logs)
        sigma = math.sqrt(spread / weight)
        return mu, min(max(sigma, _SIGMA_RANGE[0]), _SIGMA_RANGE[1])

    def quantile(self, q: float) -> float:
        """Seconds by which a share ``q`` of the tasks of this type are solved."""
        mu, sigma = self.fit()
        return math.exp(mu + sigma * _NORMAL.inv_cdf(q))


@dataclass(frozen=True)
class PollSchedule:
    """When to poll one task, in seconds since it was created."""

    first: float
    interval: float
    dense_gap: float
    dense_until: float

    def next_after(self, elapsed: float) -> float:
        """The first poll time later than ``elapsed`` (the first poll itself at the start)."""
        if elapsed < self.first:
            return self.first
        base = self.first
        if self.dense_gap > 0 and self.dense_until > self.first:
            last_dense = base + _steps(self.dense_until - base, self.dense_gap) * self.dense_gap
            if elapsed < last_dense:
                return base + (_steps(elapsed - base, self.dense_gap) + 1) * self.dense_gap
            base = last_dense
        return base + (_steps(elapsed - base, self.interval) + 1) * self.interval


class PollPlanner:
    """Poll schedules for a crawl's tasks, learning each type's solve times as they are seen."""

    def __init__(
        self,
        *,
        interval: float,
        first_poll: float | None = None,
        priors: Mapping[str, float] | None = None,
        callbacks: bool = False,
    ) -> None:
        self.interval = interval
        self.first_poll = first_poll
        self.callbacks = callbacks
        self._priors = dict(priors or {})
        self._times: dict[str, SolveTimes] = {}

    def times(self, task_type: str) -> SolveTimes:
        times = self._times.get(task_type)
        if times is None:
            prior = self._priors.get(task_type)
            if prior is None:
                prior = prior_intervals(task_type) * self.interval
            times = self._times[task_type] = SolveTimes(prior)
        return times

    def observe(self, task_type: str, seconds: float) -> None:
        """A task of ``task_type`` was solved in ``seconds``."""
        self.times(task_type).add(seconds)

    def schedule(self, task_type: str) -> PollSchedule:
        """The schedule of a task of ``task_type`` created now."""
        interval = self.interval
        if self.first_poll is not None:
            return PollSchedule(self.first_poll, interval, 0.0, self.first_poll)
        times = self.times(task_type)
        if self.callbacks:
            first = times.quantile(CALLBACK_QUANTILE) + interval
            return PollSchedule(first, interval, 0.0, first)
        first = times.quantile(FIRST_QUANTILE)
        return PollSchedule(first, interval, DENSE_GAP * interval, times.quantile(DENSE_UNTIL))


def _steps(span: float, step: float) -> int:
    """Whole ``step``s in ``span``, a rounding error short of the next one counted as reached."""
    return math.floor(span / step + 1e-9)
