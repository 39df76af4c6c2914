"""Small statistics, goals and the printed table."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


@dataclass
class Goal:
    """A figure compared with its goal: ``value <= limit`` (or ``>=``)."""

    scenario: str
    name: str
    value: float | None
    limit: float | None
    op: str = "<="  # or ">="
    unit: str = ""

    @property
    def met(self) -> bool | None:
        if self.value is None or self.limit is None:
            return None
        return self.value <= self.limit if self.op == "<=" else self.value >= self.limit

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


@dataclass
class Row:
    """One line of the printed table."""

    scenario: str
    figure: str
    value: float | str | None
    unit: str = ""
    goal: Goal | None = None


def fmt(value: float | str | None, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if value == 0 or abs(value) >= 100:
        text = f"{value:,.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".rstrip()


def table(rows: Sequence[Row]) -> str:
    """A fixed-width text table (also valid Markdown)."""
    header = ("Scenario", "Figure", "Value", "Goal", "Met")
    lines = []
    for row in rows:
        goal, met = "", ""
        if row.goal is not None:
            goal = f"{row.goal.op} {fmt(row.goal.limit, row.goal.unit)}"
            met = {True: "yes", False: "NO", None: "?"}[row.goal.met]
        lines.append((row.scenario, row.figure, fmt(row.value, row.unit), goal, met))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]

    def render(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 1) + (":" if i == 2 else "-") for i, w in enumerate(widths))
    rule += "|"
    return "\n".join([render(header), rule, *(render(line) for line in lines)])
