"""Every code block of README.md is exercised here; a block no test handles fails the suite."""

from __future__ import annotations

import linecache
import os
import re
import shlex
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from crawling import HOST, Env, settings_for
from scrapy import Request, signals
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_ucaptcha import Config
from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = [
    (m["lang"], m["body"]) for m in re.finditer(r"```(?P<lang>\w*)\n(?P<body>.*?)```", README, re.S)
]
PYTHON = [body for lang, body in BLOCKS if lang == "python"]
SHELL = [body for lang, body in BLOCKS if lang == "sh"]

INSTALL = "python -m pip install -e '.[test]'"


def _run(code: str) -> dict[str, Any]:
    # give the block a file of its own for inspect (Scrapy reads callbacks' source)
    filename = f"<README.md block {PYTHON.index(code)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "readme_example"}
    exec(compile(code, filename, "exec"), namespace)  # noqa: S102  (our own README)
    return namespace


def _settings_of(code: str) -> dict[str, Any]:
    return {k: v for k, v in _run(code).items() if k.isupper()}


def _is_settings(code: str) -> bool:
    return all(
        not line or line.startswith((" ", "#", "}", "]", ")")) or re.match(r"[A-Z_]+ = ", line)
        for line in code.splitlines()
    )


@pytest.fixture
def fake_myproject(monkeypatch: pytest.MonkeyPatch) -> None:
    """``myproject.captcha:add_token`` from the README, importable."""
    code = next(body for body in PYTHON if body.startswith("def add_token"))
    package = types.ModuleType("myproject")
    module = types.ModuleType("myproject.captcha")
    exec(compile(code, "README.md", "exec"), module.__dict__)  # noqa: S102
    package.captcha = module  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "myproject", package)
    monkeypatch.setitem(sys.modules, "myproject.captcha", module)


# --- the two commands at the top ------------------------------------------------------------------


def test_first_lines_are_the_two_commands() -> None:
    first_blocks = SHELL[:2]
    crawl, tests = first_blocks
    assert README.index(crawl) < README.index("## Contents")
    assert INSTALL.replace("python", ".venv/bin/python") in crawl
    assert "cd example_project && ../.venv/bin/scrapy crawl demo -O items.jsonl" in crawl
    assert INSTALL.replace("python", ".venv/bin/python") in tests
    assert tests.strip().endswith(".venv/bin/python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text()
    assert INSTALL in ci  # CI installs with the README's command
    assert "python -m pytest" in ci  # and runs the README's test command
    # the crawl command itself runs in tests/test_example_project.py


def test_quickstart_install_from_a_checkout_or_a_wheel(tmp_path: Path) -> None:
    """The Quickstart's install block, run on this checkout: the wheel it builds holds every
    module of the package, and installs and imports on its own."""
    lines = [line for line in SHELL[2].splitlines() if line and not line.startswith("#")]
    assert lines[0] == "git clone https://github.com/scrapy-ucaptcha/scrapy-ucaptcha.git"
    assert lines[1] == "python -m pip install ./scrapy-ucaptcha"
    assert 'name = "scrapy-ucaptcha"' in (ROOT / "pyproject.toml").read_text()
    # a checkout as git would make it: no build leftovers, which setuptools would ship
    checkout = tmp_path / "scrapy-ucaptcha"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*_cache", ".nox"
        ),
    )
    dist, site = tmp_path / "dist", tmp_path / "site"
    for line in lines[2:]:
        command = shlex.split(line)
        assert command[:3] == ["python", "-m", "pip"]
        if command[3] == "install":  # into a directory of its own; the dependencies are here
            wheels = sorted(dist.glob(command[-1].removeprefix("dist/")))
            command = [*command[:4], "--no-deps", "--target", str(site), *map(str, wheels)]
        command = [sys.executable, *command[1:], "--quiet"]
        subprocess.run(command, check=True, cwd=tmp_path, timeout=300)  # noqa: S603
    assert len(list(dist.glob("scrapy_ucaptcha-*-py3-none-any.whl"))) == 1
    shipped = {p.relative_to(site).as_posix() for p in (site / "scrapy_ucaptcha").rglob("*.py")}
    source = {p.relative_to(ROOT).as_posix() for p in (ROOT / "scrapy_ucaptcha").rglob("*.py")}
    assert shipped == source
    assert (site / "scrapy_ucaptcha" / "py.typed").exists()
    code = "import scrapy_ucaptcha, scrapy_ucaptcha.commands.crawl; print(scrapy_ucaptcha.__file__)"
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(site)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(site / "scrapy_ucaptcha" / "__init__.py")


def test_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    block = SHELL[3]
    assert block.startswith("export UCAPTCHA_API_KEY=")
    monkeypatch.setenv("UCAPTCHA_API_KEY", DEFAULT_API_KEY)
    assert Config.from_settings(Settings({})).api_key == DEFAULT_API_KEY


def test_testing_commands_start_their_servers() -> None:
    block = next(body for body in SHELL if "scrapy_ucaptcha.testing simulator" in body)
    for line in block.splitlines():
        command = shlex.split(line.split("#")[0])
        assert command[:3] == ["python", "-m", "scrapy_ucaptcha.testing"]
        command = [sys.executable, *command[1:]]
        command = [re.sub(r"^(87|88)\d\d$", "0", part) for part in command]  # any free port
        expected = {"simulator": 1, "demo": 1, "serve": 2}[command[3]]
        with subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        ) as process:
            try:
                assert process.stdout is not None
                lines = [process.stdout.readline() for _ in range(expected)]
                assert all(
                    re.match(r"[\w ]+: http://127\.0\.0\.1:\d+$", x.strip()) for x in lines
                ), lines
            finally:
                process.terminate()
                process.wait(timeout=10)


