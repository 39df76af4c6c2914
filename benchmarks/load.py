"""Scenarios 2 (captcha load) and 3 (API efficiency): one set of crawls serves both.

Every crawl fetches the same catalogue, a share of whose items sit behind the reCAPTCHA v2
interstitial. A challenged item costs three requests whatever the solve time (the challenge page,
the form post with the token, the redirect back to the item), so each variant that waits for
log-normal solves is compared with the same variant and instant solves: the difference is what
waiting for solves adds to the crawl.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchmarks.common import Params, ScenarioResult, crawl, log, servers, summary
from benchmarks.figures import mean, median
from benchmarks.poll_floor import poll_floor
from benchmarks.servers import Server, control
from scrapy_ucaptcha.config import Config
from scrapy_ucaptcha.stats import percentile

#: UCAPTCHA_MAX_CONCURRENT_TASKS's default
DEFAULT_TASK_CAP = Config.__dataclass_fields__["max_concurrent_tasks"].default
LOAD = "2 captcha load"
API = "3 API efficiency"
INSTANT = "fixed:0"


@dataclass(frozen=True)
class Variant:
    key: str
    middleware: str  # BENCH_VARIANT
    slow: bool  # log-normal solve times (else instant)
    small_cap: bool = False  # UCAPTCHA_MAX_CONCURRENT_TASKS = Params.cap_variant
    callbacks: bool = False  # UCAPTCHA_CALLBACK_URL on a loopback listener


#: The simulator calls back on loopback (uCaptcha itself would not); ``{port}`` is the listener's.
CALLBACK_SETTINGS = {
    "UCAPTCHA_CALLBACK_URL": "http://127.0.0.1:{port}/ucaptcha/callback",
    "UCAPTCHA_CALLBACK_LISTEN": "127.0.0.1:0",
}

VARIANTS = (
    Variant("ours_lognormal", "ucaptcha", slow=True),
    Variant("ours_instant", "ucaptcha", slow=False),
    Variant("ours_callbacks_lognormal", "ucaptcha", slow=True, callbacks=True),
    Variant("reference_lognormal", "reference", slow=True),
    Variant("reference_instant", "reference", slow=False),
    Variant("ours_lognormal_small_cap", "ucaptcha", slow=True, small_cap=True),
)


def run(params: Params) -> list[ScenarioResult]:
    pages, poll = params.load_pages, params.effective_poll
    parameters = {
        "pages": pages,
        "challenge_share": params.challenge_share,
        "concurrency": params.concurrency,
        "solve_time": params.solve_spec,
        "poll_interval_s": poll,
        "max_concurrent_tasks": params.max_tasks or f"default ({DEFAULT_TASK_CAP})",
        "cap_variant": params.cap_variant,
    }
    load, api = ScenarioResult(LOAD, parameters), ScenarioResult(API, parameters)
    base: dict[str, Any] = {
        "CONCURRENT_REQUESTS": params.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": params.concurrency,
        "UCAPTCHA_POLL_INTERVAL": poll,
    }
    variants = [v for v in VARIANTS if not v.small_cap or params.cap_variant is not None]
    with servers(pages=pages, challenge_share=params.challenge_share, seed=params.seed) as (
        site,
        sim,
    ):
        if params.warmup:
            crawl(site, sim, pages=min(pages, 500), variant="ucaptcha", settings=base)
        for round_ in range(params.runs):
            for variant in variants:
                settings = dict(base)
                cap = params.cap_variant if variant.small_cap else params.max_tasks
                if cap is not None:
                    settings["UCAPTCHA_MAX_CONCURRENT_TASKS"] = cap
                if variant.callbacks:
                    settings.update(CALLBACK_SETTINGS)
                spec = params.solve_spec if variant.slow else INSTANT
                control(sim, "config", {"solve_time": {"*": spec}, "seed": params.seed + round_})
                control(sim, "calls", method="DELETE")
                raw = crawl(site, sim, pages=pages, variant=variant.middleware, settings=settings)
                figures = summary(raw)
                figures.update(key=variant.key, round=round_ + 1, **api_figures(sim, raw, poll))
                load.runs.append(figures)
                log(
                    f"  load run {round_ + 1}/{params.runs} {variant.key:24}: "
                    f"{figures['duration_s']:.2f} s, tail {figures['tail_s'] or 0:.2f} s, "
                    f"{figures['tasks']} tasks, {figures['polls_per_task'] or 0:.2f} polls/task, "
                    f"lag p50 {figures['lag_p50_s'] or 0:.3f} s"
                )
    api.runs = load.runs
    load_figures(load, poll, params.cap_variant)
    api_goals(api)
    return [load, api]


def api_figures(sim: Server, raw: dict[str, Any], poll: float) -> dict[str, Any]:
    """Per-task figures of one crawl, from the simulator's records and the crawl's form posts."""
    opened, closed = raw["opened"], raw["closed"]
    tasks = [t for t in control(sim, "tasks") if opened <= t["created_at"] <= closed]
    calls = control(sim, "calls")
    last_poll: dict[str, float] = {}
    for call in calls:
        if call["endpoint"] == "getTaskResult" and call["task_id"]:
            last_poll[call["task_id"]] = max(last_poll.get(call["task_id"], 0.0), call["time"])
    posts: dict[str, float] = raw.get("token_posts", {})
    lags, poller_lags, reissue_lags, solve_times, polls = [], [], [], [], []
    start = raw.get("first_request") or opened
    # A challenged page can be delivered no sooner than its own solve after it was first seen
    # (its task's creation): the latest of these, from the crawl's first request.
    bound = max((t["created_at"] + t["solve_time"] - start for t in tasks), default=None)
    last: dict[str, Any] | None = None  # the task whose token went out last
    for task in tasks:
        polls.append(task["polls"])
        solve_times.append(task["solve_time"])
        solution = task.get("solution") or {}
        token = solution.get("gRecaptchaResponse") or solution.get("token")
        ready = task.get("ready_at")
        if ready is None or token not in posts:
            continue
        lags.append(posts[token] - ready)
        if last is None or posts[token] > last["post"]:
            last = {
                "created": task["created_at"],
                "solve_s": task["solve_time"],
                "ready": ready,
                "post": posts[token],
            }
        if task["id"] in last_poll:
            poller_lags.append(last_poll[task["id"]] - ready)
            reissue_lags.append(posts[token] - last_poll[task["id"]])
    by_creation = [t["polls"] for t in sorted(tasks, key=lambda t: t["created_at"])]
    early, late = by_creation[: len(by_creation) // 2], by_creation[len(by_creation) // 2 :]
    floor = poll_floor(solve_times, poll)
    if last is not None:  # times from the first request of the crawl
        last = {k: v - start if k != "solve_s" else v for k, v in last.items()}
    return {
        "tasks": len(tasks),
        "solved_bound_s": bound,
        "last_task": last,
        "tasks_matched": len(lags),
        "polls_per_task": mean(polls),
        # by order of creation: the first half includes the tasks created before any solve was
        # seen, which the solver polls at the poll interval
        "polls_per_task_first_half": mean(early),
        "polls_per_task_second_half": mean(late),
        "polls_max": max(polls, default=None),
        "solve_p50_s": percentile(sorted(solve_times), 50),
        "solve_p95_s": percentile(sorted(solve_times), 95),
        "lag_p50_s": percentile(sorted(lags), 50),
        "lag_p95_s": percentile(sorted(lags), 95),
        "lag_max_s": max(lags, default=None),
        "poller_lag_p50_s": percentile(sorted(poller_lags), 50),
        "poller_lag_floor_p50_s": floor.lag_p50_s if floor else None,
        "poller_lag_floor_calls": floor.calls_per_task if floor else None,
        "reissue_lag_p50_s": percentile(sorted(reissue_lags), 50),
        "get_task_result_calls": sum(1 for c in calls if c["endpoint"] == "getTaskResult"),
    }


def _median_of(result: ScenarioResult, key: str, figure: str) -> float | None:
    return median(r[figure] for r in result.runs if r["key"] == key)


def load_figures(result: ScenarioResult, poll: float, cap: int | None) -> None:
    dur = {v.key: _median_of(result, v.key, "duration_s") for v in VARIANTS}
    tail = {v.key: _median_of(result, v.key, "tail_s") for v in VARIANTS}

    def extra(slow: str, instant: str) -> float | None:
        a, b = dur[slow], dur[instant]
        return a - b if a is not None and b is not None else None

    ours = extra("ours_lognormal", "ours_instant")
    reference = extra("reference_lognormal", "reference_instant")
    capped = extra("ours_lognormal_small_cap", "ours_instant")
    p95 = _median_of(result, "ours_lognormal", "solve_p95_s")
    limit = p95 + poll if p95 is not None else None
    ratio = reference / ours if reference is not None and ours else None
    # The physical lower bound of a crawl with solves: it cannot end before its plain pages are
    # fetched (the instant-solve crawl) nor before its last challenged page's own solve is done.
    bounds = [
        max(r["solved_bound_s"], dur["ours_instant"] or 0.0)
        for r in result.runs
        if r["key"] == "ours_lognormal" and r.get("solved_bound_s") is not None
    ]
    durations = [r["duration_s"] for r in result.runs if r["key"] == "ours_lognormal"]
    to_bound = [d / b for d, b in zip(durations, bounds, strict=False) if b]
    bound = median(bounds)
    result.figures.update(
        {
            "crawl_time_s": dur,
            "tail_after_last_plain_page_s": tail,
            "extra_time_ours_s": ours,
            "extra_time_reference_s": reference,
            "extra_time_ours_small_cap_s": capped,
            "extra_time_reference_over_ours": ratio,
            "solve_p95_s": p95,
            "extra_time_limit_s": limit,
            "physical_bound_s": bound,
            "crawl_time_over_physical_bound": median(to_bound),
            "challenges": _median_of(result, "ours_lognormal", "tasks"),
            "requests": _median_of(result, "ours_lognormal", "requests"),
        }
    )
    result.row("challenged pages (tasks per crawl)", result.figures["challenges"])
    result.row("requests per crawl", result.figures["requests"])
    for key, label in (
        ("ours_instant", "ours, instant solves"),
        ("ours_lognormal", "ours, log-normal solves"),
        ("ours_callbacks_lognormal", "ours with callbacks, log-normal solves"),
        ("reference_instant", "reference, instant solves"),
        ("reference_lognormal", "reference, log-normal solves"),
        ("ours_lognormal_small_cap", f"ours, log-normal, task cap {cap}"),
    ):
        if dur[key] is not None:
            result.row(f"crawl time, {label}", dur[key], "s")
    result.row("solve time p95 (simulator, ours log-normal)", p95, "s")
    result.goal("extra time, ours (p95 solve + poll interval)", ours, limit, unit="s")
    result.row("physical bound of the crawl time (median of runs)", bound, "s")
    result.goal("crawl time, ours log-normal / physical bound", median(to_bound), 1.2)
    result.row("extra time, reference (await in process_response)", reference, "s")
    result.goal("extra time reference / ours", ratio, 5.0, op=">=")
    if capped is not None:
        result.row(f"extra time, ours with task cap {cap}", capped, "s")
    result.row("last plain page -> end, ours log-normal", tail["ours_lognormal"], "s")
    result.row("last plain page -> end, ours instant", tail["ours_instant"], "s")
    result.row("last plain page -> end, reference log-normal", tail["reference_lognormal"], "s")


def api_goals(result: ScenarioResult) -> None:
    key = "ours_lognormal"
    names = (
        "polls_per_task",
        "polls_per_task_first_half",
        "polls_per_task_second_half",
        "lag_p50_s",
        "lag_p95_s",
        "poller_lag_p50_s",
        "poller_lag_floor_p50_s",
        "poller_lag_floor_calls",
        "reissue_lag_p50_s",
        "polls_max",
    )
    values = {name: _median_of(result, key, name) for name in names}
    result.figures.update(values)
    result.figures["polls_per_task_reference"] = _median_of(
        result, "reference_lognormal", "polls_per_task"
    )
    result.goal("getTaskResult calls per task (mean)", values["polls_per_task"], 2.0)
    result.row("  tasks created in the first half", values["polls_per_task_first_half"])
    result.row("  tasks created in the second half", values["polls_per_task_second_half"])
    result.goal(
        "poll lag p50 (ready -> re-issued request sent)", values["lag_p50_s"], 0.5, unit="s"
    )
    result.row("poll lag p95", values["lag_p95_s"], "s")
    result.row("  of which ready -> poll that saw it, p50", values["poller_lag_p50_s"], "s")
    result.row(
        "  ready -> poll, best schedule knowing the solve times (<= 2.0 calls/task), p50",
        values["poller_lag_floor_p50_s"],
        "s",
    )
    result.row("  of which that poll -> request sent, p50", values["reissue_lag_p50_s"], "s")
    callbacks = "ours_callbacks_lognormal"
    cb_calls = _median_of(result, callbacks, "polls_per_task")
    cb_lag = _median_of(result, callbacks, "lag_p50_s")
    result.figures.update(callbacks_polls_per_task=cb_calls, callbacks_lag_p50_s=cb_lag)
    result.goal("with callbacks: getTaskResult calls per task", cb_calls, 1.1)
    result.goal("with callbacks: lag p50", cb_lag, 0.1, unit="s")
