"""The reference the captcha-load scenario compares with: a middleware that awaits the solve inside
``process_response``, as a straightforward CAPTCHA middleware does.

It exists only for the benchmark. It detects, builds the task and sends the token back exactly as
scrapy-ucaptcha does, and solves with the same :class:`~scrapy_ucaptcha.solver.Solver` (same API
client, same polling), so the only difference measured is where the request waits: here it keeps
its ``CONCURRENT_REQUESTS`` unit in the downloader for the whole solve.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest

from scrapy_ucaptcha import inject
from scrapy_ucaptcha.config import Config
from scrapy_ucaptcha.detection import detect
from scrapy_ucaptcha.solver import SolveFailed, Solver
from scrapy_ucaptcha.stats import StatsRecorder
from scrapy_ucaptcha.templates import build_task

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

INFO_KEY = "ucaptcha"  # the meta key scrapy-ucaptcha reports a solve in


class AwaitingMiddleware:
    """Detects, then awaits the token in ``process_response``; returns the request carrying it."""

    def __init__(self, crawler: Crawler, config: Config) -> None:
        self.config = config
        assert crawler.stats is not None
        stats = StatsRecorder(crawler.stats)
        self.client = config.make_client(on_call=stats.api_call)
        self.solver = Solver(config, self.client, stats, on_stop=lambda reason: None)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler, Config.from_settings(crawler.settings))

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        challenge = detect(response, self.config.detectors)
        if challenge is None or not challenge.solvable or INFO_KEY in request.meta:
            return response
        template = self.config.templates.for_url(request.url)
        plan = inject.prepare(template.inject, challenge, response)
        task = build_task(
            template,
            kind=challenge.kind,
            page_url=response.url,
            sitekey=challenge.sitekey,
            params=dict(challenge.params),
            task_types=self.config.task_types,
        )
        for _ in range(self.config.max_attempts):
            try:
                solution = await self.solver.solve(
                    task, domain=urlsplit(request.url).hostname or ""
                )
            except SolveFailed as exc:
                if not exc.retry:
                    break
                continue
            reissued = inject.apply(plan, request, solution.token, solution.solution)
            info: dict[str, Any] = {"task_id": solution.task_id, "type": solution.task_type}
            return reissued.replace(
                meta={**reissued.meta, INFO_KEY: info},
                dont_filter=True,
                priority=request.priority + self.config.reissue_priority,
            )
        raise IgnoreRequest(f"no token for {request.url}")

    async def spider_closed(self, spider: Spider) -> None:
        await self.client.close()
