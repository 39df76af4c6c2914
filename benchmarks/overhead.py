"""Scenario 1, overhead: unchallenged pages with the middleware enabled and not enabled."""

from __future__ import annotations

from typing import Any

from benchmarks.common import Params, ScenarioResult, crawl, log, servers, summary
from benchmarks.figures import median

NAME = "1 overhead"
VARIANTS = ("ucaptcha", "none")  # A, B
MICRO_KEYS = (
    "detect_us/item",
    "detect_us/list",
    "process_request_us/item",
    "process_response_us/item",
    "process_response_us/list",
)


def run(params: Params) -> ScenarioResult:
    pages = params.overhead_pages
    result = ScenarioResult(
        NAME,
        {
            "pages": pages,
            "challenge_share": 0.0,
            "concurrency": params.concurrency,
            "runs": params.overhead_runs or params.runs,
        },
    )
    settings: dict[str, Any] = {
        "CONCURRENT_REQUESTS": params.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": params.concurrency,
    }
    with servers(pages=pages, challenge_share=0.0, seed=params.seed) as (site, sim):
        if params.warmup:
            crawl(site, sim, pages=min(pages, 500), variant="none", settings=settings)
        runs = params.overhead_runs or params.runs
        for round_ in range(runs):
            for variant in VARIANTS:
                raw = crawl(
                    site,
                    sim,
                    pages=pages,
                    variant=variant,
                    settings={**settings, "BENCH_MICRO": variant == "ucaptcha"},
                )
                run_figures = summary(raw)
                run_figures["round"] = round_ + 1
                run_figures["micro"] = raw.get("micro", {})
                result.runs.append(run_figures)
                log(
                    f"  overhead run {round_ + 1}/{runs} {variant:9}: "
                    f"{run_figures['duration_s']:.2f} s for {run_figures['requests']} requests"
                )
    figures(result)
    return result


def figures(result: ScenarioResult) -> None:
    def durations(variant: str, figure: str = "duration_s") -> list[float]:
        return [r[figure] for r in result.runs if r["variant"] == variant]

    on, off = median(durations("ucaptcha")), median(durations("none"))
    ratio = on / off if on is not None and off else None
    pairs = [a / b for a, b in zip(durations("ucaptcha"), durations("none"), strict=False) if b]
    cpu_on, cpu_off = median(durations("ucaptcha", "cpu_s")), median(durations("none", "cpu_s"))
    cpu_ratio = cpu_on / cpu_off if cpu_on is not None and cpu_off else None
    requests = median(r["requests"] for r in result.runs if r["variant"] == "ucaptcha")
    micro: dict[str, float | None] = {}
    for key in MICRO_KEYS:
        micro[key] = median(r["micro"].get(key) for r in result.runs if r["variant"] == "ucaptcha")
    hooks = (micro["process_request_us/item"], micro["process_response_us/item"])
    per_response = hooks[0] + hooks[1] if hooks[0] is not None and hooks[1] is not None else None
    estimated = (
        per_response * 1e-6 * requests / off
        if per_response is not None and requests is not None and off
        else None
    )
    result.figures.update(
        {
            "crawl_time_on_s": on,
            "crawl_time_off_s": off,
            "ratio": ratio,
            "ratio_per_pair_median": median(pairs),
            "ratios_per_pair": pairs,
            "crawl_cpu_on_s": cpu_on,
            "crawl_cpu_off_s": cpu_off,
            "cpu_ratio": cpu_ratio,
            "requests": requests,
            "pages_per_s_off": requests / off if requests and off else None,
            **micro,
            "estimated_overhead_share": estimated,
        }
    )
    result.row("crawl CPU time (user + sys), middleware enabled (median)", cpu_on, "s")
    result.row("crawl CPU time (user + sys), middleware not enabled (median)", cpu_off, "s")
    result.goal("CPU time ratio enabled / not enabled", cpu_ratio, 1.02)
    result.row("crawl time, middleware enabled (median)", on, "s")
    result.row("crawl time, middleware not enabled (median)", off, "s")
    result.row("wall time ratio enabled / not enabled", ratio)
    result.row("  wall time ratio, median of run pairs", median(pairs))
    result.goal("detect() per plain item page", micro["detect_us/item"], 20.0, unit="µs")
    result.goal("detect() per plain listing page", micro["detect_us/list"], 20.0, unit="µs")
    result.row("process_request + process_response per plain item page", per_response, "µs")
    if estimated is not None:
        result.row("  x requests / crawl time (not enabled)", f"{estimated:.2%}")
