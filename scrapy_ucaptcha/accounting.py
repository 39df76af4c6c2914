"""What the crawl spent, task by task, whatever the provider tells: the ledger behind ``cost_usd``.

Every task the provider charges is counted once (ready tasks, failures the provider keeps the
price of, tasks timed out or abandoned while alive at the API). Its price comes from, in order:

* ``api`` -- the ``cost`` of its own ready answer;
* ``price_table`` -- the user's ``UCAPTCHA_PRICES`` (by task type, then captcha kind);
* ``balance`` -- reconciliation: the drop of the account's balance since the crawl's first task,
  less what is known, spread over the tasks without a price in proportion to their estimates;
* ``estimate`` -- the last API price of the type, else ``UCAPTCHA_PRICE_ESTIMATES`` / the
  defaults of :data:`DEFAULT_ESTIMATES`, until a reconciliation replaces it.

Reconciliation assumes the provider takes a task's price when it creates the task (and gives it
back for a refunded failure), as uCaptcha, 2captcha and their likes do, and that nothing else
spends from the account meanwhile: between reconciliations tasks in flight count at their
estimate; once no task is in flight (at the close of the crawl) the figure is exact.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.planner import kind_for_task_type

if TYPE_CHECKING:
    from scrapy_ucaptcha.stats import StatsRecorder

__all__ = [
    "COST_SOURCES",
    "DEFAULT_ESTIMATES",
    "Charge",
    "CostSource",
    "InFlight",
    "Ledger",
    "Reconciler",
]

logger = logging.getLogger(__name__)

CostSource = Literal["api", "price_table", "balance", "estimate"]
COST_SOURCES: tuple[CostSource, ...] = ("api", "price_table", "balance", "estimate")

#: What a task of each captcha kind is assumed to cost (USD) until a price is known: at or
#: above the usual prices of the providers (per 1 000 tasks: reCAPTCHA $1-$3, Enterprise up to
#: $5-$8, hCaptcha and Turnstile $1-$3, images $0.5-$1), so that a budget errs on the safe
#: side. ``"*"`` is any other kind.
DEFAULT_ESTIMATES: Mapping[str, float] = MappingProxyType(
    {
        "recaptcha_v2": 0.005,
        "recaptcha_v2_invisible": 0.005,
        "recaptcha_v3": 0.005,
        "recaptcha_enterprise": 0.008,
        "hcaptcha": 0.003,
        "turnstile": 0.003,
        "image": 0.001,
        "*": 0.005,
    }
)


@dataclass(frozen=True)
class Charge:
    """What one task was counted at, and where the figure came from."""

    amount: float
    source: CostSource


@dataclass(frozen=True)
class InFlight:
    """A task in flight as the ledger counts it: ``expected`` is what a budget reserves."""

    expected: Charge
    known: float
    weight: float


def _lookup(table: Mapping[str, float], task_type: str) -> float | None:
    if task_type in table:
        return table[task_type]
    return table.get(kind_for_task_type(task_type))


class Ledger:
    """Counts what tasks cost and keeps the ``ucaptcha/cost_*`` stats current."""

    def __init__(
        self,
        stats: StatsRecorder,
        *,
        prices: Mapping[str, float] | None = None,
        estimates: Mapping[str, float] | None = None,
    ) -> None:
        self.stats = stats
        self.prices = dict(prices or {})
        self.estimates = {**DEFAULT_ESTIMATES, **(estimates or {})}
        self._api_price: dict[str, float] = {}  # the last cost the API gave per type
        self._known = 0.0  # api + price_table charges
        self._by_source: dict[CostSource, float] = dict.fromkeys(COST_SOURCES, 0.0)
        self._known_by_domain: defaultdict[str, float] = defaultdict(float)
        # tasks charged without a price: their estimates, the weights of reconciliation
        self._weights = 0.0
        self._weights_by_domain: defaultdict[str, float] = defaultdict(float)
        self._scale: float | None = None  # reconciled price / estimate, once reconciled
        # tasks in flight: (known expected price, weight) sums, for reconciliation
        self._in_flight_known = 0.0
        self._in_flight_weights = 0.0
        self.unpriced = 0  # tasks charged without a price of their own

    # --- prices ---------------------------------------------------------------------------------

    def estimate(self, task_type: str) -> float:
        """The assumed price of a task of ``task_type`` when nothing better is known."""
        last = self._api_price.get(task_type)
        if last is not None:
            return last
        value = _lookup(self.estimates, task_type)
        return self.estimates["*"] if value is None else value

    def price(self, task_type: str) -> Charge:
        """The best price known for a new task of ``task_type``: what a budget reserves."""
        last = self._api_price.get(task_type)
        if last is not None:
            return Charge(last, "api")
        table = _lookup(self.prices, task_type)
        if table is not None:
            return Charge(table, "price_table")
        if self._scale is not None:
            return Charge(self._scale * self.estimate(task_type), "balance")
        return Charge(self.estimate(task_type), "estimate")

    # --- tasks ----------------------------------------------------------------------------------

    def begin(self, task_type: str) -> InFlight:
        """A task of ``task_type`` is being created: what it is assumed to cost meanwhile."""
        expected = self.price(task_type)
        if expected.source in ("api", "price_table"):
            flight = InFlight(expected, known=expected.amount, weight=0.0)
        else:
            flight = InFlight(expected, known=0.0, weight=self.estimate(task_type))
        self._in_flight_known += flight.known
        self._in_flight_weights += flight.weight
        return flight

    def end(self, flight: InFlight) -> None:
        """The task :meth:`begin` returned ``flight`` for is no longer in flight."""
        self._in_flight_known = max(0.0, self._in_flight_known - flight.known)
        self._in_flight_weights = max(0.0, self._in_flight_weights - flight.weight)

    def charge(self, task_type: str, domain: str, cost: float | None = None) -> Charge:
        """Count a task the provider charged: at ``cost`` (the API's own figure) when given,
        else at the best price known (``estimate`` or ``balance``, reconciled later)."""
        if cost is not None:
            self._api_price[task_type] = cost
            charge = Charge(cost, "api")
        else:
            charge = self.price(task_type)
            if charge.source == "api":  # the type's last price, not this task's own
                charge = Charge(charge.amount, "estimate")
        if charge.source in ("api", "price_table"):
            self._known += charge.amount
            self._known_by_domain[domain] += charge.amount
            self._by_source[charge.source] += charge.amount
        else:
            self.unpriced += 1
            weight = self.estimate(task_type)
            self._weights += weight
            self._weights_by_domain[domain] += weight
        self._write()
        return charge

    @property
    def spent(self) -> float:
        """USD spent so far, by the best figures known."""
        return self._known + (self._scale if self._scale is not None else 1.0) * self._weights

    @property
    def needs_balance(self) -> bool:
        """Whether some charge has no price of its own (reconciliation would make it true)."""
        return self.unpriced > 0

    def reconcile(self, balance_start: float, balance_now: float) -> bool:
        """Price the tasks charged without a price from the balance's drop; False (nothing
        changed) when the figures cannot be explained (a top-up, a refund later, no such task)."""
        unexplained = balance_start - balance_now - self._known - self._in_flight_known
        weights = self._weights + self._in_flight_weights
        if weights <= 0 or unexplained < 0:
            return False
        self._scale = unexplained / weights
        self._write()
        return True

    # --- stats ----------------------------------------------------------------------------------

    def _write(self) -> None:
        scale = self._scale if self._scale is not None else 1.0
        stats = self.stats.stats
        stats.set_value(keys.COST, round(self.spent, 6))
        domains = set(self._known_by_domain) | set(self._weights_by_domain)
        for domain in domains:
            total = self._known_by_domain[domain] + scale * self._weights_by_domain[domain]
            stats.set_value(f"{keys.COST}/{domain}", round(total, 6))
        # the parts of the figure that are not the API's own (absent: all of it is)
        parts: dict[CostSource, float] = {
            "price_table": self._by_source["price_table"],
            "balance": scale * self._weights if self._scale is not None else 0.0,
            "estimate": self._weights if self._scale is None else 0.0,
        }
        for source, amount in parts.items():
            key = f"{keys.COST_SOURCE}/{source}"
            if amount or stats.get_value(key) is not None:
                stats.set_value(key, round(amount, 6))


class Reconciler:
    """Asks for the balance when the crawl's first task is about to be created, then at most
    every ``interval`` seconds while tasks without a price are counted, and at the close; each
    answer prices those tasks (:meth:`Ledger.reconcile`)."""

    def __init__(
        self,
        ledger: Ledger,
        get_balance: Callable[[], Awaitable[float]],
        interval: float,
        on_correction: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        self.ledger = ledger
        self._get_balance = get_balance
        self._on_correction = on_correction
        self.interval = interval
        self.start: float | None = None
        self.active = False  # a starting balance is known
        self.tried = False  # a starting balance was asked for (once per crawl)
        self._last = -math.inf
        self._job: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.checks = 0

    async def begin(self) -> None:
        """Before the first task: the balance everything is counted from (raises the client's
        errors; a refused key stops the crawl there, as createTask would)."""
        if self.tried and not self._lock.locked():
            return
        async with self._lock:  # the tasks created meanwhile wait for the figure
            if not self.tried:
                self.tried = True
                self.start = await self._get_balance()
                self.active = True
                self._last = asyncio.get_running_loop().time()

    def due(self) -> None:
        """A task was charged: reconcile in the background if the interval has passed."""
        if not self.active or not self.ledger.needs_balance:
            return
        now = asyncio.get_running_loop().time()
        if self._job is None and now - self._last >= self.interval:
            self._last = now
            self._job = asyncio.ensure_future(self._background())
            self._job.add_done_callback(self._done)

    async def _background(self) -> None:
        await self._check()

    def _done(self, _job: asyncio.Task[None]) -> None:
        self._job = None

    async def _check(self) -> float:
        """One balance check; returns by how much spending changed."""
        try:
            balance = await self._get_balance()
        except Exception as exc:  # a figure missed: the next check or the close makes up for it
            logger.info("uCaptcha balance for reconciliation not available: %s", exc)
            return 0.0
        self.checks += 1
        before = self.ledger.spent
        assert self.start is not None
        if not self.ledger.reconcile(self.start, balance):
            logger.info(
                "uCaptcha balance $%.4f does not explain the tasks counted (a top-up?): "
                "costs stay estimated",
                balance,
            )
        delta = self.ledger.spent - before
        if delta and self._on_correction is not None:
            await self._on_correction(delta)
        return delta

    async def finish(self) -> float:
        """At the close (no task in flight): the last check; returns the change in spending."""
        job, self._job = self._job, None
        if job is not None:
            job.cancel()
        if not self.active or not self.ledger.needs_balance:
            return 0.0
        return await self._check()
