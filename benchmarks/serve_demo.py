"""Run the demo challenge site until SIGINT/SIGTERM: ``python -m benchmarks.serve_demo --pages N``.

A stand-in until ``scrapy_ucaptcha.testing`` has a demo-site command. Prints exactly one line,
``demo site: http://127.0.0.1:PORT``, once it listens.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.reactor import install_reactor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_demo")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--challenge-share", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slow", type=float, default=0.0, help="seconds before each response")
    args = parser.parse_args(argv)

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from twisted.internet import reactor as _reactor

    from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig  # noqa: PLC0415

    reactor = cast("Any", _reactor)
    site = DemoSite(
        DemoSiteConfig(
            pages=args.pages, challenge_share=args.challenge_share, seed=args.seed, slow=args.slow
        )
    )

    def start() -> None:
        print(f"demo site: {site.start(port=args.port)}", flush=True)

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: deferred_from_coro(site.stop()))
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
