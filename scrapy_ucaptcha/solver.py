"""Tasks in flight: create, poll until ready, bound each solve in time, count cost, guard budget.

One :meth:`Solver.solve` call is one API task. What to do when it fails — create another task, give
up — is the caller's choice, guided by :attr:`SolveFailed.retry`. Fatal account errors and an
exhausted budget stop the solver for good; :attr:`Solver.stop_reason` says why. An exhausted budget
or balance lets the tasks in flight finish first (their tokens are paid for); any other fatal error
ends them at once (:func:`~scrapy_ucaptcha.errors.tasks_survive`).

A task stays ours until it is ready, failed, past its deadline or gone at the API: a poll lost to
the network (after the client's retries) or answered with garbage is polled again later, never
replaced by a new, paid task. Every task the provider charges is counted by the :class:`Ledger
<scrapy_ucaptcha.accounting.Ledger>` and held against the :class:`Budget
<scrapy_ucaptcha.budget.Budget>` from before it is created until it is settled.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, NoReturn

from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.accounting import Charge, Ledger, Reconciler
from scrapy_ucaptcha.budget import Budget, BudgetExhausted, BudgetStore, Reservation
from scrapy_ucaptcha.client import TaskId, TaskResult, truncate_token
from scrapy_ucaptcha.errors import (
    SolveErrorCode,
    UCaptchaBadTaskError,
    UCaptchaError,
    UCaptchaFatalError,
    UCaptchaRetryableError,
    UCaptchaTaskDeadError,
    UCaptchaTimeoutError,
    tasks_survive,
)
from scrapy_ucaptcha.polling import PollPlanner
from scrapy_ucaptcha.templates import family_of, kind_for_task_type

if TYPE_CHECKING:
    from scrapy_ucaptcha.callbacks import CallbackListener
    from scrapy_ucaptcha.client import CaptchaClient
    from scrapy_ucaptcha.config import Config
    from scrapy_ucaptcha.stats import StatsRecorder
    from scrapy_ucaptcha.vocabulary import SelectionMode

__all__ = ["Abandoned", "Reckoning", "Solution", "SolveFailed", "Solver"]

logger = logging.getLogger(__name__)

BUDGET_EXHAUSTED: Final[SolveErrorCode] = "budget_exhausted"
SOLVE_TIMEOUT: Final[SolveErrorCode] = "solve_timeout"


@dataclass(frozen=True)
class Solution:
    """A ready task."""

    task_id: TaskId
    task_type: str
    token: str
    solution: Mapping[str, Any]
    cost: float
    solve_time_ms: int


@dataclass(frozen=True)
class Abandoned:
    """A task left in flight when solving was cancelled (the crawl closed or stopped)."""

    task_id: TaskId
    task_type: str
    domain: str


@dataclass(frozen=True)
class Reckoning:
    """What the abandoned tasks came to: ``charged`` were found ready (and paid for), ``pending``
    were still being solved (the API charges them if they complete)."""

    tasks: int = 0
    charged: int = 0
    cost: float = 0.0
    pending: int = 0


class SolveFailed(Exception):
    """One task gave no solution. ``retry``: whether a new task may help."""

    def __init__(
        self, message: str, *, code: str, task_id: TaskId | None = None, retry: bool
    ) -> None:
        super().__init__(message)
        self.code = code
        self.task_id = task_id
        self.retry = retry


class Solver:
    """Runs API tasks for the middleware, at most ``UCAPTCHA_MAX_CONCURRENT_TASKS`` at once."""

    def __init__(
        self,
        config: Config,
        client: CaptchaClient,
        stats: StatsRecorder,
        on_stop: Callable[[str], None],
        callbacks: CallbackListener | None = None,
        *,
        budget_store: BudgetStore | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.stats = stats
        self.callbacks = callbacks
        self._on_stop = on_stop
        self._slots = asyncio.Semaphore(config.max_concurrent_tasks)
        self.ledger = Ledger(stats, prices=config.prices, estimates=config.price_estimates)
        self.budget = Budget(config.budget, budget_store)
        self.reconciler = Reconciler(
            self.ledger, client.get_balance, config.balance_interval, self.budget.correct
        )
        # open reservations by task type, re-sized when a better price of the type is known
        self._holding: defaultdict[str, set[Reservation]] = defaultdict(set)
        self._stop_pending: str | None = None  # a stop passed on once no task is in flight
        #: The figures when the budget was exhausted (no further task fits).
        self.budget_reached: BudgetExhausted | None = None
        #: Tasks in flight when the budget was first full (a task had to wait, or was refused):
        #: spending exceeds the budget by less than what these cost.
        self.in_flight_at_budget: int | None = None
        self.stop_reason: str | None = None
        self.abandoned: list[Abandoned] = []  # tasks left in flight by a cancel
        self.in_flight = 0
        self.closed = False
        # task id -> type of the tasks solved lately, for reports (which differ by family)
        self._solved_types: dict[str, str] = {}
        self.polls = PollPlanner(
            interval=config.poll_interval,
            first_poll=config.first_poll,
            priors=config.solve_time_prior,
            callbacks=callbacks is not None,
        )

    async def reckon_abandoned(self, timeout: float) -> Reckoning:
        """Ask once for each abandoned task (within ``timeout`` seconds in all): the cost of those
        already solved is counted, as they are paid for even though nobody uses their token."""
        abandoned, self.abandoned = self.abandoned, []
        if not abandoned:
            return Reckoning()

        async def ask(task: Abandoned) -> TaskResult | None:
            try:
                return await self.client.get_task_result(task.task_id)
            except UCaptchaError:
                return None

        jobs = [asyncio.ensure_future(ask(task)) for task in abandoned]
        done, late = await asyncio.wait(jobs, timeout=timeout)
        for job in late:
            job.cancel()
        charged, cost = 0, 0.0
        for task, job in zip(abandoned, jobs, strict=True):
            result = job.result() if job in done else None
            if result is None or not result.is_ready:
                # still solving: paid at createTask unless it fails; the last reconciliation
                # counts it as a task in flight
                self.ledger.begin(task.task_type)
                continue
            charged += 1
            paid = self.ledger.charge(task.task_type, task.domain, result.cost)
            await self.budget.correct(paid.amount)
            cost += paid.amount
        if charged:
            self.stats.inc(keys.TASKS_ABANDONED_CHARGED, charged)
        return Reckoning(len(abandoned), charged, round(cost, 6), len(abandoned) - charged)

    def close(self) -> None:
        """The crawl is closing: every poll loop ends at its next step. (A cancellation alone is
        not enough: Python 3.11's ``asyncio.wait_for`` can return a result it was cancelled in.)
        """
        self.closed = True

    @property
    def spent(self) -> float:
        """USD spent by this crawl's tasks, by the best figures known."""
        return self.ledger.spent

    def stop(self, reason: str, *, let_tasks_finish: bool = False) -> None:
        """No new tasks from now on (fatal account error, budget). ``let_tasks_finish``: the
        tasks in flight are paid for and still useful, so the stop is passed on (which ends
        the waiting requests and closes the spider) only once they are done."""
        if self.stop_reason is not None:
            return
        self.stop_reason = reason
        self.budget.wake()
        if let_tasks_finish and self.in_flight:
            self._stop_pending = reason
        else:
            self._on_stop(reason)

    async def finish(self) -> None:
        """The crawl closes and no task is in flight: the last balance reconciliation."""
        await self.reconciler.finish()

    def first_poll_delay(self, task_type: str) -> float:
        """Seconds from creating a task of ``task_type`` to its first poll (see
        :mod:`scrapy_ucaptcha.polling`)."""
        return self.polls.schedule(task_type).first

    async def solve(
        self,
        task: Mapping[str, Any],
        *,
        domain: str,
        selection_mode: SelectionMode | None = None,
        provider: str | None = None,
    ) -> Solution:
        """Create one task and wait for it; raise :class:`SolveFailed` when it gives nothing."""
        task_type = str(task["type"])
        self._check_open()
        async with self._slots:
            self._check_open()
            if self.client.dialect.reconciles:
                await self._begin_reconciling()
            reservation = await self._reserve(task_type)
            flight = self.ledger.begin(task_type)
            self.in_flight += 1
            self._holding[task_type].add(reservation)
            try:
                return await self._solve(
                    task, domain, selection_mode, provider, reservation=reservation
                )
            finally:
                self.in_flight -= 1
                self._holding[task_type].discard(reservation)
                self.ledger.end(flight)
                await self.budget.release(reservation)  # a no-op once settled
                if self._stop_pending is not None and self.in_flight == 0:
                    reason, self._stop_pending = self._stop_pending, None
                    self._on_stop(reason)

    def _check_open(self) -> None:
        if self.stop_reason is not None:
            raise SolveFailed(
                f"solving stopped: {self.stop_reason}", code=self.stop_reason, retry=False
            )

    async def _begin_reconciling(self) -> None:
        """Some charges carry no price: know the balance before the first task."""
        try:
            await self.reconciler.begin()
        except UCaptchaFatalError as exc:
            self._fatal(exc, None)
        except UCaptchaError as exc:
            logger.warning(
                "uCaptcha balance not available (%s): costs of this crawl stay estimated", exc
            )
            self.reconciler.active = False

    async def _reserve(self, task_type: str) -> Reservation:
        """Hold the task's expected price against the budget, waiting for room while tasks in
        flight hold it; stop solving when it can never fit."""
        expected = self.ledger.price(task_type)
        try:
            reservation = await self.budget.reserve(
                expected.amount,
                give_up=lambda: self.stop_reason is not None or self.closed,
                on_wait=self._budget_full,
            )
        except BudgetExhausted as exc:
            self._budget_full()
            if self.budget_reached is None:
                self.budget_reached = exc
            logger.warning(
                "uCaptcha budget of $%.4f reached: $%.4f spent, $%.4f reserved for %d task(s) "
                "in flight, the next %s task ~$%.4f (%s); no new tasks, the tasks in flight "
                "finish and their tokens are used",
                exc.limit,
                exc.spent,
                exc.reserved,
                self.in_flight,
                task_type,
                exc.amount,
                expected.source,
            )
            self.stop(BUDGET_EXHAUSTED, let_tasks_finish=True)
            reservation = None
        if reservation is None:
            self._check_open()
            raise asyncio.CancelledError  # closing
        return reservation

    def _budget_full(self) -> None:
        if self.in_flight_at_budget is None:
            self.in_flight_at_budget = self.in_flight
            logger.info(
                "uCaptcha budget full: %d task(s) in flight hold the rest of it; new tasks wait",
                self.in_flight,
            )

    async def _solve(
        self,
        task: Mapping[str, Any],
        domain: str,
        selection_mode: SelectionMode | None,
        provider: str | None,
        *,
        reservation: Reservation,
    ) -> Solution:
        loop = asyncio.get_running_loop()
        task_type = str(task["type"])
        started = loop.time()
        callbacks = self.callbacks
        result = await self._api(
            self.client.create_task(
                task,
                callback_url=callbacks.url if callbacks is not None else None,
                selection_mode=selection_mode or self.config.selection_mode,
                provider=provider or self.config.provider,
            ),
            None,
        )
        task_id = result.task_id
        self.stats.inc(keys.TASKS_CREATED)
        logger.debug("uCaptcha task %s created (%s) for %s", task_id, task_type, domain)
        deadline = started + self.config.solve_timeout
        schedule = self.polls.schedule(task_type)
        created = loop.time()  # the schedule counts from createTask's answer
        if callbacks is not None:
            callbacks.expect(task_id)
        charged = False  # counted by the ledger: once per task
        try:
            while result.is_pending:
                now = loop.time()
                delay = created + schedule.next_after(now - created) - now
                await self._wait(task_id, max(0.0, min(delay, deadline - now)))
                if self.closed:
                    raise asyncio.CancelledError
                result = await self._poll(task_id, result)
                if result.is_pending and loop.time() >= deadline:
                    self.stats.inc(keys.TASKS_TIMEOUT)
                    charged = True  # still alive at the API, where it was paid for
                    await self._charge(reservation, task_type, domain, None)
                    raise SolveFailed(
                        f"task {task_id} not ready after {self.config.solve_timeout:g} s",
                        code=SOLVE_TIMEOUT,
                        task_id=task_id,
                        retry=True,
                    )
            if result.is_failed:
                charged = True
                code = result.error_code or "ERROR_CAPTCHA_UNSOLVABLE"
                self.stats.inc(keys.TASKS_FAILED)
                self.stats.error(code)
                if result.charged:
                    self.stats.inc(keys.TASKS_FAILED_CHARGED)
                    await self._charge(reservation, task_type, domain, None)
                logger.info(
                    "uCaptcha task %s failed: %s %s%s",
                    task_id,
                    code,
                    result.error_description,
                    " (charged)" if result.charged else "",
                )
                raise SolveFailed(
                    f"task {task_id} failed: {code}", code=code, task_id=task_id, retry=True
                )
            charged = True
            paid = await self._charge(reservation, task_type, domain, result)
        except asyncio.CancelledError:
            self.stats.inc(keys.TASKS_ABANDONED)  # closing or stopped: the API may still charge it
            if not charged:  # priced when the close asks for it (reckon_abandoned)
                self.abandoned.append(Abandoned(task_id, task_type, domain))
            raise
        except SolveFailed:
            if not charged:  # a fatal or bad-task answer to a poll: assume it was paid
                await self._charge(reservation, task_type, domain, None)
            raise
        finally:
            if callbacks is not None:
                callbacks.forget(task_id)
        return self._ready(result, task_type, loop.time() - started, paid.amount)

    async def _charge(
        self, reservation: Reservation, task_type: str, domain: str, result: TaskResult | None
    ) -> Charge:
        """Count a charged task in the ledger and settle its reservation with the budget."""
        cost = result.cost if result is not None else None
        if result is not None and result.cost_unreadable:
            self.stats.inc(keys.COST_UNREADABLE)
        before = self.ledger.price(task_type).amount
        charge = self.ledger.charge(task_type, domain, cost)
        await self.budget.settle(reservation, charge.amount)
        self.reconciler.due()
        price = self.ledger.price(task_type).amount
        if price != before:  # the tasks of this type in flight will likely cost that
            logger.debug("uCaptcha price of %s is now $%.5f", task_type, price)
            for held in list(self._holding[task_type]):
                await self.budget.resize(held, price)
        return charge

    async def _poll(self, task_id: TaskId, last: TaskResult) -> TaskResult:
        """One getTaskResult. A transport failure or an unreadable answer (after the client's
        retries) leaves the task as it was: it is polled again at the next step."""
        try:
            return await self._api(self.client.get_task_result(task_id), task_id, poll=True)
        except UCaptchaRetryableError as exc:
            self.stats.inc(keys.POLL_ERRORS)
            logger.info(
                "uCaptcha poll of task %s failed (%s): polling it again later", task_id, exc
            )
            return last

    async def _wait(self, task_id: TaskId, delay: float) -> None:
        """Sleep until the next poll, or until the task's callback arrives."""
        if self.closed:
            raise asyncio.CancelledError
        if self.callbacks is None:
            await asyncio.sleep(delay)
        elif await self.callbacks.wait(task_id, delay):
            self.stats.inc(keys.CALLBACKS_RECEIVED)

    def _ready(self, result: TaskResult, task_type: str, waited: float, cost: float) -> Solution:
        solve_ms = (
            result.solve_time_ms if result.solve_time_ms is not None else round(waited * 1000)
        )
        self.stats.inc(keys.TASKS_READY)
        self.stats.inc(f"{keys.TASKS_READY}/{task_type}")
        self.stats.solve_time(solve_ms)
        self.polls.observe(task_type, solve_ms / 1000)
        token = result.token
        if token is None:
            raise SolveFailed(
                f"task {result.task_id} is ready but its solution has no token",
                code="ERROR_EMPTY_SOLUTION",
                task_id=result.task_id,
                retry=True,
            )
        self._solved_types[str(result.task_id)] = task_type
        if len(self._solved_types) > 10_000:
            del self._solved_types[next(iter(self._solved_types))]
        logger.debug(
            "uCaptcha task %s ready in %d ms, $%.5f, token %s",
            result.task_id,
            solve_ms,
            cost,
            truncate_token(token),
        )
        return Solution(
            task_id=result.task_id,
            task_type=task_type,
            token=token,
            solution=result.solution,
            cost=cost,
            solve_time_ms=solve_ms,
        )

    def _fatal(self, exc: UCaptchaFatalError, task_id: TaskId | None) -> NoReturn:
        code = exc.code or "fatal"
        self.stats.error(code)
        survive = tasks_survive(exc.code)
        logger.error(
            "uCaptcha refused the account: %s; no more solving in this crawl%s",
            exc,
            "; the tasks in flight finish and their tokens are used" if survive else "",
        )
        self.stop(code, let_tasks_finish=survive)
        raise SolveFailed(str(exc), code=code, task_id=task_id, retry=False) from None

    async def _api(self, call: Any, task_id: TaskId | None, *, poll: bool = False) -> TaskResult:
        """Await one client call, turning API errors into :class:`SolveFailed` (``poll``: a
        transient one is raised as it is, for :meth:`_poll`)."""
        try:
            result: TaskResult = await call
        except UCaptchaFatalError as exc:
            self._fatal(exc, task_id)
        except UCaptchaRetryableError as exc:
            code = exc.code or ("timeout" if isinstance(exc, UCaptchaTimeoutError) else "network")
            self.stats.error(code)
            if poll:
                raise
            raise SolveFailed(str(exc), code=code, task_id=task_id, retry=True) from None
        except UCaptchaBadTaskError as exc:
            code = exc.code or "bad_task"
            self.stats.error(code)
            logger.warning("uCaptcha rejected the task: %s", exc)
            raise SolveFailed(str(exc), code=code, task_id=task_id, retry=False) from None
        except UCaptchaTaskDeadError as exc:
            code = exc.code or "task_dead"
            self.stats.error(code)
            raise SolveFailed(str(exc), code=code, task_id=task_id, retry=True) from None
        except UCaptchaError as exc:  # retryable, and the client's own retries are spent
            code = exc.code or ("timeout" if isinstance(exc, UCaptchaTimeoutError) else "network")
            self.stats.error(code)
            raise SolveFailed(str(exc), code=code, task_id=task_id, retry=True) from None
        return result

    async def feedback(self, task_id: TaskId, *, invalid: bool, message: str) -> None:
        """Report a solution's fate at the provider's endpoint for its kind of token (the
        dialect's); failures are logged, never raised."""
        task_type = self._solved_types.get(str(task_id), "")
        family = family_of(kind_for_task_type(task_type)) if task_type else "*"
        try:
            sent = await self.client.report(
                task_id, accepted=not invalid, family=family, message=message
            )
        except UCaptchaError as exc:
            logger.info("uCaptcha feedback for task %s not recorded: %s", task_id, exc)
            return
        if not sent:
            if invalid:  # accepted tokens have a report endpoint at few providers
                self.stats.inc(keys.FEEDBACK_UNSUPPORTED)
            logger.debug(
                "%s takes no report for %s %s tokens (task %s)",
                self.client.dialect.title,
                "rejected" if invalid else "accepted",
                family,
                task_id,
            )
        else:
            self.stats.inc(keys.FEEDBACK_INVALID if invalid else keys.FEEDBACK_VALID)
