"""A real redis-server on a free loopback port, and worker processes of a distributed crawl."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import sys
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import crawling
import pytest
from crawling import Env

from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

WORKER = Path(__file__).with_name("redis_worker.py")
HANG_GUARD = 60.0  # seconds a condition may take before the test counts as hung


def redis_server_or_skip() -> str:
    """The redis-server binary; a skip without it, unless UCAPTCHA_REQUIRE_REDIS is set (CI)."""
    found = shutil.which("redis-server")
    if found is None:
        if os.environ.get("UCAPTCHA_REQUIRE_REDIS"):
            pytest.fail("redis-server is not installed (the Debian package redis-server)")
        pytest.skip("redis-server is not installed (the Debian package redis-server)")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """Start redis-server on 127.0.0.1 and a free port, without persistence; yield its URL."""
    binary = redis_server_or_skip()
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    for _ in range(5):
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            binary,
            *("--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        client = Redis.from_url(url)
        try:
            for _ in range(200):
                if process.returncode is not None:
                    break
                try:
                    if await client.ping():
                        break
                except (OSError, RedisConnectionError):
                    await asyncio.sleep(0.02)
            else:
                pytest.fail("redis-server did not answer")
        finally:
            await client.aclose()
        if process.returncode is None:
            break
        await process.wait()  # the port was taken meanwhile: another one
    else:
        pytest.fail("redis-server did not start")
    try:
        yield url
    finally:
        process.terminate()
        await process.wait()


@dataclass
class Worker:
    name: str
    process: asyncio.subprocess.Process
    out: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        lines = self.out.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.endswith("}")]

    def parked(self) -> int:
        return sum(1 for r in self.records() if r["event"] == "parked")

    def stats(self) -> dict[str, Any]:
        closed = [r for r in self.records() if r["event"] == "closed"]
        assert len(closed) == 1, f"{self.name} did not close cleanly"
        stats: dict[str, Any] = closed[0]["stats"]
        return stats

    async def stop(self) -> None:
        """Ctrl-C: a graceful stop."""
        self.process.send_signal(signal.SIGINT)
        await self.wait()

    async def kill(self) -> None:
        self.process.kill()
        await self.process.wait()

    async def wait(self) -> int:
        try:
            return await asyncio.wait_for(self.process.wait(), HANG_GUARD)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            pytest.fail(f"{self.name} did not exit")


@dataclass
class Cluster:
    env: Env
    redis_url: str
    tmp: Path
    paths: list[str]
    settings: dict[str, Any]
    workers: list[Worker] = field(default_factory=list)

    async def start_worker(
        self, name: str, paths: list[str] | None = None, **settings: Any
    ) -> Worker:
        out = self.tmp / f"{name}.jsonl"
        config = {
            "base": self.env.site.url,
            "paths": self.paths if paths is None else paths,
            "out": str(out),
            "settings": {
                "LOG_FILE": str(self.tmp / f"{name}.log"),
                **self.settings,
                **settings,
            },
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WORKER),
            json.dumps(config),
            cwd=str(WORKER.parent),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        worker = Worker(name, process, out)
        self.workers.append(worker)
        return worker

    def deliveries(self) -> dict[str, list[dict[str, Any]]]:
        """Per page, every callback and errback call in any worker."""
        found: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for worker in self.workers:
            for record in worker.records():
                if record["event"] in ("page", "error"):
                    found[record["key"]].append({**record, "worker": worker.name})
        return found

    def delivered(self) -> int:
        return len(self.deliveries())

    async def stop_all(self) -> None:
        for worker in self.workers:
            if worker.process.returncode is None:
                await worker.stop()


def worker_settings(env: Env, redis_url: str, **overrides: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "UCAPTCHA_API_KEY": DEFAULT_API_KEY,
        "UCAPTCHA_API_URL": env.sim.url,
        "UCAPTCHA_FIRST_POLL": 0.2,
        "UCAPTCHA_POLL_INTERVAL": 0.2,
        "UCAPTCHA_LEASE_TIME": 8.0,  # long enough for renewals on a loaded machine
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy_ucaptcha.UCaptchaMiddleware": 585,
            "scrapy_ucaptcha.UCaptchaCookieCarrier": 650,
        },
        "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_PERSIST": True,
        "REDIS_URL": redis_url,
        "HTTPERROR_ALLOW_ALL": True,
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "INFO",
    }
    settings.update(overrides)
    return settings


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition`` holds (the workers are other processes); fail after HANG_GUARD."""
    await crawling.until(condition, what, guard=HANG_GUARD, poll=0.05)
