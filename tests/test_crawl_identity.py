"""Crawls through a real forward proxy: tasks carry their own request's proxy and User-Agent,
re-issues go out as the identity that solved, cookie walls are solved once per identity."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import pytest_twisted
from crawling import Env, Page, Result, crawl, page
from scrapy import Request
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro

from scrapy_ucaptcha.dialects import DIALECTS
from scrapy_ucaptcha.errors import CaptchaSolveError
from scrapy_ucaptcha.identity import proxied_type
from scrapy_ucaptcha.testing.demo_site import DemoSiteConfig
from scrapy_ucaptcha.testing.proxy import ForwardProxy, exit_for
from scrapy_ucaptcha.testing.simulator import Fault, SimulatorConfig, SolveTime

LOGINS = {"alice": "prx-secret-alice7", "bob": "prx-secret-bob7"}
MIDDLEWARES = {
    "scrapy_ucaptcha.UCaptchaMiddleware": 585,
    "scrapy_ucaptcha.UCaptchaIdentityMiddleware": 760,
}
IDENTITY_SETTINGS: dict[str, Any] = {
    "DOWNLOADER_MIDDLEWARES": MIDDLEWARES,
    "UCAPTCHA_PROXY_ALLOW_PRIVATE": True,  # the test proxy listens on loopback
}
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


pytestmark = pytest.mark.demo_site(
    DemoSiteConfig(pages=12, challenge_share=0.5, bind_identity=True)
)


def _dialect_sim(dialect: str) -> SimulatorConfig:
    return SimulatorConfig(solve_time={"*": SolveTime.fixed(0.05)}, dialect=dialect, seed=0)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """The loopback forward proxy, with the logins of alice and bob."""
    running = ForwardProxy(LOGINS)
    running.start()
    try:
        yield running
    finally:
        pytest_twisted.blockon(deferred_from_coro(running.stop()))


def guarded_pages(env: Env, proxy: ForwardProxy | None) -> list[Page]:
    """Every guarded item, alternately through alice and bob (or directly)."""
    pages = []
    for n, item in enumerate(sorted(env.site.guarded_items)):
        meta: dict[str, Any] = {}
        if proxy is not None:
            login = ("alice", "bob")[n % 2]
            meta = {"proxy": proxy.proxy_url(login), "login": login}
        pages.append(page(f"/item/{item}", meta=meta))
    return pages


def login_of(pages: list[Page], url: str) -> str | None:
    path = "/" + url.split("/", 3)[3]
    login: str | None = next(p.kwargs["meta"].get("login") for p in pages if p.path == path)
    return login


def assert_delivered(result: Result, pages: list[Page]) -> None:
    for spec in pages:
        outcome = result.only(spec.key)
        assert outcome.status == 200, outcome
        assert outcome.title is not None
        assert outcome.title.startswith("Item ")


@deferred_f_from_coro_f
async def test_each_task_carries_its_own_requests_proxy_and_user_agent(
    env: Env, proxy: ForwardProxy
) -> None:
    pages = guarded_pages(env, proxy)
    result = await crawl(env, pages, USER_AGENT=UA, **IDENTITY_SETTINGS)
    assert_delivered(result, pages)
    count = len(pages)
    assert count == 6
    tasks = list(env.sim.tasks.values())
    assert [t.type for t in tasks] == ["RecaptchaV2Task"] * count
    for task in tasks:
        assert task.website_url is not None
        assert task.proxy_exit == exit_for(login_of(pages, task.website_url))
        assert task.user_agent == UA
    assert Counter(t.proxy_exit for t in tasks) == {exit_for("alice"): 3, exit_for("bob"): 3}
    # every re-issue went through the task's proxy: the site accepted each token once
    assert env.site.counts()["token_accepted/recaptcha_v2"] == count
    assert "token_rejected/wrong-identity" not in env.site.counts()
    assert result.stats["ucaptcha/tasks/created"] == count
    assert result.stats["ucaptcha/solved"] == count
    assert "ucaptcha/tokens/rejected" not in result.stats
    assert "ucaptcha/identity/changed" not in result.stats
    # the proxy saw every request of the crawl, and only with good credentials
    assert {login for login, status in proxy.counts()} == {"alice", "bob"}


@pytest.mark.simulator(from_params=_dialect_sim)
@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@deferred_f_from_coro_f
async def test_each_provider_gets_the_proxy_its_own_way(
    env: Env, proxy: ForwardProxy, dialect: str
) -> None:
    """A proxy string for uCaptcha and CapSolver, the split fields for the others (the imitated
    providers read nothing else), under each provider's proxied type name."""
    pages = guarded_pages(env, proxy)[:2]
    result = await crawl(env, pages, UCAPTCHA_DIALECT=dialect, **IDENTITY_SETTINGS)
    assert_delivered(result, pages)
    expected = proxied_type(DIALECTS[dialect].task_types["recaptcha_v2"])
    assert expected != DIALECTS[dialect].task_types["recaptcha_v2"]
    assert [t.type for t in env.sim.tasks.values()] == [expected, expected]
    assert {t.proxy_exit for t in env.sim.tasks.values()} == {exit_for("alice"), exit_for("bob")}


