"""Health probe and verification-check models (a discriminated union on `kind`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Field

from rollback_tui.plan.promql import AnalysisCheck, PromSource
from rollback_tui.plan.types import NAME_MAX, TEXT_MAX, Duration, Strict

Status = Annotated[int, Field(ge=100, le=599)]

CheckCategory = Literal["health", "functionality", "data", "state"]


class ProbeBase(Strict):
    """Fields every probe has."""

    id: str | None = Field(None, max_length=NAME_MAX)
    """Name of the probe; required under `health:`, optional for an inline step check."""
    description: str = Field("", max_length=TEXT_MAX)
    """What the probe proves, in the operator's words."""
    category: CheckCategory = "health"
    """What the check validates in step 7: system health, functionality (smoke requests) or data."""
    interval: Annotated[Duration, Field(ge=0.01)] = 5.0
    """How often the monitor samples the probe (at least 10 ms)."""
    timeout: Duration = 3.0
    """How long one sample may take before it counts as failed."""
    degraded_after: int = Field(1, ge=1, le=1000)
    """Consecutive failures before the state becomes degraded."""
    down_after: int = Field(3, ge=1, le=1000)
    """Consecutive failures before the state becomes down."""
    healthy_after: int = Field(1, ge=1, le=1000)
    """Consecutive successes before a failing probe is healthy again."""
    trigger: bool = False
    """Raise a rollback-trigger alert when this probe goes down during a session."""


class HttpProbe(ProbeBase):
    """An HTTP request whose status, latency and body decide the state."""

    kind: Literal["http"]
    url: str
    """The URL to request (variables allowed)."""
    method: str = "GET"
    """HTTP method."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Request headers; credentials must be `${secrets.NAME}` references."""
    expect_status: Status | list[Status] = 200
    """Status code(s) that count as success."""
    max_latency: Duration | None = None
    """Slower answers count as degraded, not healthy."""
    body_contains: str | None = None
    """Text the body must contain."""
    json_field: str | None = None
    """Dotted path into a JSON body, e.g. `status` or `checks.db`."""
    json_equals: Any = None
    """Value the `json_field` must equal."""
    verify_tls: bool = True
    """Check the server's TLS certificate."""


class TcpProbe(ProbeBase):
    """A TCP connect to host:port."""

    kind: Literal["tcp"]
    host: str
    """Host name or address."""
    port: int = Field(ge=1, le=65535)
    """TCP port."""


class CommandProbe(ProbeBase):
    """A local command whose exit status (and output) decide the state."""

    kind: Literal["command"]
    argv: list[str] = Field(min_length=1)
    """The command as an argument list (never run through a shell)."""
    expect_exit: int = Field(0, ge=0, le=255)
    """Exit status that counts as success."""
    output_contains: str | None = None
    """Text the output must contain."""


class SshProbe(ProbeBase):
    """A command on every host of a host group; healthy when at least `min_ok` hosts pass."""

    kind: Literal["ssh"]
    group: str
    """Name of a host group under `host_groups:`."""
    command: str
    """The remote command line."""
    min_ok: int | None = Field(None, ge=0, le=10_000)
    """Hosts that must pass for healthy; default all of them."""
    expect_exit: int = Field(0, ge=0, le=255)
    """Exit status that counts as success on a host."""


class SqlProbe(ProbeBase):
    """A SQL query whose first column of the first row must equal `expect`."""

    kind: Literal["sql"]
    url: str
    """SQLAlchemy-style URL: `sqlite:///path.db` or `postgresql://user@host/db` (password via `${secrets.NAME}`)."""
    query: str
    """A read-only query."""
    expect: Any = None
    """Expected value of the first column of the first row; None means 'any row'."""


class PrometheusProbe(ProbeBase, PromSource):
    """An instant PromQL query whose single value must meet `condition`; no series, several series, NaN or a
    server error is never healthy (unknown, or failed with the server's message)."""

    kind: Literal["prometheus"]


class ProbeRef(Strict):
    """A step check that reuses a probe declared under `health:`."""

    kind: Literal["probe"]
    probe: str
    """Id of a probe under `health:`."""
    category: CheckCategory = "health"
    """What the check validates in step 7."""
    expect: Literal["healthy", "not_down"] = "healthy"
    """`healthy` passes only when healthy; `not_down` also accepts degraded."""


Probe = Annotated[
    Union[HttpProbe, TcpProbe, CommandProbe, SshProbe, SqlProbe, PrometheusProbe],
    Field(discriminator="kind"),
]

StepCheck = Annotated[
    Union[HttpProbe, TcpProbe, CommandProbe, SshProbe, SqlProbe, PrometheusProbe, ProbeRef, AnalysisCheck],
    Field(discriminator="kind"),
]
