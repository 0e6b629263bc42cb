"""Small shared field types of the plan format: durations, step ids, scopes, the strict base model."""

from __future__ import annotations

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


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Turn `90`, `1.5`, `"30s"`, `"5m"`, `"1h"` or `"250ms"` into seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '1h'")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return float(match.group(1)) * _UNIT[match.group(2)]
    raise ValueError(f"{value!r} is not a duration; write seconds (90) or '30s', '5m', '1h', '250ms'")


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
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"},
            ],
            "description": "Seconds, or a string such as '30s', '5m', '1h', '250ms'.",
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
