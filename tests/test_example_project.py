"""The README's main command, run as a user would: the example crawl, offline."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "example_project"

#: Every kind of guarded page of the demo site, and the page kinds that must yield an item.
GUARDED_KINDS = {"item", "invisible", "v3", "enterprise", "hcaptcha", "turnstile", "image", "zone"}
OTHER_KINDS = {"api", "login", "articles"}


def _stats(log: str) -> dict[str, float]:
    return {m[1]: float(m[2]) for m in re.finditer(r"'(ucaptcha/[^']+)': ([0-9.]+)", log)}


def _environment(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh, offline machine: no key, no demo site URL, no cached Public
    Suffix List (tldextract would try to fetch one)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("UCAPTCHA_API_KEY", "DEMO_SITE_URL") and not k.startswith("TLDEXTRACT_")
    }
    env["TLDEXTRACT_CACHE"] = str(tmp / "tldextract-cache")
    env.update(extra)
    return env


def _scrapy(tmp: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    scrapy = Path(sys.executable).with_name("scrapy")
    return subprocess.run(  # noqa: S603  (our own console script)
        [str(scrapy), "crawl", "demo", *args],
        cwd=EXAMPLE,
        env=_environment(tmp, **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def example_crawl(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict], dict, str]:
    tmp = tmp_path_factory.mktemp("example")
    out = tmp / "items.jsonl"
    done = _scrapy(tmp, "-O", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    items = [json.loads(line) for line in out.read_text().splitlines()]
    return items, _stats(done.stderr), done.stderr


def test_no_traceback_in_the_offline_log(example_crawl: tuple[list[dict], dict, str]) -> None:
    _, _, log = example_crawl
    assert "Traceback" not in log
    assert " ERROR: " not in log
    assert "Public Suffix List" not in log


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
    assert re.search(
        r"uCaptcha: \d+ challenge\(s\), 1 presolve\(s\), \d+ solved, 0 gave up, 1 unsolvable", log
    )


def test_an_exported_key_is_not_used_without_a_demo_site_url(tmp_path: Path) -> None:
    """The Quickstart exports a real key; the example still runs offline, on the simulator, and
    the key goes nowhere."""
    key = "ucap_realkeyoftheuser0123456789ab"
    out = tmp_path / "items.jsonl"
    done = _scrapy(tmp_path, "-O", str(out), UCAPTCHA_API_KEY=key)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "UCAPTCHA_API_KEY is set, but DEMO_SITE_URL is not: running offline anyway" in (
        done.stderr
    )
    assert key not in done.stderr
    assert "Traceback" not in done.stderr
    stats = _stats(done.stderr)
    assert stats["ucaptcha/solved"] > 0
    assert stats.get("ucaptcha/errors/error_key_does_not_exist", 0) == 0
    assert out.read_text().count("\n") > 20


@pytest.fixture
def servers() -> Iterator[tuple[str, str]]:
    """The simulator and the demo site in a process of their own: (api URL, site URL)."""
    command = [sys.executable, "-m", "scrapy_ucaptcha.testing", "serve"]
    with subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    ) as process:
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline().strip() for _ in range(2)]
            urls = dict(line.split(": ", 1) for line in lines)
            yield urls["uCaptcha simulator"], urls["demo site"]
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_a_refused_key_exits_non_zero(tmp_path: Path, servers: tuple[str, str]) -> None:
    api_url, site_url = servers
    key = "ucap_notakeythesimulatorknows0000"
    done = _scrapy(
        tmp_path, "-s", f"UCAPTCHA_API_URL={api_url}", UCAPTCHA_API_KEY=key, DEMO_SITE_URL=site_url
    )
    assert done.returncode == 3, done.stderr[-3000:]
    log = done.stderr
    assert "Spider closed (ucaptcha_error_key_does_not_exist)" in log
    assert (
        "Spider closed by scrapy-ucaptcha (ucaptcha_error_key_does_not_exist): exit status 3"
    ) in log
    assert (
        "uCaptcha: no challenge met, nothing spent; "
        "spider closed by scrapy-ucaptcha: ucaptcha_error_key_does_not_exist"
    ) in log
    assert "Traceback" not in log
    assert key not in log


REFUSALS = {
    "UCAPTCHA_CALLBACK_URL=https://crawler.example.net/cb": (
        "UCAPTCHA_CALLBACK_URL needs UCAPTCHA_CALLBACK_LISTEN, the local 'host:port' that URL "
        "reaches (e.g. '0.0.0.0:8765')"
    ),
    # Scrapy's Twisted-based process: the refusal comes through a Deferred
    "TWISTED_REACTOR=twisted.internet.epollreactor.EPollReactor": (
        "scrapy-ucaptcha needs TWISTED_REACTOR = "
        "'twisted.internet.asyncioreactor.AsyncioSelectorReactor'"
    ),
}


@pytest.mark.parametrize("setting", list(REFUSALS))
def test_a_refusal_at_start_is_one_line(tmp_path: Path, setting: str) -> None:
    done = _scrapy(tmp_path, "-s", setting)
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if " ERROR: " in line or "CRITICAL" in line]
    assert len(errors) == 1, errors
    assert errors[0].endswith(
        "[scrapy_ucaptcha.commands.crawl] ERROR: scrapy-ucaptcha refused to start: "
        + REFUSALS[setting]
    )
    assert "Traceback" not in done.stderr
    assert "never retrieved" not in done.stderr
    assert "Unhandled error" not in done.stderr


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
    done = _scrapy(tmp_path, "-O", str(out), "-s", f"UCAPTCHA_PROTOCOL={protocol}")
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
