"""The demo site and the uCaptcha simulator, each in its own process on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapy_ucaptcha.testing.simulator import DEFAULT_API_KEY

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


@dataclass
class Server:
    """A server process that printed ``<banner>: URL`` once it listened."""

    name: str
    url: str
    process: subprocess.Popen[str] = field(repr=False)

    @classmethod
    def start(cls, name: str, argv: list[str], banner: str) -> Server:
        process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []

        def read_banner() -> None:
            assert process.stdout is not None
            lines.append(process.stdout.readline())

        reader = threading.Thread(target=read_banner, daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        line = lines[0].strip() if lines else ""
        prefix = f"{banner}: "
        if not line.startswith(prefix):
            process.kill()
            _, err = process.communicate()
            raise RuntimeError(f"{name} did not start: {line!r} {err[-2000:]}")
        return cls(name, line[len(prefix) :], process)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


def start_demo_site(*, pages: int, challenge_share: float, seed: int, slow: float = 0.0) -> Server:
    argv = ["-m", "scrapy_ucaptcha.testing", "demo", "--host", HOST, "--port", "0"]
    argv += ["--pages", str(pages), "--challenge-share", str(challenge_share)]
    argv += ["--site-seed", str(seed), "--slow", str(slow)]
    return Server.start("demo site", argv, "demo site")


def start_simulator(*, solve_time: str = "fixed:0", seed: int = 0) -> Server:
    argv = ["-m", "scrapy_ucaptcha.testing", "simulator", "--host", HOST, "--port", "0"]
    argv += ["--key", f"{DEFAULT_API_KEY}=1000000", "--solve-time", f"*={solve_time}"]
    argv += ["--seed", str(seed)]
    return Server.start("simulator", argv, "uCaptcha simulator")


def start_tls_front(target: Server, cert: Path, key: Path) -> Server:
    """https on 127.0.0.1 relayed to ``target`` (the SDKs of the peers scenario need https)."""
    address = target.url.split("://", 1)[-1].rstrip("/")
    argv = ["-m", "benchmarks.tls_front", "--target", address, "--cert", str(cert)]
    argv += ["--key", str(key)]
    return Server.start("tls front", argv, "tls front")


def control(sim: Server, name: str, payload: Any = None, method: str | None = None) -> Any:
    """Call a ``/_simulator/<name>`` control endpoint; return its JSON answer."""
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(  # noqa: S310 (a loopback http URL)
        f"{sim.url}/_simulator/{name}",
        data=data,
        method=method or ("GET" if data is None else "POST"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 (loopback URL)
        return json.loads(response.read())


def fetch(url: str) -> tuple[bytes, dict[str, str]]:
    """Body and headers of a GET on a loopback URL."""
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 (loopback URL)
        return response.read(), dict(response.headers.items())
