"""What the benchmark crawls record, and the variant under test.

* :class:`BenchAddon` enables the middleware named by ``BENCH_VARIANT`` and the recorders.
* :class:`Timestamps` (next to the download handler) notes when requests leave for the site: the
  first one, and each token-carrying form post (``/verify/...``) with its token, so that the
  runner can match it to the simulator task whose token it carries (poll lag).
* :class:`Report` notes scraped items, watches the parked count for the memory scenario, times
  detection on the crawl's own plain pages (``BENCH_MICRO``), and writes everything to
  ``BENCH_RESULT`` as JSON when the spider closes.
* :class:`Holder`: the memory baseline; it keeps every challenged request alive and nothing more.

Times are ``time.time()``, the clock the simulator records task times with (``reactor.seconds()``
of the asyncio reactor is ``time.time()``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import statistics
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from scrapy import Request, signals
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.utils.asyncio import AsyncioLoopingCall
from scrapy.utils.misc import load_object

from scrapy_ucaptcha.detection import detect
from scrapy_ucaptcha.fields import form_field
from scrapy_ucaptcha.middleware import UCaptchaMiddleware

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings
    from typing_extensions import Self

#: BENCH_VARIANT -> the downloader middleware under test (import path), at scrapy-ucaptcha's place
VARIANTS = {
    "ucaptcha": "scrapy_ucaptcha.UCaptchaMiddleware",
    "reference": "benchmarks.project.reference.AwaitingMiddleware",
    "holder": "benchmarks.project.instrument.Holder",
    "twocaptcha_sync": "benchmarks.project.peers.TwoCaptchaSync",
    "twocaptcha_async": "benchmarks.project.peers.TwoCaptchaAsync",
    "none": None,
}
VARIANT_ORDER = 585
HELD_KEY = "_bench_held"
#: Seconds a crawl may take to close once the memory figures are taken (see _close_hung).
CLOSE_GRACE = 10.0
#: The form fields of the kinds the benchmark site serves, by the package's table.
POSTED_TOKEN_FIELDS = tuple(form_field(family) for family in ("recaptcha", "hcaptcha", "turnstile"))


class BenchAddon:
    """Adds the variant's middleware, :class:`Timestamps` and :class:`Report`."""

    def update_settings(self, settings: BaseSettings) -> None:
        variant = settings.get("BENCH_VARIANT", "ucaptcha")
        if variant not in VARIANTS:
            raise ValueError(f"BENCH_VARIANT must be one of {sorted(VARIANTS)}, got {variant!r}")
        components = [("DOWNLOADER_MIDDLEWARES", Timestamps, 990), ("EXTENSIONS", Report, 0)]
        path = VARIANTS[variant]
        if path is not None:
            components.append(("DOWNLOADER_MIDDLEWARES", load_object(path), VARIANT_ORDER))
        for setting, cls, order in components:
            settings.setdefault_in_component_priority_dict(setting, cls, order)


class Timestamps:
    """Notes the first request sent and every token-carrying form post, just before download."""

    def __init__(self) -> None:
        self.first_request: float | None = None
        self.first_request_cpu: float | None = None  # process CPU time then
        self.token_posts: dict[str, float] = {}  # token -> when its request was sent
        self.samples: dict[str, Response] = {}  # "list"/"item" -> a plain page of the crawl

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls()

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        now = time.time()
        if self.first_request is None:
            self.first_request, self.first_request_cpu = now, time.process_time()
        if request.method == "POST" and urlsplit(request.url).path.startswith("/verify/"):
            fields = parse_qs(request.body.decode("ascii", "replace"))
            for name in POSTED_TOKEN_FIELDS:
                for token in fields.get(name, []):
                    self.token_posts.setdefault(token, now)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Response:
        if len(self.samples) < 2 and response.status == 200 and isinstance(response, TextResponse):
            path = urlsplit(response.url).path
            kind = "list" if path.startswith("/list/") else "item"
            if kind not in self.samples and b"g-recaptcha" not in response.body:
                self.samples[kind] = response
        return response


