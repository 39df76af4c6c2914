"""Scenario 5, scale: a long crawl with a share of challenged pages, its memory sampled throughout.

The crawl keeps a bounded number of requests parked at any time (the challenges of the last few
seconds), so its memory should level off once the crawl is under way, however long it runs. The
crawl process samples its RSS every ``RSS_EVERY`` seconds; the figures compare the RSS at the end
with the RSS half-way through, for scrapy-ucaptcha and for the same crawl without the middleware
(whose growth is Scrapy's own: the dupefilter's fingerprints, the stats).
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import Params, ScenarioResult, crawl, log, servers, summary
from benchmarks.figures import median

NAME = "5 scale"
VARIANTS = ("ucaptcha", "none")
RSS_EVERY = 1.0
#: Memory is flat if the RSS at the end is at most this much above the RSS half-way through.
FLAT = 1.10


def run(params: Params) -> ScenarioResult:
    pages, poll = params.scale_pages, params.effective_poll
    result = ScenarioResult(
        NAME,
        {
            "pages": pages,
            "challenge_share": params.challenge_share,
            "solve_time": params.solve_spec,
            "poll_interval_s": poll,
            "rss_sampled_every_s": RSS_EVERY,
        },
    )
    settings: dict[str, Any] = {
        "CONCURRENT_REQUESTS": params.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": params.concurrency,
        "UCAPTCHA_POLL_INTERVAL": poll,
        "BENCH_RSS_EVERY": RSS_EVERY,
    }
    with servers(
        pages=pages,
        challenge_share=params.challenge_share,
        seed=params.seed,
        solve_time=params.solve_spec,
    ) as (site, sim):
        for variant in VARIANTS if params.scale_without else VARIANTS[:1]:
            raw = crawl(site, sim, pages=pages, variant=variant, settings=settings)
            figures = summary(raw)
            figures.update(rss_growth(raw.get("rss_samples", [])))
            figures["solved"] = raw.get("stats", {}).get("ucaptcha/solved")
            result.runs.append(figures)
            log(
                f"  scale {variant:8}: {figures['items']} items in {figures['duration_s']:.1f} s, "
                f"RSS half-way {figures['rss_half_kb']} kB, end {figures['rss_end_kb']} kB"
            )
    figures_of(result)
    return result


def rss_growth(samples: list[list[float]]) -> dict[str, Any]:
    """RSS at a quarter, half and the end of the crawl (by items scraped), and the peak."""
    if not samples:
        return {
            "rss_quarter_kb": None,
            "rss_half_kb": None,
            "rss_end_kb": None,
            "rss_peak_kb": None,
        }
    total = samples[-1][1] or 1

    def at(share: float) -> int:
        return int(next(rss for _, items, rss in samples if items >= share * total))

    return {
        "rss_quarter_kb": at(0.25),
        "rss_half_kb": at(0.5),
        "rss_end_kb": int(samples[-1][2]),
        "rss_peak_kb": int(max(rss for _, _, rss in samples)),
        "rss_samples": len(samples),
    }


def figures_of(result: ScenarioResult) -> None:
    def of(variant: str, name: str) -> Any:
        return median(r.get(name) for r in result.runs if r["variant"] == variant)

    growth = {}
    for variant in VARIANTS:
        half, end = of(variant, "rss_half_kb"), of(variant, "rss_end_kb")
        growth[variant] = end / half if half and end else None
    items = of("ucaptcha", "items")
    result.figures.update(
        {
            "items": items,
            "solved": of("ucaptcha", "solved"),
            "crawl_time_s": of("ucaptcha", "duration_s"),
            "rss_half_kb": of("ucaptcha", "rss_half_kb"),
            "rss_end_kb": of("ucaptcha", "rss_end_kb"),
            "rss_peak_kb": of("ucaptcha", "rss_peak_kb"),
            "rss_end_over_half": growth["ucaptcha"],
            "rss_end_over_half_without": growth["none"],
        }
    )
    result.row("items scraped (ours)", items)
    result.row("challenged pages solved (ours)", result.figures["solved"])
    result.row("crawl time (ours)", result.figures["crawl_time_s"], "s")
    for key, label in (("rss_half_kb", "RSS half-way"), ("rss_end_kb", "RSS at the end")):
        value = result.figures[key]
        result.row(f"{label} (ours)", value / 1024 if value else None, "MB")
    result.goal("RSS at the end / half-way (ours)", growth["ucaptcha"], FLAT)
    result.row("RSS at the end / half-way (without the middleware)", growth["none"])
