"""Full crawls of the demo pages of Arkose Labs, GeeTest, Friendly Captcha, MTCaptcha, Yandex
SmartCaptcha and the AWS WAF CAPTCHA (solved), and of blocks no solve passes (never paid)."""

from __future__ import annotations

import pytest
from crawling import HOST, Env, crawl, page, solved_stats
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_ucaptcha.testing.demo_site import SITEKEYS

COST = 0.002  # the simulator's price for these types

#: path, kind, task type, sitekey kind, whether the token is bound to a page value
TOKEN_KINDS: list[tuple[str, str, str, str, bool]] = [
    ("/arkose", "funcaptcha", "FunCaptchaTaskProxyless", "funcaptcha", True),
    ("/geetest4", "geetest_v4", "GeeTestTaskProxyless", "geetest_v4", False),
    ("/geetest3", "geetest_v3", "GeeTestTaskProxyless", "geetest_v3", True),
    (
        "/friendly",
        "friendly_captcha",
        "FriendlyCaptchaTaskProxyless",
        "friendly_captcha",
        False,
    ),
    ("/mtcaptcha", "mtcaptcha", "MtCaptchaTaskProxyless", "mtcaptcha", False),
    (
        "/yandex",
        "yandex_smartcaptcha",
        "YandexCaptchaTaskProxyless",
        "yandex_smartcaptcha",
        False,
    ),
    # the simulator solves AWS WAF tasks as a cookie wall, "for" the wall itself
    ("/aws-waf", "aws_waf_captcha", "AmazonTaskProxyless", "aws_waf", False),
]


@pytest.mark.parametrize(("path", "kind", "task_type", "key", "bound"), TOKEN_KINDS)
@deferred_f_from_coro_f
async def test_each_new_kind_is_solved(
    path: str, kind: str, task_type: str, key: str, bound: bool, *, env: Env
) -> None:
    result = await crawl(env, [page(path)])
    outcome = result.only(path)
    assert outcome.error is None, outcome.error
    assert outcome.status == 200
    assert outcome.title
    assert outcome.info is not None
    assert outcome.info["type"] == task_type
    assert outcome.info["attempts"] == 1
    assert result.stats == solved_stats(kind=kind, task_type=task_type, cost=COST)
    assert result.reason == "finished"
    task = env.sim.tasks[outcome.info["task_id"]]
    assert task.type == task_type
    assert task.website_url == env.url(path)
    assert task.website_key == (key if kind == "aws_waf_captcha" else SITEKEYS[key])
    assert bool(task.action) == bound  # the blob, challenge or context the page gave
    counts = env.site.counts()
    assert counts["token_accepted/" + kind] == 1
    assert not any(k.startswith("token_rejected/") for k in counts)


@deferred_f_from_coro_f
async def test_blocks_are_counted_unsolvable_and_never_paid(env: Env) -> None:
    result = await crawl(env, [page("/blocked"), page("/sucuri")])
    assert result.only("/blocked").status == 403
    assert result.only("/sucuri").status == 200
    assert result.stats == {
        "ucaptcha/challenges": 2,
        "ucaptcha/challenges/cloudflare_block": 1,
        "ucaptcha/challenges/sucuri": 1,
        "ucaptcha/unsolvable": 2,
    }
    assert env.sim.tasks == {}
    assert result.reason == "finished"


@deferred_f_from_coro_f
async def test_geetest_v3_without_gt_and_challenge_on_the_page_is_not_paid(env: Env) -> None:
    result = await crawl(env, [page("/geetest3/xhr")])
    assert result.only("/geetest3/xhr").status == 200
    assert result.stats == {
        "ucaptcha/challenges": 1,
        "ucaptcha/challenges/geetest_v3": 1,
        "ucaptcha/unsolvable": 1,
    }
    assert env.sim.tasks == {}


@deferred_f_from_coro_f
async def test_geetest_v3_challenge_fetched_from_the_template_url_before_each_task(
    env: Env,
) -> None:
    templates = {f"{HOST}/geetest3/xhr": {"challenge_url": "/geetest3/register"}}
    result = await crawl(env, [page("/geetest3/xhr")], UCAPTCHA_TASKS=templates)
    outcome = result.only("/geetest3/xhr")
    assert outcome.error is None, outcome.error
    assert outcome.status == 200
    assert outcome.info is not None
    assert result.stats == solved_stats(
        kind="geetest_v3", task_type="GeeTestTaskProxyless", cost=COST
    )
    task = env.sim.tasks[outcome.info["task_id"]]
    assert task.website_key == SITEKEYS["geetest_v3"]  # gt from the endpoint's answer
    assert task.action  # the challenge the endpoint issued, bound into the solution
    assert [h.path for h in env.site.log].count("/geetest3/register") == 1
    assert env.site.counts()["token_accepted/geetest_v3_xhr"] == 1


@deferred_f_from_coro_f
async def test_a_challenge_url_that_answers_no_challenge_is_never_paid(env: Env) -> None:
    templates = {f"{HOST}/geetest3/xhr": {"challenge_url": "/articles/captchas"}}
    result = await crawl(
        env, [page("/geetest3/xhr")], UCAPTCHA_TASKS=templates, UCAPTCHA_MAX_ATTEMPTS=2
    )
    assert result.only("/geetest3/xhr").error is not None
    assert env.sim.tasks == {}
    assert result.stats["ucaptcha/gave_up"] == 1
    assert "ucaptcha/tasks/created" not in result.stats
