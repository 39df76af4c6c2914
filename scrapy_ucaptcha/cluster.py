"""What the workers of one distributed crawl (scrapy-redis) share through Redis.

* **Leases.** A request parked in a worker (waiting for its task, for a task slot or for a
  domain-scope solve) exists only in that worker's memory: scrapy-redis popped it from Redis long
  ago. So each waiting request is also written to Redis (as it was before any token) with a lease
  that its worker renews every third of ``UCAPTCHA_LEASE_TIME``. When the request leaves (re-issued
  through the shared queue, given up), the lease ends. A graceful stop expires the worker's leases
  at once; a killed worker stops renewing them. Every worker reaps expired leases and crawls their
  requests again, so a stopped or killed worker loses nothing once its leases expire.
* **Domain scope.** One worker at a time leads a (pattern, host) group's solve (a lock it renews);
  when the answer shows the clearance works, the cookies it set are published with a new
  generation, and every worker re-sends its followers with them.
* **Budget.** ``UCAPTCHA_BUDGET`` is shared: :class:`RedisBudgetStore` keeps the figures of
  :class:`~scrapy_ucaptcha.budget.Budget` (spent, reserved for tasks in flight) for all workers,
  each change atomic.

Every call is a Lua script run atomically by Redis, on ``redis.asyncio`` (never blocking the
reactor); times are Redis' own clock, so workers on other machines agree on lease expiry.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from scrapy_ucaptcha.jobs import Jobs

__all__ = ["Clearance", "Cluster", "LeaseKeeper", "RedisBudgetStore"]

logger = logging.getLogger(__name__)

_NOW_MS = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "

# KEYS: leases, parked; ARGV: ttl_ms, id, payload, id, payload...
_LEASE = (
    _NOW_MS
    + """
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
end
return #ARGV / 2
"""
)
# KEYS: leases; ARGV: ttl_ms, ids... → the ids no longer leased (reaped by another worker)
_RENEW = (
    _NOW_MS
    + """
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""
)
# KEYS: leases, parked; ARGV: ids
_END = """
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('HDEL', KEYS[2], ARGV[i])
end
return #ARGV
"""
# KEYS: leases; ARGV: ids
_EXPIRE = """
local n = 0
for i = 1, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', 0, ARGV[i]) end
return n
"""
# KEYS: leases, parked; ARGV: limit → payloads of expired leases, now ours
_REAP = (
    _NOW_MS
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local payloads = {}
for _, id in ipairs(ids) do
  local payload = redis.call('HGET', KEYS[2], id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
  if payload then table.insert(payloads, payload) end
end
return payloads
"""
)
# KEYS: budget; ARGV: spent delta, reserved delta → {spent, reserved} after (reserved >= 0)
_BUDGET_ADD = """
local spent = redis.call('HINCRBYFLOAT', KEYS[1], 'spent', ARGV[1])
local reserved = tonumber(redis.call('HINCRBYFLOAT', KEYS[1], 'reserved', ARGV[2]))
if reserved < 0 then
  reserved = 0
  redis.call('HSET', KEYS[1], 'reserved', '0')
end
return {spent, tostring(reserved)}
"""


# Domain scope. KEYS: lock; ARGV: owner, ttl_ms → 1 when this worker leads the group now (it
# took the lock, or held it already: two of its requests met the challenge at the same time)
_CLAIM = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS: lock; ARGV: owner, ttl_ms → 1 while this worker still leads
_HOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
# KEYS: group, lock; ARGV: cookies (JSON), owner → the new generation; the lead ends if the
# lock is still the owner's (after it expired another worker may lead, and keeps its lock)
_PUBLISH = """
local generation = redis.call('HINCRBY', KEYS[1], 'generation', 1)
redis.call('HSET', KEYS[1], 'cookies', ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return generation
"""
# KEYS: lock; ARGV: owner → 1 when the owner's lead ended here
_ABANDON = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS: group, lock → {generation, cookies, locked}
_CLEARANCE = """
local found = redis.call('HMGET', KEYS[1], 'generation', 'cookies')
return {tonumber(found[1] or '0'), found[2] or '[]', redis.call('EXISTS', KEYS[2])}
"""


@dataclass(frozen=True)
class Clearance:
    """A domain-scope group as the whole crawl sees it: how many clearances were granted, the
    cookies the last one set (``Set-Cookie`` values), whether a worker is solving for it now."""

    generation: int = 0
    cookies: tuple[str, ...] = ()
    solving: bool = False


class RedisClient(Protocol):
    """What this module uses of ``redis.asyncio.Redis`` (an optional dependency)."""

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Awaitable[Any]: ...

    def zcard(self, name: str) -> Awaitable[int]: ...

    def delete(self, *names: str) -> Awaitable[int]: ...

    async def aclose(self) -> None: ...


class Cluster:
    """Leases and the shared budget of one crawl, under the keys ``<prefix>:...``."""

    def __init__(self, redis: RedisClient, prefix: str, *, lease_time: float) -> None:
        self.redis = redis
        self.prefix = prefix
        self.lease_ms = max(1, round(lease_time * 1000))
        self.leases_key = f"{prefix}:leases"
        self.parked_key = f"{prefix}:parked"
        self.budget_key = f"{prefix}:budget"

    @classmethod
    def from_url(cls, url: str, prefix: str, *, lease_time: float) -> Cluster:
        try:
            from redis.asyncio import Redis  # noqa: PLC0415  (the redis extra)
        except ImportError:  # checked by Config already; kept for direct use
            raise ImportError("install scrapy-ucaptcha[redis] to use Redis") from None
        client: RedisClient = Redis.from_url(url)
        return cls(client, prefix, lease_time=lease_time)

    async def run(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        return await self.redis.eval(script, len(keys), *keys, *args)

    # --- leases ---------------------------------------------------------------------------------

    async def lease(self, entries: Sequence[tuple[str, bytes]], *, expired: bool = False) -> None:
        """Lease ``(id, payload)`` pairs for a lease time (``expired``: for none, so that any
        worker takes them at its next reap)."""
        if entries:
            args = [value for entry in entries for value in entry]
            ttl = 0 if expired else self.lease_ms
            await self.run(_LEASE, [self.leases_key, self.parked_key], [ttl, *args])

    async def renew(self, ids: Sequence[str]) -> list[str]:
        """Extend the leases of ``ids``; return those that are gone (reaped by another worker
        after this one missed its renewals)."""
        if not ids:
            return []
        lost = await self.run(_RENEW, [self.leases_key], [self.lease_ms, *ids])
        return [x.decode() if isinstance(x, bytes) else str(x) for x in lost]

    async def end(self, ids: Sequence[str]) -> None:
        """The requests of ``ids`` left this worker the normal way: forget them."""
        if ids:
            await self.run(_END, [self.leases_key, self.parked_key], list(ids))

    async def expire(self, ids: Sequence[str]) -> int:
        """Expire the leases of ``ids`` now (a graceful stop): any worker may take them."""
        if not ids:
            return 0
        return int(await self.run(_EXPIRE, [self.leases_key], list(ids)))

    async def reap(self, limit: int = 100) -> list[bytes]:
        """Take up to ``limit`` requests whose lease expired; each goes to one worker only."""
        payloads = await self.run(_REAP, [self.leases_key, self.parked_key], [limit])
        return [p for p in payloads if isinstance(p, bytes)]

    async def leased(self) -> int:
        """Requests waiting in any worker (or released and not reaped yet)."""
        return int(await self.redis.zcard(self.leases_key))

    # --- domain scope ---------------------------------------------------------------------------

    def _scope_keys(self, group: tuple[str, str]) -> list[str]:
        name = f"{group[0]}|{group[1]}"
        return [f"{self.prefix}:scope:{name}", f"{self.prefix}:scope-lock:{name}"]

    async def claim(self, group: tuple[str, str], owner: str) -> bool:
        """Lead ``group``'s next solve for the whole crawl, unless another worker already does.

        True for ``owner`` again while it leads: requests of one worker challenged at the same
        time all claim before any of them has joined the group in the worker, and whichever
        claim answers first must not take the others' lock for another worker's (they would all
        wait for a solve that nobody runs until the lock expired).
        """
        lock = self._scope_keys(group)[1]
        return bool(await self.run(_CLAIM, [lock], [owner, self.lease_ms]))

    async def hold(self, group: tuple[str, str], owner: str) -> bool:
        """Extend ``owner``'s lead of ``group``; False when it has none any more."""
        lock = self._scope_keys(group)[1]
        return bool(await self.run(_HOLD, [lock], [owner, self.lease_ms]))

    async def publish(self, group: tuple[str, str], cookies: Sequence[str], owner: str) -> int:
        """``owner``'s solve cleared the site: a new generation, with the cookies it set; its
        lead ends (a lead another worker took meanwhile stays). Return the generation."""
        args = [json.dumps(list(cookies)), owner]
        return int(await self.run(_PUBLISH, self._scope_keys(group), args))

    async def abandon(self, group: tuple[str, str], owner: str) -> bool:
        """``owner``'s solve failed: its lead ends without a clearance. A lead another worker
        took meanwhile stays; False then."""
        lock = self._scope_keys(group)[1]
        return bool(await self.run(_ABANDON, [lock], [owner]))

    async def clearance(self, group: tuple[str, str]) -> Clearance:
        generation, cookies, locked = await self.run(_CLEARANCE, self._scope_keys(group), [])
        try:
            values = json.loads(cookies)
        except ValueError:
            values = []
        carried = tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()
        return Clearance(int(generation), carried, bool(locked))

    # --- budget ---------------------------------------------------------------------------------

    def budget_store(self) -> RedisBudgetStore:
        """The figures of ``UCAPTCHA_BUDGET`` for every worker (a
        :class:`~scrapy_ucaptcha.budget.BudgetStore`)."""
        return RedisBudgetStore(self)

    async def close(self) -> None:
        await self.redis.aclose()


class RedisBudgetStore:
    """A :class:`~scrapy_ucaptcha.budget.BudgetStore` in Redis: each change is atomic, so the
    budget holds for all workers together (spent, and reserved for the tasks in flight)."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster

    async def add(self, *, spent: float = 0.0, reserved: float = 0.0) -> tuple[float, float]:
        cluster = self.cluster
        totals = await cluster.run(_BUDGET_ADD, [cluster.budget_key], [repr(spent), repr(reserved)])
        return float(totals[0]), float(totals[1])


class LeaseKeeper:
    """This worker's leases: written, renewed and ended in order, in the background.

    Lease operations run one after another (an ``asyncio.Lock`` is first come, first served), so
    a lease is never ended before it was written. A Redis error is logged and loses nothing but
    the protection against this worker's death: the requests are still here.
    """

    def __init__(self, cluster: Cluster, *, on_lost: Callable[[list[str]], None]) -> None:
        self.cluster = cluster
        self._on_lost = on_lost
        self._live: set[str] = set()
        self._lock = asyncio.Lock()
        self._jobs = Jobs()

    def __len__(self) -> int:
        return len(self._live)

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex

    def add(self, lease_id: str, payload: bytes) -> None:
        self._live.add(lease_id)
        self._jobs.spawn(self._in_turn(self.cluster.lease([(lease_id, payload)]), "write"))

    def drop(self, lease_id: str | None) -> None:
        if lease_id is None or lease_id not in self._live:
            return
        self._live.discard(lease_id)
        self._jobs.spawn(self._in_turn(self.cluster.end([lease_id]), "end"))

    async def renew(self) -> None:
        ids = sorted(self._live)
        lost = await self._in_turn(self.cluster.renew(ids), "renew")
        if lost:
            self._live.difference_update(lost)
            self._on_lost(lost)

    async def release_all(self, timeout: float) -> int:
        """Expire every lease now, so that the other workers take the requests; how many."""
        await self._jobs.wait(timeout)
        ids, self._live = sorted(self._live), set()
        expired = await self._in_turn(self.cluster.expire(ids), "expire")
        return int(expired or 0)

    async def _in_turn(self, call: Coroutine[Any, Any, Any], what: str) -> Any:
        async with self._lock:
            try:
                return await call
            except Exception as exc:  # Redis down, say: the requests are still in this worker
                logger.warning("Redis lease %s failed: %r", what, exc)
                return None