@pytest.mark.simulator(from_params=_dialect_sim)
@pytest.mark.parametrize(("dialect", "solved"), [("anticaptcha", False), ("ucaptcha", True)])
@deferred_f_from_coro_f
async def test_a_proxy_host_name(env: Env, proxy: ForwardProxy, dialect: str, solved: bool) -> None:
    """Anti-Captcha takes only IP addresses: a host name ends the request before any task;
    uCaptcha takes it."""
    url = proxy.proxy_url("alice").replace("127.0.0.1", "localhost")
    item = min(env.site.guarded_items)
    pages = [page(f"/item/{item}", meta={"proxy": url})]
    result = await crawl(env, pages, UCAPTCHA_DIALECT=dialect, **IDENTITY_SETTINGS)
    outcome = result.only(pages[0].key)
    if solved:
        assert outcome.status == 200
        assert [t.proxy_exit for t in env.sim.tasks.values()] == [exit_for("alice")]
        return
    assert isinstance(outcome.error, CaptchaSolveError)
    assert outcome.error.code == "bad_proxy"
    assert "host name" in str(outcome.error)
    assert env.sim.tasks == {}


@deferred_f_from_coro_f
async def test_without_a_proxy_tasks_stay_proxyless(env: Env) -> None:
    pages = guarded_pages(env, None)
    result = await crawl(env, pages, **IDENTITY_SETTINGS)
    assert_delivered(result, pages)
    tasks = list(env.sim.tasks.values())
    assert [t.type for t in tasks] == ["RecaptchaV2TaskProxyless"] * len(pages)
    assert {t.proxy_exit for t in tasks} == {None}


@deferred_f_from_coro_f
async def test_without_passthrough_a_binding_site_refuses_every_token(
    env: Env, proxy: ForwardProxy
) -> None:
    """What the crawl looked like before passthrough: each request pays for every attempt."""
    pages = guarded_pages(env, proxy)
    result = await crawl(env, pages, UCAPTCHA_PROXY_PASSTHROUGH=False, **IDENTITY_SETTINGS)
    for spec in pages:
        error = result.only(spec.key).error
        assert isinstance(error, CaptchaSolveError)
        assert error.code == "max_attempts"
    assert result.stats["ucaptcha/tasks/created"] == 3 * len(pages)
    assert env.site.counts()["token_rejected/wrong-identity"] == 3 * len(pages)
    assert {t.type for t in env.sim.tasks.values()} == {"RecaptchaV2TaskProxyless"}


class FlippingProxyMiddleware:
    """A rotating-proxy middleware at its worst: every pass of a request through it (the
    re-issue, the redirect after it) gets the other proxy than the pass before."""

    proxies: tuple[str, str] = ("", "")

    async def process_request(self, request: Request, spider: Any = None) -> None:
        turn = request.meta.get("flip", request.meta.get("start", 0)) + 1
        request.meta["flip"] = turn
        request.meta["proxy"] = self.proxies[turn % 2]


@pytest.mark.parametrize("pinned", [True, False])
@deferred_f_from_coro_f
async def test_reissues_keep_the_tasks_proxy_with_a_rotating_middleware(
    env: Env, proxy: ForwardProxy, pinned: bool
) -> None:
    FlippingProxyMiddleware.proxies = (proxy.proxy_url("alice"), proxy.proxy_url("bob"))
    pages = [page(p.path, meta={"start": n % 2}) for n, p in enumerate(guarded_pages(env, None))]
    middlewares = {**MIDDLEWARES, f"{__name__}.FlippingProxyMiddleware": 610}
    if not pinned:
        del middlewares["scrapy_ucaptcha.UCaptchaIdentityMiddleware"]
    settings = {**IDENTITY_SETTINGS, "DOWNLOADER_MIDDLEWARES": middlewares}
    result = await crawl(env, pages, expect=None if pinned else (), **settings)
    count = len(pages)
    if pinned:
        assert_delivered(result, pages)
        assert result.stats["ucaptcha/tasks/created"] == count
        assert env.site.counts()["token_accepted/recaptcha_v2"] == count
        assert "ucaptcha/identity/changed" not in result.stats
        return
    # without the pin every re-issue goes out through the other proxy: refused, and counted
    assert env.site.counts().get("token_accepted/recaptcha_v2", 0) == 0
    assert result.stats["ucaptcha/identity/changed"] == result.stats["ucaptcha/tasks/created"]
    assert result.stats["ucaptcha/tasks/created"] == 3 * count


# --- cookie walls ---------------------------------------------------------------------------------

WALL_CASES = [
    ("/dd/", "datadome", "DatadomeSliderTask", "datadome"),
    ("/cf/", "cloudflare_challenge", "AntiCloudflareTask", "cloudflare"),
    ("/aws/", "aws_waf", "AmazonTask", "aws_waf"),
]