def test_development_commands_are_what_ci_runs() -> None:
    block = next(body for body in SHELL if "bash .ci/run" in body)
    ci = (ROOT / ".ci" / "run").read_text()
    for tool in ("ruff check .", "ruff format --check .", "mypy --strict scrapy_ucaptcha"):
        assert tool in block
        assert tool in ci


def test_every_shell_block_is_covered() -> None:
    assert len(SHELL) == 7


# --- python blocks --------------------------------------------------------------------------------


def test_every_settings_fragment_is_valid(fake_myproject: None) -> None:
    fragments = [body for body in PYTHON if _is_settings(body)]
    assert len(fragments) == 25
    for code in fragments:
        settings = _settings_of(code)
        assert settings
        config = Config.from_settings(Settings({"UCAPTCHA_API_KEY": DEFAULT_API_KEY, **settings}))
        if "UCAPTCHA_TASKS" in settings:
            assert len(config.templates.entries) == len(settings["UCAPTCHA_TASKS"])


def test_add_token_example(fake_myproject: None) -> None:
    from myproject.captcha import add_token  # type: ignore[import-not-found]

    request = add_token(Request("https://e.example.com/", cookies={"a": "1"}), "tok", {})
    assert request.headers["X-Captcha"] == b"tok"
    assert request.cookies == {"a": "1", "captcha": "tok"}


def test_every_python_block_is_covered() -> None:
    handled = [body for body in PYTHON if _is_settings(body)]
    handled += [b for b in PYTHON if b.startswith("def add_token")]
    handled += [b for b in PYTHON if "class ShopSpider" in b]
    handled += [b for b in PYTHON if "def login_request" in b]
    handled += [b for b in PYTHON if "async def solve_once" in b]
    handled += [b for b in PYTHON if "async def with_servers" in b]
    handled += [b for b in PYTHON if "def test_" in b and "ucaptcha_crawl" in b]
    assert sorted(handled) == sorted(PYTHON)


@deferred_f_from_coro_f
async def test_errback_spider_example(env: Env) -> None:
    code = next(body for body in PYTHON if "class ShopSpider" in body)
    shop = _run(code)["ShopSpider"]
    guarded = min(env.site.guarded_items)

    class Shop(shop):  # type: ignore[misc,valid-type]
        start_urls = (env.url(f"/item/{guarded}"), env.url("/item/1"))

    crawler = get_crawler(Shop, settings_for(env))
    items: list[dict[str, Any]] = []

    def scraped(item: dict[str, Any]) -> None:  # signals hold weak references: keep a name
        items.append(item)

    crawler.signals.connect(scraped, signal=signals.item_scraped)
    await crawler.crawl_async()
    solved = [i for i in items if i["captcha"]]
    assert len(items) == (1 if guarded == 1 else 2)
    assert len(solved) == 1
    assert solved[0]["url"] == env.url(f"/item/{guarded}")


@deferred_f_from_coro_f
async def test_login_presolve_example(env: Env) -> None:
    code = next(body for body in PYTHON if "def login_request" in body)
    login_request = _run(code)["login_request"]
    responses: list[Any] = []

    class Login(shop_base()):  # type: ignore[misc]
        async def start(self) -> Any:
            yield login_request(env.url("/login")).replace(callback=self.parse)

        def parse(self, response: Any) -> None:
            responses.append(response)

    crawler = get_crawler(Login, settings_for(env))
    await crawler.crawl_async()
    assert len(responses) == 1
    assert responses[0].status == 200
    assert responses[0].meta["ucaptcha"]["type"] == "RecaptchaV2TaskProxyless"


def shop_base() -> type:
    from scrapy import Spider

    class Base(Spider):
        name = "readme"

    return Base


@deferred_f_from_coro_f
async def test_client_example(env: Env) -> None:
    code = next(body for body in PYTHON if "async def solve_once" in body)
    solve_once = _run(code)["solve_once"]
    sitekey = env.site.sitekeys["recaptcha_v2"]
    token = await solve_once(
        DEFAULT_API_KEY, env.url("/item/1"), sitekey, api_url=env.sim.url, poll=0.05
    )
    assert token.startswith("03AG")
    assert env.sim.count("createTask") == 1
    assert env.sim.count("getBalance") == 1


@deferred_f_from_coro_f
async def test_testing_example() -> None:
    code = next(body for body in PYTHON if "async def with_servers" in body)
    with_servers = _run(code)["with_servers"]
    seen: list[str] = []

    async def run_crawl(api_url: str, site_url: str) -> str:
        seen.extend([api_url, site_url])
        return "done"

    assert await with_servers(run_crawl) == "done"
    assert all(url.startswith(f"http://{HOST}:") for url in seen)


def test_every_setting_and_stats_key_is_documented() -> None:
    from scrapy_ucaptcha import stats

    config_source = (ROOT / "scrapy_ucaptcha" / "config.py").read_text()
    settings = set(re.findall(r'"(UCAPTCHA_[A-Z_]+)"', config_source))
    assert len(settings) >= 25
    for name in sorted(settings):
        assert f"| `{name}` |" in README, f"{name} is not in the settings table"
    keys = [v for k, v in vars(stats).items() if k.isupper() and isinstance(v, str) and "/" in v]
    assert len(keys) >= 23
    for key in keys:
        assert f"`{key}" in README, f"{key} is not in the stats table"
    for meta_key in ("ucaptcha_task", "ucaptcha"):
        assert f"| `{meta_key}` |" in README
