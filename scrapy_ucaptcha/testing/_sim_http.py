"""The HTTP side of the uCaptcha simulator: the resource, rate limit, faults and control API."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from twisted.internet.defer import CancelledError, Deferred
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from scrapy_ucaptcha.testing._sim_api import Answer, error_body, error_status
from scrapy_ucaptcha.testing._sim_model import API_ENDPOINTS, Call, Fault
from scrapy_ucaptcha.testing._sim_protocols import JSON_API, Rendered, RequestView, Routed, route

if TYPE_CHECKING:
    from twisted.python.failure import Failure

    from scrapy_ucaptcha.testing.simulator import Simulator

__all__ = ["build_resource"]

logger = logging.getLogger(__name__)

_JSON = b"application/json; charset=utf-8"
_HTML = b"text/html; charset=utf-8"

_ERROR_PAGE = (
    "<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_PHRASES = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
}
_CDN_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head>'
    "<body><h1>Checking your browser before accessing api.ucaptcha.net</h1>"
    "<p>This process is automatic.</p></body></html>"
)
_MALFORMED = b"{\"errorId\": 0, 'status': processing,, }"


class Request(Protocol):
    """The parts of ``twisted.web.server.Request`` used here (Twisted leaves them untyped)."""

    path: bytes
    method: bytes
    content: IO[bytes] | None
    transport: Any
    args: dict[bytes, list[bytes]]

    def getAllHeaders(self) -> dict[bytes, bytes]: ...

    def setHeader(self, name: bytes, value: bytes) -> None: ...

    def setResponseCode(self, code: int, message: bytes | None = None) -> None: ...

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def notifyFinish(self) -> Deferred[None]: ...

    def getClientAddress(self) -> object: ...


def build_resource(sim: Simulator) -> Resource:
    """The resource to serve: the API, and the control endpoints, of ``sim``."""
    return _SimulatorResource(sim)


# --- helpers --------------------------------------------------------------------------------------


@dataclass
class _Window:
    start: float
    count: int = 0


class _RateLimiter:
    """A fixed-window request counter per client IP."""

    def __init__(self) -> None:
        self._windows: dict[str, _Window] = {}

    def hit(self, client: str, now: float, limit: int, length: float) -> tuple[int, float, bool]:
        """Count a request; return (remaining, reset time, exceeded)."""
        window = self._windows.get(client)
        if window is None or now >= window.start + length:
            if len(self._windows) > 10_000:
                self._windows.clear()
            window = self._windows[client] = _Window(now)
        window.count += 1
        return max(0, limit - window.count), window.start + length, window.count > limit


class _Watch:
    """Notices when the client of a request goes away before the answer."""

    def __init__(self, request: Request) -> None:
        self.lost = False
        self._hooks: list[Callable[[], object]] = []
        request.notifyFinish().addErrback(self._on_lost)

    def on_lost(self, hook: Callable[[], object]) -> None:
        self._hooks.append(hook)

    def _on_lost(self, _failure: Failure) -> None:
        self.lost = True
        for hook in self._hooks:
            hook()


def _encode(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def _parse_body(raw: bytes) -> dict[str, Any] | None:
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def _client_ip(request: Request) -> str:
    return str(getattr(request.getClientAddress(), "host", "unknown"))


def _view(request: Request, path: str) -> RequestView:
    """What a compatibility protocol reads of ``request``."""
    args = {
        name.decode("utf-8", "replace"): values[0]
        for name, values in (request.args or {}).items()
        if values
    }
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in request.getAllHeaders().items()
    }
    body = b""
    if request.content is not None:
        request.content.seek(0)
        body = request.content.read()
        request.content.seek(0)
    return RequestView(request.method.decode("ascii", "replace"), path, args, headers, body)


def _halve(body: bytes) -> bytes:
    return body[: len(body) // 2]


# --- the resource ---------------------------------------------------------------------------------


class _SimulatorResource(Resource):
    isLeaf = True

    def __init__(self, sim: Simulator) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._sim = sim
        self._rate = _RateLimiter()

    def render(self, request: Request) -> bytes | int:
        try:
            return self._render(request)
        except Exception:  # a simulator bug: answer 500, keep serving
            logger.warning("uCaptcha simulator: internal error", exc_info=True)
            request.setResponseCode(500)
            request.setHeader(b"content-type", _JSON)
            return _encode(error_body("ERROR_INTERNAL"))

    def _render(self, request: Request) -> bytes | int:
        path = request.path.decode("utf-8", "replace")
        if path == "/_simulator" or path.startswith("/_simulator/"):
            return _Control(self._sim).render(request, path[len("/_simulator") :].strip("/"))
        sim, config = self._sim, self._sim.config
        now = sim._now()
        remaining, reset, exceeded = self._rate.hit(
            _client_ip(request), now, config.rate_limit, config.rate_window
        )
        request.setHeader(b"x-ratelimit-limit", str(config.rate_limit).encode())
        request.setHeader(b"x-ratelimit-remaining", str(remaining).encode())
        request.setHeader(b"x-ratelimit-reset", f"{reset:.3f}".encode())

        routed = route(sim, _view(request, path)) if path != "/" else None
        if routed is None:
            endpoint = path.strip("/")
            payload: dict[str, Any] | None = None
            if request.method == b"POST" and request.content is not None:
                payload = _parse_body(request.content.read())
        else:
            endpoint, payload = routed.endpoint, routed.payload
        key, key_valid, task_id, task_type = sim._describe(endpoint, payload)
        call = Call(
            endpoint,
            task_id,
            task_type,
            now,
            key_valid=key_valid,
            protocol=JSON_API if routed is None else routed.protocol,
        )
        sim.calls.append(call)
        render = None if routed is None else routed.render
        if call.protocol not in config.protocols or (
            routed is not None and config.dialect != "ucaptcha"
        ):  # the compatibility protocols are uCaptcha's
            description = f"this simulator does not serve the {call.protocol} protocol"
            return self._send(
                request, call, Answer(404, error_body("ERROR_NO_SUCH_METHOD", description))
            )

        if exceeded:
            description = (
                f"Rate limit exceeded: {config.rate_limit} requests per {config.rate_window:g} s"
            )
            return self._send(
                request, call, Answer(429, error_body("ERROR_RATE_LIMIT", description)), render
            )
        if routed is None and endpoint not in API_ENDPOINTS:
            return self._send(request, call, Answer(404, error_body("ERROR_NO_SUCH_METHOD")))
        if routed is None and request.method != b"POST":
            description = f"/{endpoint} takes POST with a JSON body"
            return self._send(
                request, call, Answer(405, error_body("ERROR_NO_SUCH_METHOD", description))
            )
        if routed is not None and routed.error is not None:
            return self._send(request, call, routed.error.answer(), render)
        fault = sim._take_request_fault(endpoint, key, task_type)
        if fault is not None:
            call.fault = fault.kind
            return self._fault(request, call, fault, endpoint, payload, routed=routed)
        return self._send(request, call, self._process(endpoint, payload, call, routed), render)

    def _process(
        self, endpoint: str, payload: dict[str, Any] | None, call: Call, routed: Routed | None
    ) -> Answer:
        answer = self._sim._handle(endpoint, payload, call)
        if routed is not None and routed.after is not None and answer.later is None:
            routed.after(answer)
        return answer

    # --- answering --------------------------------------------------------------------------------

    def _send(
        self,
        request: Request,
        call: Call,
        answer: Answer,
        render: Callable[[Answer], Rendered] | None = None,
        *,
        transform: Callable[[bytes], bytes] | None = None,
        watch: _Watch | None = None,
    ) -> bytes | int:
        """Answer now (return the body), or asynchronously for a ``later`` answer or a ``watch``;
        ``render`` puts the JSON API answer in a compatibility protocol's shape."""
        if answer.later is not None:
            self._send_later(
                request, call, answer.later, render=render, transform=transform, watch=watch
            )
            return NOT_DONE_YET
        code = answer.body.get("errorCode")
        call.error_code = code if isinstance(code, str) else None
        if render is None:
            shown = Rendered(answer.status, _encode(answer.body), _JSON)
        else:
            shown = render(answer)
        for name, value in shown.headers.items():
            request.setHeader(name, value)
        body = shown.body if transform is None else transform(shown.body)
        return self._raw(request, call, shown.status, shown.content_type, body, watch=watch)

    def _raw(
        self,
        request: Request,
        call: Call,
        status: int,
        content_type: bytes,
        body: bytes,
        *,
        watch: _Watch | None = None,
    ) -> bytes | int:
        if watch is not None and watch.lost:
            return NOT_DONE_YET
        call.http_status = status
        request.setResponseCode(status)
        request.setHeader(b"content-type", content_type)
        if watch is None:
            return body
        request.setHeader(b"content-length", str(len(body)).encode())
        request.write(body)
        request.finish()
        return NOT_DONE_YET

    def _send_later(
        self,
        request: Request,
        call: Call,
        later: Deferred[Answer],
        *,
        render: Callable[[Answer], Rendered] | None,
        transform: Callable[[bytes], bytes] | None,
        watch: _Watch | None,
    ) -> None:
        watch = watch or _Watch(request)
        watch.on_lost(later.cancel)

        def write(answer: Answer) -> None:
            if not watch.lost:
                self._send(request, call, answer, render, transform=transform, watch=watch)

        def failed(failure: Failure) -> None:
            if not isinstance(failure.value, CancelledError):
                logger.warning(
                    "uCaptcha simulator: could not answer: %s", failure.getErrorMessage()
                )

        later.addCallback(write).addErrback(failed)

    def _fault(
        self,
        request: Request,
        call: Call,
        fault: Fault,
        endpoint: str,
        payload: dict[str, Any] | None,
        *,
        routed: Routed | None,
    ) -> bytes | int:
        sim, kind = self._sim, fault.kind
        render = None if routed is None else routed.render
        if kind == "http_error":
            status = fault.status or 503
            page = _ERROR_PAGE.format(status=status, phrase=_PHRASES.get(status, "Error"))
            return self._raw(request, call, status, _HTML, page.encode())
        if kind == "html":
            return self._raw(request, call, fault.status or 200, _HTML, _CDN_PAGE.encode())
        if kind == "malformed_json":
            return self._raw(request, call, fault.status or 200, _JSON, _MALFORMED)
        if kind == "empty_body":
            return self._raw(request, call, fault.status or 200, _JSON, b"")
        if kind == "truncated_json":
            answer = self._process(endpoint, payload, call, routed)
            return self._send(request, call, answer, render, transform=_halve)
        if kind == "drop":
            cast("Any", request.transport).abortConnection()
            return NOT_DONE_YET
        if kind == "error_code":
            code = fault.code or "ERROR_BAD_PARAMETERS"
            status = fault.status or error_status(code)
            body = error_body(code)
            task = (payload or {}).get("task")
            if "PROXY" in code and isinstance(task, dict):
                # as some providers do: the refused task, proxy credentials and all, quoted back
                body["errorDescription"] += f" (task: {json.dumps(task, sort_keys=True)})"
            return self._send(request, call, Answer(status, body), render)
        if kind == "rate_limit":
            request.setHeader(b"x-ratelimit-remaining", b"0")
            description = "Rate limit exceeded"
            return self._send(
                request, call, Answer(429, error_body("ERROR_RATE_LIMIT", description)), render
            )
        if kind == "late_answer":
            watch = _Watch(request)
            answer = self._process(endpoint, payload, call, routed)

            def answer_now() -> None:
                if not watch.lost:
                    self._send(request, call, answer, render, watch=watch)

            late = sim._later(fault.delay, answer_now)
            watch.on_lost(lambda: sim._cancel(late))
            return NOT_DONE_YET
        if kind == "slow":
            watch = _Watch(request)

            def proceed() -> None:
                if not watch.lost:
                    answer = self._process(endpoint, payload, call, routed)
                    self._send(request, call, answer, render, watch=watch)

            timer = sim._later(fault.delay, proceed)
            watch.on_lost(lambda: sim._cancel(timer))
            return NOT_DONE_YET
        raise AssertionError(f"not a request fault: {kind}")


