"""The health monitor: every probe on its own fixed-rate schedule, state changes and compact samples as events."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from rollback_tui.record.events import EventBase, HealthAlert, HealthChanged, HealthSample
from rollback_tui.health.http11 import HttpPool
from rollback_tui.health.probes import ProbeOutcome, sample
from rollback_tui.health.states import ProbeStatus, Thresholds
from rollback_tui.plan.models import Plan
from rollback_tui.plan.probes import HttpProbe, PrometheusProbe, SqlProbe
from rollback_tui.secrets import SecretStore

if TYPE_CHECKING:
    from rollback_tui.plan.probes import Probe

log = logging.getLogger(__name__)

#: Probes start spread over this many seconds (or their interval, if shorter) so they do not poll in one burst,
_SPREAD = 1.0
#: in this many slots: probes sharing a slot wake up together (one loop wake-up serves several probes).
_SLOTS = 10
#: Drift measurements kept per probe (a long session must not grow memory without bound).
_DRIFT_KEPT = 3600


class Monitor:
    """Runs every probe of `plan.health` concurrently from `start()` to `stop()`.

    Emits HealthChanged on every state change, HealthAlert when a trigger probe goes down, and a HealthSample every
    `sample_every` seconds holding every sample since the previous one as probe -> [[t_offset_s, state, latency_ms]]
    (a fourth element, the value, for a probe that measures one: prometheus), where t_offset_s is the (negative) number of seconds from that event's `ts` back to the sample. `emit` is called
    synchronously from the event loop with events whose seq is 0.

    Scheduling is fixed-rate: probe i samples at start_i + k * interval, so slow samples never accumulate drift; a
    sample still running at its next tick makes the monitor skip the ticks it missed rather than pile up.
    """

    def __init__(self, plan: Plan, secrets: SecretStore, emit: Callable[[EventBase], None], *,
                 sample_every: float = 10.0) -> None:
        self.plan = plan
        self.secrets = secrets
        self._emit = emit
        self.sample_every = sample_every
        self.probes: dict[str, Probe] = {}
        for index, probe in enumerate(plan.health):
            self.probes[probe.id or f"probe-{index + 1}"] = probe
        self._status = {pid: ProbeStatus(Thresholds.of(probe)) for pid, probe in self.probes.items()}
        self._pending: dict[str, list[list[Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._clients: HttpPool | None = None
        self._executor: ThreadPoolExecutor | None = None
        #: probe id -> how late its recent samples began against the schedule, in seconds (benchmarks read it)
        self.drift: dict[str, deque[float]] = {pid: deque(maxlen=_DRIFT_KEPT) for pid in self.probes}
        self._running = False

    # ------------------------------------------------------------ lifecycle

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        """Start one task per probe (and the sample flusher); returns at once, before any sample is taken."""
        if self._running:
            return
        self._running = True
        loop = asyncio.get_running_loop()
        pooled = (HttpProbe, PrometheusProbe)
        if any(isinstance(probe, pooled) for probe in self.probes.values()):
            longest = max(probe.interval for probe in self.probes.values() if isinstance(probe, pooled))
            # keep connections alive across a probe's interval so a poll is one request, not a handshake
            self._clients = HttpPool(idle_expiry=min(120.0, longest + 5.0))
        sql = sum(isinstance(probe, SqlProbe) for probe in self.probes.values())
        if sql:
            # our own small pool: SQL probes must not starve the default executor the engine uses
            self._executor = ThreadPoolExecutor(max_workers=min(4, sql), thread_name_prefix="health-sql")
        origin = loop.time()
        count = len(self.probes)
        for index, (probe_id, probe) in enumerate(self.probes.items()):
            offset = min(_SPREAD, probe.interval) * (index % _SLOTS) / min(_SLOTS, count)
            self._tasks.append(asyncio.create_task(self._run_probe(probe_id, probe, origin + offset),
                                                   name=f"health:{probe_id}"))
        if self.probes and self.sample_every > 0:
            self._tasks.append(asyncio.create_task(self._flush_loop(), name="health:samples"))

    async def stop(self) -> None:
        """Cancel every probe task, emit the last samples, close the HTTP connections and the SQL threads."""
        if not self._running:
            return
        self._running = False
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._flush()
        if self._clients is not None:
            clients, self._clients = self._clients, None
            try:
                await clients.aclose()
            except Exception as exc:  # closing is best effort; it must not fail the session's end
                log.warning("closing health HTTP connections failed: %s", exc)
        if self._executor is not None:
            executor, self._executor = self._executor, None
            executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------ state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """probe id -> {"state", "reason", "latency_ms", "since" (ISO UTC)}: the health in a decision's evidence."""
        return {probe_id: status.as_dict() for probe_id, status in self._status.items()}

    def state(self, probe_id: str) -> str | None:
        status = self._status.get(probe_id)
        return status.state if status else None

    def has_result(self, probe_id: str) -> bool:
        status = self._status.get(probe_id)
        return bool(status and status.samples)

    # ------------------------------------------------------------ loops

    async def sample_now(self, probe_id: str) -> ProbeOutcome:
        """Take one extra sample of a monitored probe outside its schedule (folded into its state like any other)."""
        outcome = await self._take(self.probes[probe_id])
        self.record(probe_id, outcome)
        return outcome

    async def _take(self, probe: Probe) -> ProbeOutcome:
        return await sample(probe, plan=self.plan, secrets=self.secrets, client=self._clients,
                            executor=self._executor)

    async def _run_probe(self, probe_id: str, probe: Probe, first: float) -> None:
        loop = asyncio.get_running_loop()
        interval = max(probe.interval, 0.001)
        tick = 0
        while True:
            due = first + tick * interval
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            self.drift[probe_id].append(max(0.0, loop.time() - due))
            try:
                outcome = await self._take(probe)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # sample() already turns failures into data; this is a last resort
                outcome = ProbeOutcome(False, None, f"probe crashed: {type(exc).__name__}")
            self.record(probe_id, outcome)
            # the next tick still ahead of us: ticks missed while a slow sample ran are skipped, not bunched
            tick = max(tick + 1, math.floor((loop.time() - first) / interval) + 1)

    def record(self, probe_id: str, outcome: ProbeOutcome) -> None:
        """Fold one outcome into the probe's state; emit HealthChanged (and HealthAlert) when the state moves."""
        status = self._status[probe_id]
        old = status.record(ok=outcome.ok, degraded=outcome.degraded, reason=outcome.reason,
                            latency_ms=outcome.latency_ms, unknown=outcome.unknown)
        if self.sample_every > 0:
            stamp = asyncio.get_running_loop().time()
            row = [stamp, status.state, outcome.latency_ms]
            if outcome.value is not None:  # a value probe (prometheus): the health pane draws its values
                row.append(outcome.value)
            self._pending.setdefault(probe_id, []).append(row)
        if old is None:
            return
        self._send(HealthChanged(probe=probe_id, old=old, new=status.state, reason=outcome.reason,
                                 latency_ms=outcome.latency_ms))
        if status.state == "down" and self.probes[probe_id].trigger:
            self._send(HealthAlert(probe=probe_id, reason=f"rollback trigger {probe_id} is down: {outcome.reason}"))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sample_every)
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        now = asyncio.get_running_loop().time()
        samples = {
            probe_id: [[round(row[0] - now, 3), *row[1:]] for row in rows]
            for probe_id, rows in pending.items()
        }
        self._send(HealthSample(samples=samples))

    def _send(self, event: EventBase) -> None:
        try:
            self._emit(event)
        except Exception:  # a broken listener must not stop health monitoring
            log.exception("health event listener failed on %s", type(event).__name__)