class Holder:
    """Memory baseline: keeps each challenged request alive, and nothing else.

    It drops the challenged request from the crawl the way scrapy-ucaptcha does (a marker copy
    returned from ``process_response``, ignored when scheduled), so that both crawls leave the
    same work and garbage to Scrapy, and the difference is what parking keeps per request.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.held: list[Request] = []
        crawler.signals.connect(self.request_scheduled, signal=signals.request_scheduled)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        if detect(response) is not None:
            self.held.append(request)
            return request.replace(meta={**request.meta, HELD_KEY: True}, dont_filter=True)
        return response

    def request_scheduled(self, request: Request, spider: Spider) -> None:
        if HELD_KEY in request.meta:
            raise IgnoreRequest("held")


class Report:
    """Collects the crawl's figures and writes them to ``BENCH_RESULT`` at close."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        settings = crawler.settings
        self.path = settings.get("BENCH_RESULT") or ""
        self.variant = settings.get("BENCH_VARIANT")
        self.park_target = settings.getint("BENCH_PARK_TARGET")
        self.micro = settings.getbool("BENCH_MICRO")
        self.rss_every = settings.getfloat("BENCH_RSS_EVERY")
        self.rss_samples: list[tuple[float, int, int]] = []  # (time, items, VmRSS kB)
        self._sampler: AsyncioLoopingCall | None = None
        self.opened = 0.0
        self.items = 0
        self.solved_items = 0
        self.last_item: float | None = None
        self.last_item_cpu: float | None = None
        self.last_plain_item: float | None = None
        self.memory: dict[str, Any] = {}
        self._probe: AsyncioLoopingCall | None = None
        self._closer: asyncio.Future[None] | None = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    def _middleware(self, cls: type[Any]) -> Any:
        return self.crawler.get_downloader_middleware(cls)

    def spider_opened(self, spider: Spider) -> None:
        self.opened = time.time()
        if self.park_target > 0:
            self.memory["rss_kb_at_open"] = _proc_status()["VmRSS"]
            self._probe = AsyncioLoopingCall(self._check_parked)
            self._probe.start(0.1)
        if self.rss_every > 0:
            self._sampler = AsyncioLoopingCall(self._sample_rss)
            self._sampler.start(self.rss_every)

    def _sample_rss(self) -> None:
        self.rss_samples.append((time.time(), self.items, _proc_status()["VmRSS"]))

    def item_scraped(self, item: dict[str, Any], response: Response, spider: Spider) -> None:
        now = time.time()
        self.items += 1
        self.last_item, self.last_item_cpu = now, time.process_time()
        if item.get("solved"):
            self.solved_items += 1
        else:
            self.last_plain_item = now

    def _held(self) -> int:
        ours = self._middleware(UCaptchaMiddleware)
        if ours is not None:
            return int(ours.waiting)
        holder = self._middleware(Holder)
        return len(holder.held) if holder is not None else 0

    def _check_parked(self) -> None:
        if self._held() >= self.park_target:
            self._measure_and_close()

    def spider_idle(self, spider: Spider) -> None:
        # everything fetched: measure now, whatever the count (the crawl would close first)
        if self.park_target > 0:
            self._measure_and_close()

    def _measure_and_close(self) -> None:
        if "held" in self.memory:
            return
        if self._probe is not None and self._probe.running:
            self._probe.stop()
        gc.collect()
        status = _proc_status()
        self.memory.update(
            held=self._held(),
            reached_after_s=time.time() - self.opened,
            rss_kb=status["VmRSS"],
            peak_rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            hwm_kb=status["VmHWM"],
        )
        engine = self.crawler.engine
        assert engine is not None
        self._closer = asyncio.ensure_future(engine.close_spider_async(reason="bench_held"))
        asyncio.get_running_loop().call_later(CLOSE_GRACE, self._close_hung)

    def _close_hung(self) -> None:
        """The spider did not close in time: write the figures and end the process."""
        pending = [task for task in asyncio.all_tasks() if not task.done()]
        self.memory.update(close_hung_after_s=CLOSE_GRACE, tasks_pending_at_exit=len(pending))
        self._write(self._result("close_hung"))
        os._exit(0)

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._probe is not None and self._probe.running:
            self._probe.stop()
        if self._sampler is not None and self._sampler.running:
            self._sampler.stop()
            self._sample_rss()
        result = self._result(reason)
        stamps = self._middleware(Timestamps)
        if self.micro and stamps is not None:
            result["micro"] = micro_benchmark(self._middleware(UCaptchaMiddleware), stamps.samples)
        self._write(result)

    def _write(self, result: dict[str, Any]) -> None:
        if self.path:
            Path(self.path).write_text(json.dumps(result, default=str))

    def _result(self, reason: str) -> dict[str, Any]:
        closed = time.time()
        stamps = self._middleware(Timestamps)
        assert self.crawler.stats is not None
        stats = self.crawler.stats.get_stats()
        result: dict[str, Any] = {
            "variant": self.variant,
            "reason": reason,
            "opened": self.opened,
            "closed": closed,
            "first_request": stamps.first_request if stamps else None,
            "first_request_cpu": stamps.first_request_cpu if stamps else None,
            "last_item_cpu": self.last_item_cpu,
            "last_item": self.last_item,
            "last_plain_item": self.last_plain_item,
            "items": self.items,
            "solved_items": self.solved_items,
            "token_posts": stamps.token_posts if stamps else {},
            "memory": self.memory,
            "rss_samples": self.rss_samples,
            "stats": {
                key: value
                for key, value in stats.items()
                if key.startswith(("ucaptcha/", "downloader/", "item_", "response_", "finish"))
                and isinstance(value, (int, float, str))
            },
        }
        return result


def micro_benchmark(
    middleware: UCaptchaMiddleware | None, samples: dict[str, Response]
) -> dict[str, float]:
    """µs per call of ``detect()`` (and of the middleware's ``process_response``, if enabled) on
    the crawl's own plain pages: the median of 7 rounds of 1000 calls."""
    figures: dict[str, float] = {}
    for kind, response in sorted(samples.items()):
        figures[f"detect_us/{kind}"] = _per_call_us(lambda r=response: detect(r))
        if middleware is not None:
            request = response.request
            assert request is not None
            figures[f"process_request_us/{kind}"] = _per_call_us(
                lambda q=request: _run_sync(middleware.process_request(request=q))
            )

            figures[f"process_response_us/{kind}"] = _per_call_us(
                lambda q=request, r=response: _run_sync(
                    middleware.process_response(request=q, response=r)
                )
            )
        figures[f"body_bytes/{kind}"] = len(response.body)
    return figures


def _run_sync(coroutine: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine that never awaits (a hook on a plain page) to its end."""
    try:
        coroutine.send(None)
    except StopIteration:
        return
    coroutine.close()
    raise RuntimeError("the hook awaited something on a plain page")


def _per_call_us(call: Any, rounds: int = 7, calls: int = 1000) -> float:
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            call()
        results.append((time.perf_counter() - started) / calls * 1e6)
    return round(statistics.median(results), 2)


def _proc_status() -> dict[str, int]:
    """VmRSS, VmHWM, ... of this process in kB."""
    values = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if rest.strip().endswith("kB"):
            values[name] = int(rest.split()[0])
    return values