# --- control endpoints ----------------------------------------------------------------------------


class _ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Control:
    """``/_simulator/...``: inspect and steer a simulator from another process (test-only)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def render(self, request: Request, name: str) -> bytes:
        method = request.method.decode("ascii", "replace")
        try:
            status, result = self._dispatch(request, name, method)
        except _ControlError as exc:
            status, result = exc.status, {"error": str(exc)}
        request.setResponseCode(status)
        request.setHeader(b"content-type", _JSON)
        return _encode(result)

    def _dispatch(self, request: Request, name: str, method: str) -> tuple[int, Any]:
        sim = self._sim
        routes: dict[tuple[str, str], Callable[[], tuple[int, Any]]] = {
            ("health", "GET"): lambda: (200, self._health()),
            ("calls", "GET"): lambda: (200, [c.to_dict() for c in sim.calls]),
            ("calls", "DELETE"): lambda: (200, {"cleared": _clear(sim.calls)}),
            ("tasks", "GET"): lambda: (200, [t.to_dict() for t in sim.tasks.values()]),
            ("callbacks", "GET"): lambda: (200, [c.to_dict() for c in sim.callbacks]),
            ("faults", "GET"): lambda: (200, [f.to_dict() for f in sim.faults]),
            ("faults", "POST"): lambda: (201, self._add_fault(request)),
            ("faults", "DELETE"): lambda: (200, {"removed": _clear(sim.faults)}),
            ("config", "GET"): lambda: (200, sim.config.to_dict()),
            ("config", "POST"): lambda: (200, self._configure(request)),
        }
        route = routes.get((name, method))
        if route is not None:
            return route()
        if any(route_name == name for route_name, _ in routes):
            raise _ControlError(405, f"/_simulator/{name} does not take {method}")
        raise _ControlError(404, f"no control endpoint /_simulator/{name}")

    def _health(self) -> dict[str, Any]:
        sim = self._sim
        return {
            "status": "ok",
            "url": sim.url,
            "time": sim._now(),
            "tasks": len(sim.tasks),
            "calls": len(sim.calls),
            "faults": len(sim.faults),
        }

    @staticmethod
    def _json(request: Request) -> Any:
        raw = request.content.read() if request.content is not None else b""
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise _ControlError(400, "the body must be JSON") from None

    def _add_fault(self, request: Request) -> dict[str, Any]:
        try:
            fault = Fault.from_dict(self._json(request))
        except ValueError as exc:
            raise _ControlError(400, str(exc)) from None
        return self._sim.add_fault(fault).to_dict()

    def _configure(self, request: Request) -> dict[str, Any]:
        patch = self._json(request)
        if not isinstance(patch, dict):
            raise _ControlError(400, "the body must be a JSON object")
        try:
            self._sim.configure(patch)
        except ValueError as exc:
            raise _ControlError(400, str(exc)) from None
        return self._sim.config.to_dict()


def _clear(items: list[Any]) -> int:
    count = len(items)
    items.clear()
    return count
