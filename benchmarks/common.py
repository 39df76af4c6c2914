"""What every scenario shares: its parameters, its result, the per-crawl summary."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmarks.crawl import run_crawl
from benchmarks.figures import Goal, Row
from benchmarks.servers import Server, start_demo_site, start_simulator

#: UCAPTCHA_POLL_INTERVAL's default, for real solve times (reCAPTCHA: 10-20 s, median about 15 s).
DEFAULT_POLL_INTERVAL = 5.0
REAL_SOLVE_MEDIAN = 15.0


@dataclass(frozen=True)
class Params:
    """Sizes and settings of a benchmark run (the command line)."""

    runs: int = 3
    overhead_runs: int | None = None  # scenario 1 (None: runs); its effect is below its noise
    overhead_pages: int = 5000
    load_pages: int = 2000
    challenge_share: float = 0.2
    concurrency: int = 16
    solve_median: float = 2.0
    solve_sigma: float = 0.5
    poll_interval: float | None = None  # None: scaled from the default, see effective_poll
    max_tasks: int | None = None  # UCAPTCHA_MAX_CONCURRENT_TASKS (None: its default)
    cap_variant: int | None = None  # scenario 2: also crawl with this task cap
    parked: int = 10_000
    scale_pages: int = 100_000
    scale_without: bool = True  # scenario 5 also without the middleware
    peer_pages: int = 400
    peer_runs: int = 1
    seed: int = 1
    warmup: bool = True

    @property
    def solve_spec(self) -> str:
        return f"lognormal:{self.solve_median:g}:{self.solve_sigma:g}"

    @property
    def effective_poll(self) -> float:
        """UCAPTCHA_POLL_INTERVAL for the crawls: the default 5 s scaled to the simulator's solve
        times (median ``solve_median`` instead of a real reCAPTCHA's 15 s), unless given."""
        if self.poll_interval is not None:
            return self.poll_interval
        return round(DEFAULT_POLL_INTERVAL * self.solve_median / REAL_SOLVE_MEDIAN, 3)


@dataclass
class ScenarioResult:
    name: str
    parameters: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    goals: list[Goal] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)

    def row(self, figure: str, value: float | str | None, unit: str = "") -> None:
        self.rows.append(Row(self.name, figure, value, unit))

    def goal(
        self, figure: str, value: float | None, limit: float | None, op: str = "<=", unit: str = ""
    ) -> None:
        goal = Goal(self.name, figure, value, limit, op, unit)
        self.goals.append(goal)
        self.rows.append(Row(self.name, figure, value, unit, goal))

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "figures": self.figures,
            "goals": [goal.to_dict() for goal in self.goals],
            "runs": self.runs,
        }


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextmanager
def servers(
    *,
    pages: int,
    challenge_share: float,
    seed: int,
    solve_time: str = "fixed:0",
    faults: Callable[[Server], None] | None = None,
) -> Iterator[tuple[Server, Server]]:
    """The demo site and the simulator for one scenario, stopped at its end."""
    site = start_demo_site(pages=pages, challenge_share=challenge_share, seed=seed)
    try:
        sim = start_simulator(solve_time=solve_time, seed=seed)
        try:
            if faults is not None:
                faults(sim)
            yield site, sim
        finally:
            sim.stop()
    finally:
        site.stop()


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures of one crawl that every scenario reports."""
    stats = result.get("stats", {})
    first, last = result.get("first_request"), result.get("last_item")
    last_plain = result.get("last_plain_item")
    return {
        "variant": result.get("variant"),
        "reason": result.get("reason"),
        "duration_s": (last - first) if first is not None and last is not None else None,
        "tail_s": (last - last_plain) if last is not None and last_plain is not None else None,
        "process_s": result["closed"] - result["opened"],
        "cpu_s": _difference(result.get("last_item_cpu"), result.get("first_request_cpu")),
        "requests": stats.get("downloader/request_count", 0),
        "items": result.get("items", 0),
        "solved_items": result.get("solved_items", 0),
        "log_errors": result.get("log_errors", []),
    }


def crawl(site: Server, sim: Server, **kwargs: Any) -> dict[str, Any]:
    return run_crawl(site=site.url, simulator=sim.url, **kwargs)


def _difference(end: float | None, start: float | None) -> float | None:
    return end - start if end is not None and start is not None else None
