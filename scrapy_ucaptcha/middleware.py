"""The downloader middleware: detect → park → solve → re-issue → verify.

A challenged request leaves the downloader at once: ``process_response`` returns a marked copy of
it, which our ``request_scheduled`` handler drops (``IgnoreRequest``, the documented way), so the
request's ``CONCURRENT_REQUESTS`` unit is free while its task is solved in the background. When the
token is ready, the request is re-issued through ``engine.crawl`` with the token injected and a
priority boost. If the site still shows the challenge, the token was rejected: feedback, solve
again, up to ``UCAPTCHA_MAX_ATTEMPTS``. A request that cannot be solved is crawled once more
carrying its :class:`CaptchaSolveError`, which ``process_request`` raises so that it reaches the
request's errback. A token the site accepted is reported too, where the provider takes that report.

The state has owners: the :class:`~scrapy_ucaptcha.parking.ParkingLot` (parked requests and the
tickets of requests handed back: the one place where a request ends), the
:class:`~scrapy_ucaptcha.scope.DomainScope` (domain-scope groups), the pure
:func:`~scrapy_ucaptcha.planner.plan_task` and, in a distributed crawl,
:class:`~scrapy_ucaptcha.workers.Workers` (leases in Redis, clearances shared between workers).
What travels in ``meta`` is plain data (:mod:`scrapy_ucaptcha.state`). Nothing is lost on the
way: parked requests, domain-scope followers and tickets keep the spider open (``spider_idle``);
whatever is left when the spider closes is counted as abandoned; an error after a request left
the lot ends it in its errback.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.downloadermiddlewares.httpcache import HttpCacheMiddleware
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.utils.job import job_dir
from scrapy.utils.reactor import is_asyncio_reactor_installed

from scrapy_ucaptcha import geetest, identity, inject, walls
from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.callbacks import CallbackListener
from scrapy_ucaptcha.carry import CARRY_KEY, apply_carried_cookies
from scrapy_ucaptcha.checks import warn_at_start
from scrapy_ucaptcha.client import truncate_token
from scrapy_ucaptcha.cluster import Cluster
from scrapy_ucaptcha.config import Config, ConfigError
from scrapy_ucaptcha.errors import CaptchaSolveError
from scrapy_ucaptcha.httpcache import UCaptchaCachePolicy
from scrapy_ucaptcha.jobs import Jobs
from scrapy_ucaptcha.keep import JobDirKeeper, original
from scrapy_ucaptcha.overrides import TASK_KEY, Layers, SpiderTask, spider_task
from scrapy_ucaptcha.parking import ParkingLot
from scrapy_ucaptcha.planner import PlanError, TaskPlan, plan_task
from scrapy_ucaptcha.progress import Progress
from scrapy_ucaptcha.rules import find_challenge
from scrapy_ucaptcha.scope import DomainScope, Follower
from scrapy_ucaptcha.solver import Reckoning, Solution, SolveFailed, Solver
from scrapy_ucaptcha.state import (
    ERROR_KEY,
    PARK_KEY,
    STATE_KEY,
    TICKET_KEY,
    RequestState,
    error_from_meta,
    error_to_meta,
)
from scrapy_ucaptcha.stats import StatsRecorder
from scrapy_ucaptcha.workers import Workers

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

    from scrapy_ucaptcha.detection import Challenge
    from scrapy_ucaptcha.parking import Parked
    from scrapy_ucaptcha.templates import Template

__all__ = ["ERROR_KEY", "STATE_KEY", "UCaptchaMiddleware"]

logger = logging.getLogger(__name__)

INFO_KEY = "ucaptcha"

#: ``running``; ``stopping``: the solver stopped for good, the spider closes once nothing waits;
#: ``closing``: we asked the engine to close; ``closed``: ``spider_closed`` arrived.
Lifecycle = Literal["running", "stopping", "closing", "closed"]


class UCaptchaMiddleware:
    """Solves CAPTCHA challenges without holding a ``CONCURRENT_REQUESTS`` unit while it waits."""

    def __init__(self, crawler: Crawler, config: Config, spider: SpiderTask = None) -> None:
        self.crawler = crawler
        self.config = config
        assert crawler.stats is not None
        self.stats = StatsRecorder(crawler.stats)
        self.client = config.make_client(on_call=self.stats.api_call)
        self.callbacks = (
            CallbackListener(*config.callback_listen, url_template=config.callback_url)
            if config.callback_url is not None and config.callback_listen is not None
            else None
        )
        cluster: Cluster | None = None
        if config.redis_url is not None:
            prefix = config.redis_prefix % {"spider": crawler.spidercls.name}
            cluster = Cluster.from_url(config.redis_url, prefix, lease_time=config.lease_time)
        self.solver = Solver(
            config,
            self.client,
            self.stats,
            on_stop=self._on_stop,
            callbacks=self.callbacks,
            budget_store=cluster.budget_store() if cluster is not None else None,
        )
        self.lot = ParkingLot()
        self.scope = DomainScope()
        self._jobs = Jobs()  # one per parked request that has a task slot
        self._solving = 0  # jobs running: at most UCAPTCHA_MAX_CONCURRENT_TASKS
        self._feedback = Jobs()  # reports of rejected and accepted tokens
        self.layers = Layers(spider)
        self._any_presolve = self.layers.spider_presolves or any(
            entry.template.presolve for entry in config.templates.entries
        )
        self.progress = Progress(
            crawler.stats,
            crawler.settings.getfloat("LOGSTATS_INTERVAL"),
            lambda: (self.waiting, self.solver.in_flight),
        )
        self._lifecycle: Lifecycle = "running"
        self._closer: asyncio.Future[None] | None = None
        self._retry: RetryMiddleware | None = None
        jobdir = job_dir(crawler.settings)
        self._keeper = JobDirKeeper(jobdir) if jobdir else None
        #: A distributed crawl's leases and shared clearances (None: this worker alone).
        self.workers = (
            Workers(
                cluster,
                crawler=crawler,
                stats=self.stats,
                lot=self.lot,
                scope=self.scope,
                jobs=self._jobs,
                hand_back=self._hand_back,
                send=self._send,
            )
            if cluster is not None
            else None
        )
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        # connected only while a marker is on its way to the scheduler: every request of the
        # crawl is scheduled, and a receiver costs each of them a dispatch
        self._markers_out = 0
        self._listening = False  # whether _request_scheduled is connected
        crawler.signals.connect(self._spider_idle, signal=signals.spider_idle)
        crawler.signals.connect(self._spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        config = Config.from_settings(crawler.settings)
        if not is_asyncio_reactor_installed():
            raise ConfigError(
                "scrapy-ucaptcha needs TWISTED_REACTOR = "
                "'twisted.internet.asyncioreactor.AsyncioSelectorReactor'"
            )
        warn_at_start(crawler.settings, config, cls)
        return cls(crawler, config, spider_task(crawler))

    @property
    def waiting(self) -> int:
        """Requests parked, following a domain solve, or handed back and not answered yet."""
        return len(self.lot) + self.scope.followers + self.lot.tickets

    @property
    def _closed(self) -> bool:
        return self._lifecycle == "closed"

    # --- Scrapy hooks ---------------------------------------------------------------------------

    async def process_request(
        self, request: Request, spider: Spider | None = None
    ) -> Request | None:
        meta = request.meta
        if CARRY_KEY in meta:
            apply_carried_cookies(request)
        error = error_from_meta(meta.pop(ERROR_KEY, None))
        if error is not None:
            self.stats.inc(keys.GAVE_UP)
            self._settle(request)
            raise error
        if self.layers.never(request) or self._closed or STATE_KEY in meta:
            return None
        task = meta.get(TASK_KEY)
        if not self._any_presolve and (task is None or not isinstance(task, Mapping)):
            return None
        template = self._template_for(request)
        if template is None or not template.solve or not template.presolve:
            return None
        self.stats.inc(keys.PRESOLVED)
        return self._park_or_refuse(request, None, None, template, None)

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        meta = request.meta
        origin = self._settle(request)
        self._check_pin(request)
        if self.layers.never(request) or self._closed:
            return response
        state = RequestState.from_meta(meta.get(STATE_KEY))
        template = self._template_for(request, state.pattern if state is not None else None)
        if template is None or not template.solve:
            return response
        finding = find_challenge(response, template, self.config.detectors)
        challenge = finding.challenge
        if finding.widget_ignored:
            self.stats.inc(keys.WIDGETS_IGNORED)
        if challenge is None:
            if state is not None:
                await self._answered(request, response, state)
            return response
        self.stats.inc(keys.CHALLENGES)
        self.stats.inc(f"{keys.CHALLENGES}/{challenge.kind}")
        wall = walls.wall_for(challenge) if not challenge.solvable else None
        if wall is not None and self._wall_solvable(wall, request, template):
            challenge = replace(challenge, solvable=True)
            self.stats.inc(f"{keys.COOKIE_WALLS}/{wall.kind}")
        if not challenge.solvable:
            self.stats.inc(keys.UNSOLVABLE)
            logger.info(
                "%s is a %s challenge, which a token cannot solve: passed on unsolved",
                response.url,
                challenge.kind,
                extra={"spider": self.crawler.spider},
            )
            return response
        if state is not None and state.solution is not None:
            self._rejected(request, state)
        if (
            self.workers is not None
            and template.scope == "domain"
            and await self.workers.join_scope(request, template, state, origin)
        ):
            return self._marker(request, "resent")
        return self._park_or_refuse(request, response, challenge, template, state, origin=origin)

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> Request | None:
        """A request we handed back (with its state) failed to download: let RetryMiddleware
        retry it (its copies keep the ticket and the state); when it will not, the request ends
        in its errback with :class:`CaptchaSolveError` (``download_failed``, the download error as
        its cause)."""
        state = RequestState.from_meta(request.meta.get(STATE_KEY))
        if state is None or isinstance(exception, IgnoreRequest):
            self._settle(request)
            return None
        if self._retry is not None and isinstance(exception, Exception):
            again = self._retry.process_exception(request=request, exception=exception)
            if isinstance(again, Request):
                return again
        self._settle(request)
        if state.leads:
            assert state.group is not None
            # the leader's re-issued request failed: let the followers try on their own
            self._send(self.scope.retry_alone(state.group))
            self._abandon_lead(state.group)
        self.stats.inc(keys.GAVE_UP)
        error = state.error(
            f"the request sent after the challenge failed to download: {exception!r}",
            "download_failed",
        )
        logger.warning("%s", error, extra={"spider": self.crawler.spider})
        raise error from exception

    def _wall_solvable(self, wall: walls.CookieWall, request: Request, template: Template) -> bool:
        """A cookie wall is solved through the request's proxy, or as its template says."""
        if walls.opted_in(wall, template):
            return True
        return self.config.proxy_passthrough and bool(request.meta.get("proxy"))

    def _check_pin(self, request: Request) -> None:
        """A re-issue must come back through the proxy its task was solved through."""
        kept = identity.pin_kept(request)
        request.meta.pop(identity.PIN_KEY, None)
        if kept:
            return
        self.stats.inc(keys.IDENTITY_CHANGED)
        logger.warning(
            "%s was re-issued through another proxy than the one its task was solved through "
            "(a rotating-proxy middleware?); enable scrapy_ucaptcha.UCaptchaIdentityMiddleware "
            "after it (the add-on does)",
            request,
            extra={"spider": self.crawler.spider},
        )

    def _identity_key(self, request: Request) -> str:
        try:
            return identity.identity_of(request).key
        except identity.ProxyError:
            return "unusable-proxy"

    def _settle(self, request: Request) -> Request | None:
        """A request we handed back got its answer (after any redirects) or its error; return
        the request as it was before its token, when this process knows it."""
        settled = self.lot.settle(request.meta.pop(TICKET_KEY, None))
        if settled is None:
            return None
        self._maybe_close()
        return settled.origin

    def _template_for(
        self, request: Request, pattern: str | None = None, *, log: bool = True
    ) -> Template | None:
        """The template of ``request`` (the one of ``pattern`` for a request we sent), with its
        spider's and request's ``ucaptcha_task`` laid over it; ``None`` when the meta is wrong."""
        templates = self.config.templates
        template = templates.get(pattern) if pattern is not None else templates.for_url(request.url)
        try:
            return self.layers.template(template, request)
        except ValueError as exc:
            if log:
                logger.error(
                    "ignoring the %s meta of %s: %s",
                    TASK_KEY,
                    request,
                    exc,
                    extra={"spider": self.crawler.spider},
                )
            return None

    def is_challenge(self, response: Response, request: Request) -> bool:
        """Whether ``response`` is a challenge for ``request``'s template (as for
        :class:`UCaptchaCachePolicy`: nothing is counted or logged)."""
        if self.layers.never(request):
            return False
        state = RequestState.from_meta(request.meta.get(STATE_KEY))
        template = self._template_for(request, state.pattern if state else None, log=False)
        if template is None:
            return False
        return find_challenge(response, template, self.config.detectors).challenge is not None

    # --- parking --------------------------------------------------------------------------------

    def _park_or_refuse(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: RequestState | None,
        *,
        origin: Request | None = None,
    ) -> Request:
        """Park ``request`` (return the marker to hand back), or raise its CaptchaSolveError,
        which goes straight to its errback. ``origin``: ``request`` before its token."""
        if state is None:
            state = RequestState(url=request.url, pattern=template.pattern, presolve=not challenge)
        try:
            return self._park(request, response, challenge, template, state, origin=origin)
        except CaptchaSolveError as exc:
            self.stats.inc(keys.GAVE_UP)
            logger.warning("%s", exc, extra={"spider": self.crawler.spider})
            raise

    def _park(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: RequestState,
        *,
        origin: Request | None,
    ) -> Request:
        wall = walls.wall_for(challenge) if challenge is not None else None
        if (template.scope == "domain" or wall is not None) and not state.presolve:
            key = (template.pattern, urlsplit(request.url).netloc)
            if wall is not None:  # one cookie per host and identity (proxy, User-Agent)
                key = (template.pattern, f"{key[1]}|{self._identity_key(request)}")
            if not (state.leads and state.group == key):
                lease = self.workers.new_lease() if self.workers is not None else None
                join = self.scope.join(key, origin or request, state, lease=lease)
                if join.action == "follow":
                    self.stats.inc(keys.SHARED)
                    if self.workers is not None:
                        self.workers.lease(lease, origin or request)
                    return self._marker(request, "following")
                if join.action == "resend":
                    self._hand_back(origin or request, join.state, priority=request.priority)
                    return self._marker(request, "resent")
                state = join.state
        try:
            plan = self._plan(request, response, challenge, template, state)
        except CaptchaSolveError as exc:
            if state.leads:
                assert state.group is not None
                self._fail_followers(self.scope.fail(state.group), exc)
            raise
        parked = self.lot.park(request, state, template, plan, origin)
        if self.workers is not None:
            parked.lease = self.workers.new_lease()
            self.workers.lease(parked.lease, parked.origin)
        if state.leads:
            assert state.group is not None
            self.scope.solving(state.group, parked.id)
        self._start(parked)
        logger.debug(
            "parked %s (%s, attempt %d)",
            request,
            plan.task.get("type"),
            state.attempts + 1,
            extra={"spider": self.crawler.spider},
        )
        return self._marker(request, parked.id)

    def _start(self, parked: Parked) -> None:
        """Solve for ``parked`` now if a task slot is free, else once one is: until then it has no
        job, so a request waiting for a slot costs only its place in the lot."""
        if self._solving >= self.config.max_concurrent_tasks:
            self.lot.wait_for_slot(parked)
            return
        self._solving += 1
        parked.job = self._jobs.spawn(self._solve_and_reissue(parked))
        parked.job.add_done_callback(self._slot_freed)

    def _slot_freed(self, job: asyncio.Task[None]) -> None:
        self._solving -= 1
        if self._lifecycle == "running":
            waiting = self.lot.next_for_slot()
            if waiting is not None:
                self._start(waiting)

    def _plan(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: RequestState,
    ) -> TaskPlan:
        """What solving and re-issuing need; raise CaptchaSolveError when it cannot be done."""
        reason = self.solver.stop_reason
        if reason is not None:
            raise state.error_for_code(f"solving stopped: {reason}", reason)
        if state.attempts >= self.config.max_attempts:
            raise state.error(f"still challenged after {state.attempts} solve(s)", "max_attempts")
        try:
            plan = plan_task(
                template,
                request=request,
                response=response,
                challenge=challenge,
                presolve=state.presolve,
                task_types=self.config.task_types,
            )
        except PlanError as exc:
            raise state.error(str(exc), "bad_template") from None
        dialect = self.config.dialect
        try:
            task = identity.with_identity(
                plan.task,
                identity.identity_of(request),
                type_pinned="type" in template.task,
                passthrough=self.config.proxy_passthrough,
                policy=identity.ProxyPolicy(dialect.proxy_style, dialect.proxy_needs_ip),
                allow_private=self.config.proxy_allow_private,
            )
        except identity.ProxyError as exc:
            raise state.error(str(exc), "bad_proxy") from None
        return replace(plan, task=task)

    def _marker(self, request: Request, park: int | str) -> Request:
        """The copy of ``request`` returned to the engine, which :meth:`_request_scheduled`
        drops: ``park`` is the parked id, ``"following"`` or ``"resent"``. The engine schedules
        it as soon as ``process_response`` returns it, so the handler is connected from now until
        no marker is on its way."""
        if not self._listening:
            self.crawler.signals.connect(self._request_scheduled, signal=signals.request_scheduled)
            self._listening = True
        self._markers_out += 1
        return request.replace(meta={**request.meta, PARK_KEY: park}, dont_filter=True)

    def _request_scheduled(self, request: Request, spider: Spider) -> None:
        if PARK_KEY not in request.meta:
            return
        self._markers_out -= 1
        if not self._markers_out:
            # not while the signal's receivers are being iterated: that would skip the next one
            asyncio.get_running_loop().call_soon(self._stop_listening)
        raise IgnoreRequest("parked while its CAPTCHA is solved")

    def _stop_listening(self) -> None:
        if self._listening and not self._markers_out:
            self.crawler.signals.disconnect(
                self._request_scheduled, signal=signals.request_scheduled
            )
            self._listening = False

    def _spider_idle(self, spider: Spider) -> None:
        if self._closed:
            return
        if not len(self.lot):
            # The engine is idle, so nothing we handed back is still in the scheduler or the
            # downloader: tickets still out were dropped by another component (and are counted
            # as abandoned), and followers whose leader vanished try on their own.
            dropped = self.lot.drop_tickets()
            if dropped:
                logger.warning(
                    "%d request(s) handed back by scrapy-ucaptcha were dropped before download",
                    dropped,
                    extra={"spider": spider},
                )
                self.stats.inc(keys.ABANDONED, dropped)
            if self.workers is None:  # in a distributed crawl, the leads' locks tell instead
                self._send(self.scope.stalled())
        if self.waiting or (self.workers is not None and self.workers.leased):
            raise DontCloseSpider
        self._maybe_close()

    # --- solving --------------------------------------------------------------------------------

    async def _solve_and_reissue(self, parked: Parked) -> None:
        try:
            solution = await self._solve(parked)
            state = replace(parked.state.with_task(solution.task_id), solution=solution)
            try:
                request = self._with_solution(parked, solution)
            except inject.InjectError as exc:
                raise state.error(str(exc), "bad_template") from None
        except CaptchaSolveError as exc:
            self._give_up(parked, exc)
            return
        except asyncio.CancelledError:
            raise  # closing, or stopped (_on_stop has ended the request)
        except Exception as exc:  # a bug must not lose the request
            logger.exception("unexpected error while solving for %s", parked.request)
            self._give_up(parked, parked.state.error(f"internal error: {exc!r}", "internal"))
            return
        if not self.lot.leave(parked):
            # already ended (the solver stopped meanwhile): a paid token nobody uses
            self.stats.inc(keys.WASTED)
            return
        self._unlease(parked.lease)
        logger.debug(
            "re-issuing %s with token %s from task %s",
            request,
            truncate_token(solution.token),
            solution.task_id,
            extra={"spider": self.crawler.spider},
        )
        if state.leads:
            assert state.group is not None
            self.scope.verifying(state.group)
        self._hand_back(request, state, priority=parked.request.priority, origin=parked.request)

    def _with_solution(self, parked: Parked, solution: Solution) -> Request:
        """The re-issue: the token (or a cookie wall's cookie) injected, and the request pinned
        to the proxy and User-Agent its task was solved with."""
        wall = parked.plan.wall
        if wall is None:
            request = inject.apply(
                parked.plan.inject, parked.request, solution.token, solution.solution
            )
        else:
            value = walls.cookie_value(wall, solution.solution, solution.token)
            request = inject.apply(parked.plan.inject, parked.request, value, solution.solution)
            request = walls.with_cookie(request, wall.cookie, value)
        identity.pin(request, _user_agent_of(solution))
        return request

    async def _solve(self, parked: Parked) -> Solution:
        """Create tasks until one gives a solution; raise CaptchaSolveError when none will."""
        last_code: str = "max_attempts"
        while True:
            state = parked.state
            if state.attempts >= self.config.max_attempts:
                raise state.error_for_code(f"no solution after {state.attempts} task(s)", last_code)
            state = parked.state = replace(state, attempts=state.attempts + 1)
            try:
                task = await self._task_with_image(parked)
                task = await self._task_with_challenge(parked, task)
                return await self.solver.solve(
                    task,
                    domain=urlsplit(state.url).hostname or "",
                    selection_mode=parked.template.selection_mode,
                    provider=parked.template.provider,
                )
            except SolveFailed as failed:
                last_code = failed.code
                state = parked.state = state.with_task(failed.task_id)
                if not failed.retry:
                    raise state.error_for_code(str(failed), failed.code) from None

    async def _task_with_challenge(self, parked: Parked, task: dict[str, Any]) -> dict[str, Any]:
        """GeeTest v3: a fresh ``gt``/``challenge`` from the template's ``challenge_url``, fetched
        through Scrapy (same cookies) before each task: a challenge serves one solve only."""
        url = parked.plan.challenge_url
        if url is None:
            return task
        engine = self.crawler.engine
        assert engine is not None
        request = geetest.challenge_request(
            url, priority=parked.request.priority + self.config.reissue_priority
        )
        try:
            response = await engine.download_async(request)
        except Exception as exc:
            raise SolveFailed(
                f"GeeTest challenge {url} not downloaded: {exc!r}",
                code="challenge_download",
                retry=True,
            ) from None
        try:
            return geetest.with_challenge(task, response.status, response.body)
        except ValueError as exc:
            raise SolveFailed(
                f"GeeTest challenge {url}: {exc}", code="challenge_download", retry=True
            ) from None

    async def _task_with_image(self, parked: Parked) -> dict[str, Any]:
        task, image_url = parked.plan.task, parked.plan.image_url
        if image_url is None or "body" in task:
            return task
        engine = self.crawler.engine
        assert engine is not None
        image_request = Request(
            image_url,
            meta={TASK_KEY: False},
            dont_filter=True,
            priority=parked.request.priority + self.config.reissue_priority,
        )
        try:
            response = await engine.download_async(image_request)
        except Exception as exc:
            raise SolveFailed(
                f"captcha image {image_url} not downloaded: {exc!r}",
                code="image_download",
                retry=True,
            ) from None
        if response.status != 200 or not response.body:
            raise SolveFailed(
                f"captcha image {image_url} answered HTTP {response.status}",
                code="image_download",
                retry=True,
            )
        task["body"] = base64.b64encode(response.body).decode("ascii")
        return task

    # --- handing back ---------------------------------------------------------------------------

    def _hand_back(
        self,
        request: Request,
        state: RequestState | None,
        *,
        priority: int,
        error: CaptchaSolveError | None = None,
        origin: Request | None = None,
        carry: Sequence[str] = (),
    ) -> None:
        """Crawl ``request`` again (re-issue, follower, failure), tracked until answered.

        If the engine refuses it (a scheduler that cannot store it, a bug), the request
        (``origin``, the one without a token, when given) ends in its errback instead."""
        meta = {
            k: v
            for k, v in request.meta.items()
            if k not in (PARK_KEY, STATE_KEY, ERROR_KEY, TICKET_KEY)
        }
        if state is not None:
            meta[STATE_KEY] = state.to_meta()
        if error is not None:
            meta[ERROR_KEY] = error_to_meta(error)
        if carry:
            meta[CARRY_KEY] = list(carry)
        engine = self.crawler.engine
        if self._closed or engine is None:
            self.stats.inc(keys.ABANDONED)
            return
        # In a distributed crawl any worker may answer it: no ticket (this worker does not wait)
        ticket = meta[TICKET_KEY] = self.lot.issue(origin) if self.workers is None else None
        if ticket is None:
            del meta[TICKET_KEY]
        try:
            engine.crawl(
                request.replace(
                    meta=meta, dont_filter=True, priority=priority + self.config.reissue_priority
                )
            )
        except Exception as exc:
            if ticket is not None:
                self.lot.settle(ticket)
            if error is not None:
                logger.exception(
                    "%s could not be handed back with its error; its errback is not called",
                    request,
                    extra={"spider": self.crawler.spider},
                )
                self.stats.inc(keys.ABANDONED)
                return
            logger.exception(
                "%s could not be handed back to the engine",
                request,
                extra={"spider": self.crawler.spider},
            )
            failed = (state or RequestState(url=request.url, pattern="*")).error(
                f"internal error: {exc!r}", "internal"
            )
            logger.warning("%s", failed, extra={"spider": self.crawler.spider})
            self._hand_back(origin or request, None, priority=priority, error=failed)

    def _unlease(self, lease: str | None) -> None:
        if self.workers is not None:
            self.workers.unlease(lease)

    def _abandon_lead(self, key: tuple[str, str] | None) -> None:
        if self.workers is not None:
            self.workers.abandon_lead(key)

    def _send(self, followers: list[Follower], carry: Sequence[str] = ()) -> None:
        for follower in followers:
            self._hand_back(
                follower.request, follower.state, priority=follower.request.priority, carry=carry
            )
            self._unlease(follower.lease)

    def _fail_followers(self, followers: list[Follower], exc: CaptchaSolveError) -> None:
        for follower in followers:
            self._hand_back(follower.request, None, priority=follower.request.priority, error=exc)
            self._unlease(follower.lease)

    # --- outcomes -------------------------------------------------------------------------------

    async def _answered(self, request: Request, response: Response, state: RequestState) -> None:
        """A request sent with a token (or after a clearance) got an answer that is no challenge."""
        if response.status >= 400:
            # Not the page (a 5xx after the site used the token, say): keep the state, so that
            # a retry that meets the challenge again counts as one more attempt of this request.
            return
        source = state.solution or state.shared_from
        request.meta.pop(STATE_KEY, None)
        if state.leads:
            assert state.group is not None
            generation = None
            carried = request.meta.get(CARRY_KEY)
            cookies = [str(c) for c in carried] if isinstance(carried, list) else []
            if self.workers is not None:  # the clearance is the whole crawl's
                generation = await self.workers.publish(state.group, cookies)
            followers = self.scope.release(state.group, state.solution, generation=generation)
            for follower in followers:  # the clearance is bound to the leader's identity: theirs
                identity.pin(follower.request, _user_agent_of(state.solution))
            self._send(followers, carry=cookies)
        if source is None:
            return
        self.stats.inc(keys.SOLVED)
        if state.solution is not None and self.config.feedback and self.config.feedback_accepted:
            self._feedback.spawn(
                self.solver.feedback(
                    state.solution.task_id, invalid=False, message="Solution accepted successfully"
                )
            )
        info: dict[str, Any] = {
            "task_id": source.task_id,
            "type": source.task_type,
            "cost": source.cost if state.solution is not None else 0.0,
            "solve_time_ms": source.solve_time_ms,
            "attempts": state.attempts,
        }
        if state.solution is None:
            info["shared"] = True
        request.meta[INFO_KEY] = info

    def _rejected(self, request: Request, state: RequestState) -> None:
        solution = state.solution
        assert solution is not None
        self.stats.inc(keys.REJECTED)
        logger.info(
            "token of task %s was rejected by %s",
            solution.task_id,
            request.url,
            extra={"spider": self.crawler.spider},
        )
        if self.config.feedback:
            self._feedback.spawn(
                self.solver.feedback(
                    solution.task_id, invalid=True, message="Token was rejected by the target site"
                )
            )

    def _give_up(self, parked: Parked, exc: CaptchaSolveError) -> None:
        """End a parked request in its errback (once), and its domain-scope followers with it."""
        if not self.lot.leave(parked):
            return
        self._unlease(parked.lease)
        logger.warning("%s", exc, extra={"spider": self.crawler.spider})
        self._hand_back(parked.request, None, priority=parked.request.priority, error=exc)
        if parked.state.leads:
            assert parked.state.group is not None
            self._fail_followers(self.scope.fail(parked.state.group), exc)
            self._abandon_lead(parked.state.group)

    # --- stop and shutdown ----------------------------------------------------------------------

    def _on_stop(self, reason: str) -> None:
        """The solver stopped for good: end every parked request in its errback, then close."""
        if self._lifecycle == "running":
            self._lifecycle = "stopping"
        current = asyncio.current_task()
        for parked in self.lot.parked():
            if parked.job is current:
                continue  # it gets SolveFailed from the solver and gives up itself
            if parked.job is not None:
                parked.job.cancel()
            self._give_up(parked, parked.state.error_for_code(f"solving stopped: {reason}", reason))
        self._maybe_close()

    def _maybe_close(self) -> None:
        reason = self.solver.stop_reason
        if self._lifecycle != "stopping" or reason is None or self.waiting:
            return
        engine = self.crawler.engine
        if engine is not None:
            self._lifecycle = "closing"
            # not one of self._jobs: _spider_closed, which runs inside it, cancels those
            self._closer = asyncio.ensure_future(
                engine.close_spider_async(reason=f"ucaptcha_{reason.lower()}")
            )

    async def _spider_opened(self, spider: Spider) -> None:
        self._retry = self.crawler.get_downloader_middleware(RetryMiddleware)
        cache = self.crawler.get_downloader_middleware(HttpCacheMiddleware)
        if cache is not None and isinstance(cache.policy, UCaptchaCachePolicy):
            cache.policy.judge_with(self.is_challenge)
        self.progress.start(spider)
        if self.callbacks is not None:
            self.callbacks.start()
        if self._keeper is not None:
            self._resume(spider, self._keeper.load(spider))
        if self.workers is not None:
            self.workers.start(spider)

    def _resume(self, spider: Spider, requests: list[Request]) -> None:
        """Crawl again what the last stop kept (``dont_filter``: the dupefilter saw them)."""
        if not requests:
            return
        engine = self.crawler.engine
        assert engine is not None
        logger.info(
            "re-crawling %d request(s) that waited for a CAPTCHA solve when the job last stopped",
            len(requests),
            extra={"spider": spider},
        )
        self.stats.inc(keys.RESUMED, len(requests))
        for request in requests:
            engine.crawl(request)

    async def _spider_closed(self, spider: Spider, reason: str) -> None:
        self._lifecycle = "closed"
        await self.progress.stop()
        if self.workers is not None:
            await self.workers.stop_tending(self.config.http_timeout)
        # what waits, taken before the jobs are cancelled (a cancelled job ends nothing)
        waiting = [parked.origin for parked in self.lot.leave_all()]
        waiting += [follower.request for follower in self.scope.take_followers()]
        handed_back = self.lot.drop_tickets()
        self.solver.close()
        await self._jobs.cancel(self.config.http_timeout)
        # send the last reports, within one API call's time
        await self._feedback.wait(self.config.http_timeout)
        reckoning = await self.solver.reckon_abandoned(self.config.http_timeout)
        if self.workers is not None:
            await self.workers.release(spider, waiting, reckoning, self.config.http_timeout)
        else:
            self._keep(spider, waiting, handed_back, reckoning)
        if self.callbacks is not None:
            if self.callbacks.unknown:
                self.stats.inc(keys.CALLBACKS_UNKNOWN, self.callbacks.unknown)
            await self.callbacks.stop()
        await self.solver.finish()  # the last balance reconciliation, before the client closes
        if self.workers is not None:  # after the last correction of the shared budget
            await self.workers.aclose()
        await self.client.close()

    def _keep(
        self, spider: Spider, waiting: list[Request], handed_back: int, reckoning: Reckoning
    ) -> None:
        """Keep the waiting requests for the next run (with JOBDIR), count what is lost, and say
        it in one line."""
        kept, abandoned = 0, len(waiting) + handed_back
        if self._keeper is not None:
            # requests handed back are in the scheduler's queue, which JOBDIR keeps
            kept, refused = self._keeper.save([original(r) for r in waiting], spider)
            abandoned = len(refused)
            for request in refused:
                logger.error(
                    "%s cannot be kept for the next run (it cannot be serialised)",
                    request,
                    extra={"spider": spider},
                )
        if kept:
            self.stats.inc(keys.KEPT, kept)
        if abandoned:
            self.stats.inc(keys.ABANDONED, abandoned)
        if not (waiting or handed_back or reckoning.tasks):
            return
        logger.warning(
            "closed with %d request(s) waiting for a CAPTCHA solve and %d sent back to the "
            "scheduler: %d kept for the next run, %d abandoned; %d task(s) in flight abandoned, "
            "%d of them already solved and charged ($%.4f), %d still solving",
            len(waiting),
            handed_back,
            kept,
            abandoned,
            reckoning.tasks,
            reckoning.charged,
            reckoning.cost,
            reckoning.pending,
            extra={"spider": spider},
        )


def _user_agent_of(solution: Solution | None) -> str | None:
    agent = solution.solution.get("userAgent") if solution is not None else None
    return agent if isinstance(agent, str) and agent else None
