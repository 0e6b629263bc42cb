"""Small shared field types of the plan format: durations, step ids, scopes, the strict base model."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, WithJsonSchema, model_validator

from rollback_tui.plan.typed import check_typed
# The steps and scopes are the procedure's (rollback_tui/procedure/steps.py); the plan format re-exports them.
from rollback_tui.procedure.steps import (
    DEFAULT_ORDER,
    SCOPE_STEP,
    STEP_ORDER,
    STEP_QUESTIONS,
    STEP_TITLES,
    Scope,
    StepId,
)


_DURATION = re.compile(r"^\s*(\d{1,12}(?:\.\d{1,9})?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}

#: Lengths of text fields: names and ids, one-line values, and free text (descriptions, notes).
NAME_MAX = 200
LINE_MAX = 2000
TEXT_MAX = 20_000
#: Items of the lists a plan holds (actions of a step, risks, artifacts, ...); hosts of a group have their own.
ITEMS_MAX = 500

#: The longest duration a plan may give (a timeout, a retry delay, the window): 7 days.
MAX_DURATION = 7 * 24 * 3600.0


def parse_duration(value: Any) -> float:
    """Turn `90`, `1.5`, `"30s"`, `"5m"`, `"1h"` or `"250ms"` into seconds (finite, 0 to 7 days)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    seconds: float | None = None
    if isinstance(value, (int, float)):
        try:
            seconds = float(value)
        except OverflowError:  # an integer beyond a float: certainly longer than the limit
            seconds = 1e308
    elif isinstance(value, str) and len(value) <= 40:
        match = _DURATION.match(value)
        if match:
            seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds is None:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"{shown} is not a duration; write seconds (90) or '30s', '5m', '1h', '250ms'")
    if not math.isfinite(seconds):
        raise ValueError("a duration must be a finite number of seconds (not .inf or .nan)")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    if seconds > MAX_DURATION:
        raise ValueError(f"{format_duration(seconds) if seconds < 1e12 else f'{seconds:g}s'} is longer than the "
                         f"limit of 7 days ({MAX_DURATION:g}s)")
    return seconds


def format_duration(seconds: float) -> str:
    """Render seconds the way an operator reads them: `45m`, `1h30m`, `12s`, `0.25s`."""
    if seconds < 1:
        return f"{seconds:g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return "".join(parts)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0, "maximum": MAX_DURATION},
                {"type": "string", "pattern": r"^\s*\d{1,12}(\.\d{1,9})?\s*(ms|s|m|h)?\s*$", "maxLength": 40},
            ],
            "description": "Seconds, or a string such as '30s', '5m', '1h', '250ms'; at most 7 days.",
        }
    ),
]


class Strict(BaseModel):
    """Base of every plan model: unknown keys are errors, values are not coerced loosely."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _typed_like_the_schema(cls, data: Any) -> Any:
        """Integers, numbers, booleans and fixed words as the published schema types them (plan/typed.py)."""
        if not isinstance(data, dict):
            return data
        fields = cls.model_fields
        return {key: check_typed(value, fields[key].annotation, fields[key].metadata) if key in fields else value
                for key, value in data.items()}


__all__ = ["DEFAULT_ORDER", "SCOPE_STEP", "STEP_ORDER", "STEP_QUESTIONS", "STEP_TITLES", "Duration", "Scope",
           "StepId", "Strict", "format_duration", "parse_duration"]
