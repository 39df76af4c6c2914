"""Command line of the offline test doubles: ``python -m scrapy_ucaptcha.testing COMMAND``.

Also installed as the ``ucaptcha-testing`` console script. Each command lives in an
``_add_<command>_command(subparsers)`` function that registers its parser and sets ``handler``,
a function taking the parsed arguments and returning the exit status.

``simulator``: run the uCaptcha API simulator until SIGINT/SIGTERM. It prints exactly one line,
``uCaptcha simulator: http://HOST:PORT``, once it listens. It serves the JSON API and the
2captcha legacy, DeathByCaptcha and RiskByPass protocols on the same port (``--protocol`` limits
that).

``demo``: run the demo challenge site; prints ``demo site: http://HOST:PORT``.

``serve``: run both in one process, printing both lines; they share the token-signing secret, so
the site accepts the simulator's tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast

from scrapy.utils.defer import deferred_from_coro
from scrapy.utils.reactor import install_reactor
from twisted.internet.error import CannotListenError

from scrapy_ucaptcha.testing._sim_dialects import SIM_DIALECTS

# None of these imports installs a reactor: the simulator command installs the asyncio one.
from scrapy_ucaptcha.testing.demo_site import DemoSite, DemoSiteConfig
from scrapy_ucaptcha.testing.simulator import (
    ALL_PROTOCOLS,
    Fault,
    Simulator,
    SimulatorConfig,
    SolveTime,
)

__all__ = ["build_parser", "config_from_args", "demo_config_from_args", "main"]

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


# --- argument types -------------------------------------------------------------------------------


def _key_balance(text: str) -> tuple[str, float]:
    key, sep, balance = text.partition("=")
    if not key:
        raise argparse.ArgumentTypeError(f"bad --key {text!r}: use KEY or KEY=BALANCE")
    try:
        return key, float(balance) if sep else 10.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad balance in --key {text!r}") from None


def _type_solve_time(text: str) -> tuple[str, str]:
    name, sep, spec = text.rpartition("=")
    name = name if sep else "*"
    try:
        SolveTime.parse(spec)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name or "*", spec


def _type_cost(text: str) -> tuple[str, float]:
    name, sep, usd = text.rpartition("=")
    try:
        value = float(usd)
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad --cost {text!r}: use TYPE=USD") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a cost cannot be negative")
    return (name if sep and name else "*"), value


def _fault(text: str) -> Fault:
    try:
        return Fault.from_dict(json.loads(text))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise argparse.ArgumentTypeError(f"bad --fault {text!r}: {exc}") from None


# --- simulator ------------------------------------------------------------------------------------


def _add_simulator_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulator",
        help="run the uCaptcha API simulator",
        description=(
            "Serve the uCaptcha JSON API (createTask, getTaskResult, getBalance, feedbackTask) "
            "and the 2captcha legacy, DeathByCaptcha and RiskByPass protocols on loopback, with "
            "test-only /_simulator/... control endpoints. Prints "
            "'uCaptcha simulator: URL' once listening; stop it with Ctrl-C or SIGTERM."
        ),
    )
    _add_common_args(parser)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    _add_simulator_args(parser)
    parser.set_defaults(handler=_run_simulator)


def _add_demo_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the demo challenge site",
        description=(
            "Serve the demo challenge site (reCAPTCHA, hCaptcha, Turnstile, image captcha, JSON "
            "API, domain clearance, an unsolvable managed challenge, negative pages) on loopback. "
            "Prints 'demo site: URL' once listening."
        ),
    )
    _add_common_args(parser)
    parser.add_argument("--port", type=int, default=0, help="port to listen on (0: any free port)")
    _add_demo_args(parser)
    parser.set_defaults(handler=_run_demo)


def _add_serve_command(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the simulator and the demo site together",
        description=(
            "Run the uCaptcha simulator and the demo site in one process; prints both URLs. "
            "Point UCAPTCHA_API_URL at the first and your spider at the second."
        ),
    )
    _add_common_args(parser)
    parser.add_argument("--simulator-port", type=int, default=0, help="simulator port (0: free)")
    parser.add_argument("--demo-port", type=int, default=0, help="demo site port (0: free)")
    _add_simulator_args(parser)
    _add_demo_args(parser)
    parser.set_defaults(handler=_run_serve)


def _add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--secret", help="secret that signs tokens (the simulator and the demo site share it)"
    )


def _add_demo_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pages", type=int, default=50, help="item pages (50)")
    parser.add_argument(
        "--challenge-share",
        type=float,
        default=0.2,
        help="share of item pages behind a reCAPTCHA interstitial (0.2)",
    )
    parser.add_argument("--per-list", type=int, default=25, help="links per listing page (25)")
    parser.add_argument("--site-seed", type=int, default=0, help="seed of the guarded pages (0)")
    parser.add_argument(
        "--challenge-status", type=int, default=200, help="HTTP status of interstitials (200)"
    )
    parser.add_argument("--slow", type=float, default=0.0, help="delay per page in seconds (0)")


def demo_config_from_args(args: argparse.Namespace) -> DemoSiteConfig:
    """The :class:`DemoSiteConfig` the demo arguments describe."""
    extra: dict[str, Any] = {} if args.secret is None else {"secret": args.secret}
    return DemoSiteConfig(
        pages=args.pages,
        challenge_share=args.challenge_share,
        per_list=args.per_list,
        seed=args.site_seed,
        challenge_status=args.challenge_status,
        slow=args.slow,
        **extra,
    )


def _add_simulator_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key",
        action="append",
        type=_key_balance,
        default=[],
        metavar="KEY[=BALANCE]",
        help="accept this API key, with a balance in USD (default 10); repeatable. "
        "Without --key the simulator accepts ucap_simulatorkey0123456789abcdef",
    )
    parser.add_argument(
        "--solve-time",
        action="append",
        type=_type_solve_time,
        default=[],
        metavar="[TYPE=]SPEC",
        help="solve time for a task type, family (recaptcha, hcaptcha, turnstile, image) or '*': "
        "fixed:S, uniform:LO:HI or lognormal:MEDIAN:SIGMA; repeatable (default fixed:0.05)",
    )
    parser.add_argument(
        "--cost",
        action="append",
        type=_type_cost,
        default=[],
        metavar="[TYPE=]USD",
        help="price of a task type, family or '*' in USD; repeatable",
    )
    parser.add_argument("--idle-time", type=float, help="seconds a task stays idle (0)")
    parser.add_argument("--token-ttl", type=float, help="seconds a token stays valid (120)")
    parser.add_argument("--result-ttl", type=float, help="seconds a result stays queryable (300)")
    parser.add_argument("--rate-limit", type=int, help="requests per window and IP (10000)")
    parser.add_argument("--rate-window", type=float, help="rate-limit window in seconds (10)")
    parser.add_argument("--user-agent", help="userAgent to return with token solutions")
    parser.add_argument("--seed", type=int, help="seed for random solve times")
    parser.add_argument(
        "--dialect",
        choices=sorted(SIM_DIALECTS),
        help="the provider to imitate: answer shapes, ids, codes and report endpoints (ucaptcha)",
    )
    parser.add_argument(
        "--protocol",
        action="append",
        choices=ALL_PROTOCOLS,
        default=[],
        help="serve only this protocol (repeatable; default: all of them, on the same port): "
        "createTask (the JSON API), 2captcha-legacy (/in.php, /res.php), deathbycaptcha (/api...) "
        "or riskbypass (/task/..., /api/user/balance)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        type=_fault,
        default=[],
        metavar="JSON",
        help='inject a fault, e.g. \'{"kind": "http_error", "status": 502, "times": 3}\'; '
        "repeatable",
    )


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The :class:`SimulatorConfig` the ``simulator`` arguments describe."""
    config = SimulatorConfig()
    if args.key:
        config.keys = dict(args.key)
    for name, spec in args.solve_time:
        config.solve_time[name] = SolveTime.parse(spec)
    for name, usd in args.cost:
        config.cost[name] = usd
    for option in ("idle_time", "token_ttl", "result_ttl", "rate_limit", "rate_window"):
        value = getattr(args, option)
        if value is not None:
            if value < 0:
                raise ValueError(f"--{option.replace('_', '-')} cannot be negative")
            setattr(config, option, value)
    if args.protocol:
        config.protocols = set(args.protocol)
    for option in ("user_agent", "secret", "seed", "dialect"):
        if getattr(args, option) is not None:
            setattr(config, option, getattr(args, option))
    return config


