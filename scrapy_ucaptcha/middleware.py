"""The downloader middleware: detect → park → solve → re-issue → verify.

A challenged request leaves the downloader at once: ``process_response`` returns a marked copy of
it, which our ``request_scheduled`` handler drops (``IgnoreRequest``, the documented way), so the
request's ``CONCURRENT_REQUESTS`` unit is free while its task is solved in the background. When the
token is ready, the request is re-issued through ``engine.crawl`` with the token injected and a
priority boost. If the site still shows the challenge, the token was rejected: feedback, solve
again, up to ``UCAPTCHA_MAX_ATTEMPTS``. A request that cannot be solved is crawled once more
carrying its :class:`CaptchaSolveError`, which ``process_request`` raises so that it reaches the
request's errback.

Nothing is lost on the way: every request handed back to the engine carries a ticket until its
answer (after any redirects) or its error comes back through this middleware. Parked requests,
domain-scope followers and tickets keep the spider open (``spider_idle``); whatever is left when
the spider closes is counted as abandoned.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from itertools import count
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.utils.reactor import is_asyncio_reactor_installed

from scrapy_ucaptcha import identity, inject, walls
from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.callbacks import CallbackListener
from scrapy_ucaptcha.client import TaskId, truncate_token
from scrapy_ucaptcha.config import Config, ConfigError
from scrapy_ucaptcha.errors import CaptchaSolveError
from scrapy_ucaptcha.rules import find_challenge
from scrapy_ucaptcha.solver import Solution, SolveFailed, Solver
from scrapy_ucaptcha.stats import StatsRecorder
from scrapy_ucaptcha.templates import (
    DEFAULT_TOKEN_FIELDS,
    Template,
    build_task,
    family_of,
    kind_for_task_type,
)

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response
    from typing_extensions import Self

    from scrapy_ucaptcha.detection import Challenge

__all__ = ["UCaptchaMiddleware"]

logger = logging.getLogger(__name__)

STATE_KEY = "_ucaptcha"
PARK_KEY = "_ucaptcha_park"
ERROR_KEY = "_ucaptcha_error"
TICKET_KEY = "_ucaptcha_ticket"
INFO_KEY = "ucaptcha"
TASK_KEY = "ucaptcha_task"

GroupKey = tuple[str, str]


@dataclass(frozen=True)
class _State:
    """What travels with a challenged request in ``meta["_ucaptcha"]``."""

    url: str  # the URL that was challenged first
    template: Template  # the template that found the challenge: it also verifies the answer
    attempts: int = 0  # tasks created for this request so far
    task_ids: tuple[TaskId, ...] = ()
    solution: Solution | None = None  # the token this request carries
    presolve: bool = False
    group: GroupKey | None = None  # domain-scope group
    leader: bool = False
    generation: int = -1  # the group clearance this request was re-sent after
    shared_from: Solution | None = None


@dataclass(eq=False)
class _Parked:
    """A request waiting for its token, and what re-issuing it needs (not the page)."""

    id: int
    request: Request
    state: _State
    task: dict[str, Any] = field(repr=False)  # may carry proxy credentials
    plan: inject.InjectPlan
    image_url: str | None = None
    wall: walls.CookieWall | None = None  # a cookie wall: the solution is this cookie
    job: asyncio.Task[None] | None = None


@dataclass(eq=False)
class _Group:
    """Requests that one domain-scope solve serves."""

    busy: bool = False  # a leader is being solved or its token is out being verified
    leader_id: int | None = None
    followers: list[Request] = field(default_factory=list)
    generation: int = 0
    solution: Solution | None = None


class UCaptchaMiddleware:
    """Solves CAPTCHA challenges without holding a ``CONCURRENT_REQUESTS`` unit while it waits."""

    def __init__(self, crawler: Crawler, config: Config) -> None:
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
        self.solver = Solver(
            config, self.client, self.stats, on_stop=self._on_stop, callbacks=self.callbacks
        )
        self._ids = count(1)
        self._parked: dict[int, _Parked] = {}
        self._groups: dict[GroupKey, _Group] = {}
        self._tickets: set[int] = set()  # requests handed back to the engine, not answered yet
        self._jobs: set[asyncio.Task[Any]] = set()
        self._feedback: set[asyncio.Task[Any]] = set()
        self._any_presolve = any(entry.template.presolve for entry in config.templates.entries)
        self._closing = False
        self._close_requested = False
        self._closer: asyncio.Future[None] | None = None
        crawler.signals.connect(self._spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self._request_scheduled, signal=signals.request_scheduled)
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
        return cls(crawler, config)

    @property
    def waiting(self) -> int:
        """Requests parked, following a domain solve, or handed back and not answered yet."""
        followers = sum(len(group.followers) for group in self._groups.values())
        return len(self._parked) + followers + len(self._tickets)

    # --- Scrapy hooks ---------------------------------------------------------------------------

    async def process_request(
        self, request: Request, spider: Spider | None = None
    ) -> Request | None:
        meta = request.meta
        error = meta.pop(ERROR_KEY, None)
        if isinstance(error, CaptchaSolveError):
            self.stats.inc(keys.GAVE_UP)
            self._settle(request)
            raise error
        meta_task = meta.get(TASK_KEY)
        if meta_task is False or self._closing or STATE_KEY in meta:
            return None
        if not self._any_presolve and not isinstance(meta_task, Mapping):
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
        self._settle(request)
        self._check_pin(request)
        if meta.get(TASK_KEY) is False or self._closing:
            return response
        state = meta.get(STATE_KEY)
        state = state if isinstance(state, _State) else None
        template = state.template if state is not None else self._template_for(request)
        if template is None or not template.solve:
            return response
        finding = find_challenge(response, template, self.config.detectors)
        challenge = finding.challenge
        if finding.widget_ignored:
            self.stats.inc(keys.WIDGETS_IGNORED)
        if challenge is None:
            if state is not None:
                self._answered(request, response, state)
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
        return self._park_or_refuse(request, response, challenge, template, state)

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> None:
        self._settle(request)
        state = request.meta.get(STATE_KEY)
        if isinstance(state, _State) and state.leader and state.group is not None:
            # the leader's re-issued request failed: let the followers try on their own
            self._release_group(state.group, success=False)

    def _wall_solvable(self, wall: walls.CookieWall, request: Request, template: Template) -> bool:
        """A cookie wall is solved through the request's proxy, or as its template says."""
        if walls.opted_in(wall, template):
            return True
        return self.config.proxy_passthrough and bool(request.meta.get("proxy"))

    def _check_pin(self, request: Request) -> None:
        """A re-issue must come back through the proxy its task was solved through."""
        if identity.pin_kept(request):
            request.meta.pop(identity.PIN_KEY, None)
            return
        request.meta.pop(identity.PIN_KEY, None)
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

    def _settle(self, request: Request) -> None:
        """A request we handed back got its answer (after any redirects) or its error."""
        ticket = request.meta.pop(TICKET_KEY, None)
        if ticket is not None:
            self._tickets.discard(ticket)
            self._maybe_close()

    def _template_for(self, request: Request) -> Template | None:
        template = self.config.templates.for_url(request.url)
        override = request.meta.get(TASK_KEY)
        if isinstance(override, Mapping):
            try:
                template = template.merged(override)
            except ValueError as exc:
                logger.error(
                    "ignoring the %s meta of %s: %s",
                    TASK_KEY,
                    request,
                    exc,
                    extra={"spider": self.crawler.spider},
                )
                return None
        return template

    # --- parking --------------------------------------------------------------------------------

    def _park_or_refuse(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: _State | None,
    ) -> Request:
        """Park ``request`` (return the marker to hand back), or raise its CaptchaSolveError,
        which goes straight to its errback."""
        if state is None:
            state = _State(url=request.url, template=template, presolve=challenge is None)
        try:
            return self._park(request, response, challenge, template, state)
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
        state: _State,
    ) -> Request:
        wall = walls.wall_for(challenge) if challenge is not None else None
        if (template.scope == "domain" or wall is not None) and not state.presolve:
            key = (template.pattern, urlsplit(request.url).netloc)
            if wall is not None:  # one cookie per host and identity (proxy, User-Agent)
                key = (template.pattern, f"{key[1]}|{self._identity_key(request)}")
            if not (state.leader and state.group == key):
                follow = self._join_group(key, request, state)
                if follow is not None:
                    return follow
                state = replace(state, group=key, leader=True)
        try:
            parked = self._prepare(request, response, challenge, template, state)
        except CaptchaSolveError as exc:
            if state.leader and state.group is not None:
                self._fail_group(state.group, exc)
            raise
        self._parked[parked.id] = parked
        if state.leader and state.group is not None:
            self._groups[state.group].leader_id = parked.id
        parked.job = self._spawn(self._solve_and_reissue(parked))
        logger.debug(
            "parked %s (%s, attempt %d)",
            request,
            parked.task.get("type"),
            state.attempts + 1,
            extra={"spider": self.crawler.spider},
        )
        return request.replace(meta={**request.meta, PARK_KEY: parked.id}, dont_filter=True)

    def _prepare(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: _State,
    ) -> _Parked:
        """What solving and re-issuing need; raise CaptchaSolveError when it cannot be done."""
        if self.solver.stop_reason is not None:
            reason = self.solver.stop_reason
            raise self._solve_error(state, f"solving stopped: {reason}", reason)
        if state.attempts >= self.config.max_attempts:
            raise self._solve_error(
                state, f"still challenged after {state.attempts} solve(s)", "max_attempts"
            )
        wall = walls.wall_for(challenge) if challenge is not None and not state.presolve else None
        page_url = response.url if response is not None else request.url
        try:
            if wall is not None and challenge is not None:
                plan = inject.InjectPlan(mode="cookie", name=wall.cookie)
                task = walls.wall_task(wall, challenge, page_url, template)
            elif challenge is None or state.presolve:
                task_type = template.task.get("type")
                kind = kind_for_task_type(task_type) if isinstance(task_type, str) else "custom"
                if challenge is not None:
                    kind = challenge.kind
                field_name = DEFAULT_TOKEN_FIELDS[family_of(kind)]
                plan = inject.prepare_presolve(template.inject, field_name, request)
                sitekey, params = template.task.get("websiteKey"), {}
            else:
                kind = challenge.kind
                plan = inject.prepare(template.inject, challenge, response)
                sitekey, params = challenge.sitekey, dict(challenge.params)
            if wall is None:
                task = build_task(
                    template,
                    kind=kind,
                    page_url=page_url,
                    sitekey=sitekey if isinstance(sitekey, str) else None,
                    params=params,
                    task_types=self.config.task_types,
                )
        except (inject.InjectError, ValueError) as exc:
            raise self._solve_error(state, str(exc), "bad_template") from None
        try:
            task = identity.with_identity(
                task,
                identity.identity_of(request),
                type_pinned="type" in template.task,
                passthrough=self.config.proxy_passthrough,
                policy=identity.policy_for(self.config.api_url),
                allow_private=self.config.proxy_allow_private,
            )
        except identity.ProxyError as exc:
            raise self._solve_error(state, str(exc), "bad_proxy") from None
        return _Parked(
            id=next(self._ids),
            request=request,
            state=state,
            task=task,
            plan=plan,
            image_url=challenge.image_url if challenge is not None else None,
            wall=wall,
        )

    def _request_scheduled(self, request: Request, spider: Spider) -> None:
        if PARK_KEY in request.meta:
            raise IgnoreRequest("parked while its CAPTCHA is solved")

    def _spider_idle(self, spider: Spider) -> None:
        if self._closing:
            return
        if not self._parked:
            # The engine is idle, so nothing we handed back is still in the scheduler or the
            # downloader: tickets still out were dropped by another component (and are counted
            # as abandoned), and followers whose leader vanished try on their own.
            if self._tickets:
                logger.warning(
                    "%d request(s) handed back by scrapy-ucaptcha were dropped before download",
                    len(self._tickets),
                    extra={"spider": spider},
                )
                self.stats.inc(keys.ABANDONED, len(self._tickets))
                self._tickets.clear()
            for key, group in list(self._groups.items()):
                if group.busy:
                    self._release_group(key, success=False)
        if self.waiting:
            raise DontCloseSpider
        self._maybe_close()

    # --- solving --------------------------------------------------------------------------------

    async def _solve_and_reissue(self, parked: _Parked) -> None:
        state = parked.state
        try:
            solution = None
            last_code = "max_attempts"
            while solution is None:
                if state.attempts >= self.config.max_attempts:
                    raise self._solve_error(
                        state, f"no solution after {state.attempts} task(s)", last_code
                    )
                state = parked.state = replace(state, attempts=state.attempts + 1)
                try:
                    task = await self._task_with_image(parked)
                    solution = await self.solver.solve(
                        task,
                        domain=urlsplit(state.url).hostname or "",
                        selection_mode=state.template.selection_mode,
                        provider=state.template.provider,
                    )
                except SolveFailed as failed:
                    last_code = failed.code
                    if failed.task_id is not None:
                        state = parked.state = replace(
                            state, task_ids=(*state.task_ids, failed.task_id)
                        )
                    if not failed.retry:
                        raise self._solve_error(state, str(failed), failed.code) from None
            state = replace(state, task_ids=(*state.task_ids, solution.task_id), solution=solution)
            try:
                self._reissue(parked, state, solution)
            except inject.InjectError as exc:
                raise self._solve_error(state, str(exc), "bad_template") from None
        except CaptchaSolveError as exc:
            self._give_up(parked, exc)
        except asyncio.CancelledError:
            raise  # closing, or stopped (_on_stop has ended the request)
        except Exception as exc:  # a bug must not lose the request
            logger.exception("unexpected error while solving for %s", parked.request)
            self._give_up(parked, self._solve_error(state, f"internal error: {exc!r}", "internal"))
        finally:
            self._parked.pop(parked.id, None)

    async def _task_with_image(self, parked: _Parked) -> dict[str, Any]:
        if parked.image_url is None or "body" in parked.task:
            return parked.task
        engine = self.crawler.engine
        assert engine is not None
        image_request = Request(
            parked.image_url,
            meta={TASK_KEY: False},
            dont_filter=True,
            priority=parked.request.priority + self.config.reissue_priority,
        )
        try:
            response = await engine.download_async(image_request)
        except Exception as exc:
            raise SolveFailed(
                f"captcha image {parked.image_url} not downloaded: {exc!r}",
                code="image_download",
                retry=True,
            ) from None
        if response.status != 200 or not response.body:
            raise SolveFailed(
                f"captcha image {parked.image_url} answered HTTP {response.status}",
                code="image_download",
                retry=True,
            )
        parked.task["body"] = base64.b64encode(response.body).decode("ascii")
        return parked.task

    def _reissue(self, parked: _Parked, state: _State, solution: Solution) -> None:
        if parked.wall is None:
            request = inject.apply(parked.plan, parked.request, solution.token, solution.solution)
        else:
            value = walls.cookie_value(parked.wall, solution.solution, solution.token)
            request = inject.apply(parked.plan, parked.request, value, solution.solution)
            request = walls.with_cookie(request, parked.wall.cookie, value)
        identity.pin(request, _user_agent_of(solution))
        if self._parked.pop(parked.id, None) is None:
            return  # already ended (the solver stopped meanwhile)
        logger.debug(
            "re-issuing %s with token %s from task %s",
            request,
            truncate_token(solution.token),
            solution.task_id,
            extra={"spider": self.crawler.spider},
        )
        self._hand_back(request, state, priority=parked.request.priority)

    def _hand_back(
        self,
        request: Request,
        state: _State | None,
        *,
        priority: int,
        error: CaptchaSolveError | None = None,
    ) -> None:
        """Crawl ``request`` again (re-issue, follower, failure), tracked until answered."""
        ticket = next(self._ids)
        meta = {k: v for k, v in request.meta.items() if k not in (PARK_KEY, STATE_KEY)}
        meta[TICKET_KEY] = ticket
        if state is not None:
            meta[STATE_KEY] = state
        if error is not None:
            meta[ERROR_KEY] = error
        request = request.replace(
            meta=meta, dont_filter=True, priority=priority + self.config.reissue_priority
        )
        engine = self.crawler.engine
        if self._closing or engine is None:
            self.stats.inc(keys.ABANDONED)
            return
        self._tickets.add(ticket)
        engine.crawl(request)

    # --- outcomes -------------------------------------------------------------------------------

    def _answered(self, request: Request, response: Response, state: _State) -> None:
        """A request sent with a token (or after a clearance) got an answer that is no challenge."""
        if response.status >= 400:
            # Not the page (a 5xx after the site used the token, say): keep the state, so that
            # a retry that meets the challenge again counts as one more attempt of this request.
            return
        source = state.solution or state.shared_from
        request.meta.pop(STATE_KEY, None)
        if state.leader and state.group is not None:
            self._release_group(state.group, success=True, solution=state.solution)
        if source is None:
            return
        self.stats.inc(keys.SOLVED)
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

    def _rejected(self, request: Request, state: _State) -> None:
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
            job = asyncio.ensure_future(
                self.solver.feedback(
                    solution.task_id, invalid=True, message="Token was rejected by the target site"
                )
            )
            self._feedback.add(job)
            job.add_done_callback(self._feedback.discard)

    def _solve_error(self, state: _State, reason: str, code: str) -> CaptchaSolveError:
        return CaptchaSolveError(
            reason, code=code, attempts=state.attempts, task_ids=state.task_ids, url=state.url
        )

    def _give_up(self, parked: _Parked, exc: CaptchaSolveError) -> None:
        """End a parked request in its errback (once), and its domain-scope followers with it."""
        if self._parked.pop(parked.id, None) is None:
            return
        logger.warning("%s", exc, extra={"spider": self.crawler.spider})
        self._hand_back(parked.request, None, priority=parked.request.priority, error=exc)
        if parked.state.leader and parked.state.group is not None:
            self._fail_group(parked.state.group, exc)

    # --- domain scope ---------------------------------------------------------------------------

    def _join_group(self, key: GroupKey, request: Request, state: _State) -> Request | None:
        """Follow the group's solve if one is running (return the marker), re-send once after a
        clearance this request missed (return that request), else lead (return None)."""
        group = self._groups.setdefault(key, _Group())
        if group.busy:
            group.followers.append(
                request.replace(meta={**request.meta, STATE_KEY: replace(state, group=key)})
            )
            self.stats.inc(keys.SHARED)
            return request.replace(meta={**request.meta, PARK_KEY: 0}, dont_filter=True)
        if group.generation > 0 and state.generation < group.generation:
            resent = replace(
                state, group=key, generation=group.generation, shared_from=group.solution
            )
            self._hand_back(request, resent, priority=request.priority)
            return request.replace(meta={**request.meta, PARK_KEY: 0}, dont_filter=True)
        group.busy = True
        return None

    def _release_group(
        self, key: GroupKey, *, success: bool, solution: Solution | None = None
    ) -> None:
        """Re-send the followers: with the new clearance, or (``success=False``) to try anew."""
        group = self._groups.get(key)
        if group is None:
            return
        if not success and group.leader_id in self._parked:
            return  # its leader is still being solved
        group.busy = False
        group.leader_id = None
        if success:
            group.generation += 1
            group.solution = solution
        followers, group.followers = group.followers, []
        for follower in followers:
            if success:  # the clearance is bound to the leader's identity, which is theirs too
                identity.pin(follower, _user_agent_of(group.solution))
            state = replace(
                follower.meta[STATE_KEY],
                generation=group.generation,
                shared_from=group.solution if success else None,
            )
            self._hand_back(follower, state, priority=follower.priority)

    def _fail_group(self, key: GroupKey, exc: CaptchaSolveError) -> None:
        """The leader gave up: its followers end with the same error."""
        group = self._groups.pop(key, None)
        for follower in group.followers if group is not None else ():
            self._hand_back(follower, None, priority=follower.priority, error=exc)

    # --- stop and shutdown ----------------------------------------------------------------------

    def _on_stop(self, reason: str) -> None:
        """The solver stopped for good: end every parked request in its errback, then close."""
        self._close_requested = True
        current = asyncio.current_task()
        for parked in list(self._parked.values()):
            if parked.job is current:
                continue  # it gets SolveFailed from the solver and gives up itself
            if parked.job is not None:
                parked.job.cancel()
            self._give_up(
                parked, self._solve_error(parked.state, f"solving stopped: {reason}", reason)
            )
        self._maybe_close()

    def _maybe_close(self) -> None:
        reason = self.solver.stop_reason
        if not self._close_requested or self._closing or reason is None or self.waiting:
            return
        engine = self.crawler.engine
        if engine is not None:
            self._close_requested = False
            # not one of self._jobs: _spider_closed, which runs inside it, cancels those
            self._closer = asyncio.ensure_future(
                engine.close_spider_async(reason=f"ucaptcha_{reason.lower()}")
            )

    async def _spider_opened(self, spider: Spider) -> None:
        if self.callbacks is not None:
            self.callbacks.start()

    async def _spider_closed(self, spider: Spider, reason: str) -> None:
        self._closing = True
        abandoned = self.waiting
        self.solver.close()
        current = asyncio.current_task()
        jobs = [job for job in self._jobs if not job.done() and job is not current]
        for job in jobs:
            job.cancel()
        if jobs:  # bounded: an HTTP call in flight ends within its timeout
            await asyncio.wait(jobs, timeout=self.config.http_timeout)
        if self._feedback:  # report the last rejected tokens, within one API call's time
            await asyncio.wait(set(self._feedback), timeout=self.config.http_timeout)
        if abandoned:
            self.stats.inc(keys.ABANDONED, abandoned)
        if self.callbacks is not None:
            if self.callbacks.unknown:
                self.stats.inc(keys.CALLBACKS_UNKNOWN, self.callbacks.unknown)
            await self.callbacks.stop()
        self._parked.clear()
        self._groups.clear()
        self._tickets.clear()
        await self.client.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job


def _user_agent_of(solution: Solution | None) -> str | None:
    agent = solution.solution.get("userAgent") if solution is not None else None
    return agent if isinstance(agent, str) and agent else None
