"""Scenario 4, memory: peak RSS with N parked requests against the same N requests merely kept.

Every item page is challenged and the simulator's tasks never finish (a ``stuck`` fault), so each
challenged request stays parked (``UCAPTCHA_MAX_CONCURRENT_TASKS`` of them with a task, the rest
waiting for a task slot, parked as well). The baseline crawl fetches the same pages with
:class:`~benchmarks.project.instrument.Holder` instead of the middleware: it keeps each challenged
``Request`` alive and nothing else. Both crawls measure once N requests are held, then close. The
difference is what parking costs beyond the request itself.
"""

from __future__ import annotations

from benchmarks.common import Params, ScenarioResult, crawl, log, servers, summary
from benchmarks.figures import median
from benchmarks.project.instrument import CLOSE_GRACE
from benchmarks.servers import Server, control

NAME = "4 memory"
VARIANTS = ("ucaptcha", "holder")  # A (parked), B (held only)


def _stuck(sim: Server) -> None:
    control(sim, "faults", {"kind": "stuck"})


def run(params: Params) -> ScenarioResult:
    parked = params.parked
    result = ScenarioResult(NAME, {"parked": parked, "concurrency": params.concurrency})
    settings = {
        "CONCURRENT_REQUESTS": params.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": params.concurrency,
        "UCAPTCHA_POLL_INTERVAL": params.effective_poll,
        "BENCH_PARK_TARGET": parked,
    }
    with servers(pages=parked, challenge_share=1.0, seed=params.seed, faults=_stuck) as (site, sim):
        for round_ in range(params.runs):
            for variant in VARIANTS:
                raw = crawl(
                    site, sim, pages=parked, variant=variant, settings=settings, mode="items"
                )
                figures = summary(raw)
                figures.update(round=round_ + 1, **raw.get("memory", {}))
                result.runs.append(figures)
                log(
                    f"  memory run {round_ + 1}/{params.runs} {variant:8}: "
                    f"{figures.get('held')} held, peak RSS {figures.get('peak_rss_kb')} kB, "
                    f"{figures['reason']}"
                )
    figures_of(result, parked)
    return result


def figures_of(result: ScenarioResult, parked: int) -> None:
    def med(variant: str, name: str) -> float | None:
        return median(r.get(name) for r in result.runs if r["variant"] == variant)

    peak_a, peak_b = med("ucaptcha", "peak_rss_kb"), med("holder", "peak_rss_kb")
    rss_a, rss_b = med("ucaptcha", "rss_kb"), med("holder", "rss_kb")
    per = (peak_a - peak_b) / parked if peak_a is not None and peak_b is not None else None
    per_rss = (rss_a - rss_b) / parked if rss_a is not None and rss_b is not None else None
    held = med("ucaptcha", "held")
    hung = sum(1 for r in result.runs if r.get("reason") == "close_hung")
    result.figures.update(
        {
            "peak_rss_parked_kb": peak_a,
            "peak_rss_held_kb": peak_b,
            "rss_parked_kb": rss_a,
            "rss_held_kb": rss_b,
            "kb_per_parked_request": per,
            "kb_per_parked_request_rss": per_rss,
            "held": held,
            "rss_at_open_kb": med("ucaptcha", "rss_kb_at_open"),
            "crawls_that_did_not_close": hung,
        }
    )
    result.row("requests parked (ours) / held (baseline)", held)
    result.row("peak RSS, parked", peak_a / 1024 if peak_a else None, "MB")
    result.row("peak RSS, baseline (requests held only)", peak_b / 1024 if peak_b else None, "MB")
    result.goal("peak RSS per parked request beyond the request", per, 2.0, unit="KB")
    result.row("RSS at that moment, per parked request", per_rss, "KB")
    result.row(
        f"crawls not closed {CLOSE_GRACE:g} s after the measure (of {len(result.runs)})", hung
    )
