"""Receives uCaptcha's task callbacks and wakes the poller of that task.

uCaptcha calls ``callbackUrl`` with an HTTP GET (``captcha_id``, ``status``, ``code``) when a task
finishes or fails; the createTask-compatible providers POST (the getTaskResult JSON with ``taskId``,
or 2captcha's form with ``id``), which works too. A callback carries no signature, so it is only
a hint: the solver answers it with a ``getTaskResult`` at once (which also gives the cost, the
solve time and multi-field solutions), and ids it did not create are ignored. Polling stays on as
the fallback.

A task solved quickly can have its callback arrive before the crawl has read createTask's answer:
a callback for an id not known yet is kept for :data:`EARLY_CALLBACK_TTL` seconds (at most
:data:`EARLY_CALLBACK_MAX` of them) and matched when createTask's answer names the id; ids that
never show up count as unknown.

uCaptcha refuses callback URLs on loopback and private networks: the listener must be reachable
from the internet (a public host, or a tunnel to ``UCAPTCHA_CALLBACK_LISTEN``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING, Any, cast

from scrapy.utils.defer import deferred_to_future
from twisted.web.resource import Resource
from twisted.web.server import Site

if TYPE_CHECKING:
    from twisted.web.server import Request

__all__ = ["EARLY_CALLBACK_MAX", "EARLY_CALLBACK_TTL", "CallbackListener"]

logger = logging.getLogger(__name__)

#: Seconds a callback for an id not known yet waits for createTask's answer to name it.
EARLY_CALLBACK_TTL = 30.0
#: Callbacks for ids not known yet kept at most (the oldest beyond that count as unknown).
EARLY_CALLBACK_MAX = 1000


class _CallbackResource(Resource):
    isLeaf = True

    def __init__(self, listener: CallbackListener) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.listener = listener

    def render_GET(self, request: Request) -> bytes:
        raw = (request.args or {}).get(b"captcha_id", [b""])[0]
        self.listener.notify(raw.decode("utf-8", "replace"))
        request.setHeader(b"Content-Type", b"text/plain")  # type: ignore[no-untyped-call]
        return b"OK"

    def render_POST(self, request: Request) -> bytes:
        """Anti-Captcha, CapSolver and CapMonster POST the getTaskResult JSON (``taskId``);
        2captcha posts a form (``id``); uCaptcha's query (``captcha_id``) works too."""
        args = request.args or {}
        raw = (args.get(b"captcha_id") or args.get(b"id") or [b""])[0].decode("utf-8", "replace")
        if not raw and request.content is not None:
            raw = _task_id_of(request.content.read(_MAX_BODY))
        self.listener.notify(raw)
        request.setHeader(b"Content-Type", b"text/plain")  # type: ignore[no-untyped-call]
        return b"OK"


_MAX_BODY = 65_536


def _task_id_of(body: bytes) -> str:
    """The ``taskId`` of a JSON callback body, or ``""``."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ""
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if isinstance(task_id, bool) or not isinstance(task_id, (str, int)):
        return ""
    return str(task_id)


class CallbackListener:
    """An HTTP listener for task callbacks; :meth:`wait` lets a poller sleep until one arrives."""

    def __init__(self, host: str, port: int, url_template: str) -> None:
        self.host = host
        self.port = port
        self.url_template = url_template
        self.url: str | None = None
        self.received = 0
        self.expired = 0  # callbacks for ids that never showed up
        self._events: dict[str, asyncio.Event] = {}
        self._early: dict[str, float] = {}  # id -> when its callback came, ids not known yet
        self._port: object | None = None

    def start(self) -> str:
        """Listen; return the public callback URL (``{port}`` in the template filled in)."""
        from twisted.internet import reactor

        site = Site(_CallbackResource(self))  # type: ignore[no-untyped-call]
        self._port = cast("Any", reactor).listenTCP(self.port, site, interface=self.host)
        actual: int = cast("Any", self._port).getHost().port
        self.url = self.url_template.replace("{port}", str(actual))
        logger.info("uCaptcha callbacks: listening on %s:%d for %s", self.host, actual, self.url)
        return self.url

    async def stop(self) -> None:
        port, self._port = self._port, None
        for event in self._events.values():
            event.set()
        self._events.clear()
        if port is not None:
            stopped: Any = cast("Any", port).stopListening()
            if stopped is not None:
                await deferred_to_future(stopped)

    @property
    def unknown(self) -> int:
        """Callbacks for ids this crawl did not create (or not yet: those kept count too)."""
        return self.expired + len(self._early)

    def expect(self, task_id: object) -> None:
        """Start listening for ``task_id`` (right after createTask); a callback for it that
        came before is used now."""
        key = str(task_id)
        event = self._events.setdefault(key, asyncio.Event())
        self._prune()
        if self._early.pop(key, None) is not None:
            self.received += 1
            event.set()

    def _prune(self) -> None:
        now = asyncio.get_running_loop().time()
        for key, seen in list(self._early.items()):
            if now - seen < EARLY_CALLBACK_TTL and len(self._early) <= EARLY_CALLBACK_MAX:
                break  # in arrival order: the rest are younger
            del self._early[key]
            self.expired += 1

    def forget(self, task_id: object) -> None:
        self._events.pop(str(task_id), None)

    def notify(self, task_id: str) -> None:
        event = self._events.get(task_id)
        if event is None:
            self._prune()
            if task_id and task_id not in self._early:
                self._early[task_id] = asyncio.get_running_loop().time()
                logger.debug("uCaptcha callback for a task id not known (yet) kept")
            else:
                self.expired += 1
            return
        self.received += 1
        event.set()

    async def wait(self, task_id: object, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds or until ``task_id``'s callback; True if it came."""
        event = self._events.get(str(task_id))
        if event is None:
            await asyncio.sleep(timeout)
            return False
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        event.clear()
        return True
