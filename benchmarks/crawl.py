"""One benchmark crawl: a real ``scrapy crawl bench`` process; its figures come back as JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parent.parent
SETTINGS_MODULE = "benchmarks.project.settings"
#: A crawl that runs longer than this is stopped (a hang): 30 minutes, or 50 ms a page if longer.
CRAWL_TIMEOUT = 1800.0
SECONDS_PER_PAGE_LIMIT = 0.05


class CrawlError(RuntimeError):
    """A crawl process failed or wrote no figures."""


def crawl_command(
    *, site: str, pages: int, variant: str, settings: dict[str, Any], mode: str = "catalogue"
) -> list[str]:
    """The ``scrapy crawl`` command line (without the result file setting)."""
    argv = [sys.executable, "-m", "scrapy", "crawl", "bench"]
    argv += ["-a", f"base={site}", "-a", f"pages={pages}", "-a", f"mode={mode}"]
    argv += ["-s", f"BENCH_VARIANT={variant}"]
    for name, value in settings.items():
        argv += ["-s", f"{name}={value}"]
    return argv


def run_crawl(
    *,
    site: str,
    simulator: str,
    pages: int,
    variant: str,
    settings: dict[str, Any] | None = None,
    mode: str = "catalogue",
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one crawl to its end and return the figures its :class:`Report` wrote."""
    merged: dict[str, Any] = {
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "UCAPTCHA_API_URL": simulator,
        "LOG_LEVEL": "WARNING",
    }
    merged.update(settings or {})
    argv = crawl_command(site=site, pages=pages, variant=variant, settings=merged, mode=mode)
    env = {**os.environ, **(env or {})}
    env["SCRAPY_SETTINGS_MODULE"] = SETTINGS_MODULE
    env["PYTHONHASHSEED"] = "0"  # one source of run-to-run variance less
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="ucaptcha-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        argv += ["-s", f"BENCH_RESULT={result_file}"]
        done = subprocess.run(
            argv,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=max(CRAWL_TIMEOUT, pages * SECONDS_PER_PAGE_LIMIT),
            check=False,
        )
        if done.returncode != 0 or not result_file.exists():
            raise CrawlError(
                f"crawl {variant} exited {done.returncode}: {done.stderr[-3000:]}\n"
                f"command: {' '.join(argv)}"
            )
        result: dict[str, Any] = json.loads(result_file.read_text())
    result["log_errors"] = [
        line for line in done.stderr.splitlines() if " ERROR: " in line or "Traceback" in line
    ][:20]
    return result
