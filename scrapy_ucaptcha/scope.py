"""Domain scope: one solve serves every request of a (template pattern, host) group.

The first challenged request of a group leads: it is solved, and its token cleared the site for
the others. Requests challenged meanwhile follow: they wait in the group (not in the downloader)
and are re-sent once the leader's answer shows the clearance works, or, if it did not, to try on
their own. A request that missed a clearance granted since it was sent is re-sent once before it
may lead.

:class:`DomainScope` knows nothing of the engine: its methods return the requests to hand back
(:class:`Follower`, each with the state to send it with), and the middleware sends them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from scrapy import Request

    from scrapy_ucaptcha.solver import Solution
    from scrapy_ucaptcha.state import GroupKey, RequestState

__all__ = ["DomainScope", "Follower", "Group", "GroupPhase", "Join"]

#: ``open``: no solve running; ``solving``: the leader is parked; ``verifying``: the leader was
#: re-issued with its token and its answer is awaited; ``remote``: another worker of a distributed
#: crawl leads the solve.
GroupPhase = Literal["open", "solving", "verifying", "remote"]

#: ``lead``: park the request and solve; ``follow``: it waits in the group; ``resend``: send it
#: again at once with the clearance it missed.
JoinAction = Literal["lead", "follow", "resend"]


@dataclass(frozen=True)
class Follower:
    """A request to hand back, with its state."""

    request: Request
    state: RequestState
    lease: str | None = None  # its lease in Redis, in a distributed crawl


@dataclass(eq=False)
class Group:
    phase: GroupPhase = "open"
    leader: int | None = None  # parked id of the leader
    followers: list[Follower] = field(default_factory=list)
    generation: int = 0  # clearances granted so far
    solution: Solution | None = None  # the solve behind the last clearance


@dataclass(frozen=True)
class Join:
    action: JoinAction
    state: RequestState  # the request's state for what ``action`` says


class DomainScope:
    """The domain-scope groups of a crawl."""

    def __init__(self) -> None:
        self._groups: dict[GroupKey, Group] = {}

    def group(self, key: GroupKey) -> Group | None:
        return self._groups.get(key)

    @property
    def followers(self) -> int:
        return sum(len(group.followers) for group in self._groups.values())

    def join(
        self, key: GroupKey, request: Request, state: RequestState, *, lease: str | None = None
    ) -> Join:
        """A request of the group met the challenge: lead, follow (under ``lease``, if given) or
        be re-sent."""
        group = self._groups.setdefault(key, Group())
        if group.phase != "open":
            follower = replace(state, role="follower", group=key)
            group.followers.append(Follower(request, follower, lease))
            return Join("follow", follower)
        if group.generation > 0 and state.generation < group.generation:
            resent = replace(
                state,
                role="follower",
                group=key,
                generation=group.generation,
                shared_from=group.solution,
            )
            return Join("resend", resent)
        group.phase = "solving"
        return Join("lead", replace(state, role="leader", group=key))

    def solving(self, key: GroupKey, parked_id: int) -> None:
        """The group's leader is parked as ``parked_id`` (again, after a rejected token)."""
        group = self._groups.setdefault(key, Group())
        group.phase, group.leader = "solving", parked_id

    def verifying(self, key: GroupKey) -> None:
        """The leader was re-issued with its token."""
        group = self._groups.get(key)
        if group is not None and group.phase == "solving":
            group.phase = "verifying"

    def release(
        self, key: GroupKey, solution: Solution | None, *, generation: int | None = None
    ) -> list[Follower]:
        """The leader's answer is no challenge: a new clearance (number ``generation`` when the
        crawl counts them, else the next one); re-send the followers."""
        group = self._groups.get(key)
        if group is None:
            return []
        group.generation = generation if generation is not None else group.generation + 1
        group.solution = solution
        return self._reopen(group, shared=True)

    def follow_remote(self, key: GroupKey) -> None:
        """Another worker leads the group's solve: its requests here follow it."""
        group = self._groups.setdefault(key, Group())
        if group.phase == "open":
            group.phase = "remote"

    def waiting_on_others(self) -> list[tuple[GroupKey, Group]]:
        """Groups whose clearance may come from another worker (it leads, or it answered our
        leader's re-issue)."""
        return [(k, g) for k, g in self._groups.items() if g.phase in ("remote", "verifying")]

    def led_here(self) -> list[GroupKey]:
        return [k for k, g in self._groups.items() if g.phase in ("solving", "verifying")]

    def retry_alone(self, key: GroupKey) -> list[Follower]:
        """The leader's re-issued request failed (or vanished): the followers try on their own.
        Nothing while the leader is still parked."""
        group = self._groups.get(key)
        if group is None or group.phase == "solving":
            return []
        return self._reopen(group, shared=False)

    def fail(self, key: GroupKey) -> list[Follower]:
        """The leader gave up: the group ends; its followers end with the same error."""
        group = self._groups.pop(key, None)
        return group.followers if group is not None else []

    def stalled(self) -> list[Follower]:
        """No request is parked: every group still waiting lost its leader; release them."""
        released: list[Follower] = []
        for group in self._groups.values():
            if group.phase != "open":
                released.extend(self._reopen(group, shared=False))
        return released

    def take_followers(self) -> list[Follower]:
        """Every follower, for a stop that keeps them; the groups end."""
        followers = [f for group in self._groups.values() for f in group.followers]
        self._groups.clear()
        return followers

    def clear(self) -> None:
        self._groups.clear()

    @staticmethod
    def _reopen(group: Group, *, shared: bool) -> list[Follower]:
        group.phase, group.leader = "open", None
        followers, group.followers = group.followers, []
        return [
            Follower(
                f.request,
                replace(
                    f.state,
                    generation=group.generation,
                    shared_from=group.solution if shared else None,
                ),
                f.lease,
            )
            for f in followers
        ]
