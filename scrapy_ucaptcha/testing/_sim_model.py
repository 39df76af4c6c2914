"""Data types of the uCaptcha simulator: its configuration, faults and records.

Import them from :mod:`scrapy_ucaptcha.testing.simulator`; this module only keeps that one short.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from scrapy_ucaptcha.testing.tokens import DEFAULT_SECRET

__all__ = [
    "ALL_PROTOCOLS",
    "API_ENDPOINTS",
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "REQUEST_FAULT_KINDS",
    "TASK_ENDPOINTS",
    "TASK_FAULT_KINDS",
    "Call",
    "CallbackAttempt",
    "Fault",
    "SimTask",
    "SimulatorConfig",
    "SolveTime",
    "mask_key",
]

#: The key every simulator accepts unless told otherwise (it is not a real uCaptcha key).
DEFAULT_API_KEY = "ucap_simulatorkey0123456789abcdef"

#: The JSON API endpoints the simulator serves (paths without the leading slash); which report
#: endpoints answer depends on the dialect imitated (the others: ``ERROR_NO_SUCH_METHOD``).
API_ENDPOINTS = (
    "createTask",
    "getTaskResult",
    "getBalance",
    "feedbackTask",
    "reportIncorrect",
    "reportCorrect",
    "reportIncorrectRecaptcha",
    "reportIncorrectHcaptcha",
    "reportIncorrectImageCaptcha",
    "reportIncorrectTokenCaptcha",
    "reportCorrectRecaptcha",
)
#: Endpoints that name a task (``taskId``).
TASK_ENDPOINTS = frozenset(API_ENDPOINTS) - {"createTask", "getBalance"}

#: The protocols the simulator can serve: uCaptcha's JSON API and its compatibility layers.
ALL_PROTOCOLS = ("createTask", "2captcha-legacy", "deathbycaptcha", "riskbypass")


def mask_key(key: str | None) -> str | None:
    """Show enough of an API key to tell keys apart in a log, never the whole key."""
    if key is None:
        return None
    if len(key) <= 12:
        return key[:2] + "…"
    return f"{key[:8]}…{key[-4:]}"


# --- solve times ----------------------------------------------------------------------------------

_DISTRIBUTIONS = ("fixed", "uniform", "lognormal")


@dataclass(frozen=True)
class SolveTime:
    """How long a simulated provider takes to solve a task, in seconds.

    Build one with :meth:`fixed`, :meth:`uniform` or :meth:`lognormal` (a median and the sigma of
    the underlying normal; real solve times are roughly log-normal), or from a CLI spec with
    :meth:`parse`. ``str()`` gives the spec back.
    """

    distribution: str
    a: float
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in _DISTRIBUTIONS:
            raise ValueError(f"unknown solve-time distribution {self.distribution!r}")
        if not (math.isfinite(self.a) and math.isfinite(self.b)) or self.a < 0 or self.b < 0:
            raise ValueError("solve-time parameters must be finite and not negative")
        if self.distribution == "uniform" and self.b < self.a:
            raise ValueError("uniform solve time needs low <= high")

    @classmethod
    def fixed(cls, seconds: float) -> SolveTime:
        """Always ``seconds``."""
        return cls("fixed", float(seconds))

    @classmethod
    def uniform(cls, low: float, high: float) -> SolveTime:
        """Uniformly between ``low`` and ``high``."""
        return cls("uniform", float(low), float(high))

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> SolveTime:
        """Log-normal with the given ``median`` (seconds) and ``sigma`` (spread, e.g. 0.5)."""
        return cls("lognormal", float(median), float(sigma))

    @classmethod
    def parse(cls, spec: str | float | SolveTime) -> SolveTime:
        """Read ``"fixed:0.1"``, ``"uniform:1:3"``, ``"lognormal:2.0:0.5"`` or a bare number."""
        if isinstance(spec, SolveTime):
            return spec
        if isinstance(spec, (int, float)) and not isinstance(spec, bool):
            return cls.fixed(spec)
        if not isinstance(spec, str):
            raise ValueError(f"bad solve-time spec {spec!r}")
        name, _, rest = spec.strip().partition(":")
        try:
            if not rest:
                return cls.fixed(float(name))
            values = [float(part) for part in rest.split(":")]
        except ValueError:
            raise ValueError(f"bad solve-time spec {spec!r}") from None
        expected = 1 if name == "fixed" else 2
        if name not in _DISTRIBUTIONS or len(values) != expected:
            raise ValueError(
                f"bad solve-time spec {spec!r}: "
                "use fixed:S, uniform:LO:HI or lognormal:MEDIAN:SIGMA"
            )
        return cls(name, *values)

    def sample(self, rng: random.Random) -> float:
        """Draw one solve time."""
        if self.distribution == "fixed":
            return self.a
        if self.distribution == "uniform":
            return rng.uniform(self.a, self.b)
        if self.a == 0:
            return 0.0
        return rng.lognormvariate(math.log(self.a), self.b)

    def __str__(self) -> str:
        if self.distribution == "fixed":
            return f"fixed:{self.a:g}"
        return f"{self.distribution}:{self.a:g}:{self.b:g}"


# --- configuration --------------------------------------------------------------------------------


def _default_costs() -> dict[str, float]:
    # Keys are task types or families (see SimulatorConfig.cost); prices are close to uCaptcha's.
    return {"recaptcha": 0.0045, "turnstile": 0.003, "ImageToTextTask": 0.001, "*": 0.002}


@dataclass
class SimulatorConfig:
    """Settings of a :class:`~scrapy_ucaptcha.testing.simulator.Simulator`.

    The simulator reads the fields on every request, so a test may change them at run time
    (``sim.config.rate_limit = 3``), except ``seed`` (read once) and ``keys`` (starting balances:
    use ``sim.set_balance`` to change a balance later).

    ``solve_time`` and ``cost`` are looked up by exact task type, then by family (``recaptcha``,
    ``hcaptcha``, ``turnstile``, ``image``), then ``"*"``.
    """

    #: API key -> starting balance in USD. Any other key gets ``ERROR_KEY_DOES_NOT_EXIST``.
    keys: dict[str, float] = field(default_factory=lambda: {DEFAULT_API_KEY: 10.0})
    #: Task type / family / ``"*"`` -> solve time (from ``processing`` to ``ready``).
    solve_time: dict[str, SolveTime] = field(default_factory=lambda: {"*": SolveTime.fixed(0.05)})
    #: Seconds a new task stays ``idle`` (queued) before ``processing``; 0 skips ``idle``.
    idle_time: float = 0.0
    #: Task type / family / ``"*"`` -> price in USD, reserved at createTask, refunded on failure.
    cost: dict[str, float] = field(default_factory=_default_costs)
    #: Types whose createTask answers ``ready`` with the solution (it waits for the solve time).
    sync_types: set[str] = field(default_factory=lambda: {"ImageToTextTask"})
    #: Seconds a token stays valid after the task became ready.
    token_ttl: float = 120.0
    #: Seconds after completion a task stays queryable; then ``ERROR_WRONG_CAPTCHA_ID`` (404).
    result_ttl: float = 300.0
    #: Requests per window and client IP (fixed window), like uCaptcha's 10 000 per 10 s.
    rate_limit: int = 10_000
    #: Length of the rate-limit window in seconds.
    rate_window: float = 10.0
    #: Secret that signs tokens and reads image answers (share it with the demo site).
    secret: str = DEFAULT_SECRET
    #: If set, token solutions carry this ``userAgent`` (the UA the token is bound to).
    user_agent: str | None = None
    #: Seed of the random generator for solve times; ``None`` = unpredictable.
    seed: int | None = None
    #: Timeout in seconds of each callback (webhook) request.
    callback_timeout: float = 10.0
    #: The protocols served (see :data:`ALL_PROTOCOLS`); the paths of the others answer 404.
    protocols: set[str] = field(default_factory=lambda: set(ALL_PROTOCOLS))
    #: The provider imitated: ``ucaptcha``, ``2captcha``, ``anticaptcha``, ``capsolver`` or
    #: ``capmonster`` (answer shapes, task ids, error codes, report endpoints, which failures
    #: are refunded, whether answers carry a cost).
    dialect: str = "ucaptcha"

    def __post_init__(self) -> None:
        self.dialect = self._coerce("dialect", self.dialect)

    def solve_time_for(self, task_type: str, family: str) -> SolveTime:
        """The solve-time distribution for a task type."""
        for name in (task_type, family, "*"):
            if name in self.solve_time:
                return SolveTime.parse(self.solve_time[name])
        return SolveTime.fixed(0.05)

    def cost_for(self, task_type: str, family: str) -> float:
        """The price of a task type in USD."""
        for name in (task_type, family, "*"):
            if name in self.cost:
                return float(self.cost[name])
        return 0.002

    def apply_patch(self, patch: Mapping[str, Any]) -> None:
        """Update fields from JSON-like values (used by ``POST /_simulator/config`` and the CLI).

        ``solve_time`` and ``cost`` are merged into the current tables (solve times may be specs
        like ``"lognormal:2:0.5"``); ``keys`` is merged too; ``sync_types`` is replaced. Raises
        :class:`ValueError` (and changes nothing) on an unknown field or a bad value.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(patch) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        updates: dict[str, Any] = {}
        for name, value in patch.items():
            updates[name] = self._coerce(name, value)
        for name, value in updates.items():
            if name in ("solve_time", "cost", "keys"):
                getattr(self, name).update(value)
            else:
                setattr(self, name, value)

    def _coerce(self, name: str, value: Any) -> Any:
        if name == "solve_time":
            return {str(k): SolveTime.parse(v) for k, v in _mapping(name, value).items()}
        if name in ("cost", "keys"):
            return {str(k): _number(name, v, minimum=0.0) for k, v in _mapping(name, value).items()}
        if name == "protocols":
            if (
                not isinstance(value, (list, tuple, set))
                or not value
                or not all(v in ALL_PROTOCOLS for v in value)
            ):
                raise ValueError(f"protocols must be a list of {', '.join(ALL_PROTOCOLS)}")
            return set(value)
        if name == "sync_types":
            if not isinstance(value, (list, tuple, set)) or not all(
                isinstance(v, str) for v in value
            ):
                raise ValueError("sync_types must be a list of task types")
            return set(value)
        if name == "rate_limit":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError("rate_limit must be an integer >= 0")
            return value
        if name == "seed":
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError("seed must be an integer or null")
            return value
        if name == "dialect":
            from scrapy_ucaptcha.testing._sim_dialects import SIM_DIALECTS  # noqa: PLC0415

            if value not in SIM_DIALECTS:
                raise ValueError(f"dialect must be one of {', '.join(sorted(SIM_DIALECTS))}")
            return value
        if name in ("secret", "user_agent"):
            if not isinstance(value, str) and not (name == "user_agent" and value is None):
                raise ValueError(f"{name} must be a string")
            return value
        return _number(name, value, minimum=0.0)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view; keys are masked and the secret is left out."""
        return {
            "keys": {mask_key(k): v for k, v in self.keys.items()},
            "solve_time": {k: str(SolveTime.parse(v)) for k, v in self.solve_time.items()},
            "idle_time": self.idle_time,
            "cost": dict(self.cost),
            "sync_types": sorted(self.sync_types),
            "token_ttl": self.token_ttl,
            "result_ttl": self.result_ttl,
            "rate_limit": self.rate_limit,
            "rate_window": self.rate_window,
            "user_agent": self.user_agent,
            "seed": self.seed,
            "callback_timeout": self.callback_timeout,
            "dialect": self.dialect,
            "protocols": [p for p in ALL_PROTOCOLS if p in self.protocols],
        }


def _mapping(name: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object")
    return value


def _number(name: str, value: Any, *, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number")
    if not math.isfinite(value) or value < minimum:
        raise ValueError(f"{name} must be a finite number >= {minimum:g}")
    return float(value)


# --- faults ---------------------------------------------------------------------------------------

#: Every fault kind, with what it does. Request kinds change how one HTTP request is answered;
#: task kinds change what happens to a task created while the fault matches.
FAULT_KINDS: dict[str, str] = {
    "http_error": "answer with HTTP `status` (default 503) and an HTML error page, unprocessed",
    "html": "answer HTTP `status` (default 200) with an HTML page (a proxy/CDN page), unprocessed",
    "malformed_json": "answer 200, JSON content type, a body that does not parse, unprocessed",
    "truncated_json": "process the request normally, then send only the first half of the answer",
    "empty_body": "answer 200 with an empty body, unprocessed",
    "slow": "wait `delay` seconds, then process and answer normally (nothing if the client left)",
    "drop": "abort the TCP connection without an answer, unprocessed",
    "error_code": "answer errorId 1 with `code` and HTTP `status` (default from the code table); "
    "a proxy error code quotes the task back, as some providers do",
    "rate_limit": "answer 429 ERROR_RATE_LIMIT with exhausted rate-limit headers, unprocessed",
    "late_answer": "process the request now, send its answer `delay` seconds later",
    "stuck": "the task stays `processing` until `Simulator.release()`",
    "fail": "the task ends `failed` with `code` (default ERROR_CAPTCHA_UNSOLVABLE), refunded",
    "fail_compat": "as `fail`, but getTaskResult answers errorId 1 + code (HTTP 200)",
    "no_callback": "the task's callback is not sent (recorded as not delivered)",
    "bad_token": "the task ends `ready` with a token the site rejects (signed with another secret)",
    "bad_cost": 'the task\'s ready answer carries a `cost` that is no number (`"abc"`)',
}
TASK_FAULT_KINDS = frozenset(
    {"stuck", "fail", "fail_compat", "no_callback", "bad_token", "bad_cost"}
)
REQUEST_FAULT_KINDS = frozenset(FAULT_KINDS) - TASK_FAULT_KINDS

_FAULT_FIELDS = ("kind", "endpoint", "key", "task_type", "times", "status", "code", "delay")


@dataclass(eq=False)
class Fault:
    """A misbehaviour to inject; add it with ``sim.add_fault(Fault(...))``.

    ``kind`` is one of :data:`FAULT_KINDS`:

    Request kinds (fire on a matching API request; "unprocessed" means the request has no effect):

    * ``http_error`` -- HTTP ``status`` (500/502/503..., default 503) with an HTML error page.
    * ``html`` -- HTTP ``status`` (default 200) with an HTML page, as a captive proxy or CDN sends.
    * ``malformed_json`` -- 200, ``application/json``, a body that does not parse.
    * ``truncated_json`` -- the request *is* processed (a task is created...), and the first half
      of the real answer is sent.
    * ``empty_body`` -- 200 with an empty body.
    * ``slow`` -- wait ``delay`` seconds, then process and answer normally; if the client goes
      away first, the request is dropped unprocessed.
    * ``drop`` -- the TCP connection is aborted without any answer.
    * ``error_code`` -- ``{"errorId":1,"errorCode":code,...}`` with HTTP ``status`` (default: the
      code's status in the error table, 200 for codes not in it).
    * ``rate_limit`` -- HTTP 429 ``ERROR_RATE_LIMIT`` with ``X-RateLimit-Remaining: 0``.
    * ``late_answer`` -- the request *is* processed at once (a task created, a callback sent
      when it is solved...), and its answer is sent ``delay`` seconds later.

    ``status`` also replaces the 200 of ``html``, ``malformed_json`` and ``empty_body``.

    Task kinds (apply to a task created while the fault matches; ``endpoint`` must be ``None`` or
    ``"createTask"``; ``times`` counts tasks):

    * ``stuck`` -- the task stays ``processing`` until :meth:`Simulator.release` lets it finish.
    * ``fail`` -- the task ends ``failed`` with ``code`` (default ``ERROR_CAPTCHA_UNSOLVABLE``).
    * ``fail_compat`` -- as ``fail``, but getTaskResult answers the compat shape ``errorId:1`` +
      ``errorCode`` (HTTP 200) instead of ``status:"failed"``.
    * ``no_callback`` -- the callback of the task is not sent.
    * ``bad_token`` -- the task is solved, but with a token the target site rejects, as when a
      provider's worker gets it wrong.
    * ``bad_cost`` -- the task is solved (and charged), but its ready answer's ``cost`` is
      ``"abc"``.

    Matching: ``endpoint`` (``None`` = any API endpoint), ``key`` (the request's
    ``clientKey``), ``task_type`` (a task type or family; for getTaskResult/feedbackTask the type of
    the task asked about). A fault fires ``times`` times (``None`` = forever), counted in ``fired``;
    then it is removed. At most one request fault fires per request (the first added that matches).
    """

    kind: str
    endpoint: str | None = None
    key: str | None = None
    task_type: str | None = None
    times: int | None = None
    status: int | None = None
    code: str | None = None
    delay: float = 1.0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if self.endpoint is not None:
            self.endpoint = self.endpoint.strip("/")
            if self.endpoint not in API_ENDPOINTS:
                raise ValueError(f"unknown endpoint {self.endpoint!r}")
        if self.kind in TASK_FAULT_KINDS and self.endpoint not in (None, "createTask"):
            raise ValueError(
                f"{self.kind} faults apply to task creation: endpoint must be createTask"
            )
        if self.times is not None and self.times < 1:
            raise ValueError("times must be >= 1 or None")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.kind == "http_error" and self.status is not None and self.status < 400:
            raise ValueError("http_error needs a 4xx/5xx status")
        if self.kind == "error_code" and not self.code:
            raise ValueError("error_code faults need a code")
        if not math.isfinite(self.delay) or self.delay < 0:
            raise ValueError("delay must be >= 0")

    @property
    def used_up(self) -> bool:
        """Whether the fault has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def matches(self, endpoint: str, key: str | None, task_type: str | None, family: str) -> bool:
        """Whether a request to ``endpoint`` with this key and task type triggers the fault."""
        if endpoint not in API_ENDPOINTS or self.used_up:
            return False
        if self.endpoint is not None and self.endpoint != endpoint:
            return False
        if self.key is not None and self.key != key:
            return False
        return self.task_type is None or self.task_type in (task_type, family)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from JSON (control endpoint, ``--fault``); raises :class:`ValueError`."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault is a JSON object")
        unknown = sorted(set(data) - set(_FAULT_FIELDS))
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        if not isinstance(data.get("kind"), str):
            raise ValueError("a fault needs a string 'kind'")
        for name in ("endpoint", "key", "task_type", "code"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"fault field {name!r} must be a string")
        for name in ("times", "status"):
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"fault field {name!r} must be an integer")
        delay = data.get("delay", 1.0)
        if isinstance(delay, bool) or not isinstance(delay, (int, float)):
            raise ValueError("fault field 'delay' must be a number")
        return cls(
            kind=data["kind"],
            endpoint=data.get("endpoint"),
            key=data.get("key"),
            task_type=data.get("task_type"),
            times=data.get("times"),
            status=data.get("status"),
            code=data.get("code"),
            delay=float(delay),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the key masked)."""
        data = {name: getattr(self, name) for name in _FAULT_FIELDS}
        data["key"] = mask_key(self.key)
        data["fired"] = self.fired
        return data


# --- records --------------------------------------------------------------------------------------


@dataclass
class Call:
    """One request to an API endpoint (control endpoints are not recorded).

    ``endpoint`` is the path without the leading slash (also for unknown paths), or for a
    compatibility protocol (``protocol``) the JSON API endpoint its request stands for; the API key
    is not kept, only whether it was valid.
    """

    endpoint: str
    task_id: str | None
    task_type: str | None
    time: float
    http_status: int | None = None  # None: no answer (dropped, or client left a slow request)
    fault: str | None = None  # kind of the request fault that fired, if any
    key_valid: bool = False
    error_code: str | None = None  # errorCode of the answer, if it had one
    #: ``createTask`` (the JSON API) or the compatibility protocol the request came in.
    protocol: str = "createTask"

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "endpoint": self.endpoint,
            "task_id": self.task_id,
            "task_type": self.task_type,
            "time": self.time,
            "http_status": self.http_status,
            "fault": self.fault,
            "key_valid": self.key_valid,
            "error_code": self.error_code,
        }


@dataclass
class SimTask:
    """A task as the simulator sees it; ``sim.tasks`` maps task ids to these."""

    id: str
    type: str
    family: str
    status: str  # idle | processing | ready | failed
    created_at: float
    cost: float
    website_url: str | None = None
    website_key: str | None = None
    action: str = ""  # what the token is bound to (reCAPTCHA action, GeeTest challenge, …)
    version: int | None = None  # GeeTest 3 or 4
    callback_url: str | None = None
    selection_mode: str | None = None
    provider: str | None = None
    #: The exit of the proxy the task was solved through (None: proxyless), see
    #: ``testing.proxy.exit_for``, and the User-Agent it was solved with.
    proxy_exit: str | None = None
    user_agent: str | None = None
    solve_time: float = 0.0  # the sampled solve time, seconds
    processing_at: float | None = None
    ready_at: float | None = None  # when it became ready or failed
    solution: dict[str, Any] | None = None
    error_code: str | None = None
    refunded: bool = False
    feedback: list[dict[str, Any]] = field(default_factory=list)
    polls: int = 0
    # set by task faults
    stuck: bool = False
    fail_code: str | None = None
    fail_compat: bool = False
    callback_suppressed: bool = False
    bad_token: bool = False
    bad_cost: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class CallbackAttempt:
    """One callback (webhook) the simulator sent, or would have sent."""

    url: str  # the task's callbackUrl; the query below is added to it
    task_id: str
    time: float
    query: dict[str, str]
    delivered: bool = False  # True once the receiver answered 2xx
    http_status: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
