"""Headless runs (`--headless`): decisions from an answers file or `auto`, one readable line per event on stdout."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rollback_tui.engine.decisions import AnswersDecisions, AutoDecisions, DecisionSource
from rollback_tui.errors import PlanError, RollbackError
from rollback_tui.procedure.exits import EXIT_FOR_SIGNAL, EXIT_FOR_STATE, EXIT_SIGINT, EXIT_USAGE
from rollback_tui.record.events import Event
from rollback_tui.termsafe import one_line

if TYPE_CHECKING:
    from rollback_tui.engine.session import Session
    from rollback_tui.frontend.options import SessionOptions


def make_decisions(answers: str, operator: str) -> DecisionSource:
    """`auto`, or an answers file (PlanError with file:line:col when it is invalid)."""
    if answers.strip().lower() == "auto":
        return AutoDecisions(operator)
    return AnswersDecisions.from_file(Path(answers), operator)


# ---------------------------------------------------------------- one line per event


def _text(event: Any) -> list[str]:
    """What an event says, without its time (several lines only for output batches)."""
    kind = event.type
    if kind == "action_output":
        where = f"{event.step}/{event.action}" + (f" [{event.host}]" if event.host else "")
        mark = {"stdout": "|", "stderr": "!", "info": "·"}.get(event.stream, "|")
        return [f"{where} {mark} {line}" for line in event.lines] or [f"{where} {mark}"]
    if kind == "session_started":
        return [f"session started: plan {event.plan_name!r} ({event.plan_path}, sha256 {event.plan_sha256[:12]}…) "
                f"by {event.operator} on {event.host}, pid {event.pid}"]
    if kind == "session_resumed":
        return [f"session resumed by {event.operator} on {event.host}, pid {event.pid}, after event {event.last_seq}"]
    if kind == "session_interrupted":
        return [f"session interrupted: {event.reason}"]
    if kind == "session_finished":
        scopes = ", ".join(f"{scope} {outcome}" for scope, outcome in event.scopes.items())
        return [f"session finished: {event.exit_state.upper()}: {event.message}", f"scopes: {scopes}"]
    if kind == "session_reopened":
        return [f"session reopened by {event.reopened_by} after it ended {event.previous_exit_state}: {event.reason}; "
                f"continuing after event {event.continue_after_seq}"]
    if kind == "input_checked":
        state = "ok" if event.ok else "to confirm" if event.needs_confirmation else "MISSING"
        extra = f" (remediation: {event.remediation})" if not event.ok and event.remediation else ""
        return [f"input {event.input_id} [{event.category}]: {state}: {event.detail}{extra}"]
    if kind == "plan_reviewed":
        return [f"plan review: {'approved' if event.approved else 'REJECTED'} by {event.actor}"]
    if kind == "approval_given":
        also = f" (same person as the {event.same_person_as} approver)" if event.same_person_as else ""
        return [f"approval: {event.role_title} ({event.role}) approves {event.gate}: {event.name}{also}"]
    if kind == "step_started":
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        return [f"step {event.step}: started{again}"]
    if kind == "step_finished":
        return [f"step {event.step}: {event.status.replace('_', ' ')}"]
    if kind == "action_started":
        hosts = f" on {', '.join(event.hosts)}" if event.hosts else ""
        again = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        wave = f" wave {event.wave}" if getattr(event, "wave", 0) else ""
        return [f"{event.step}/{event.action}:{wave} started{again}{hosts}: {event.description}"]
    if kind == "action_finished":
        code = f", exit {event.exit_code}" if event.exit_code is not None else ""
        error = f": {event.error}" if event.error else ""
        lines = [f"{event.step}/{event.action}: {event.status.upper()} ({event.duration:.2f}s{code}){error}"]
        lines += [f"{event.step}/{event.action} [{host.host}]: {host.status}" + (f": {host.error}" if host.error else "")
                  for host in event.hosts if host.status != "ok"]
        return lines
    if kind == "host_task":
        wave = f" (wave {event.wave})" if event.wave else ""
        detail = f": {event.detail}" if event.detail else ""
        return [f"{event.step}/{event.action} [{event.host}]{wave}: task {event.task!r} {event.status}{detail}"]
    if kind == "verification":
        owner = f"{event.step}/{event.action}" if event.action else event.step
        return [f"check {owner}: {'PASS' if event.ok else 'FAIL'} {event.check}: expected {event.expected!r}, "
                f"observed {event.observed!r}"]
    if kind == "decision_requested":
        about = event.step or event.subject
        again = " [asked again: the session was reopened]" if event.reopened else ""
        return [f"? [{event.kind}]{again} {about + ': ' if about else ''}{event.question} ({' / '.join(event.options)})"]
    if kind == "decision_made":
        about = "/".join(part for part in (event.step, event.action) if part) or event.subject
        reason = f": {event.reason}" if event.reason else ""
        return [f"> [{event.kind}] {about + ' ' if about else ''}{event.choice} by {event.by}{reason}"]
    if kind == "health_changed":
        return [f"health {event.probe}: {event.old} -> {event.new}" + (f" ({event.reason})" if event.reason else "")]
    if kind == "health_alert":
        return [f"ALERT health {event.probe}: {event.reason}"]
    if kind == "health_sample":
        return []  # the samples feed the cockpit's sparklines; changes and alerts are what a log reader needs
    if kind == "window_warning":
        return [f"rollback window: {event.percent}% used ({event.elapsed:.0f}s of {event.window:.0f}s)"]
    if kind == "signal":
        return [f"signal: {event.name}"]
    if kind == "waves_planned":
        sizes = ", ".join(str(len(wave)) for wave in event.waves[:10]) + (", ..." if len(event.waves) > 10 else "")
        return [f"{event.step}/{event.action}: {len(event.waves)} wave(s) of {sizes} host(s); failure budget "
                f"{event.failure_budget}"]
    if kind == "host_finished":
        return []  # the adapter's own line says it; this event is the journal's record for a resume mid-wave
    if kind == "hosts_excluded":
        return [f"{event.step}/{event.action} wave {event.wave}: excluded by {event.by}: {', '.join(event.hosts)}: "
                f"{event.reason}"]
    if kind == "wave_paused":
        return [f"{event.step}/{event.action}: wave {event.wave} done, pausing {event.seconds:g}s"]
    return [kind]


def format_event(event: Event) -> list[str]:
    """Readable lines for one event, each starting with the event's UTC time; each one terminal-safe line (a
    host's CR or LF cannot forge or overwrite a line; termsafe.py)."""
    stamp = event.ts.strftime("%H:%M:%S")
    return [f"{stamp} {one_line(line)}" for line in _text(event)]


