"""A spending cap that holds with tasks in flight.

A task may be created only when what is spent, plus what the tasks in flight are reserved at,
plus its own reservation stays within the budget; a reservation is the best price known for its
type (the ledger's: the API's last price, the user's price table, the reconciled price, else an
estimate). So near the budget fewer tasks may be in flight at once, and:

* if no task costs more than it was reserved at, spending never exceeds the budget;
* in any case it exceeds the budget by at most what the tasks in flight when it was reached cost
  beyond their reservations (less than their cost).

When the next task could not fit even with nothing in flight, the budget is exhausted for good;
when it could fit once tasks in flight end, :meth:`Budget.reserve` waits for them.

The two figures (spent, reserved) live in a :class:`BudgetStore`: :class:`LocalBudgetStore` in
this process by default; a store shared by several processes (Redis, say) makes the budget hold
for all of them together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Budget", "BudgetExhausted", "BudgetStore", "LocalBudgetStore", "Reservation"]


class BudgetStore(Protocol):
    """Where a budget's figures live. ``add`` changes them atomically and returns both totals
    after the change, ``(spent, reserved)``, in USD."""

    async def add(self, *, spent: float = 0.0, reserved: float = 0.0) -> tuple[float, float]: ...


class LocalBudgetStore:
    """The figures in this process."""

    def __init__(self) -> None:
        self.spent = 0.0
        self.reserved = 0.0

    async def add(self, *, spent: float = 0.0, reserved: float = 0.0) -> tuple[float, float]:
        self.spent += spent
        self.reserved = max(0.0, self.reserved + reserved)
        return self.spent, self.reserved


class BudgetExhausted(Exception):
    """The next task would take spending past the budget even with nothing else in flight."""

    def __init__(self, limit: float, spent: float, reserved: float, amount: float) -> None:
        super().__init__(
            f"budget ${limit:.4f}: ${spent:.4f} spent, ${reserved:.4f} reserved in flight, "
            f"next task ${amount:.4f}"
        )
        self.limit = limit
        self.spent = spent
        self.reserved = reserved
        self.amount = amount


@dataclass(eq=False)
class Reservation:
    """What one task in flight holds of the budget."""

    amount: float
    open: bool = True


class Budget:
    """Reserve before creating a task; settle at its price or release it when nothing is paid.

    ``limit`` None: no cap (spending is still followed). While reserving, the figures of the last
    answer of the store are kept in :attr:`spent` and :attr:`reserved`.
    """

    #: Seconds between two looks at a shared store while waiting for room.
    recheck = 1.0

    def __init__(self, limit: float | None, store: BudgetStore | None = None) -> None:
        self.limit = limit
        self.store: BudgetStore = store if store is not None else LocalBudgetStore()
        self.spent = 0.0
        self.reserved = 0.0
        self._room = asyncio.Event()

    @property
    def remaining(self) -> float | None:
        """USD left before the cap, counting reservations (None: no cap)."""
        if self.limit is None:
            return None
        return max(0.0, self.limit - self.spent - self.reserved)

    async def try_reserve(self, amount: float) -> Reservation | None:
        """Reserve ``amount`` if it fits now; None when it fits only once tasks in flight end;
        raise :class:`BudgetExhausted` when it never will."""
        self.spent, self.reserved = await self.store.add(reserved=amount)
        if self.limit is None or self.spent + self.reserved <= self.limit + 1e-12:
            return Reservation(amount)
        self.spent, self.reserved = await self.store.add(reserved=-amount)
        if self.spent + amount > self.limit + 1e-12:
            raise BudgetExhausted(self.limit, self.spent, self.reserved, amount)
        return None

    async def reserve(
        self,
        amount: float,
        *,
        give_up: Callable[[], bool] = lambda: False,
        on_wait: Callable[[], None] = lambda: None,
    ) -> Reservation | None:
        """Reserve ``amount``, waiting while tasks in flight hold the room it needs; raise
        :class:`BudgetExhausted` when it can never fit; None once ``give_up()`` is true (checked
        whenever the room changes, see :meth:`wake`). ``on_wait`` is called before waiting."""
        while not give_up():
            room = self._room
            reservation = await self.try_reserve(amount)
            if reservation is not None:
                return reservation
            on_wait()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(room.wait(), self.recheck)
        return None

    def _changed(self) -> None:
        self._room.set()
        self._room = asyncio.Event()

    async def resize(self, reservation: Reservation, amount: float) -> None:
        """Hold ``amount`` instead (a better price became known while the task is in flight)."""
        if reservation.open and amount != reservation.amount:
            delta, reservation.amount = amount - reservation.amount, amount
            self.spent, self.reserved = await self.store.add(reserved=delta)
            if delta < 0:
                self._changed()

    async def settle(self, reservation: Reservation, cost: float) -> None:
        """The task was paid ``cost``: spent instead of reserved."""
        if reservation.open:
            reservation.open = False
            self.spent, self.reserved = await self.store.add(
                spent=cost, reserved=-reservation.amount
            )
        else:
            self.spent, self.reserved = await self.store.add(spent=cost)
        self._changed()

    async def release(self, reservation: Reservation) -> None:
        """The task cost nothing (refunded, or never created)."""
        if reservation.open:
            reservation.open = False
            self.spent, self.reserved = await self.store.add(reserved=-reservation.amount)
            self._changed()

    async def correct(self, delta: float) -> None:
        """Spending turned out ``delta`` USD different (a reconciliation with the balance)."""
        if delta:
            self.spent, self.reserved = await self.store.add(spent=delta)
            self._changed()

    def wake(self) -> None:
        """Wake the tasks waiting for room (so they see a stop)."""
        self._changed()
