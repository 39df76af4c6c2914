"""The middleware's state owners on their own, without a crawl: the parking lot, the domain scope,
the task planner and the plain-data request state."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from forms import form_post
from scrapy import Request
from scrapy.http import HtmlResponse, JsonRequest

from scrapy_ucaptcha.detection import Challenge, FormLocator
from scrapy_ucaptcha.errors import CaptchaSolveError
from scrapy_ucaptcha.parking import ParkingLot
from scrapy_ucaptcha.planner import PlanError, TaskPlan, plan_task
from scrapy_ucaptcha.scope import DomainScope
from scrapy_ucaptcha.solver import Solution
from scrapy_ucaptcha.state import (
    RequestState,
    error_from_meta,
    error_to_meta,
    solution_from_meta,
    solution_to_meta,
)
from scrapy_ucaptcha.templates import DEFAULT_TASK_TYPES, Template, TemplateSet

KEY = ("*.example", "a.example")
SITEKEY = "6LeIxAcTAAAAAJcZVRqyHh71UMIEGNQ_MXjiZKhI"


def solution(task_id: str = "t1") -> Solution:
    return Solution(
        task_id=task_id,
        task_type="RecaptchaV2TaskProxyless",
        token="tok-" + task_id,
        solution={"gRecaptchaResponse": "tok-" + task_id, "cookies": {"a": "b"}},
        cost=0.002,
        solve_time_ms=1500,
    )


def state(url: str = "https://a.example/p", **kwargs: Any) -> RequestState:
    return RequestState(url=url, pattern="*.example", **kwargs)


def a_plan() -> TaskPlan:
    template = Template(task={"type": "ImageToTextTask"}, inject=Template().inject)
    return plan_task(
        template,
        request=Request("https://a.example/p"),
        response=None,
        challenge=None,
        presolve=True,
        task_types=DEFAULT_TASK_TYPES,
    )


# --- parking lot ---------------------------------------------------------------------------------


def test_a_parked_request_leaves_the_lot_exactly_once() -> None:
    lot = ParkingLot()
    parked = lot.park(Request("https://a.example/p"), state(), Template(), a_plan())
    assert parked.id in lot
    assert len(lot) == 1
    assert lot.leave(parked) is True
    assert lot.leave(parked) is False
    assert parked.id not in lot
    assert len(lot) == 0


def test_a_ticket_remembers_the_request_before_its_token() -> None:
    lot = ParkingLot()
    origin = Request("https://a.example/p")
    ticket = lot.issue(origin)
    settled = lot.settle(ticket)
    assert settled is not None
    assert settled.origin is origin
    parked = lot.park(Request("https://a.example/verify"), state(), Template(), a_plan(), origin)
    assert parked.origin is origin
    assert lot.park(origin, state(), Template(), a_plan()).origin is origin


def test_leave_all_takes_every_parked_request_once() -> None:
    lot = ParkingLot()
    first = lot.park(Request("https://a.example/1"), state(), Template(), a_plan())
    second = lot.park(Request("https://a.example/2"), state(), Template(), a_plan())
    assert first.id != second.id
    assert [p.id for p in lot.leave_all()] == [first.id, second.id]
    assert lot.leave(first) is False
    assert lot.leave_all() == []


def test_requests_waiting_for_a_slot_get_it_oldest_first_while_still_parked() -> None:
    lot = ParkingLot()
    first, second, third = (
        lot.park(Request(f"https://a.example/{n}"), state(), Template(), a_plan()) for n in range(3)
    )
    for parked in (first, second, third):
        lot.wait_for_slot(parked)
    assert lot.next_for_slot() is first
    assert lot.leave(second) is True  # ended while it waited (a stop, a failed group)
    assert lot.next_for_slot() is third
    assert lot.next_for_slot() is None
    lot.wait_for_slot(lot.park(Request("https://a.example/4"), state(), Template(), a_plan()))
    lot.leave_all()
    assert lot.next_for_slot() is None


def test_tickets_are_plain_strings_settled_once() -> None:
    lot = ParkingLot()
    ticket = lot.issue()
    other = lot.issue()
    assert isinstance(ticket, str)
    assert ticket != other
    assert lot.tickets == 2
    assert round_trip(ticket) == ticket
    settled = lot.settle(ticket)
    assert settled is not None
    assert settled.origin is None
    assert lot.settle(ticket) is None
    assert lot.settle(None) is None
    assert lot.settle(12) is None
    assert lot.drop_tickets() == 1
    assert lot.tickets == 0


# --- domain scope --------------------------------------------------------------------------------


def test_first_request_leads_the_others_follow_until_released() -> None:
    scope = DomainScope()
    lead = scope.join(KEY, Request("https://a.example/1"), state())
    assert lead.action == "lead"
    assert (lead.state.role, lead.state.group) == ("leader", KEY)
    scope.solving(KEY, 7)
    follow = [scope.join(KEY, Request(f"https://a.example/{n}"), state()) for n in (2, 3)]
    assert [j.action for j in follow] == ["follow", "follow"]
    assert scope.followers == 2
    group = scope.group(KEY)
    assert group is not None
    assert (group.phase, group.leader) == ("solving", 7)

    # the leader failed to download while still parked: nothing happens yet
    assert scope.retry_alone(KEY) == []
    scope.verifying(KEY)
    released = scope.release(KEY, solution())
    assert [f.request.url for f in released] == ["https://a.example/2", "https://a.example/3"]
    assert all(f.state.role == "follower" for f in released)
    assert all(f.state.generation == 1 for f in released)
    assert all(f.state.shared_from == solution() for f in released)
    assert scope.followers == 0
    assert (group.phase, group.generation) == ("open", 1)


def test_a_request_that_missed_a_clearance_is_resent_once_then_leads() -> None:
    scope = DomainScope()
    scope.join(KEY, Request("https://a.example/1"), state())
    scope.release(KEY, solution())
    resend = scope.join(KEY, Request("https://a.example/2"), state())
    assert resend.action == "resend"
    assert (resend.state.generation, resend.state.shared_from) == (1, solution())
    # challenged again after the re-send: this time it leads a new solve
    again = scope.join(KEY, Request("https://a.example/2"), resend.state)
    assert again.action == "lead"
    assert again.state.role == "leader"


def test_a_failed_leader_lets_followers_try_alone_without_the_clearance() -> None:
    scope = DomainScope()
    scope.join(KEY, Request("https://a.example/1"), state())
    scope.solving(KEY, 1)
    scope.join(KEY, Request("https://a.example/2"), state())
    scope.verifying(KEY)
    released = scope.retry_alone(KEY)
    assert len(released) == 1
    assert released[0].state.shared_from is None
    assert released[0].state.generation == 0
    assert scope.join(KEY, Request("https://a.example/3"), state()).action == "lead"


def test_a_leader_giving_up_ends_the_group_with_its_followers() -> None:
    scope = DomainScope()
    scope.join(KEY, Request("https://a.example/1"), state())
    scope.join(KEY, Request("https://a.example/2"), state())
    scope.join(KEY, Request("https://a.example/3"), state())
    assert [f.request.url for f in scope.fail(KEY)] == [
        "https://a.example/2",
        "https://a.example/3",
    ]
    assert scope.group(KEY) is None
    assert scope.fail(KEY) == []


def test_stalled_groups_are_released_and_followers_can_be_taken_at_a_stop() -> None:
    scope = DomainScope()
    other = ("*.example", "b.example")
    scope.join(KEY, Request("https://a.example/1"), state())
    scope.join(KEY, Request("https://a.example/2"), state())
    scope.join(other, Request("https://b.example/1"), state("https://b.example/1"))
    scope.join(other, Request("https://b.example/2"), state("https://b.example/2"))
    assert [f.request.url for f in scope.stalled()] == [
        "https://a.example/2",
        "https://b.example/2",
    ]
    scope.join(KEY, Request("https://a.example/3"), state())
    scope.join(KEY, Request("https://a.example/4"), state())
    assert [f.request.url for f in scope.take_followers()] == ["https://a.example/4"]
    assert scope.followers == 0
    assert scope.group(KEY) is None


# --- planner -------------------------------------------------------------------------------------

CHALLENGE_PAGE = b"""<html><body>
<form id="f" action="/verify" method="post"><input type="hidden" name="next" value="/p">
<div class="g-recaptcha" data-sitekey="SITE"></div></form></body></html>"""


def challenge_response() -> HtmlResponse:
    return HtmlResponse(
        "https://a.example/p",
        status=403,
        body=CHALLENGE_PAGE,
        request=Request("https://a.example/p"),
    )


def recaptcha(**params: Any) -> Challenge:
    return Challenge(
        kind="recaptcha_v2",
        solvable=True,
        sitekey=SITEKEY,
        params=params,
        form=FormLocator(xpath="//form[@id='f']", token_field="g-recaptcha-response"),
    )


def test_plan_for_a_challenge_page_fills_the_task_and_the_form_plan() -> None:
    response = challenge_response()
    plan = plan_task(
        Template(task={"minScore": 0.5}),
        request=response.request,  # type: ignore[arg-type]
        response=response,
        challenge=recaptcha(action="login", data_s="S"),
        presolve=False,
        task_types=DEFAULT_TASK_TYPES,
    )
    assert plan.kind == "recaptcha_v2"
    assert plan.task == {
        "type": "RecaptchaV2TaskProxyless",
        "minScore": 0.5,
        "websiteURL": "https://a.example/p",
        "websiteKey": SITEKEY,
        "pageAction": "login",
        "recaptchaDataSValue": "S",
    }
    assert plan.inject.mode == "page_form"
    assert plan.inject.form_url == "https://a.example/verify"
    assert plan.image_url is None


def test_plan_for_a_presolved_request_uses_its_own_form() -> None:
    request = form_post("https://a.example/login", {"user": "u"})
    template = Template.parse(
        "*", {"presolve": True, "task": {"type": "HCaptchaTaskProxyless", "websiteKey": "K"}}
    )
    plan = plan_task(
        template,
        request=request,
        response=None,
        challenge=None,
        presolve=True,
        task_types=DEFAULT_TASK_TYPES,
    )
    assert plan.kind == "hcaptcha"
    assert plan.task == {
        "type": "HCaptchaTaskProxyless",
        "websiteKey": "K",
        "websiteURL": "https://a.example/login",
    }
    assert (plan.inject.mode, plan.inject.name) == ("own_form", "h-captcha-response")


@pytest.mark.parametrize(
    ("template", "request_", "challenge", "message"),
    [
        (Template(), Request("https://a.example/p"), "no_form", "no form"),
        (
            Template.parse("*", {"inject": {"mode": "json", "name": "t"}, "task": {"type": "X"}}),
            JsonRequest("https://a.example/api", data=[1, 2]),
            None,
            "JSON object",
        ),
        (Template(), Request("https://a.example/p"), "unknown_kind", "no task type"),
    ],
    ids=["no-form", "json-not-an-object", "no-task-type"],
)
def test_plan_errors_before_any_task_is_paid_for(
    template: Template, request_: Request, challenge: str | None, message: str
) -> None:
    found = None
    if challenge == "no_form":
        found = Challenge(kind="recaptcha_v2", solvable=True, sitekey=SITEKEY)
    elif challenge == "unknown_kind":
        found = Challenge(
            kind="mystery",
            solvable=True,
            sitekey=SITEKEY,
            form=FormLocator(xpath="//form[@id='f']", token_field="x"),
        )
    with pytest.raises(PlanError, match=message):
        plan_task(
            template,
            request=request_,
            response=challenge_response() if found is not None else None,
            challenge=found,
            presolve=challenge is None,
            task_types=DEFAULT_TASK_TYPES,
        )


def test_template_set_finds_a_template_by_its_pattern() -> None:
    templates = TemplateSet.from_setting({"a.example": {"scope": "domain"}, "*": {}})
    assert templates.get("a.example").scope == "domain"
    assert templates.get("*").pattern == "*"
    assert templates.get("gone.example") == Template()


# --- plain request state -------------------------------------------------------------------------


def test_request_state_round_trips_through_plain_meta_and_pickle() -> None:
    full = state(
        attempts=2,
        task_ids=("t0", 17),
        solution=solution("t1"),
        presolve=True,
        role="leader",
        group=KEY,
        generation=3,
        shared_from=solution("t2"),
    )
    meta = full.to_meta()
    assert _plain(meta)
    assert RequestState.from_meta(round_trip(meta)) == full
    assert RequestState.from_meta(state().to_meta()) == state()


@pytest.mark.parametrize(
    "value",
    [None, "x", 3, {}, {"url": 1, "pattern": "*"}, {"url": "u", "pattern": "*", "role": "boss"}],
)
def test_request_state_ignores_what_it_did_not_write(value: object) -> None:
    assert RequestState.from_meta(value) is None


def test_solutions_and_errors_round_trip_as_plain_data() -> None:
    meta = solution_to_meta(solution())
    assert _plain(meta)
    assert solution_from_meta(meta) == solution()
    assert solution_from_meta(None) is None
    assert solution_from_meta({"task_id": "x"}) is None
    error = CaptchaSolveError(
        "no", code="max_attempts", attempts=3, task_ids=("a", "b"), url="https://a.example/"
    )
    plain = error_to_meta(error)
    assert _plain(plain)
    back = error_from_meta(round_trip(plain))
    assert back is not None
    assert (back.reason, back.code, back.attempts, back.task_ids, back.url) == (
        "no",
        "max_attempts",
        3,
        ("a", "b"),
        "https://a.example/",
    )
    assert error_from_meta({"code": "x"}) is None


def _plain(value: object) -> bool:
    """Only dicts with string keys, lists, strings, numbers, booleans and None."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return value is None or isinstance(value, (str, int, float, bool))


def round_trip(value: Any) -> Any:
    """``value`` pickled and read back, as a disk queue does."""
    return pickle.loads(pickle.dumps(value))  # noqa: S301  (data this test just wrote)


def test_a_group_another_worker_leads_waits_for_its_published_generation() -> None:
    scope = DomainScope()
    scope.follow_remote(KEY)
    follow = scope.join(KEY, Request("https://a.example/1"), state(), lease="L1")
    assert follow.action == "follow"
    assert [k for k, _ in scope.waiting_on_others()] == [KEY]
    assert scope.led_here() == []
    released = scope.release(KEY, None, generation=7)
    assert [(f.state.generation, f.lease) for f in released] == [(7, "L1")]
    group = scope.group(KEY)
    assert group is not None
    assert (group.phase, group.generation) == ("open", 7)
    # a remote lead that ended without a clearance: the followers try on their own
    scope.follow_remote(KEY)
    scope.join(KEY, Request("https://a.example/2"), state())
    assert [f.state.shared_from for f in scope.retry_alone(KEY)] == [None]
    # a group led here is not taken over by a remote lead
    assert scope.join(KEY, Request("https://a.example/3"), state(generation=7)).action == "lead"
    scope.follow_remote(KEY)
    assert scope.led_here() == [KEY]
