"""The middleware's side of a distributed crawl (``UCAPTCHA_REDIS_URL``, scrapy-redis workers).

Two things are shared through Redis (:mod:`scrapy_ucaptcha.cluster` holds the scripts):

* **Leases.** Every request waiting in this worker for a solve is written to Redis under a lease
  that this worker renews every third of ``UCAPTCHA_LEASE_TIME``. When it stops it hands its
  leases over at once; when it dies they expire, and another worker crawls those requests again.
  A lease another worker took (this one missed its renewals) ends the request here without a word.
* **Domain-scope clearances.** One worker leads a group (a template's pattern and a host) for the
  whole crawl; the others' requests of the group follow it, and are re-sent with the clearance it
  publishes, or try on their own when its lead ends without one.

Redis going away degrades each worker to a crawl of its own: a warning, nothing lost.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from scrapy.utils.request import request_from_dict

from scrapy_ucaptcha import stats as keys
from scrapy_ucaptcha.cluster import Cluster, LeaseKeeper
from scrapy_ucaptcha.keep import original
from scrapy_ucaptcha.state import RequestState

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler

    from scrapy_ucaptcha.jobs import Jobs
    from scrapy_ucaptcha.parking import ParkingLot
    from scrapy_ucaptcha.scope import DomainScope, Follower
    from scrapy_ucaptcha.solver import Reckoning
    from scrapy_ucaptcha.stats import StatsRecorder
    from scrapy_ucaptcha.templates import Template

__all__ = ["Workers"]

logger = logging.getLogger(__name__)


class HandBack(Protocol):
    """The middleware's way of crawling a request again, tracked until it is answered."""

    def __call__(
        self,
        request: Request,
        state: RequestState | None,
        *,
        priority: int,
        carry: Sequence[str] = (),
    ) -> None: ...


