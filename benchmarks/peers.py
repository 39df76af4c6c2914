"""Scenario 2b, peers: scrapy-ucaptcha next to what users run instead, side by side in one run.

The same catalogue as scenario 2 (smaller: the synchronous SDK solves one challenge at a time),
crawled by scrapy-ucaptcha, by the await-in-``process_response`` reference and by the two
2captcha-python variants of :mod:`benchmarks.project.peers`, each with log-normal and instant
solves; extra time = the difference. The SDKs reach the simulator's 2captcha legacy API through
a TLS front (they speak only https), trusting its certificate through ``REQUESTS_CA_BUNDLE`` and
``SSL_CERT_FILE``. Their ``pollingInterval`` is the SDK's default of 10 s scaled like
``UCAPTCHA_POLL_INTERVAL`` to the simulator's solve times, in whole seconds as the SDK takes it.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import (
    REAL_SOLVE_MEDIAN,
    Params,
    ScenarioResult,
    crawl,
    log,
    servers,
    summary,
)
from benchmarks.figures import median
from benchmarks.servers import Server, control, fetch, start_tls_front
from benchmarks.tls_front import make_certificate
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

NAME = "2b peers"
SDK_POLL_DEFAULT = 10.0  # 2captcha-python's pollingInterval
#: (key, BENCH_VARIANT, what it is)
VARIANTS = (
    ("ours", "ucaptcha", "scrapy-ucaptcha"),
    ("reference", "reference", "reference: our solver awaited in process_response"),
    (
        "sdk_async",
        "twocaptcha_async",
        "2captcha-python AsyncTwoCaptcha awaited in process_response",
    ),
    ("sdk_sync", "twocaptcha_sync", "2captcha-python TwoCaptcha (blocking) in process_response"),
)
INSTANT = "fixed:0"


def sdk_available() -> bool:
    return importlib.util.find_spec("twocaptcha") is not None


def legacy_api(sim: Server) -> bool:
    """Whether the simulator serves the 2captcha legacy API the SDK speaks."""
    try:
        body, _ = fetch(f"{sim.url}/res.php?key={DEFAULT_API_KEY}&action=getbalance")
    except OSError:
        return False
    return body[:1].isdigit()


def run(params: Params) -> ScenarioResult:
    pages, poll = params.peer_pages, params.effective_poll
    sdk_poll = max(1, round(SDK_POLL_DEFAULT * params.solve_median / REAL_SOLVE_MEDIAN))
    result = ScenarioResult(
        NAME,
        {
            "pages": pages,
            "challenge_share": params.challenge_share,
            "solve_time": params.solve_spec,
            "poll_interval_s": poll,
            "sdk_polling_interval_s": sdk_poll,
            "runs": params.peer_runs,
        },
    )
    variants = list(VARIANTS)
    base: dict[str, Any] = {
        "CONCURRENT_REQUESTS": params.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": params.concurrency,
        "UCAPTCHA_POLL_INTERVAL": poll,
        "BENCH_PEER_POLL": sdk_poll,
    }
    with (
        tempfile.TemporaryDirectory(prefix="ucaptcha-bench-tls-") as folder,
        servers(pages=pages, challenge_share=params.challenge_share, seed=params.seed) as (
            site,
            sim,
        ),
    ):
        if not sdk_available():
            log("  2captcha-python is not installed (pip install -e '.[bench]'): SDKs skipped")
            variants = [v for v in variants if not v[0].startswith("sdk_")]
        elif not legacy_api(sim):
            log("  the simulator serves no 2captcha legacy API: SDKs skipped")
            variants = [v for v in variants if not v[0].startswith("sdk_")]
        cert, key = make_certificate(Path(folder))
        front = start_tls_front(sim, cert, key)
        env = {"REQUESTS_CA_BUNDLE": str(cert), "SSL_CERT_FILE": str(cert)}
        base["BENCH_PEER_SERVER"] = front.url
        try:
            for round_ in range(params.peer_runs):
                for key_, variant, _ in variants:
                    for slow in (True, False):
                        spec = params.solve_spec if slow else INSTANT
                        control(sim, "config", {"solve_time": {"*": spec}, "seed": params.seed})
                        raw = crawl(site, sim, pages=pages, variant=variant, settings=base, env=env)
                        figures = summary(raw)
                        figures.update(key=key_, slow=slow, round=round_ + 1)
                        result.runs.append(figures)
                        log(
                            f"  peers run {round_ + 1}/{params.peer_runs} {key_:9} "
                            f"{'log-normal' if slow else 'instant':10}: "
                            f"{figures['duration_s']:.2f} s, {figures['items']} items, "
                            f"{figures['solved_items']} solved"
                        )
        finally:
            front.stop()
    figures_of(result, variants)
    return result


def figures_of(result: ScenarioResult, variants: list[tuple[str, str, str]]) -> None:
    def of(key: str, slow: bool, name: str = "duration_s") -> Any:
        return median(r.get(name) for r in result.runs if r["key"] == key and r["slow"] == slow)

    extra: dict[str, float | None] = {}
    for key, _, label in variants:
        slow, instant = of(key, True), of(key, False)
        extra[key] = slow - instant if slow is not None and instant is not None else None
        result.figures[key] = {
            "crawl_time_lognormal_s": slow,
            "crawl_time_instant_s": instant,
            "extra_time_s": extra[key],
            "solved_items": of(key, True, "solved_items"),
        }
        result.row(f"crawl time, {label}", slow, "s")
        result.row("  extra time over its instant-solve crawl", extra[key], "s")
        result.row("  challenged pages delivered", of(key, True, "solved_items"))
    ours, ours_time = extra.get("ours"), of("ours", True)
    for key, _, _label in variants:
        other, other_time = extra.get(key), of(key, True)
        if key == "ours":
            continue
        if ours_time and other_time is not None:
            result.figures[key]["crawl_time_over_ours"] = other_time / ours_time
            result.row(f"crawl time {key} / ours (log-normal solves)", other_time / ours_time)
        # the ratio of extra times means something only when ours is above the noise
        if ours is not None and ours > 0 and other is not None:
            result.figures[key]["extra_time_over_ours"] = other / ours
            result.row(f"extra time {key} / ours", other / ours)
