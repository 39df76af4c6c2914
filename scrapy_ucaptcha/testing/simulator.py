"""A uCaptcha API simulator: a real twisted.web server speaking the uCaptcha JSON API on loopback.

Use it in tests, the example project, benchmarks, or to try a spider offline::

    sim = Simulator(SimulatorConfig(solve_time={"*": SolveTime.fixed(0.02)}))
    url = sim.start()  # "http://127.0.0.1:PORT"; point the client's API URL at it
    ...
    await sim.stop()

It serves ``/createTask``, ``/getTaskResult``, ``/getBalance`` and ``/feedbackTask`` with the
shapes, HTTP statuses and error codes of uCaptcha's docs; tasks go ``idle`` -> ``processing`` ->
``ready``/``failed`` on the reactor clock; costs are reserved at createTask and refunded on
failure; tokens are signed with :func:`~scrapy_ucaptcha.testing.tokens.sign_token`, so a demo site
can verify them; image captchas drawn by :func:`~scrapy_ucaptcha.testing.tokens.render_captcha_png`
are read back; callbacks are sent as HTTP GET; requests are rate limited per client IP. Faults
(:class:`Fault`) inject server errors, broken bodies, slowness, dropped connections, error codes and
failing or stuck tasks. Every request is recorded in :attr:`Simulator.calls`.

``SimulatorConfig(dialect=...)`` imitates a createTask-compatible provider instead (``2captcha``,
``anticaptcha``, ``capsolver``, ``capmonster``): integer task ids where it uses them, its createTask
and pending answers (CapSolver's ``"status": null``, CapMonster's ``CAPTCHA_NOT_READY`` error),
string or missing ``cost``, its error codes, ``errorId`` values and HTTP statuses, its report
endpoints (``reportIncorrect*``/``reportCorrect*``; ``feedbackTask`` only where it exists), the
task type spellings it knows and whether an unsolvable task is refunded (Anti-Captcha keeps the
price). :meth:`Simulator.charged` says what the account paid.

Differences from the real service, on purpose: callbacks to loopback/private addresses are allowed;
``X-RateLimit-Reset`` has millisecond precision (the real service sends whole seconds);
``/_simulator/...`` control endpoints (no key, test-only, never exposed publicly) let another
process inspect and steer the simulator:

* ``GET /_simulator/health`` -- ``{"status": "ok", ...}``
* ``GET /_simulator/calls`` (``DELETE`` clears them), ``GET /_simulator/tasks``,
  ``GET /_simulator/callbacks`` -- JSON lists of the records
* ``GET|POST|DELETE /_simulator/faults`` -- list, add (a :class:`Fault` as JSON; 201), clear
* ``GET|POST /_simulator/config`` -- read, patch (see :meth:`Simulator.configure`; ``{"keys":
  {KEY: USD}}`` sets balances)

Control endpoints are neither rate limited nor recorded in :attr:`Simulator.calls`.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import treq
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred
from twisted.web.client import Agent, HTTPConnectionPool

from scrapy_ucaptcha.testing._serving import (
    DelayedCall,
    LoopbackServer,
    await_deferred,
    get_reactor,
)
from scrapy_ucaptcha.testing._sim_api import (
    ERRORS,
    TASK_TYPES,
    Answer,
    ApiError,
    check_options,
    error_body,
    parse_task,
    task_family,
)
from scrapy_ucaptcha.testing._sim_dialects import SIM_DIALECTS, SimDialect
from scrapy_ucaptcha.testing._sim_http import build_resource
from scrapy_ucaptcha.testing._sim_kinds import MORE_TASK_TYPES, more_solution
from scrapy_ucaptcha.testing._sim_model import (
    ALL_PROTOCOLS,
    DEFAULT_API_KEY,
    FAULT_KINDS,
    REQUEST_FAULT_KINDS,
    TASK_ENDPOINTS,
    TASK_FAULT_KINDS,
    Call,
    CallbackAttempt,
    Fault,
    SimTask,
    SimulatorConfig,
    SolveTime,
)
from scrapy_ucaptcha.testing.proxy import exit_for
from scrapy_ucaptcha.testing.tokens import identity_string, read_image_answer, sign_token

if TYPE_CHECKING:
    from twisted.python.failure import Failure

logger = logging.getLogger(__name__)

__all__ = [
    "ALL_PROTOCOLS",
    "DEFAULT_API_KEY",
    "FAULT_KINDS",
    "TASK_TYPES",
    "Call",
    "CallbackAttempt",
    "Fault",
    "SimTask",
    "Simulator",
    "SimulatorConfig",
    "SolveTime",
]


def _ignore_cancelled(failure: Failure) -> None:
    if not isinstance(failure.value, CancelledError):
        logger.warning("uCaptcha simulator: callback failed: %s", failure.value)


def _money(value: float) -> float:
    return round(value, 8)


class Simulator:
    """The uCaptcha API simulator. See the module docstring.

    Attributes a test may read (and ``config``, ``faults`` it may change):

    * ``config`` -- the :class:`SimulatorConfig`, read on every request.
    * ``calls`` -- every API request, as :class:`Call` records, in arrival order.
    * ``tasks`` -- task id -> :class:`SimTask`, for every task ever created.
    * ``callbacks`` -- every callback sent (or suppressed), as :class:`CallbackAttempt` records.
    * ``faults`` -- the active :class:`Fault` objects, in matching order.
    """

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config if config is not None else SimulatorConfig()
        self.calls: list[Call] = []
        self.tasks: dict[str, SimTask] = {}
        self.callbacks: list[CallbackAttempt] = []
        self.faults: list[Fault] = []
        self._balances: dict[str, float] = {}
        self._task_keys: dict[str, str] = {}
        self._images: dict[str, bytes] = {}
        self._waiters: dict[str, list[Deferred[None]]] = {}
        self._pending_callbacks: set[Deferred[None]] = set()
        self._rng = random.Random(self.config.seed)
        self._next_int_id = 74_372_499_131
        self._server = LoopbackServer(
            not_running="the simulator is not running",
            already_running="the simulator is already running",
        )
        self._pool: Any = None  # HTTPConnectionPool (untyped)
        self._client: HTTPClient | None = None

    async def __aenter__(self) -> Simulator:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- running ----------------------------------------------------------------------------------

    def start(self, port: int = 0, host: str = "127.0.0.1") -> str:
        """Listen on ``host:port`` (0: any free port); return the base URL ``http://HOST:PORT``."""
        return self._server.start(build_resource(self), port, host)

    @property
    def url(self) -> str:
        """The base URL (no trailing slash); raises :class:`RuntimeError` before :meth:`start`."""
        return self._server.url

    @property
    def running(self) -> bool:
        return self._server.running

    async def stop(self) -> None:
        """Stop listening, abort open connections, cancel every pending timer and callback."""
        waiters = [d for ds in self._waiters.values() for d in ds]
        self._waiters.clear()
        for d in waiters:
            d.cancel()
        await self._server.stop()
        for d in list(self._pending_callbacks):
            d.cancel()
        self._pending_callbacks.clear()
        if self._pool is not None:
            pool, self._pool, self._client = self._pool, None, None
            await await_deferred(pool.closeCachedConnections())

    # --- balances, faults, records ----------------------------------------------------------------

    def balance(self, key: str) -> float:
        """The balance of ``key`` in USD; :class:`KeyError` for an unknown key."""
        value = self._balance_of(key)
        if value is None:
            raise KeyError(key)
        return value

    def set_balance(self, key: str, usd: float) -> None:
        """Set the balance of ``key`` (adding the key if new)."""
        self._balances[key] = _money(usd)

    def add_fault(self, fault: Fault) -> Fault:
        """Activate ``fault`` (after the ones already active); return it."""
        self.faults.append(fault)
        return fault

    def remove_fault(self, fault: Fault) -> None:
        """Deactivate ``fault`` (no error if it was used up already)."""
        if fault in self.faults:
            self.faults.remove(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def release(self, task_ids: Iterable[str] | None = None) -> list[str]:
        """Let tasks held by a ``stuck`` fault finish now (all of them, or those of ``task_ids``).

        Tests use this instead of long solve times: hold the tasks, check what happens meanwhile,
        release. Returns the ids released, in creation order.
        """
        wanted = None if task_ids is None else set(task_ids)
        released = []
        for task in self.tasks.values():
            if not task.stuck or task.ready_at is not None:
                continue
            if wanted is not None and task.id not in wanted:
                continue
            task.stuck = False
            released.append(task.id)
            if task.status == "processing":
                self._complete(task)
        return released

    def charged(self, key: str | None = None) -> float:
        """USD the simulated provider kept for the tasks of ``key`` (any key: None): the price of
        every task created, less refunds."""
        return _money(
            sum(
                task.cost
                for task_id, task in self.tasks.items()
                if not task.refunded and (key is None or self._task_keys.get(task_id) == key)
            )
        )

    @property
    def dialect(self) -> SimDialect:
        """The provider imitated (``config.dialect``)."""
        return SIM_DIALECTS[self.config.dialect]

    def count(self, endpoint: str, task_id: str | None = None) -> int:
        """How many requests reached ``endpoint`` (``"createTask"`` or ``"/createTask"``)."""
        name = endpoint.strip("/")
        return sum(
            1
            for call in self.calls
            if call.endpoint == name and (task_id is None or call.task_id == task_id)
        )

    def configure(self, patch: Mapping[str, Any]) -> None:
        """Patch the configuration from JSON-like values (see :meth:`SimulatorConfig.apply_patch`).

        Also: ``keys`` sets the balances of the keys given, ``seed`` reseeds the generator.
        """
        self.config.apply_patch(patch)
        keys = patch.get("keys")
        if isinstance(keys, Mapping):
            for key in keys:
                self._balances[str(key)] = _money(self.config.keys[str(key)])
        if "seed" in patch:
            self._rng.seed(self.config.seed)

    # --- used by the HTTP layer -------------------------------------------------------------------

    @property
    def _delayed(self) -> set[DelayedCall]:
        """The pending timers (tasks being processed or solved, slow answers)."""
        return self._server.delayed

    def _now(self) -> float:
        return get_reactor().seconds()

    def _later(self, delay: float, func: Callable[[], object]) -> DelayedCall:
        return self._server.call_later(delay, func)

    def _cancel(self, call: DelayedCall) -> None:
        self._server.cancel(call)

    def _balance_of(self, key: object) -> float | None:
        if not isinstance(key, str):
            return None
        if key not in self._balances and key in self.config.keys:
            self._balances[key] = _money(self.config.keys[key])
        return self._balances.get(key)

    def _describe(
        self, endpoint: str, payload: dict[str, Any] | None
    ) -> tuple[str | None, bool, str | None, str | None]:
        """Key, whether it is valid, task id and task type of a request (for records and faults)."""
        if payload is None:
            return None, False, None, None
        key = payload.get("clientKey")
        key = key if isinstance(key, str) else None
        valid = self._balance_of(key) is not None
        task_id: str | None = None
        task_type: str | None = None
        if endpoint == "createTask":
            task = payload.get("task")
            if isinstance(task, dict) and isinstance(task.get("type"), str):
                task_type = task["type"]
        elif endpoint in TASK_ENDPOINTS:
            raw_id = payload.get("taskId")
            if isinstance(raw_id, int) and not isinstance(raw_id, bool):
                raw_id = str(raw_id)
            if isinstance(raw_id, str):
                task_id = raw_id
                if raw_id in self.tasks and self._task_keys.get(raw_id) == key:
                    task_type = self.tasks[raw_id].type
        return key, valid, task_id, task_type

    def _take_request_fault(
        self, endpoint: str, key: str | None, task_type: str | None
    ) -> Fault | None:
        family = task_family(task_type)
        for fault in self.faults:
            if fault.kind in REQUEST_FAULT_KINDS and fault.matches(
                endpoint, key, task_type, family
            ):
                self._fire(fault)
                return fault
        return None

    def _fire(self, fault: Fault) -> None:
        fault.fired += 1
        if fault.used_up:
            self.remove_fault(fault)

    def _handle(self, endpoint: str, payload: dict[str, Any] | None, call: Call) -> Answer:
        """Process an API request and return its answer."""
        try:
            if payload is None:
                raise ApiError("ERROR_BAD_PARAMETERS", "The request body must be a JSON object")
            key = payload.get("clientKey")
            if not isinstance(key, str) or self._balance_of(key) is None:
                raise ApiError("ERROR_KEY_DOES_NOT_EXIST")
            if endpoint == "createTask":
                return self._create_task(key, payload, call)
            if endpoint == "getTaskResult":
                return self._get_task_result(key, payload)
            if endpoint == "getBalance":
                balance = round(self.balance(key), 6)
                return Answer(200, {"errorId": 0, "balance": balance, **self.dialect.balance_extra})
            report = self.dialect.reports.get(endpoint)
            if report == "either":
                return self._feedback(key, payload, endpoint)
            if report is not None:
                return self._report(key, payload, endpoint, invalid=report == "invalid")
            raise ApiError("ERROR_NO_SUCH_METHOD")
        except ApiError as exc:
            return self._error_answer(exc)

    def _error_answer(self, exc: ApiError) -> Answer:
        dialect = self.dialect
        if dialect.name == "ucaptcha":
            return exc.answer()
        code = dialect.code(exc.code)
        description = exc.description or ERRORS.get(exc.code, (200, ""))[1] or code
        body = {
            "errorId": dialect.error_id(code),
            "errorCode": code,
            "errorDescription": description,
        }
        return Answer(dialect.http_status(code), body)

    def _wire_id(self, task: SimTask) -> str | int:
        return int(task.id) if self.dialect.ids == "int" else task.id

    def _new_id(self) -> str:
        if self.dialect.ids == "int":
            self._next_int_id += 1
            return str(self._next_int_id)
        return str(uuid.uuid4())

    # --- endpoints --------------------------------------------------------------------------------

    def _create_task(self, key: str, payload: dict[str, Any], call: Call) -> Answer:
        spec = parse_task(payload.get("task"))
        known = self.dialect.types
        if known is not None and spec.type not in known:
            raise ApiError("TASK_NOT_SUPPORTED", f"Task type {spec.type!r} is not supported")
        refused = self.dialect.check_proxy(payload.get("task"))
        if refused is not None:
            raise ApiError("ERROR_PROXY_FORMAT", refused)
        callback_url, mode, provider = check_options(payload)
        config = self.config
        cost = _money(config.cost_for(spec.type, spec.family))
        balance = self.balance(key)
        if balance < cost:
            raise ApiError("ERROR_ZERO_BALANCE")
        self._balances[key] = _money(balance - cost)
        now = self._now()
        task = SimTask(
            id=self._new_id(),
            type=spec.type,
            family=spec.family,
            status="idle",
            created_at=now,
            cost=cost,
            website_url=spec.website_url,
            website_key=spec.website_key,
            action=spec.action,
            version=spec.version,
            callback_url=callback_url,
            selection_mode=mode,
            provider=provider,
            proxy_exit=None if spec.proxy_login is None else exit_for(spec.proxy_login),
            user_agent=spec.user_agent,
            solve_time=config.solve_time_for(spec.type, spec.family).sample(self._rng),
        )
        self._apply_task_faults(task, key)
        self.tasks[task.id] = task
        self._task_keys[task.id] = key
        if spec.image is not None:
            self._images[task.id] = spec.image
        call.task_id = task.id
        if config.idle_time > 0:
            self._later(config.idle_time, lambda: self._start_processing(task))
        else:
            self._start_processing(task)
        if spec.type in config.sync_types and not task.stuck and call.protocol == "createTask":
            done: Deferred[None] = Deferred()
            self._waiters.setdefault(task.id, []).append(done)
            later = done.addCallback(lambda _: Answer(200, self._result_body(task, with_id=True)))
            return Answer(200, {}, later=later)
        created: dict[str, Any] = {"errorId": 0, "taskId": self._wire_id(task)}
        style = self.dialect.create_status
        if style == "status":
            created["status"] = task.status
        elif style == "null":
            created = {"errorId": 0, "errorCode": "", "errorDescription": "", **created}
            created["status"] = None
        return Answer(200, created)

    def _apply_task_faults(self, task: SimTask, key: str) -> None:
        for fault in list(self.faults):
            if fault.kind not in TASK_FAULT_KINDS or not fault.matches(
                "createTask", key, task.type, task.family
            ):
                continue
            self._fire(fault)
            if fault.kind == "stuck":
                task.stuck = True
            elif fault.kind == "no_callback":
                task.callback_suppressed = True
            elif fault.kind == "bad_token":
                task.bad_token = True
            elif fault.kind == "bad_cost":
                task.bad_cost = True
            else:
                task.fail_code = fault.code or "ERROR_CAPTCHA_UNSOLVABLE"
                task.fail_compat = fault.kind == "fail_compat"

    def _owned_task(self, key: str, payload: dict[str, Any]) -> SimTask:
        task_id = payload.get("taskId")
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id:
            raise ApiError("ERROR_BAD_PARAMETERS", "taskId is required")
        task = self.tasks.get(task_id)
        if task is None or self._task_keys.get(task_id) != key:
            raise ApiError("ERROR_WRONG_CAPTCHA_ID")
        if task.ready_at is not None and self._now() > task.ready_at + self.config.result_ttl:
            raise ApiError("ERROR_WRONG_CAPTCHA_ID", "Task expired")
        return task

    def _get_task_result(self, key: str, payload: dict[str, Any]) -> Answer:
        task = self._owned_task(key, payload)
        task.polls += 1
        dialect = self.dialect
        if dialect.name != "ucaptcha":
            return self._dialect_result(task, dialect)
        return Answer(200, self._result_body(task))

    def _dialect_result(self, task: SimTask, dialect: SimDialect) -> Answer:
        """getTaskResult in a compatible provider's shape."""
        if task.status == "failed":
            code = dialect.code(task.error_code or "ERROR_CAPTCHA_UNSOLVABLE")
            body = error_body(code)
            body["errorId"] = dialect.error_id(code)
            return Answer(dialect.http_status(code), body)
        if task.status != "ready":
            if dialect.pending == "not_ready" and task.status == "processing":
                body = error_body("CAPTCHA_NOT_READY", "The captcha has not yet been solved")
                return Answer(200, body)
            if dialect.pending == "not_ready":
                pending = {"errorCode": None, "errorDescription": None, "status": "processing"}
                return Answer(200, {"errorId": 0, **pending})
            status = task.status if dialect.pending == "status" else "processing"
            return Answer(200, {"errorId": 0, "status": status})
        return Answer(200, self._result_body(task))

    def _result_body(self, task: SimTask, *, with_id: bool = False) -> dict[str, Any]:
        body: dict[str, Any]
        dialect = self.dialect
        if (
            dialect.name != "ucaptcha"
            and task.status == "ready"
            and task.solution is not None
            and task.ready_at is not None
        ):
            body = {"errorId": 0, "status": "ready", "solution": dict(task.solution)}
            if dialect.cost != "none":
                body["cost"] = f"{task.cost:.6f}"
                body["ip"] = "127.0.0.1"
                body["createTime"] = int(task.created_at)
                body["endTime"] = int(task.ready_at)
                body["solveCount"] = "0" if dialect.name == "anticaptcha" else 1
            if dialect.name == "capsolver":
                body["taskId"] = task.id
            if dialect.name == "capmonster":
                body = {"errorId": 0, "errorCode": None, "errorDescription": None, **body}
        elif task.status == "ready" and task.solution is not None and task.ready_at is not None:
            body = {
                "errorId": 0,
                "status": "ready",
                "solution": dict(task.solution),
                "cost": task.cost,
                "solveTime": round(task.solve_time * 1000),  # the simulated provider's time
                "createTime": int(task.created_at),
                "endTime": int(task.ready_at),
            }
        elif task.status == "failed":
            error = error_body(task.error_code or "ERROR_CAPTCHA_UNSOLVABLE")
            if task.fail_compat:  # the createTask-compatible providers' shape
                body = error
            else:  # uCaptcha's shape: a failed task is a valid answer
                body = {"errorId": 0, "status": "failed", **error}
                body["errorId"] = 0
        else:
            body = {"errorId": 0, "status": task.status}
        if task.bad_cost and "cost" in body:
            body["cost"] = "abc"
        if with_id:
            body = {"errorId": body["errorId"], "taskId": self._wire_id(task), **body}
        return body

    def _report(self, key: str, payload: dict[str, Any], endpoint: str, *, invalid: bool) -> Answer:
        """A ``report*`` method: ``{clientKey, taskId}`` → ``{"errorId": 0, ...: "success"}``."""
        task = self._owned_task(key, payload)
        task.feedback.append(
            {
                "endpoint": endpoint,
                "invalid": invalid,
                "message": None,
                "code": None,
                "time": self._now(),
            }
        )
        return Answer(200, {"errorId": 0, "status": "success"})

    def _feedback(self, key: str, payload: dict[str, Any], endpoint: str) -> Answer:
        task = self._owned_task(key, payload)
        result = payload.get("result")
        if not isinstance(result, dict):
            raise ApiError("ERROR_BAD_PARAMETERS", "result is required")
        invalid, message, code = result.get("invalid"), result.get("message"), result.get("code")
        if not isinstance(invalid, bool):
            raise ApiError("ERROR_BAD_PARAMETERS", "result.invalid must be true or false")
        if not isinstance(message, str):
            raise ApiError("ERROR_BAD_PARAMETERS", "result.message is required")
        if code is not None and (isinstance(code, bool) or not isinstance(code, (str, int))):
            raise ApiError("ERROR_BAD_PARAMETERS", "result.code must be a string")
        task.feedback.append(
            {
                "endpoint": endpoint,
                "invalid": invalid,
                "message": message,
                "code": code,
                "time": self._now(),
            }
        )
        return Answer(200, {"errorId": 0, "message": "Feedback recorded"})

    # --- task lifecycle ---------------------------------------------------------------------------

    def _start_processing(self, task: SimTask) -> None:
        task.status = "processing"
        task.processing_at = self._now()
        if not task.stuck:
            self._later(task.solve_time, lambda: self._complete(task))

    def _complete(self, task: SimTask) -> None:
        now = self._now()
        task.ready_at = now
        image = self._images.pop(task.id, None)
        code = task.fail_code
        if code is None:
            if task.family == "image":
                text = read_image_answer(self.config.secret, image or b"")
                if text is None:
                    code = "ERROR_CAPTCHA_UNSOLVABLE"
                else:
                    task.solution = {"text": text}
            else:
                task.solution = self._token_solution(task, now)
        if code is None:
            task.status = "ready"
        else:
            task.status, task.error_code, task.solution = "failed", code, None
            if self.dialect.refund_unsolvable or code != "ERROR_CAPTCHA_UNSOLVABLE":
                self._refund(task.id)
        for waiter in self._waiters.pop(task.id, []):
            if not waiter.called:
                waiter.callback(None)
        if task.callback_url:
            self._send_callback(task, task.callback_url)

    def _token_solution(self, task: SimTask, now: float) -> dict[str, Any]:
        """The solution, bound to the identity it was solved with: the proxy's exit and the
        User-Agent (the task's, else the simulated worker's ``config.user_agent``)."""
        secret = self.config.secret
        user_agent = task.user_agent or self.config.user_agent
        identity = ""
        if task.proxy_exit is not None:
            identity = identity_string(task.proxy_exit, user_agent)
        if task.family in MORE_TASK_TYPES.values():
            more = more_solution(
                f"not-{secret}" if task.bad_token else secret,
                task,
                expires_at=now + self.config.token_ttl,
                now=now,
            )
            if user_agent:
                more["userAgent"] = user_agent
            return more
        token = sign_token(
            f"not-{secret}" if task.bad_token else secret,
            family=task.family,
            sitekey=task.website_key or "",
            page_url=task.website_url or "",
            expires_at=now + self.config.token_ttl,
            action=task.action,
            identity=identity,
        )
        solution: dict[str, Any]
        if task.family == "datadome":  # CapSolver's shape: a Set-Cookie line
            solution = {"cookie": f"datadome={token}; Max-Age=31536000; Path=/; SameSite=Lax"}
        elif task.family == "cloudflare":
            solution = {"cookies": {"cf_clearance": token}, "token": token}
        elif task.family == "aws_waf":
            solution = {"cookies": {"aws-waf-token": token}}
        elif task.family == "recaptcha":
            solution = {"gRecaptchaResponse": token}
        else:
            solution = {"token": token}
        if task.family == "hcaptcha":
            solution["gRecaptchaResponse"] = token
        if user_agent:
            solution["userAgent"] = user_agent
        return solution

    def _refund(self, task_id: str) -> None:
        """Give a task's price back (once): it failed, or a protocol's report refunds it."""
        task = self.tasks.get(task_id)
        if task is None or task.refunded:
            return
        key = self._task_keys[task.id]
        self._balances[key] = _money(self._balances.get(key, 0.0) + task.cost)
        task.refunded = True

    # --- callbacks --------------------------------------------------------------------------------

    def _send_callback(self, task: SimTask, url: str) -> None:
        query = {"captcha_id": task.id, "status": "1" if task.status == "ready" else "0"}
        if task.status == "ready" and task.solution:
            solution = task.solution
            query["code"] = str(
                solution.get("text")
                or solution.get("token")
                or solution.get("cookie")
                or solution.get("gRecaptchaResponse")
                or solution.get("captcha_output")
                or solution.get("validate", "")
            )
        attempt = CallbackAttempt(url=url, task_id=task.id, time=self._now(), query=query)
        self.callbacks.append(attempt)
        if task.callback_suppressed:
            attempt.error = "suppressed by a no_callback fault"
            return
        sending = Deferred.fromCoroutine(self._deliver(attempt))
        self._pending_callbacks.add(sending)

        def done(_: object) -> None:
            self._pending_callbacks.discard(sending)

        sending.addErrback(_ignore_cancelled)
        sending.addBoth(done)

    async def _deliver(self, attempt: CallbackAttempt) -> None:
        try:
            response = await self._http_client().get(
                attempt.url, params=attempt.query, timeout=self.config.callback_timeout
            )
            await treq.content(response)
        except CancelledError:
            attempt.error = "cancelled"
            return
        except Exception as exc:  # any delivery problem is recorded, never raised
            attempt.error = f"{type(exc).__name__}: {exc}"
            return
        attempt.http_status = response.code
        attempt.delivered = 200 <= response.code < 300
        if not attempt.delivered:
            attempt.error = f"HTTP {response.code}"

    def _http_client(self) -> HTTPClient:
        if self._client is None:
            reactor = get_reactor()
            self._pool = HTTPConnectionPool(reactor, persistent=False)  # type: ignore[no-untyped-call]
            agent = Agent(reactor, pool=self._pool)  # type: ignore[no-untyped-call]
            self._client = HTTPClient(cast("Any", agent))
        return self._client
