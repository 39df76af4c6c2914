"""The parking lot: requests waiting for their token, outside the downloader.

A challenged request is parked here while its task is solved, and leaves exactly once, through
:meth:`ParkingLot.leave`: re-issued with its token, failed, or kept at a stop. Whoever gets it
from ``leave`` hands it back; anyone else gets ``None`` and does nothing, so "each request ends
exactly once" is decided in one place.

A request handed back to the engine carries a ticket (``meta["_ucaptcha_ticket"]``) until its
answer or its error comes back through the middleware (tickets are plain strings, so they survive
Scrapy's retries, which copy the meta, and serialisation); the lot keeps the tickets it issued.
Parked requests and tickets are what keeps the spider open.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass
from itertools import count
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scrapy import Request

    from scrapy_ucaptcha.planner import TaskPlan
    from scrapy_ucaptcha.state import RequestState
    from scrapy_ucaptcha.templates import Template

__all__ = ["Parked", "ParkingLot", "Settled"]


@dataclass(eq=False, slots=True)
class Parked:
    """A request waiting for its token, and what re-issuing it needs (not the page)."""

    id: int
    request: Request
    state: RequestState
    template: Template
    plan: TaskPlan
    origin: Request  # the request as it was before any token: what a stop keeps
    job: asyncio.Task[None] | None = None
    lease: str | None = None  # its lease in Redis, in a distributed crawl


@dataclass(frozen=True)
class Settled:
    """A ticket that came back: ``origin`` is the request before its token, if it had one."""

    origin: Request | None


class ParkingLot:
    """Parked requests (by id) and the tickets of requests handed back."""

    def __init__(self) -> None:
        self._ids = count(1)
        self._parked: dict[int, Parked] = {}  # waiting for a slot or for their task
        self._for_slot: deque[int] = deque()  # ids waiting for a task slot, oldest first
        # handed back to the engine, not answered yet; with the request before its token
        self._tickets: dict[str, Request | None] = {}

    def park(
        self,
        request: Request,
        state: RequestState,
        template: Template,
        plan: TaskPlan,
        origin: Request | None = None,
    ) -> Parked:
        parked = Parked(next(self._ids), request, state, template, plan, origin or request)
        self._parked[parked.id] = parked
        return parked

    def __contains__(self, parked_id: object) -> bool:
        return parked_id in self._parked

    def __len__(self) -> int:
        return len(self._parked)

    def parked(self) -> list[Parked]:
        return list(self._parked.values())

    def wait_for_slot(self, parked: Parked) -> None:
        """``parked`` waits for a task slot: it has no job (no asyncio task) until it gets one."""
        self._for_slot.append(parked.id)

    def next_for_slot(self) -> Parked | None:
        """The request that has waited longest for a task slot and is still parked."""
        while self._for_slot:
            parked = self._parked.get(self._for_slot.popleft())
            if parked is not None and parked.job is None:
                return parked
        return None

    def leave(self, parked: Parked) -> bool:
        """Take ``parked`` out of the lot: ``True`` the first time, ``False`` ever after."""
        return self._parked.pop(parked.id, None) is not None

    def leave_all(self) -> list[Parked]:
        """Take every parked request out (a stop): the caller ends each one."""
        parked, self._parked = list(self._parked.values()), {}
        self._for_slot.clear()
        return parked

    # --- tickets --------------------------------------------------------------------------------

    def issue(self, origin: Request | None = None) -> str:
        """A new ticket for a request about to be handed back; ``origin``: the request as it was
        before its token (when it carries one)."""
        ticket = uuid.uuid4().hex
        self._tickets[ticket] = origin
        return ticket

    def settle(self, ticket: object) -> Settled | None:
        """The request carrying ``ticket`` got its answer; ``None`` if the ticket is not ours
        (or was settled already)."""
        if not isinstance(ticket, str) or ticket not in self._tickets:
            return None
        return Settled(self._tickets.pop(ticket))

    @property
    def tickets(self) -> int:
        return len(self._tickets)

    def drop_tickets(self) -> int:
        """Forget every ticket still out (their requests were dropped); how many there were."""
        dropped = len(self._tickets)
        self._tickets.clear()
        return dropped
