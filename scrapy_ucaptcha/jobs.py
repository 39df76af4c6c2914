"""Background asyncio tasks a component started, so that it can end them when the crawl closes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["Jobs"]


class Jobs:
    """A set of running tasks: each leaves the set when it is done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait(self, timeout: float) -> None:
        """Wait for the running tasks, at most ``timeout`` seconds."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if not t.done() and t is not current]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def cancel(self, timeout: float) -> None:
        """Cancel the running tasks and wait (bounded) until they have ended."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if not t.done() and t is not current]
        for task in tasks:
            task.cancel()
        if tasks:  # bounded: an HTTP call in flight ends within its timeout
            await asyncio.wait(tasks, timeout=timeout)
