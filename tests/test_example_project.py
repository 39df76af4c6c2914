"""The README's main command, run as a user would: the example crawl, offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"

#: Every kind of guarded page of the demo site, and the page kinds that must yield an item.
GUARDED_KINDS = {"item", "invisible", "v3", "enterprise", "hcaptcha", "turnstile", "image", "zone"}
OTHER_KINDS = {"api", "login", "articles"}


def _stats(log: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"'(ucaptcha/[^']+)': ([0-9.]+)", log)}


@pytest.fixture(scope="module")
def example_crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict, str]:
    out = tmp_path_factory.mktemp("example") / "items.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("UCAPTCHA_API_KEY", "DEMO_SITE_URL")}
    scrapy = Path(sys.executable).with_name("scrapy")
    command = [str(scrapy), "crawl", "demo", "-O", str(out)]
    done = subprocess.run(  # noqa: S603  (our own console script)
        command, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text().splitlines()]
    return items, _stats(done.stderr), done.stderr


def test_items_for_every_guarded_page_kind(example_crawl: tuple[list[dict], dict, str]) -> None:
    items, _, _ = example_crawl
    kinds = {item["kind"] for item in items}
    assert kinds >= GUARDED_KINDS | OTHER_KINDS
    for kind in GUARDED_KINDS - {"item"}:
        solved = [i for i in items if i["kind"] == kind and i["captcha"]]
        assert solved, f"no solved {kind} page"
        for item in solved:
            assert item["content"]
            assert item["captcha"]["task_id"]
            assert item["captcha"]["type"]
    guarded_items = [i for i in items if i["kind"] == "item" and i["captcha"]]
    assert guarded_items
    assert any(i["kind"] == "api" and i["captcha"] for i in items)
    assert any(i["kind"] == "login" and i["captcha"] for i in items)


def test_crawl_report(example_crawl: tuple[list[dict], dict, str]) -> None:
    _, stats, log = example_crawl
    assert stats["ucaptcha/cost_usd"] > 0
    assert stats["ucaptcha/solve_time_ms/p50"] > 0
    assert stats["ucaptcha/solved"] > 0
    assert stats.get("ucaptcha/gave_up", 0) == 0
    assert stats["ucaptcha/unsolvable"] == 1
    assert stats["ucaptcha/challenges/cloudflare_challenge"] == 1
    assert stats["ucaptcha/balance/start"] > stats["ucaptcha/balance/end"]
    assert "Spider closed (finished)" in log
    assert re.search(r"uCaptcha: \d+ challenge\(s\), \d+ solved, 0 gave up, 1 unsolvable", log)


README = (ROOT / "README.md").read_text()
#: The README's example crawls on the compatibility protocols, one ``-s`` option each.
PROTOCOL_COMMANDS = re.findall(
    r"^cd example_project && \.\./\.venv/bin/scrapy crawl demo -O items\.jsonl "
    r"-s UCAPTCHA_PROTOCOL=([\w-]+)$",
    README,
    flags=re.MULTILINE,
)


def test_the_readme_shows_one_example_crawl_per_protocol() -> None:
    assert PROTOCOL_COMMANDS == ["2captcha-legacy", "deathbycaptcha", "riskbypass"]


@pytest.mark.parametrize("protocol", PROTOCOL_COMMANDS)
def test_example_crawl_on_each_protocol(protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "items.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("UCAPTCHA_API_KEY", "DEMO_SITE_URL")}
    scrapy = Path(sys.executable).with_name("scrapy")
    command = [str(scrapy), "crawl", "demo", "-O", str(out), "-s", f"UCAPTCHA_PROTOCOL={protocol}"]
    done = subprocess.run(  # noqa: S603  (our own console script)
        command, cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text().splitlines()]
    stats = _stats(done.stderr)
    unsolved = {"image"} if protocol == "riskbypass" else set()
    kinds = {item["kind"] for item in items}
    assert kinds >= (GUARDED_KINDS - unsolved) | OTHER_KINDS
    for kind in GUARDED_KINDS - unsolved:
        assert any(i["kind"] == kind and i["captcha"] for i in items), kind
    assert stats["ucaptcha/solved"] > 0
    assert stats.get("ucaptcha/gave_up", 0) == len(unsolved)
    assert stats["ucaptcha/balance/start"] > stats["ucaptcha/balance/end"]
    assert stats["ucaptcha/api_calls/createTask"] == stats["ucaptcha/tasks/created"]
    assert "Spider closed (finished)" in done.stderr
    assert "ucap_simulatorkey0123456789abcdef" not in done.stderr
