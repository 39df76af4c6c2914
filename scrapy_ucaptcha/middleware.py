"""The downloader middleware: detect → park → solve → re-issue → verify.

A challenged request leaves the downloader at once: ``process_response`` returns a marker copy of
it, which our ``request_scheduled`` handler drops (``IgnoreRequest``, the documented way), so the
request's ``CONCURRENT_REQUESTS`` unit is free while its task is solved in the background. When the
token is ready, the request is re-issued through ``engine.crawl`` with the token injected and a
priority boost. If the site still shows the challenge, the token was rejected: feedback, solve
again, up to ``UCAPTCHA_MAX_ATTEMPTS``. A request that cannot be solved is crawled once more
carrying its :class:`CaptchaSolveError`, which ``process_request`` raises so that it reaches the
request's errback. ``spider_idle`` keeps the spider open while anything is parked.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field, replace
from itertools import count
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scrapy import Request, signals
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import TextResponse
from scrapy.utils.reactor import is_asyncio_reactor_installed

from scrapy_ucaptcha import inject
from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.client import TaskId, truncate_token
from scrapy_ucaptcha.config import Config, ConfigError
from scrapy_ucaptcha.detection import Challenge, detect, detect_image
from scrapy_ucaptcha.errors import CaptchaSolveError
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

__all__ = ["UCaptchaMiddleware"]

logger = logging.getLogger(__name__)

STATE_KEY = "_ucaptcha"
PARK_KEY = "_ucaptcha_park"
ERROR_KEY = "_ucaptcha_error"
INFO_KEY = "ucaptcha"
TASK_KEY = "ucaptcha_task"


@dataclass(frozen=True)
class _State:
    """What travels with a challenged request in ``meta["_ucaptcha"]``."""

    url: str  # the URL that was challenged first
    attempts: int = 0  # tasks created for this request so far
    task_ids: tuple[TaskId, ...] = ()
    solution: Solution | None = None  # the token this request carries
    presolve: bool = False
    group: tuple[str, str] | None = None  # domain-scope group
    leader: bool = False
    generation: int = -1  # the group clearance this request was re-sent after
    shared_from: Solution | None = None
    ticket: int = 0  # set while the re-issued request is on its way


@dataclass(eq=False)
class _Parked:
    """A request waiting for its token, and what re-issuing it needs (not the page)."""

    id: int
    request: Request
    template: Template
    state: _State
    kind: str
    task: dict[str, Any]
    plan: inject.InjectPlan
    image_url: str | None = None
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
        self.solver = Solver(config, self.client, self.stats, on_stop=self._on_stop)
        self._ids = count(1)
        self._parked: dict[int, _Parked] = {}
        self._groups: dict[tuple[str, str], _Group] = {}
        self._jobs: set[asyncio.Task[Any]] = set()
        self._failures_pending = 0
        self._reissued: set[int] = set()  # tickets of re-issued requests not back yet
        self._closing = False
        self._close_requested = False
        self._closer: asyncio.Future[None] | None = None
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
        """Requests parked, following a domain solve, or carrying a failure to their errback."""
        followers = sum(len(group.followers) for group in self._groups.values())
        return len(self._parked) + followers + self._failures_pending + len(self._reissued)

    # --- Scrapy hooks ---------------------------------------------------------------------------

    async def process_request(self, request: Request, spider: Spider | None = None) -> None:
        error = request.meta.get(ERROR_KEY)
        if isinstance(error, CaptchaSolveError):
            del request.meta[ERROR_KEY]
            self._failures_pending -= 1
            self._maybe_close()
            raise error

    async def process_response(
        self, request: Request, response: Response, spider: Spider | None = None
    ) -> Request | Response:
        meta_task = request.meta.get(TASK_KEY)
        if meta_task is False or self._closing:
            return response
        template = self._template_for(request)
        if template is None or not template.solve:
            return response
        state = request.meta.get(STATE_KEY)
        state = state if isinstance(state, _State) else None
        if state is not None and state.ticket in self._reissued:
            self._reissued.discard(state.ticket)
            self._maybe_close()
        challenge = self._detect(response, template)
        if challenge is None:
            if state is not None:
                self._delivered(request, state)
            return response
        self.stats.inc(keys.CHALLENGES)
        self.stats.inc(f"{keys.CHALLENGES}/{challenge.kind}")
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
        try:
            return self._park(request, response, challenge, template, state)
        except CaptchaSolveError as exc:  # raised here, it goes straight to the errback
            self.stats.inc(keys.GAVE_UP)
            logger.warning("%s", exc, extra={"spider": self.crawler.spider})
            raise

    async def process_exception(
        self, request: Request, exception: BaseException, spider: Spider | None = None
    ) -> None:
        state = request.meta.get(STATE_KEY)
        if isinstance(state, _State):
            self._reissued.discard(state.ticket)
            self._maybe_close()
        if isinstance(state, _State) and state.leader and state.group is not None:
            # the leader's re-issued request failed: let the followers try on their own
            self._release_group(state.group, success=False)

    # --- detection ------------------------------------------------------------------------------

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

    def _detect(self, response: Response, template: Template) -> Challenge | None:
        rules = template.detect
        if rules is None:
            found = detect(response, self.config.detectors)
            if found is not None and found.solvable and not _is_interstitial(response, found):
                # A widget in a form that asks the user for more (contact, login, search): the
                # page is not a wall in the crawl's way. Solving it would submit that form with
                # its default values and pay for it; a template's 'detect' rules can say
                # otherwise.
                self.stats.inc(keys.WIDGETS_IGNORED)
                return None
            return found
        if rules.status is not None and response.status not in rules.status:
            return None
        markers = rules.has_markers and _markers_match(response, rules)
        if rules.has_markers and not markers:
            return None
        if rules.is_image:
            return detect_image(
                response,
                image_css=rules.image_css,
                image_xpath=rules.image_xpath,
                answer_field=rules.image_field,
            )
        if rules.builtin:
            found = detect(response, self.config.detectors)
            if found is not None:
                return found
        if markers or (not rules.builtin and rules.status is not None):
            task_type = template.task.get("type")
            kind = kind_for_task_type(task_type) if isinstance(task_type, str) else "custom"
            sitekey = template.task.get("websiteKey")
            return Challenge(
                kind=kind,
                solvable=True,
                sitekey=sitekey if isinstance(sitekey, str) else None,
                detector="template",
            )
        return None

    # --- parking --------------------------------------------------------------------------------

    def _park(
        self,
        request: Request,
        response: Response | None,
        challenge: Challenge | None,
        template: Template,
        state: _State | None,
    ) -> Request:
        if state is None:
            state = _State(url=request.url, presolve=challenge is None)
        if self.solver.stop_reason is not None:
            raise self._solve_error(
                state, f"solving stopped: {self.solver.stop_reason}", self.solver.stop_reason
            )
        if state.attempts >= self.config.max_attempts:
            raise self._solve_error(
                state, f"still challenged after {state.attempts} solve(s)", "max_attempts"
            )
        group_key = None
        if template.scope == "domain" and not state.presolve:
            group_key = (template.pattern, urlsplit(request.url).netloc)
            follow = self._join_group(group_key, request, state)
            if follow is not None:
                return follow
        try:
            kind = challenge.kind if challenge is not None else _presolve_kind(template)
            if state.presolve or challenge is None:
                field_name = DEFAULT_TOKEN_FIELDS[family_of(kind)]
                plan = inject.prepare_presolve(template.inject, field_name)
                sitekey, params = template.task.get("websiteKey"), {}
            else:
                plan = inject.prepare(template.inject, challenge, response)
                sitekey, params = challenge.sitekey, dict(challenge.params)
            page_url = response.url if response is not None else request.url
            task = build_task(
                template,
                kind=kind,
                page_url=page_url,
                sitekey=sitekey if isinstance(sitekey, str) else None,
                params=params,
                task_types=self.config.task_types,
            )
        except (inject.InjectError, ValueError) as exc:
            if group_key is not None:
                self._groups.pop(group_key, None)
            raise self._solve_error(state, str(exc), "bad_template") from None
        if group_key is not None:
            state = replace(state, group=group_key, leader=True)
        parked = _Parked(
            id=next(self._ids),
            request=request,
            template=template,
            state=state,
            kind=kind,
            task=task,
            plan=plan,
            image_url=challenge.image_url if challenge is not None else None,
        )
        self._parked[parked.id] = parked
        if group_key is not None:
            self._groups[group_key].leader_id = parked.id
        parked.job = self._spawn(self._solve_and_reissue(parked))
        logger.debug(
            "parked %s (%s challenge, attempt %d)",
            request,
            kind,
            state.attempts + 1,
            extra={"spider": self.crawler.spider},
        )
        return request.replace(meta={**request.meta, PARK_KEY: parked.id}, dont_filter=True)

    def _request_scheduled(self, request: Request, spider: Spider) -> None:
        if PARK_KEY in request.meta:
            raise IgnoreRequest("parked while its CAPTCHA is solved")
        meta_task = request.meta.get(TASK_KEY)
        if (
            isinstance(meta_task, Mapping)
            and meta_task.get("presolve")
            and STATE_KEY not in request.meta
            and ERROR_KEY not in request.meta
            and not self._closing
        ):
            template = self._template_for(request)
            if template is None:
                return
            self.stats.inc(keys.PRESOLVED)
            try:
                self._park(request, None, None, template, None)
            except CaptchaSolveError as exc:
                self._send_failure(request, exc)
            raise IgnoreRequest("held until its CAPTCHA token is ready")

    def _spider_idle(self, spider: Spider) -> None:
        if self._closing:
            return
        if not self._parked:
            # The engine is idle, so nothing we sent is still in the scheduler or downloader:
            # failures not delivered and followers whose leader's request vanished (dropped by
            # another component) would otherwise keep the spider open for ever.
            self._failures_pending = 0
            self._reissued.clear()
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
                state = replace(state, attempts=state.attempts + 1)
                try:
                    task = await self._task_with_image(parked)
                    solution = await self.solver.solve(
                        task,
                        domain=urlsplit(state.url).hostname or "",
                        selection_mode=parked.template.selection_mode,
                        provider=parked.template.provider,
                    )
                except SolveFailed as failed:
                    last_code = failed.code
                    if failed.task_id is not None:
                        state = replace(state, task_ids=(*state.task_ids, failed.task_id))
                    if not failed.retry:
                        raise self._solve_error(state, str(failed), failed.code) from None
            state = replace(state, task_ids=(*state.task_ids, solution.task_id), solution=solution)
            self._reissue(parked, state, solution)
        except CaptchaSolveError as exc:
            self._give_up(parked, exc)
        except asyncio.CancelledError:
            if not self._closing and self.solver.stop_reason is not None:
                self._give_up(
                    parked,
                    self._solve_error(
                        state,
                        f"solving stopped: {self.solver.stop_reason}",
                        self.solver.stop_reason,
                    ),
                )
                return
            raise
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
        response = await engine.download_async(image_request)
        if response.status != 200 or not response.body:
            raise SolveFailed(
                f"captcha image {parked.image_url} answered HTTP {response.status}",
                code="image_download",
                retry=True,
            )
        parked.task["body"] = base64.b64encode(response.body).decode("ascii")
        return parked.task

    def _reissue(self, parked: _Parked, state: _State, solution: Solution) -> None:
        state = replace(state, ticket=next(self._ids))
        request = inject.apply(parked.plan, parked.request, solution.token, solution.solution)
        meta = {k: v for k, v in request.meta.items() if k != PARK_KEY}
        meta[STATE_KEY] = state
        request = request.replace(
            meta=meta,
            dont_filter=True,
            priority=parked.request.priority + self.config.reissue_priority,
        )
        logger.debug(
            "re-issuing %s with token %s from task %s",
            request,
            truncate_token(solution.token),
            solution.task_id,
            extra={"spider": self.crawler.spider},
        )
        if self._crawl(request):
            self._reissued.add(state.ticket)

    def _crawl(self, request: Request) -> bool:
        engine = self.crawler.engine
        if self._closing or engine is None:
            return False
        try:
            engine.crawl(request)
        except RuntimeError:  # the spider is closing
            return False
        return True

    # --- outcomes -------------------------------------------------------------------------------

    def _delivered(self, request: Request, state: _State) -> None:
        source = state.solution or state.shared_from
        if source is None:
            return
        self.stats.inc(keys.SOLVED)
        request.meta[INFO_KEY] = {
            "task_id": source.task_id,
            "type": source.task_type,
            "cost": source.cost if state.solution is not None else 0.0,
            "solve_time_ms": source.solve_time_ms,
            "attempts": state.attempts,
        }
        if state.shared_from is not None and state.solution is None:
            request.meta[INFO_KEY]["shared"] = True
        request.meta.pop(STATE_KEY, None)
        if state.leader and state.group is not None:
            self._release_group(state.group, success=True, solution=state.solution)

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
            self._spawn(
                self.solver.feedback(
                    solution.task_id, invalid=True, message="Token was rejected by the target site"
                )
            )

    def _solve_error(self, state: _State, reason: str, code: str) -> CaptchaSolveError:
        return CaptchaSolveError(
            reason, code=code, attempts=state.attempts, task_ids=state.task_ids, url=state.url
        )

    def _give_up(self, parked: _Parked, exc: CaptchaSolveError) -> None:
        logger.warning("%s", exc, extra={"spider": self.crawler.spider})
        self._send_failure(parked.request, exc)
        group = parked.state.group
        if group is not None and parked.state.leader:
            for follower in self._groups.pop(group, _Group()).followers:
                self._send_failure(follower, exc)

    def _send_failure(self, request: Request, exc: CaptchaSolveError) -> None:
        """Crawl ``request`` once more, carrying ``exc`` for :meth:`process_request` to raise."""
        self.stats.inc(keys.GAVE_UP)
        meta = {k: v for k, v in request.meta.items() if k not in (PARK_KEY, STATE_KEY)}
        meta[ERROR_KEY] = exc
        failing = request.replace(
            meta=meta,
            dont_filter=True,
            priority=request.priority + self.config.reissue_priority,
        )
        if self._crawl(failing):
            self._failures_pending += 1

    # --- domain scope ---------------------------------------------------------------------------

    def _join_group(self, key: tuple[str, str], request: Request, state: _State) -> Request | None:
        """Follow the group's solve if one is running; re-send once after a fresh clearance."""
        group = self._groups.setdefault(key, _Group())
        if state.leader and state.group == key:
            return None  # the leader's token was rejected: it solves again
        if group.busy:
            group.followers.append(
                request.replace(meta={**request.meta, STATE_KEY: replace(state, group=key)})
            )
            self.stats.inc(keys.SHARED)
            return request.replace(meta={**request.meta, PARK_KEY: 0}, dont_filter=True)
        if group.generation > 0 and state.generation < group.generation:
            # sent before the latest clearance arrived: try once more with it
            return request.replace(
                meta={
                    **request.meta,
                    STATE_KEY: replace(
                        state, group=key, generation=group.generation, shared_from=group.solution
                    ),
                },
                dont_filter=True,
                priority=request.priority + self.config.reissue_priority,
            )
        group.busy = True
        return None

    def _release_group(
        self, key: tuple[str, str], *, success: bool, solution: Solution | None = None
    ) -> None:
        """Re-send the followers: with the new clearance, or (``success=False``) to try anew."""
        group = self._groups.get(key)
        if group is None:
            return
        leader = self._parked.get(group.leader_id) if group.leader_id is not None else None
        if leader is not None and not success:
            return  # still being solved
        group.busy = False
        group.leader_id = None
        if success:
            group.generation += 1
            group.solution = solution
        followers, group.followers = group.followers, []
        for follower in followers:
            state = follower.meta[STATE_KEY]
            self._crawl(
                follower.replace(
                    meta={
                        **follower.meta,
                        STATE_KEY: replace(
                            state,
                            generation=group.generation,
                            shared_from=group.solution if success else None,
                        ),
                    },
                    dont_filter=True,
                    priority=follower.priority + self.config.reissue_priority,
                )
            )

    # --- stop and shutdown ----------------------------------------------------------------------

    def _on_stop(self, reason: str) -> None:
        """The solver stopped for good: fail every parked request, then close the spider."""
        self._close_requested = True
        current = asyncio.current_task()
        for parked in list(self._parked.values()):
            if parked.job is not None and parked.job is not current and not parked.job.done():
                parked.job.cancel()
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

    async def _spider_closed(self, spider: Spider, reason: str) -> None:
        self._closing = True
        abandoned = self.waiting - self._failures_pending - len(self._reissued)
        tasks_in_flight = self.solver.in_flight
        current = asyncio.current_task()
        jobs = [job for job in self._jobs if not job.done() and job is not current]
        for job in jobs:
            job.cancel()
        if jobs:
            await asyncio.gather(*jobs, return_exceptions=True)
        if abandoned:
            self.stats.inc(keys.ABANDONED, abandoned)
        if tasks_in_flight:
            self.stats.inc(keys.TASKS_ABANDONED, tasks_in_flight)
        self._parked.clear()
        self._groups.clear()
        await self.client.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)
        return job


