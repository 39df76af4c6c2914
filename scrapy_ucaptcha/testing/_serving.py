"""Loopback serving shared by the test-double servers (the uCaptcha simulator, the demo site).

:class:`LoopbackServer` serves a twisted.web resource on ``host:port`` and gives back the URL. It
writes no access log, keeps track of the open connections and of the delayed calls made through
it, and :meth:`~LoopbackServer.stop` stops listening, cancels the pending delayed calls, aborts
the open connections and waits until they are closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, cast

from twisted.internet.defer import Deferred, succeed
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web.server import Site

if TYPE_CHECKING:
    from twisted.internet.address import IPv4Address, IPv6Address
    from twisted.web.http import Request
    from twisted.web.resource import Resource

__all__ = ["DelayedCall", "LoopbackServer", "Reactor", "await_deferred", "get_reactor"]


# The reactor and its parts are typed as zope interfaces, which mypy cannot call; these protocols
# name what the servers use of them.


class DelayedCall(Protocol):
    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class _ListeningPort(Protocol):
    def getHost(self) -> IPv4Address | IPv6Address: ...

    def stopListening(self) -> Deferred[None] | None: ...


class Reactor(Protocol):
    def seconds(self) -> float: ...

    def callLater(self, delay: float, callable: Callable[[], object], /) -> DelayedCall: ...

    def listenTCP(
        self, port: int, factory: WrappingFactory, backlog: int = ..., interface: str = ...
    ) -> _ListeningPort: ...


def get_reactor() -> Reactor:
    """The installed reactor (imported late: importing it installs the default one)."""
    from twisted.internet import reactor

    return cast("Reactor", reactor)


async def await_deferred(waiter: Deferred[None]) -> None:
    """Await a Deferred in an asyncio task (Scrapy, asyncio reactor) or a Twisted-run coroutine."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no running event loop: a coroutine driven by Twisted
        task = None
    if task is None:
        await waiter
    else:
        await waiter.asFuture(task.get_loop())


class _QuietSite(Site):
    """A Site without the access log (the servers keep their own records of requests)."""

    noisy = False
    displayTracebacks = False

    def log(self, request: Request) -> None:
        return


class _Connections(WrappingFactory):
    """Keeps track of open connections so that they can all be aborted, and waited for."""

    noisy = False

    def __init__(self, site: Site) -> None:
        super().__init__(site)  # type: ignore[no-untyped-call]
        self._all_gone: list[Deferred[None]] = []

    def unregisterProtocol(self, p: ProtocolWrapper) -> None:
        super().unregisterProtocol(p)  # type: ignore[no-untyped-call]
        if not self.protocols:
            waiting, self._all_gone = self._all_gone, []
            for waiter in waiting:
                waiter.callback(None)

    def abort_all(self) -> Deferred[None]:
        """Abort every open connection; the Deferred fires once they are all closed."""
        if not self.protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._all_gone.append(waiter)
        for protocol in list(self.protocols):
            protocol.transport.abortConnection()
        return waiter


class LoopbackServer:
    """Serves a resource on ``host:port`` until :meth:`stop`; see the module docstring.

    ``not_running`` and ``already_running`` are the messages of the :class:`RuntimeError` raised
    by :attr:`url` before the first start and by :meth:`start` while running. The URL stays
    readable after :meth:`stop`; a new :meth:`start` replaces it.
    """

    def __init__(self, *, not_running: str, already_running: str) -> None:
        self._not_running = not_running
        self._already_running = already_running
        #: The delayed calls made with :meth:`call_later` that have neither run nor been cancelled.
        self.delayed: set[DelayedCall] = set()
        self._port: _ListeningPort | None = None
        self._connections: _Connections | None = None
        self._url: str | None = None

    def start(self, resource: Resource, port: int, host: str) -> str:
        """Serve ``resource`` on ``host:port`` (0: any free port); return ``http://HOST:PORT``."""
        if self._port is not None:
            raise RuntimeError(self._already_running)
        connections = _Connections(_QuietSite(resource))  # type: ignore[no-untyped-call]
        listening = get_reactor().listenTCP(port, connections, interface=host)
        self._port, self._connections = listening, connections
        netloc = f"[{host}]" if ":" in host else host
        self._url = f"http://{netloc}:{listening.getHost().port}"
        return self._url

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(self._not_running)
        return self._url

    @property
    def running(self) -> bool:
        return self._port is not None

    def call_later(self, delay: float, func: Callable[[], object]) -> DelayedCall:
        """Run ``func`` in ``delay`` seconds (at once if negative), unless cancelled or stopped."""
        holder: list[DelayedCall] = []

        def run() -> None:
            self.delayed.discard(holder[0])
            func()

        call = get_reactor().callLater(max(0.0, delay), run)
        holder.append(call)
        self.delayed.add(call)
        return call

    def cancel(self, call: DelayedCall) -> None:
        """Cancel a delayed call of :meth:`call_later` (no error if it has run already)."""
        self.delayed.discard(call)
        if call.active():
            call.cancel()

    async def stop(self) -> None:
        """Stop listening, cancel the pending delayed calls, abort the open connections and wait
        until they are closed. Harmless before :meth:`start` and when stopped already."""
        port, connections = self._port, self._connections
        self._port = self._connections = None
        for call in list(self.delayed):
            if call.active():
                call.cancel()
        self.delayed.clear()
        if port is None or connections is None:
            return
        stopped = port.stopListening()
        closed = connections.abort_all()
        if stopped is not None:
            await await_deferred(stopped)
        await await_deferred(closed)
