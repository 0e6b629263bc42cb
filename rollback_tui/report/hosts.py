"""The report's per-host record of waved actions: hosts x waves with state words, counts, exclusions and reasons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rollback_tui.procedure.states import HostState
from rollback_tui.report.md import code, inline, table

#: Past this many hosts an action's table lists only the hosts that did not end ok (the counts say the rest).
FULL_TABLE_HOSTS = 200
#: Waves drawn as columns; later waves are folded into the last column.
WAVE_COLUMNS = 10
_ORDER = [state.value for state in HostState]


@dataclass
class HostRow:
    host: str
    wave: int
    state: str = "pending"
    attempts: int = 0
    exit_code: int | None = None
    error: str = ""
    reason: str = ""
    by: str = ""


@dataclass
class WavedRecord:
    """One waved action, folded from WavesPlanned, ActionStarted/Finished with a wave, and HostsExcluded."""

    step: str
    action: str
    failure_budget: int = 0
    waves: list[list[str]] = field(default_factory=list)
    hosts: dict[str, HostRow] = field(default_factory=dict)

    def planned(self, event: Any) -> None:
        self.failure_budget, self.waves = event.failure_budget, [list(wave) for wave in event.waves]
        for number, wave in enumerate(self.waves, 1):
            for host in wave:
                row = self.hosts.get(host)
                if row is None or row.state != "excluded":
                    attempts = row.attempts if row else 0
                    self.hosts[host] = HostRow(host, number, attempts=attempts)

    def started(self, event: Any) -> None:
        for host in event.hosts:
            row = self.hosts.setdefault(host, HostRow(host, event.wave))
            row.state, row.attempts = "running", row.attempts + 1

    def finished(self, event: Any) -> None:
        for result in event.hosts:
            row = self.hosts.setdefault(result.host, HostRow(result.host, event.wave))
            row.state, row.exit_code, row.error = result.status, result.exit_code, result.error

    def excluded(self, event: Any) -> None:
        for host in event.hosts:
            row = self.hosts.setdefault(host, HostRow(host, event.wave))
            row.state, row.reason, row.by = "excluded", event.reason, event.by

    def counts(self, rows: list[HostRow] | None = None) -> str:
        tally = Counter(row.state for row in (self.hosts.values() if rows is None else rows))
        return ", ".join(f"{tally[state]} {state}" for state in _ORDER if tally[state]) or "no hosts"


def fold_waved(events: list[Any]) -> dict[tuple[str, str], WavedRecord]:
    """The waved actions of a session, in the order their waves were first planned."""
    records: dict[tuple[str, str], WavedRecord] = {}
    for event in events:
        kind = getattr(event, "type", "")
        if kind == "waves_planned":
            records.setdefault((event.step, event.action), WavedRecord(event.step, event.action)).planned(event)
            continue
        record = records.get((getattr(event, "step", ""), getattr(event, "action", "")))
        if record is None or not getattr(event, "wave", 0):
            continue
        if kind == "action_started":
            record.started(event)
        elif kind == "action_finished":
            record.finished(event)
        elif kind == "hosts_excluded":
            record.excluded(event)
    return records


def section(records: dict[tuple[str, str], WavedRecord]) -> list[str]:
    """The "Hosts in waves" section (empty when no action ran in waves)."""
    out: list[str] = []
    for record in records.values():
        rows = sorted(record.hosts.values(), key=lambda row: row.wave)
        used = sum(row.state in ("failed", "unreachable", "timeout", "cancelled") for row in rows)
        out += [f"### {code(f'{record.step}/{record.action}')}", "",
                f"- {len(rows)} host(s) in {len(record.waves)} wave(s); failure budget {record.failure_budget}, "
                f"{used} used; hosts: {record.counts()}"]
        for number, wave in enumerate(record.waves, 1):
            members = [record.hosts[host] for host in wave if host in record.hosts]
            out.append(f"- wave {number}: {len(wave)} host(s): {record.counts(members)}")
        shown = rows if len(rows) <= FULL_TABLE_HOSTS else [row for row in rows if row.state != "ok"]
        columns = min(len(record.waves), WAVE_COLUMNS) or 1
        header = ["Host"] + [f"Wave {n}" if n < WAVE_COLUMNS or columns < WAVE_COLUMNS else f"Wave {n}+"
                             for n in range(1, columns + 1)] + ["Attempts", "Detail"]
        body = []
        for row in shown:
            cells = [""] * columns
            cells[min(row.wave, columns) - 1] = row.state
            detail = row.reason if row.state == "excluded" else row.error
            body.append([code(row.host), *cells, str(row.attempts), inline(detail)])
        if len(shown) < len(rows):
            out += ["", f"{len(rows) - len(shown)} host(s) ended ok and are not listed; the event log has each."]
        if body:
            out += [""] + table(header, body)
        excluded = [row for row in rows if row.state == "excluded"]
        if excluded:
            out += ["", "Excluded hosts (never run again, not counted against the budget):", ""]
            out += [f"- {code(row.host)} (wave {row.wave}) by {inline(row.by)}: {inline(row.reason)}"
                    for row in excluded]
        out.append("")
    return out[:-1]