def _presolve_kind(template: Template) -> str:
    task_type = template.task.get("type")
    return kind_for_task_type(task_type) if isinstance(task_type, str) else "custom"


def _markers_match(response: Response, rules: Any) -> bool:
    if not isinstance(response, TextResponse):
        return False
    try:
        if rules.css and response.css(rules.css):
            return True
        if rules.xpath and response.xpath(rules.xpath):
            return True
    except ValueError:
        return False
    pattern: re.Pattern[str] | None = rules.regex
    return bool(pattern is not None and pattern.search(response.text))


#: Statuses with which sites serve challenge walls.
WALL_STATUSES = frozenset({403, 429, 503})
_USER_FIELDS = (
    ".//textarea | .//select | .//input[not(@type) or not(contains("
    "' hidden submit button image reset checkbox radio file ', "
    "concat(' ', translate(@type, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), "
    "' ')))]"
)
_TOKEN_FIELDS = frozenset({"g-recaptcha-response", "h-captcha-response", "cf-turnstile-response"})


def _is_interstitial(response: Response, challenge: Challenge) -> bool:
    """Whether a widget page is a wall: served with a wall status, or a form asking for nothing
    but the CAPTCHA (an image captcha's answer field counts as the CAPTCHA)."""
    if response.status in WALL_STATUSES:
        return True
    form = challenge.form
    if form is None or not isinstance(response, TextResponse):
        return False
    try:
        forms = response.xpath(form.xpath)
        if not forms:
            return False
        names = forms[0].xpath(_USER_FIELDS).xpath("@name").getall()
    except ValueError:
        return False
    asked = [n for n in names if n not in _TOKEN_FIELDS and n != form.token_field]
    return not asked