class _Server(Protocol):
    def start(self, port: int = 0, host: str = "127.0.0.1") -> str: ...

    async def stop(self) -> None: ...


def _run_simulator(args: argparse.Namespace) -> int:
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"ucaptcha-testing simulator: {exc}", file=sys.stderr)
        return 2
    sim = Simulator(config)
    for fault in args.fault:
        sim.add_fault(fault)
    return _serve(args.host, [("uCaptcha simulator", sim, args.port)])


def _run_demo(args: argparse.Namespace) -> int:
    try:
        site = DemoSite(demo_config_from_args(args))
    except ValueError as exc:
        print(f"ucaptcha-testing demo: {exc}", file=sys.stderr)
        return 2
    return _serve(args.host, [("demo site", site, args.port)])


def _run_serve(args: argparse.Namespace) -> int:
    try:
        sim = Simulator(config_from_args(args))
        site = DemoSite(demo_config_from_args(args))
    except ValueError as exc:
        print(f"ucaptcha-testing serve: {exc}", file=sys.stderr)
        return 2
    for fault in args.fault:
        sim.add_fault(fault)
    return _serve(
        args.host,
        [("uCaptcha simulator", sim, args.simulator_port), ("demo site", site, args.demo_port)],
    )


def _serve(host: str, servers: list[tuple[str, _Server, int]]) -> int:
    """Start ``servers`` on the asyncio reactor, print ``label: URL`` for each, run until a
    signal stops the reactor."""
    install_reactor(ASYNCIO_REACTOR)
    from twisted.internet import reactor as _reactor

    reactor = cast("Any", _reactor)
    status = {"code": 0}
    started: list[_Server] = []

    def start() -> None:
        for label, server, port in servers:
            try:
                url = server.start(port=port, host=host)
            except CannotListenError as exc:
                print(f"ucaptcha-testing: {label}: {exc}", file=sys.stderr)
                status["code"] = 1
                reactor.stop()
                return
            started.append(server)
            print(f"{label}: {url}", flush=True)

    async def stop_all() -> None:
        for server in started:
            await server.stop()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", lambda: deferred_from_coro(stop_all()))
    reactor.run()
    return status["code"]


# --- entry point ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="ucaptcha-testing",
        description="Offline test doubles for scrapy-ucaptcha.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_simulator_command(subparsers)
    _add_demo_command(subparsers)
    _add_serve_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    handler = cast("Callable[[argparse.Namespace], int]", args.handler)
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
