"""GeeTest v3's fresh challenge: the request that fetches it and how its answer fills the task.

Sites hand a v3 widget its ``gt`` and a single-use ``challenge`` through an XHR (a "register"
endpoint answering JSON such as ``{"success": 1, "gt": "…", "challenge": "…"}``); a template's
``challenge_url`` names that endpoint, and a fresh challenge is fetched before every task.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from scrapy import Request

__all__ = ["challenge_request", "with_challenge"]

_GT_RE: Final = re.compile(r"[0-9a-f]{32}")
_CHALLENGE_RE: Final = re.compile(r"[0-9a-z]{32,34}")
_MAX_BYTES: Final = 64 * 1024


def challenge_request(url: str, *, priority: int) -> Request:
    """The request for a fresh challenge (never itself solved, never filtered as a duplicate)."""
    return Request(
        url,
        meta={"ucaptcha_task": False},
        dont_filter=True,
        priority=priority,
        headers={"Accept": "application/json, text/javascript, */*; q=0.01"},
    )


def with_challenge(task: dict[str, Any], status: int, body: bytes) -> dict[str, Any]:
    """``task`` with the ``challenge`` (and ``gt``) of the endpoint's answer; ValueError when the
    answer holds no usable challenge."""
    if status != 200:
        raise ValueError(f"answered HTTP {status}")
    try:
        data = json.loads(body[:_MAX_BYTES])
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"]  # some sites wrap it: {"code": 0, "data": {…}}
    if not isinstance(data, dict):
        raise ValueError("the answer is not a JSON object")
    challenge, gt = data.get("challenge"), data.get("gt")
    if not isinstance(challenge, str) or not _CHALLENGE_RE.fullmatch(challenge):
        raise ValueError("the answer has no challenge")
    if gt is not None and (not isinstance(gt, str) or not _GT_RE.fullmatch(gt)):
        raise ValueError("the answer's gt is malformed")
    if gt is None and not task.get("gt"):
        raise ValueError("neither the page nor the answer gives gt")
    return {**task, "challenge": challenge, **({"gt": gt} if gt else {})}
