"""``python -m benchmarks``: run the scenarios, print the table, write the JSON file."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import load, memory, overhead, peers, scale
from benchmarks.common import Params, ScenarioResult, log
from benchmarks.crawl import ROOT
from benchmarks.figures import table

SCENARIOS = ("overhead", "load", "peers", "memory", "scale")
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"

#: The target sizes; ``--full`` runs these.
FULL = Params(
    overhead_pages=5000,
    load_pages=2000,
    parked=10_000,
    scale_pages=100_000,
    overhead_runs=7,
    cap_variant=50,
)
#: The default run: smaller, to finish in about ten minutes on 2 cores.
QUICK = Params(
    runs=2,
    overhead_runs=3,
    overhead_pages=2000,
    load_pages=600,
    parked=3000,
    scale_pages=10_000,
    peer_pages=100,
)
#: ``--smoke``: tiny, for CI (well under a minute); its figures mean nothing.
SMOKE = Params(
    runs=1,
    cap_variant=50,
    overhead_pages=150,
    load_pages=100,
    parked=200,
    scale_pages=300,
    peer_pages=50,
    solve_median=0.3,
    warmup=False,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of scrapy-ucaptcha against the demo site and the uCaptcha "
        "simulator, each in its own process on 127.0.0.1; every crawl is a real scrapy crawl.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--full",
        action="store_true",
        help="the target sizes (100,000 pages in scenario 5: about an hour)",
    )
    size.add_argument("--smoke", action="store_true", help="tiny sizes for CI, no timing value")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (load = scenarios 2 and 3)",
    )
    parser.add_argument("--runs", type=int, help="alternating runs per variant (2; 3 with --full)")
    parser.add_argument(
        "--overhead-runs", type=int, help="scenario 1 runs per variant (--runs; 7 with --full)"
    )
    parser.add_argument("--overhead-pages", type=int, help="scenario 1 pages")
    parser.add_argument("--load-pages", type=int, help="scenarios 2-3 pages")
    parser.add_argument(
        "--challenge-share", type=float, help="scenarios 2-3 share challenged (0.2)"
    )
    parser.add_argument("--parked", type=int, help="scenario 4 parked requests")
    parser.add_argument("--scale-pages", type=int, help="scenario 5 pages")
    parser.add_argument(
        "--scale-ours-only",
        action="store_true",
        help="scenario 5 without its crawl without the middleware (half the time)",
    )
    parser.add_argument("--peer-pages", type=int, help="scenario 2b pages")
    parser.add_argument("--peer-runs", type=int, help="scenario 2b runs per variant (1)")
    parser.add_argument("--concurrency", type=int, help="CONCURRENT_REQUESTS (16)")
    parser.add_argument("--solve-median", type=float, help="log-normal solve time median, s (2)")
    parser.add_argument("--solve-sigma", type=float, help="log-normal solve time sigma (0.5)")
    parser.add_argument(
        "--poll-interval",
        type=float,
        help="UCAPTCHA_POLL_INTERVAL (default: 5 s scaled by solve median / 15 s)",
    )
    parser.add_argument(
        "--max-tasks", type=int, help="UCAPTCHA_MAX_CONCURRENT_TASKS in scenario 2 (its default)"
    )
    parser.add_argument("--seed", type=int, help="seed of the demo site and solve times (1)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the unmeasured warm-ups")
    parser.add_argument(
        "--cap-variant",
        type=int,
        help="scenario 2: also crawl with this UCAPTCHA_MAX_CONCURRENT_TASKS (50 with --full)",
    )
    return parser


def params_from(args: argparse.Namespace) -> Params:
    params = SMOKE if args.smoke else FULL if args.full else QUICK
    overrides: dict[str, Any] = {
        name: getattr(args, name)
        for name in (
            "runs",
            "overhead_runs",
            "overhead_pages",
            "load_pages",
            "challenge_share",
            "parked",
            "scale_pages",
            "peer_pages",
            "peer_runs",
            "concurrency",
            "solve_median",
            "solve_sigma",
            "poll_interval",
            "max_tasks",
            "cap_variant",
            "seed",
        )
        if getattr(args, name) is not None
    }
    if args.no_warmup:
        overrides["warmup"] = False
    if args.scale_ours_only:
        overrides["scale_without"] = False
    return replace(params, **overrides)


def machine() -> dict[str, Any]:
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    memory_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        first = meminfo.read_text().splitlines()[0].split()
        memory_kb = int(first[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "scrapy": version("scrapy"),
        "twisted": version("twisted"),
        "scrapy_ucaptcha": version("scrapy-ucaptcha"),
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and whether the package had local changes."""

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
            )
        except OSError:
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "local_changes": git("status", "--porcelain", "--", "scrapy_ucaptcha").splitlines(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A terminated run stops its servers and crawls too (the finally clauses run on SystemExit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    chosen = [name.strip() for name in args.scenarios.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SCENARIOS))
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    params = params_from(args)
    command = "python -m benchmarks " + shlex.join(sys.argv[1:] if argv is None else argv)
    started = time.time()
    log(f"{command.strip()}: {params}")
    results: list[ScenarioResult] = []
    if "overhead" in chosen:
        log("scenario 1: overhead")
        results.append(overhead.run(params))
    if "load" in chosen:
        log("scenarios 2 and 3: captcha load, API efficiency")
        results.extend(load.run(params))
    if "peers" in chosen:
        log("scenario 2b: peers")
        results.append(peers.run(params))
    if "memory" in chosen:
        log("scenario 4: memory")
        results.append(memory.run(params))
    if "scale" in chosen:
        log("scenario 5: scale")
        results.append(scale.run(params))
    elapsed = time.time() - started
    report = {
        "command": command.strip(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "elapsed_s": round(elapsed, 1),
        "smoke": args.smoke,
        "machine": machine(),
        "code": code_version(),
        "parameters": {**asdict(params), "poll_interval_effective": params.effective_poll},
        "goals": [goal.to_dict() for result in results for goal in result.goals],
        "scenarios": {result.name: result.to_dict() for result in results},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(table([row for result in results for row in result.rows]))
    print(f"\n{len(results)} scenario result(s) in {elapsed:.0f} s; figures in {args.output}")
    if args.smoke:
        print("(smoke run: tiny sizes, the figures mean nothing)")
    return 0
