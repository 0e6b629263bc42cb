"""Prometheus probe and analysis models: a PromQL query against any Prometheus-compatible API and its condition."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal, Union

from pydantic import AfterValidator, Discriminator, Field, Tag, model_validator

from rollback_tui.plan.actions import SecretRef
from rollback_tui.plan.types import Duration, Strict

_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPERATORS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b or math.isclose(a, b), "!=": lambda a, b: not (a == b or math.isclose(a, b)),
}


def _check_condition(text: str) -> str:
    if not _CONDITION.match(text) or not math.isfinite(float(_CONDITION.match(text).group(2))):  # type: ignore[union-attr]
        raise ValueError(f"condition {text!r}: write an operator and a number ('< 0.01', '<=', '>', '>=', '==', "
                         "'!='), or 'between: [LOW, HIGH]'")
    return text.strip()


class Between(Strict):
    """An inclusive range."""

    between: tuple[float, float]
    """`[LOW, HIGH]`, both included."""

    @model_validator(mode="after")
    def _ordered(self) -> Between:
        low, high = self.between
        if not (math.isfinite(low) and math.isfinite(high)) or low > high:
            raise ValueError(f"between: [{low}, {high}]: LOW must be a number not above HIGH")
        return self


def _condition_shape(value: object) -> str:
    return "range" if isinstance(value, (dict, Between)) else "compare"


Condition = Annotated[
    Union[Annotated[Annotated[str, AfterValidator(_check_condition)], Tag("compare")], Annotated[Between, Tag("range")]],
    Discriminator(_condition_shape),
]


def holds(condition: str | Between, value: float) -> bool:
    """Whether a finite value meets the condition."""
    if isinstance(condition, Between):
        return condition.between[0] <= value <= condition.between[1]
    match = _CONDITION.match(condition)
    assert match is not None  # checked when the plan was loaded
    return bool(_OPERATORS[match.group(1)](value, float(match.group(2))))


def condition_text(condition: str | Between) -> str:
    """The condition as the operator reads it: `< 0.01` or `between 0.01 and 0.05`."""
    if isinstance(condition, Between):
        return f"between {condition.between[0]:g} and {condition.between[1]:g}"
    match = _CONDITION.match(condition)
    return f"{match.group(1)} {match.group(2)}" if match else condition


def threshold_outline(probe: object) -> dict[str, Any]:
    """What a viewer draws for a probe with a condition: {"condition": "< 0.01", "thresholds": [0.01]} (both
    bounds of a range); {} for a probe without one."""
    condition = getattr(probe, "condition", None)
    if isinstance(condition, Between):
        levels = [float(condition.between[0]), float(condition.between[1])]
    elif isinstance(condition, str) and (match := _CONDITION.match(condition)):
        levels = [float(match.group(2))]
    else:
        return {}
    return {"condition": condition_text(condition), "thresholds": levels}


class BasicAuth(Strict):
    """HTTP basic authentication; the password comes from a secret."""

    username: str = Field(min_length=1)
    """The user name (variables allowed)."""
    password: SecretRef
    """`${secrets.NAME}`."""


class PromSource(Strict):
    """Where and what to ask: a Prometheus-compatible HTTP API and an instant PromQL query."""

    url: str
    """Base URL of the API, e.g. `http://127.0.0.1:9090` (Thanos, Mimir, VictoriaMetrics: their query endpoint's
    prefix); `/api/v1/query` is appended."""
    query: str = Field(min_length=1, max_length=8192)
    """An instant PromQL query that returns one number (a scalar or a vector of exactly one series)."""
    condition: Condition
    """What a good value is: `< 0.01`, `<=`, `>`, `>=`, `==`, `!=` and a number, or `between: [LOW, HIGH]`."""
    bearer_token: SecretRef | None = None
    """`${secrets.NAME}`, sent as `Authorization: Bearer ...`."""
    basic_auth: BasicAuth | None = None
    """User name and `${secrets.NAME}` password, sent as `Authorization: Basic ...`."""
    verify_tls: bool = True
    """Check the server's TLS certificate."""

    @model_validator(mode="after")
    def _one_auth(self) -> PromSource:
        if self.bearer_token is not None and self.basic_auth is not None:
            raise ValueError("give bearer_token or basic_auth, not both")
        return self


class AnalysisCheck(PromSource):
    """A timed analysis as a step check: the query sampled `count` times every `interval`; fails when
    `failure_limit` samples miss the condition (ending the wait early), inconclusive when samples fall in
    `inconclusive` or have no value; an inconclusive or failed analysis goes to the go/no-go with its series."""

    kind: Literal["analysis"]
    id: str | None = None
    """Name of the analysis in the evidence."""
    description: str = ""
    """What the analysis proves, in the operator's words."""
    category: Literal["health", "functionality", "data", "state"] = "health"
    """What the check validates in step 7."""
    interval: Duration = 10.0
    """Time between two samples."""
    count: int = Field(5, ge=1, le=1000)
    """How many samples to take."""
    failure_limit: int = Field(1, ge=1)
    """Samples that miss the condition before the analysis fails (and stops waiting)."""
    inconclusive: Between | None = None
    """Values in this range neither pass nor fail: the operator decides."""
    timeout: Duration = 3.0
    """How long one sample may take."""
    wait_for_data: Duration | None = None
    """Before the first sample: how long to keep asking (every `interval`, at least every 0.5 s) while the query
    matches no series yet or the server does not answer yet (a Prometheus just started, its first scrape still to
    come). Those answers are not counted; the `count` samples start at the first one with data, or when this runs
    out (then they count as usual). Unset: every sample counts from the start."""

    @model_validator(mode="after")
    def _bounded(self) -> AnalysisCheck:
        if self.interval <= 0:
            raise ValueError("interval must be above 0")
        if self.wait_for_data is not None and not 0 <= self.wait_for_data <= 3600:
            raise ValueError("wait_for_data must be between 0 and 1h")
        if self.interval * (self.count - 1) > 6 * 3600:
            raise ValueError(f"{self.count} samples every {self.interval:g} s last more than 6 hours")
        return self
