"""Waves of a host-group action: the `waves:` model, its counts (hosts or a percentage of the group) and the layout."""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from rollback_tui.plan.types import Strict, format_duration, parse_duration

_PERCENT = re.compile(r"^\s*(\d{1,3}(?:\.\d{1,4})?)\s*%\s*$")
_PAUSE = re.compile(r"^\s*pause\s+(\S.{0,38})$")
#: The most hosts a count may name (a host group holds at most 10,000).
COUNT_MAX = 10_000


def parse_count(value: Any) -> int | str:
    """`10` (hosts) or `"20%"` (of the group): an integer 0..10000 or a percentage 0..100, kept as written."""
    if isinstance(value, bool):
        raise ValueError("a count is a number of hosts (10) or a percentage of the group ('20%')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative; give a number of hosts (0 or more) or a percentage ('20%')")
        if value > COUNT_MAX:
            raise ValueError(f"{value} hosts is more than a host group can hold ({COUNT_MAX})")
        return value
    if isinstance(value, str) and len(value) <= 20:
        match = _PERCENT.match(value)
        if match:
            if Fraction(match.group(1)) > 100:
                raise ValueError(f"{value.strip()} is over 100%: a percentage of the group is at most '100%'")
            return f"{match.group(1)}%"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(f"{shown} is not a count: give a number of hosts (10) or a percentage of the group ('20%')")


Count = Annotated[
    int | str,
    BeforeValidator(parse_count),
    WithJsonSchema({
        "anyOf": [{"type": "integer", "minimum": 0, "maximum": COUNT_MAX},
                  {"type": "string", "pattern": r"^\s*\d{1,3}(\.\d{1,4})?\s*%\s*$", "maxLength": 20}],
        "description": "A number of hosts, or a percentage of the host group such as '20%' (at most 100%).",
    }),
]


def _positive(value: int | str, what: str) -> int | str:
    if value == 0 or (isinstance(value, str) and Fraction(value[:-1]) == 0):
        raise ValueError(f"{what} of 0 hosts would never run a host; give at least 1 (or a percentage above 0%)")
    return value


def parse_between(value: Any) -> str:
    """`decision` or `pause DURATION` (e.g. 'pause 30s')."""
    if isinstance(value, str) and value.strip() == "decision":
        return "decision"
    if isinstance(value, str) and (match := _PAUSE.match(value)):
        return f"pause {parse_duration(match.group(1)):g}s"
    shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
    raise ValueError(f"{shown}: write 'decision' (a go/no-go after every wave but the last) or 'pause DURATION' "
                     "(e.g. 'pause 30s')")


Between = Annotated[
    str,
    BeforeValidator(parse_between),
    WithJsonSchema({"type": "string", "pattern": r"^\s*(decision|pause\s+\S.{0,38})$", "maxLength": 46,
                    "description": "'decision' or 'pause DURATION' (e.g. 'pause 30s')."}),
]


def resolve(count: int | str, total: int, *, round_up: bool) -> int:
    """A count for a group of `total` hosts: a percentage rounded up (sizes) or down (the failure budget)."""
    if isinstance(count, int):
        return min(count, total)
    share = Fraction(count[:-1]) * total / 100
    return min(total, math.ceil(share) if round_up else math.floor(share))


class Waves(Strict):
    """Run a host-group action in waves: a canary first, then fixed-size waves, with a check between them."""

    size: Count = Field(...)
    """Hosts per wave: a number, or a percentage of the group ('20%', rounded up, at least 1 host)."""
    first: Count | None = None
    """The canary: the first wave's size (a number or a percentage); the rest go in waves of `size`."""
    failure_budget: Count = 0
    """Failed, unreachable or timed-out hosts allowed over the whole action before it stops (a percentage is
    rounded down); excluded hosts do not count."""
    between: Between = "decision"
    """After every wave but the last: 'decision' (a go / no-go with the wave's results and a fresh health sample),
    or 'pause DURATION' (wait, then go on unless the failure budget is exceeded or health is down)."""

    @field_validator("size")
    @classmethod
    def _size_positive(cls, value: int | str) -> int | str:
        return _positive(value, "a wave")

    @field_validator("first")
    @classmethod
    def _first_positive(cls, value: int | str | None) -> int | str | None:
        return None if value is None else _positive(value, "a canary wave")

    def wave_size(self, total: int) -> int:
        return max(1, resolve(self.size, total, round_up=True))

    def canary(self, total: int) -> int | None:
        return None if self.first is None else max(1, resolve(self.first, total, round_up=True))

    def budget(self, total_hosts: int) -> int:
        """The failure budget in hosts for a group of `total_hosts`."""
        return resolve(self.failure_budget, total_hosts, round_up=False)

    @property
    def pause(self) -> float | None:
        """Seconds to wait between waves, or None for a decision."""
        return parse_duration(self.between.split(None, 1)[1]) if self.between.startswith("pause") else None

    def describe(self, total: int) -> str:
        layout = plan_waves([str(n) for n in range(total)], self)
        sizes = [len(wave) for wave in layout]
        shown = ", ".join(str(size) for size in sizes[:8]) + (f", ... ({len(sizes)} waves)" if len(sizes) > 8 else "")
        canary = f"canary {sizes[0]} host(s), then " if self.first is not None and sizes else ""
        between = "a go / no-go" if self.pause is None else f"a pause of {format_duration(self.pause)}"
        return (f"{len(sizes)} wave(s) of {shown} host(s) ({canary}waves of {self.wave_size(total)}); "
                f"failure budget {self.budget(total)} of {total} hosts; between waves: {between}")


def plan_waves(hosts: list[str], waves: Waves) -> list[list[str]]:
    """The hosts in waves, in group order: the canary (if any), then waves of `size`; never an empty wave."""
    total = len(hosts)
    if total == 0:
        return []
    layout: list[list[str]] = []
    start = 0
    canary = waves.canary(total)
    if canary is not None:
        layout.append(list(hosts[:canary]))
        start = canary
    size = waves.wave_size(total)
    for index in range(start, total, size):
        layout.append(list(hosts[index:index + size]))
    return layout


def group_of(action: Any) -> str | None:
    """The host group an action runs on: an `ssh` action's `group`, an `ansible` action's `hosts` (None without)."""
    return getattr(action, "hosts", None) if action.kind == "ansible" else getattr(action, "group", None)