def wall_pages(proxy: ForwardProxy | None, prefix: str) -> list[Page]:
    pages = []
    for login in ("alice", "bob"):
        for n in range(1, 6):
            meta: dict[str, Any] = {"cookiejar": login}
            if proxy is not None:
                meta["proxy"] = proxy.proxy_url(login)
            # the same URL through two proxies: not duplicates
            pages.append(page(f"{prefix}{n}", f"{login}{prefix}{n}", meta=meta, dont_filter=True))
    return pages


@pytest.mark.parametrize(("prefix", "kind", "task_type", "site_kind"), WALL_CASES)
@deferred_f_from_coro_f
async def test_cookie_walls_are_solved_once_per_identity(
    prefix: str, kind: str, task_type: str, site_kind: str, *, env: Env, proxy: ForwardProxy
) -> None:
    pages = wall_pages(proxy, prefix)
    result = await crawl(env, pages, USER_AGENT=UA, **IDENTITY_SETTINGS)
    for spec in pages:
        outcome = result.only(spec.key)
        assert outcome.status == 200, (spec.key, outcome)
    tasks = list(env.sim.tasks.values())
    assert [t.type for t in tasks] == [task_type, task_type]
    assert {t.proxy_exit for t in tasks} == {exit_for("alice"), exit_for("bob")}
    assert env.site.counts()[f"token_accepted/{site_kind}"] == len(pages)
    stats = result.stats
    assert stats["ucaptcha/tasks/created"] == 2
    assert stats["ucaptcha/solved"] == len(pages)
    assert stats[f"ucaptcha/cookie_walls/{kind}"] == stats["ucaptcha/challenges"]
    assert "ucaptcha/unsolvable" not in stats


@pytest.mark.parametrize(("prefix", "kind", "task_type", "site_kind"), WALL_CASES)
@deferred_f_from_coro_f
async def test_cookie_walls_without_a_proxy_are_never_paid(
    env: Env, prefix: str, kind: str, task_type: str, site_kind: str
) -> None:
    pages = wall_pages(None, prefix)
    result = await crawl(env, pages, **IDENTITY_SETTINGS)
    for spec in pages:
        assert result.only(spec.key).status in (202, 403)
    assert env.sim.tasks == {}
    assert result.stats == {
        "ucaptcha/challenges": len(pages),
        f"ucaptcha/challenges/{kind}": len(pages),
        "ucaptcha/unsolvable": len(pages),
    }


@deferred_f_from_coro_f
async def test_a_banned_datadome_ip_is_never_paid(env: Env, proxy: ForwardProxy) -> None:
    pages = [page("/dd-banned/1", meta={"proxy": proxy.proxy_url("alice")})]
    result = await crawl(env, pages, **IDENTITY_SETTINGS)
    assert result.only("/dd-banned/1").status == 403
    assert env.sim.tasks == {}
    assert result.stats == {
        "ucaptcha/challenges": 1,
        "ucaptcha/challenges/datadome": 1,
        "ucaptcha/unsolvable": 1,
    }


@deferred_f_from_coro_f
async def test_a_private_proxy_is_refused_before_any_task(env: Env, proxy: ForwardProxy) -> None:
    pages = guarded_pages(env, proxy)[:1]
    result = await crawl(env, pages, DOWNLOADER_MIDDLEWARES=MIDDLEWARES)
    error = result.only(pages[0].key).error
    assert isinstance(error, CaptchaSolveError)
    assert error.code == "bad_proxy"
    assert "private or local network" in str(error)
    assert "prx-secret" not in str(error)
    assert env.sim.tasks == {}


@deferred_f_from_coro_f
async def test_the_proxy_password_is_in_no_log_stat_or_error(
    env: Env,
    proxy: ForwardProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A DEBUG crawl through the proxy whose API quotes the task (proxy and all) back in an
    error: the password is in no log line, stat, exception or repr; the address is."""
    env.sim.add_fault(
        Fault(kind="error_code", endpoint="createTask", code="ERROR_BAD_PROXY", times=1)
    )
    pages = guarded_pages(env, proxy)[:2]
    result = await crawl(env, pages, **IDENTITY_SETTINGS)
    outcomes = [result.only(spec.key) for spec in pages]
    errors = [o.error for o in outcomes if o.error is not None]
    assert len(errors) == 1  # the request whose task was refused; the other one was solved
    assert isinstance(errors[0], CaptchaSolveError)
    assert "ERROR_BAD_PROXY" in str(errors[0])
    quoted = [r.getMessage() for r in caplog.records if "(task: " in r.getMessage()]
    assert quoted, "the quoted task reached the logs (scrubbed)"
    assert all("***" in text and "127.0.0.1" in text for text in quoted)
    texts = [caplog.text, repr(result.all_stats), *(f"{e!s} {e!r}" for e in errors)]
    texts += [repr(env.sim.calls), repr(list(env.sim.tasks.values())), repr(proxy)]
    for password in LOGINS.values():
        for text in texts:
            assert password not in text