class Workers:
    """This worker's leases and its part in the crawl's domain-scope groups."""

    def __init__(
        self,
        cluster: Cluster,
        *,
        crawler: Crawler,
        stats: StatsRecorder,
        lot: ParkingLot,
        scope: DomainScope,
        jobs: Jobs,
        hand_back: HandBack,
        send: Callable[[list[Follower], Sequence[str]], None],
    ) -> None:
        self.cluster = cluster
        self.crawler = crawler
        self.stats = stats
        self.lot = lot
        self.scope = scope
        self.jobs = jobs
        self.hand_back = hand_back
        self.send = send
        self.leases = LeaseKeeper(cluster, on_lost=self._leases_lost)
        self.worker_id = LeaseKeeper.new_id()  # this worker, as a domain-scope group's leader
        #: Requests waiting in any worker, as Redis last said: the spider stays open for them.
        self.leased = 0
        self._tending: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: Leads ending in Redis: a claim of the same group waits for it, so that the end of an
        #: old lead never deletes a new one of this worker.
        self._abandoning: dict[tuple[str, str], asyncio.Task[bool]] = {}

    # --- life -----------------------------------------------------------------------------------

    def start(self, spider: Spider) -> None:
        self._tending = asyncio.ensure_future(self._tend(spider))

    async def stop_tending(self, timeout: float) -> None:
        """End the tending loop after its current step (a Redis call cancelled half-way could
        lose the requests it was taking from Redis); cancelled after ``timeout`` seconds."""
        self._stopping.set()
        if self._tending is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._tending), timeout)
        except asyncio.TimeoutError:
            self._tending.cancel()
        except Exception:  # noqa: S110  (the loop logs its own errors)
            pass

    async def release(
        self, spider: Spider, waiting: list[Request], reckoning: Reckoning, timeout: float
    ) -> None:
        """This worker stops: its waiting requests go to the others."""
        released = await self.leases.release_all(timeout)
        if released:
            self.stats.inc(keys.RELEASED, released)
        if waiting or reckoning.tasks:
            logger.warning(
                "closed with %d request(s) waiting for a CAPTCHA solve: %d handed to the other "
                "workers through Redis; %d task(s) in flight abandoned, %d of them already "
                "solved and charged ($%.4f), %d still solving",
                len(waiting),
                released,
                reckoning.tasks,
                reckoning.charged,
                reckoning.cost,
                reckoning.pending,
                extra={"spider": spider},
            )

    async def aclose(self) -> None:
        """Close Redis: after the last use of the shared budget."""
        await self.cluster.close()

    # --- leases ---------------------------------------------------------------------------------

    def new_lease(self) -> str:
        return self.leases.new_id()

    def lease(self, lease: str | None, request: Request) -> None:
        """Write a waiting request to Redis under ``lease``, renewed while it waits here."""
        if lease is None:
            return
        try:
            as_dict = original(request).to_dict(spider=self.crawler.spider)
            payload = pickle.dumps(as_dict, protocol=4)
        except Exception:
            logger.warning(
                "%s cannot be serialised: it is not protected against this worker's death",
                request,
                extra={"spider": self.crawler.spider},
            )
            return
        self.leases.add(lease, payload)

    def unlease(self, lease: str | None) -> None:
        self.leases.drop(lease)

    def _leases_lost(self, leases: list[str]) -> None:
        """Another worker took these leases (this one missed its renewals): it crawls them, so
        they end here without a word to the engine."""
        lost = set(leases)
        for parked in self.lot.parked():
            if parked.lease in lost and self.lot.leave(parked):
                if parked.job is not None:
                    parked.job.cancel()
                self.stats.inc(keys.LEASES_LOST)
        logger.warning(
            "%d waiting request(s) were taken over by another worker after missed lease renewals",
            len(lost),
            extra={"spider": self.crawler.spider},
        )

    async def _tend(self, spider: Spider) -> None:
        """Renew this worker's leases, tend its groups and take requests whose lease expired,
        every third of the lease time."""
        period = self.cluster.lease_ms / 3000  # a third of UCAPTCHA_LEASE_TIME
        while not self._stopping.is_set():
            try:
                await self.leases.renew()
                await self._tend_scope()
                if self._stopping.is_set():
                    break
                payloads = await self.cluster.reap()
                if self._stopping.is_set():  # the engine takes no request any more: back
                    entries = [(LeaseKeeper.new_id(), payload) for payload in payloads]
                    await self.cluster.lease(entries, expired=True)
                    break
                for payload in payloads:
                    self._recover(spider, payload)
                self.leased = await self.cluster.leased()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("Redis not reachable: %r", exc, extra={"spider": spider})
            with suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), period)

    def _recover(self, spider: Spider, payload: bytes) -> None:
        engine = self.crawler.engine
        try:
            request = request_from_dict(pickle.loads(payload), spider=spider)  # noqa: S301
        except Exception:
            logger.exception("a request leased in Redis cannot be read", extra={"spider": spider})
            self.stats.inc(keys.ABANDONED)
            return
        self.stats.inc(keys.RECOVERED)
        logger.info(
            "crawling %s again: it waited for a CAPTCHA solve in a worker that stopped",
            request,
            extra={"spider": spider},
        )
        if engine is not None:
            engine.crawl(request)

    # --- domain-scope groups --------------------------------------------------------------------

    async def join_scope(
        self,
        request: Request,
        template: Template,
        state: RequestState | None,
        origin: Request | None,
    ) -> bool:
        """A domain-scope challenge: re-send the request with a clearance another worker obtained
        since it was sent (True); else make this worker the group's leader for the whole crawl,
        or let the request follow the worker that is (False: the middleware parks it)."""
        key = (template.pattern, urlsplit(request.url).netloc)
        if state is not None and (state.presolve or (state.leads and state.group == key)):
            return False
        ending = self._abandoning.get(key)
        if ending is not None:
            with suppress(Exception):
                await asyncio.shield(ending)
        group = self.scope.group(key)
        if group is not None and group.phase != "open":
            return False  # follows the solve already under way here
        try:
            found = await self.cluster.clearance(key)
            if found.generation > 0 and found.generation > (state.generation if state else -1):
                base = state or RequestState(url=request.url, pattern=template.pattern)
                resent = replace(base, role="follower", group=key, generation=found.generation)
                self.stats.inc(keys.SHARED)
                self.hand_back(
                    origin or request, resent, priority=request.priority, carry=found.cookies
                )
                return True
            if await self.cluster.claim(key, self.worker_id):
                return False  # leads: parked by the middleware
        except Exception as exc:  # Redis down: the group is solved in this worker alone
            logger.warning("Redis not reachable: %r", exc, extra={"spider": self.crawler.spider})
            return False
        group = self.scope.group(key)
        if group is None or group.phase == "open":
            self.scope.follow_remote(key)
        return False

    async def publish(self, key: tuple[str, str], cookies: list[str]) -> int | None:
        """Publish a group's clearance for the whole crawl: its generation (None: Redis down)."""
        try:
            return await self.cluster.publish(key, cookies, self.worker_id)
        except Exception as exc:
            logger.warning("Redis not reachable: %r", exc, extra={"spider": self.crawler.spider})
            return None

    def abandon_lead(self, key: tuple[str, str] | None) -> None:
        """This worker's lead of ``key`` ended without a clearance: end it in Redis too."""
        if key is None:
            return
        ending = self.jobs.spawn(self.cluster.abandon(key, self.worker_id))
        self._abandoning[key] = ending

        def done(task: asyncio.Task[bool]) -> None:
            if self._abandoning.get(key) is task:
                del self._abandoning[key]

        ending.add_done_callback(done)

    async def _tend_scope(self) -> None:
        """Groups whose clearance may come from another worker: re-send their followers once it
        is published; let them try on their own when the lead ended without one."""
        for key in self.scope.led_here():
            group = self.scope.group(key)
            if group is not None and group.phase == "solving":
                await self.cluster.hold(key, self.worker_id)
        for key, group in self.scope.waiting_on_others():
            found = await self.cluster.clearance(key)
            if found.generation > group.generation:
                released = self.scope.release(key, None, generation=found.generation)
                self.send(released, found.cookies)
            elif not found.solving:
                self.send(self.scope.retry_alone(key), ())
            elif group.phase == "verifying":
                await self.cluster.hold(key, self.worker_id)