def printer(stream: TextIO | None = None) -> Callable[[Event], None]:
    def show(event: Event) -> None:
        target = stream or sys.stdout
        lines = format_event(event)
        if lines:
            target.write("\n".join(lines) + "\n")
            target.flush()

    return show


# ---------------------------------------------------------------- running


async def drive(session: Session, out: TextIO | None = None) -> int:
    """Run a session with SIGINT/SIGTERM cancelling it; print the ending and return the exit code."""
    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    installed = []
    for signum, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        try:
            loop.add_signal_handler(signum, session.interrupt, name)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread: the caller handles signals
            pass
    try:
        result = await session.run()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    if result.exit_state is None:
        print(f"interrupted by {result.interrupted}: the journal is closed and resumable", file=out)
        print(f"resume: rollback-tui resume {result.journal_path} --headless --answers FILE|auto", file=out)
        print(f"journal: {result.journal_path}", file=out, flush=True)
        return EXIT_FOR_SIGNAL.get(result.interrupted, EXIT_SIGINT)
    print(f"exit state: {result.exit_state}" + (f": {result.message}" if result.message else ""), file=out)
    report = result.report
    if report is not None:
        if getattr(report, "signed", False):
            print(f"signed by: {getattr(report, 'signer', '')}", file=out)
        elif result.report_error:
            print(f"report is unsigned: {result.report_error}", file=out)
        if getattr(report, "sig_path", None):
            print(f"signature: {report.sig_path}", file=out)
        print(f"report: {report.path}", file=out)
    else:
        print(f"report not written: {result.report_error}", file=sys.stderr)
    print(f"journal: {result.journal_path}", file=out, flush=True)
    return EXIT_FOR_STATE[result.exit_state]


def _fail(exc: RollbackError) -> int:
    print(f"rollback-tui: {exc}", file=sys.stderr)
    return EXIT_USAGE


def run_plan_headless(plan_path: Path, *, answers: str, operator: str, journal: Path | None = None,
                      report: Path | None = None, sign_key: Path | None = None, no_sign: bool = False,
                      variables: Mapping[str, str] | None = None) -> int:
    """Run a plan with no cockpit; returns the exit code of DESIGN.md (the demo reuses this)."""
    from rollback_tui.engine.session import Session
    from rollback_tui.plan.loader import load_plan

    try:
        loaded = load_plan(Path(plan_path), dict(variables or {}))
        decisions = make_decisions(answers, operator)
        session = Session.start(loaded, decisions=decisions, operator=operator, journal_path=journal,
                                report_path=report, sign_key=sign_key, no_sign=no_sign, listeners=[printer()])
    except PlanError as exc:
        return _fail(exc)
    except RollbackError as exc:
        return _fail(exc)
    return asyncio.run(drive(session))


def run(opts: SessionOptions) -> int:
    """`rollback-tui run PLAN --headless --answers FILE|auto`."""
    assert opts.plan is not None
    return run_plan_headless(opts.plan, answers=opts.answers or "auto", operator=opts.operator, journal=opts.journal,
                             report=opts.report, sign_key=opts.sign_key, no_sign=opts.no_sign,
                             variables=opts.variables)


def resume(opts: SessionOptions) -> int:
    """`rollback-tui resume JOURNAL --headless --answers FILE|auto`."""
    from rollback_tui.engine.session import Session

    if opts.journal is None:
        print("rollback-tui: resume needs the journal's path", file=sys.stderr)
        return EXIT_USAGE
    try:
        decisions = make_decisions(opts.answers or "auto", opts.operator)
        session = Session.resume(opts.journal, decisions=decisions, operator=opts.operator, report_path=opts.report,
                                 sign_key=opts.sign_key, no_sign=opts.no_sign, listeners=[printer()])
    except RollbackError as exc:
        return _fail(exc)
    for note in session.recovered_notes:
        print(f"journal recovery: dropped {note}", file=sys.stderr)
    return asyncio.run(drive(session))
