"""What travels with a challenged request in its ``meta``: plain data only.

Scrapy's disk queues (``JOBDIR``) and scrapy-redis serialise every scheduled request with
``request_to_dict`` and pickle; so everything here is made of dicts, lists, strings, numbers,
booleans and ``None``. The template is referenced by its pattern (the request's ``ucaptcha_task``
meta, if any, travels with the request anyway), a solution and an error by their fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from scrapy_ucaptcha.client import TaskId
from scrapy_ucaptcha.errors import CaptchaSolveError, SolveErrorCode
from scrapy_ucaptcha.solver import Solution

__all__ = [
    "ERROR_KEY",
    "PARK_KEY",
    "STATE_KEY",
    "TICKET_KEY",
    "GroupKey",
    "RequestState",
    "Role",
    "error_from_meta",
    "error_to_meta",
    "solution_from_meta",
    "solution_to_meta",
]

STATE_KEY = "_ucaptcha"
PARK_KEY = "_ucaptcha_park"
ERROR_KEY = "_ucaptcha_error"
TICKET_KEY = "_ucaptcha_ticket"

GroupKey = tuple[str, str]  # (template pattern, host) of a domain-scope group

#: ``single``: solved for itself; ``leader``: solved for a domain-scope group; ``follower``:
#: waits for (or was re-sent after) a group's solve.
Role = Literal["single", "leader", "follower"]
_ROLES: tuple[Role, ...] = ("single", "leader", "follower")


@dataclass(frozen=True, slots=True)
class RequestState:
    """A challenged request's progress, in ``meta["_ucaptcha"]`` as :meth:`to_meta` gives it."""

    url: str  # the URL that was challenged first
    pattern: str  # the template that found the challenge: it also verifies the answer
    attempts: int = 0  # tasks created for this request so far
    task_ids: tuple[TaskId, ...] = ()
    solution: Solution | None = None  # the token this request carries
    presolve: bool = False
    role: Role = "single"
    group: GroupKey | None = None  # domain-scope group
    generation: int = -1  # the group clearance this request was re-sent after
    shared_from: Solution | None = field(default=None)  # the group solve it was re-sent after

    @property
    def leads(self) -> bool:
        return self.role == "leader" and self.group is not None

    def with_task(self, task_id: TaskId | None) -> RequestState:
        if task_id is None:
            return self
        return replace(self, task_ids=(*self.task_ids, task_id))

    def error(self, reason: str, code: SolveErrorCode) -> CaptchaSolveError:
        """The error to end this request with, for a failure of our own."""
        return self.error_for_code(reason, code)

    def error_for_code(self, reason: str, code: str) -> CaptchaSolveError:
        """The error to end this request with, for a code passed on as it came (an API's error
        code, a solver's stop reason, a failed task's code)."""
        return CaptchaSolveError(
            reason, code=code, attempts=self.attempts, task_ids=self.task_ids, url=self.url
        )

    def to_meta(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "pattern": self.pattern,
            "attempts": self.attempts,
            "task_ids": list(self.task_ids),
            "solution": solution_to_meta(self.solution),
            "presolve": self.presolve,
            "role": self.role,
            "group": list(self.group) if self.group is not None else None,
            "generation": self.generation,
            "shared_from": solution_to_meta(self.shared_from),
        }

    @classmethod
    def from_meta(cls, value: object) -> RequestState | None:
        """The state :meth:`to_meta` wrote, or ``None`` for anything else."""
        if value is None or not isinstance(value, Mapping):  # None: most requests, cheaply
            return None
        try:
            url, pattern = value["url"], value["pattern"]
            role = value.get("role", "single")
            group = value.get("group")
            if not isinstance(url, str) or not isinstance(pattern, str) or role not in _ROLES:
                return None
            return cls(
                url=url,
                pattern=pattern,
                attempts=int(value.get("attempts", 0)),
                task_ids=tuple(value.get("task_ids") or ()),
                solution=solution_from_meta(value.get("solution")),
                presolve=bool(value.get("presolve", False)),
                role=role,
                group=(str(group[0]), str(group[1])) if group else None,
                generation=int(value.get("generation", -1)),
                shared_from=solution_from_meta(value.get("shared_from")),
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return None


def solution_to_meta(solution: Solution | None) -> dict[str, Any] | None:
    if solution is None:
        return None
    return {
        "task_id": solution.task_id,
        "task_type": solution.task_type,
        "token": solution.token,
        "solution": _plain(solution.solution),
        "cost": solution.cost,
        "solve_time_ms": solution.solve_time_ms,
    }


def solution_from_meta(value: object) -> Solution | None:
    if not isinstance(value, Mapping):
        return None
    try:
        return Solution(
            task_id=value["task_id"],
            task_type=str(value["task_type"]),
            token=str(value["token"]),
            solution=dict(value.get("solution") or {}),
            cost=float(value.get("cost", 0.0)),
            solve_time_ms=int(value.get("solve_time_ms", 0)),
        )
    except (KeyError, TypeError, ValueError):
        return None


def error_to_meta(error: CaptchaSolveError) -> dict[str, Any]:
    return {
        "reason": error.reason,
        "code": error.code,
        "attempts": error.attempts,
        "task_ids": list(error.task_ids),
        "url": error.url,
    }


def error_from_meta(value: object) -> CaptchaSolveError | None:
    if value is None:  # every request but one that failed: no ABC check (Mapping) to pay
        return None
    if isinstance(value, CaptchaSolveError):
        return value
    if not isinstance(value, Mapping) or not isinstance(value.get("reason"), str):
        return None
    return CaptchaSolveError(
        value["reason"],
        code=value.get("code"),
        attempts=int(value.get("attempts") or 0),
        task_ids=tuple(value.get("task_ids") or ()),
        url=value.get("url"),
    )


def _plain(value: Any) -> Any:
    """A JSON-like copy: mappings become dicts, sequences lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
