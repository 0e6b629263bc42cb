"""A session: plan, secrets, journal, runner, health monitor, window clock and report, from start (or resume) to end."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from rollback_tui import __version__
from rollback_tui.engine.clock import WindowClock
from rollback_tui.engine.decisions import DecisionSource
from rollback_tui.record.events import (
    Event,
    EventBase,
    ExitState,
    SessionFinished,
    SessionInterrupted,
    SessionReopened,
    SessionResumed,
    SessionStarted,
    utcnow,
)
from rollback_tui.record.journal import Journal, Writer
from rollback_tui.record.lightevents import output_ref
from rollback_tui.engine.replay import ReplayMismatch, reopen_point
from rollback_tui.engine.runner import Outcome, Runner
from rollback_tui.errors import JournalError, RollbackError
from rollback_tui.plan.promql import threshold_outline
from rollback_tui.plan.types import STEP_ORDER, STEP_QUESTIONS, STEP_TITLES
from rollback_tui.procedure.fold import SessionState
from rollback_tui.secrets import SecretStore

log = logging.getLogger(__name__)
Listener = Callable[[Event], None]


@dataclass
class SessionResult:
    """How a session ended. exit_state is None when it was interrupted (then `interrupted` says why)."""

    exit_state: ExitState | None
    report: Any | None
    """rollback_tui.report.writer.ReportOutcome, or None when no report could be written (see report_error)."""
    journal_path: Path
    message: str = ""
    interrupted: str = ""
    report_error: str = ""


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60] or "rollback"


def default_journal_path(plan_name: str, now: datetime | None = None, directory: Path | None = None) -> Path:
    """`./rollback-<plan-name-slug>-<UTC yyyymmddTHHMMSS>.journal.jsonl`."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%S")
    return (directory or Path.cwd()) / f"rollback-{slug(plan_name)}-{stamp}.journal.jsonl"


def report_path_for(journal_path: Path) -> Path:
    """The report beside its journal, with the same stem: `x.journal.jsonl` -> `x.md`."""
    name = journal_path.name
    for suffix in (".journal.jsonl", ".jsonl", ".journal"):
        if name.endswith(suffix):
            return journal_path.with_name(name[: -len(suffix)] + ".md")
    return journal_path.with_name(name + ".md")


def session_dir_for(journal_path: Path) -> Path:
    """Where a session's artefacts go (database backups, row counts, flag backups): `x.journal.jsonl` ->
    `x.files/` beside the journal, never the current directory itself."""
    return report_path_for(Path(journal_path)).with_suffix(".files")


def _load_secrets(loaded: Any) -> SecretStore:
    secrets = SecretStore(loaded.plan.secrets, base_dir=Path(loaded.path).parent)
    problems = secrets.load_all()
    if problems:
        raise RollbackError("secrets the plan declares are not available:\n  " + "\n  ".join(problems),
                            hint="provide them (environment or file) before starting the session")
    return secrets


def _made(folder: Path) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _bind(decisions: DecisionSource, plan: Any) -> None:
    bind = getattr(decisions, "bind", None)
    if callable(bind):
        bind(plan)


class Session:
    """Ties a plan to its journal and runner. Build it with `start` or `resume`, then `await run()`."""

    def __init__(self, *, loaded: Any, secrets: SecretStore, journal: Journal, decisions: DecisionSource,
                 operator: str, report_path: Path, sign_key: Path | None, no_sign: bool,
                 listeners: Sequence[Listener], workdir: Path, history: Sequence[Event] = (),
                 passphrase: Callable[[], str] | None = None, sample_every: float = 10.0,
                 reopen_reason: str = "") -> None:
        self.loaded = loaded
        self.plan = loaded.plan
        self.secrets = secrets
        self.journal = journal
        self.journal_path = journal.path
        self.decisions = decisions
        self.operator = operator
        self.report_path = report_path
        self.sign_key = sign_key
        self.no_sign = no_sign
        self.listeners = list(listeners)
        self.workdir = workdir
        self.passphrase = passphrase
        self.sample_every = sample_every
        self.reopen_reason = reopen_reason
        self.events: list[Event] = list(history)
        self.state = SessionState()
        for event in history:
            self._apply(event)
        self.recovered_notes: list[str] = list(journal.recovered.dropped)
        self.runner: Runner | None = None
        self.monitor: Any = None
        self._history = list(history)
        self._task: asyncio.Task[Any] | None = None
        self._background: list[asyncio.Task[Any]] = []
        self._interrupt_reason = ""
        self._fatal: JournalError | None = None
        self._finishing = False
        self._heads: dict[Any, Any] = {}
        """The fields output batches repeat, shared between their light forms (record/lightevents.py)."""
        self._described: dict[tuple[str, str], Any] | None = None
        """The plan's action descriptions of this process (described once: the outline and the plan review)."""

    # ------------------------------------------------------------ construction

    @classmethod
    def start(cls, loaded: Any, *, decisions: DecisionSource, operator: str, journal_path: Path | None = None,
              report_path: Path | None = None, sign_key: Path | None = None, no_sign: bool = False,
              listeners: Sequence[Listener] = (), workdir: Path | None = None,
              passphrase: Callable[[], str] | None = None, journal_writer: Writer | None = None,
              sample_every: float = 10.0) -> Session:
        """A new session on a loaded plan: checks secrets and the decision source, then creates the journal."""
        secrets = _load_secrets(loaded)
        _bind(decisions, loaded.plan)
        journal_path = Path(journal_path) if journal_path else default_journal_path(loaded.plan.metadata.name)
        journal = Journal.create(journal_path, write=journal_writer)
        return cls(loaded=loaded, secrets=secrets, journal=journal, decisions=decisions, operator=operator,
                   report_path=Path(report_path) if report_path else report_path_for(journal_path),
                   sign_key=sign_key, no_sign=no_sign, listeners=listeners,
                   workdir=(workdir or _made(session_dir_for(journal_path))).resolve(), passphrase=passphrase,
                   sample_every=sample_every)

    @classmethod
    def resume(cls, journal_path: Path, *, decisions: DecisionSource, operator: str, loaded: Any = None,
               report_path: Path | None = None, sign_key: Path | None = None, no_sign: bool = False,
               listeners: Sequence[Listener] = (), workdir: Path | None = None,
               passphrase: Callable[[], str] | None = None, journal_writer: Writer | None = None,
               sample_every: float = 10.0, plan_path: Path | None = None, reopen_reason: str = "") -> Session:
        """Continue the session of a journal. The plan is reloaded from the path the journal names and must be
        unchanged (same sha256), unless it is given explicitly (`loaded`, or `plan_path` to load). A session that
        finished blocked is reopened (`reopen_reason` is recorded); any other finished session stays final."""
        journal_path = Path(journal_path)
        journal = Journal.open_existing(journal_path, write=journal_writer, require_start=True)
        try:
            events = journal.recovered.events
            if not events or not isinstance(events[0], SessionStarted):
                raise JournalError(f"journal {journal_path} does not start with a session_started event: "
                                   "nothing to resume", hint="start a new session with `rollback-tui run PLAN`")
            started = events[0]
            outline = started.outline
            if loaded is None and plan_path is not None:
                from rollback_tui.plan.loader import load_plan

                loaded = load_plan(Path(plan_path), outline.get("variables") or None)
            if loaded is None:
                from rollback_tui.plan.loader import load_plan

                loaded = load_plan(Path(started.plan_path), outline.get("variables") or None)
                if loaded.sha256 != started.plan_sha256:
                    raise JournalError(
                        f"the plan {started.plan_path} changed since the session started "
                        f"(sha256 {started.plan_sha256[:12]}… is now {loaded.sha256[:12]}…); resuming it could "
                        "repeat or skip work", hint="restore the plan file as it was, or resume from the cockpit "
                                                    "giving the changed plan explicitly")
            secrets = _load_secrets(loaded)
            _bind(decisions, loaded.plan)
            report = Path(report_path or outline.get("report_path") or report_path_for(journal_path))
            where = Path(workdir or outline.get("workdir") or journal_path.parent)
        except BaseException:
            journal.close()
            raise
        return cls(loaded=loaded, secrets=secrets, journal=journal, decisions=decisions, operator=operator,
                   report_path=report, sign_key=sign_key, no_sign=no_sign, listeners=listeners, workdir=where,
                   history=events, passphrase=passphrase, sample_every=sample_every, reopen_reason=reopen_reason)

    # ------------------------------------------------------------ recording

    def _apply(self, event: Event) -> None:
        """Fold an event into the state; an illegal step move raises IllegalTransition (a bug, never hidden)."""
        self.state.apply(event)

    def record(self, events: Sequence[EventBase]) -> list[Event]:
        """Mask secrets in events (the one redaction stage: the journal, the state, the listeners, the report and
        stdout all see only what comes out of it), journal them (one write, one fsync), fold them into the state,
        then tell the listeners."""
        mask = self.secrets.redactor.model
        try:
            numbered = self.journal.append_many([mask(event) for event in events])
        except JournalError as exc:
            self._fatal = exc
            raise
        source = self.journal.source() if any(event.type == "action_output" for event in numbered) else None
        for event, (offset, length) in zip(numbered, self.journal.last_spans):
            # output batches stay on disk: kept light (their lines read back from the journal when reported)
            kept = output_ref(event, offset, length, source, self._heads) if source and \
                event.type == "action_output" else event
            self.events.append(kept)
            self._apply(event)
            for listener in self.listeners:
                try:
                    listener(event)
                except Exception:  # a listener is a view: it cannot stop the session
                    log.exception("listener %r failed on event %s", listener, event.seq)
        return numbered

    def _record_background(self, event: EventBase) -> None:
        """For the monitor and the window clock: a journal failure there stops the session (as blocked)."""
        if self._fatal is not None:
            return
        try:
            self.record([event])
        except JournalError:
            if self._task is not None and not self._task.done():
                self._task.cancel()

    # ------------------------------------------------------------ running

    def interrupt(self, reason: str) -> None:
        """Stop the session (SIGINT, SIGTERM, quitting the cockpit): the running action is cancelled, the journal
        records the interruption and stays resumable. A second call while stopping is ignored."""
        if self._interrupt_reason or self._finishing:
            return  # once the procedure has ended, the report is written whatever happens
        self._interrupt_reason = reason
        if self.runner is not None:
            self.runner.interrupt_reason = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def run(self) -> SessionResult:
        """Run (or resume) to the end and write the report. Interrupted via `interrupt()`: returns a result with
        exit_state None. Cancelled from outside: records the interruption and re-raises CancelledError."""
        self._task = asyncio.current_task()
        if self.state.finished is not None and self.state.finished.exit_state != "blocked":
            return await self._already_finished(self.state.finished)
        try:
            outcome = await self._drive()
            exit_state, message = outcome.exit_state, outcome.message
        except asyncio.CancelledError:
            if self._fatal is None:
                await self._stop_background()
                self._record_quietly(SessionInterrupted(reason=self._interrupt_reason or "cancelled"))
                self.journal.close()
                if self._interrupt_reason:
                    if self._task is not None:
                        self._task.uncancel()  # we asked for this cancellation and handled it
                    return SessionResult(None, None, self.journal_path, interrupted=self._interrupt_reason,
                                         message=f"interrupted ({self._interrupt_reason}); resume with "
                                                 f"`rollback-tui resume {self.journal_path}`")
                raise
            if self._task is not None:
                self._task.uncancel()
            exit_state, message = "blocked", str(self._fatal)
        except ReplayMismatch:
            await self._stop_background()
            self.journal.close()
            raise
        except JournalError as exc:
            exit_state, message = "blocked", str(exc)
        except BaseException as exc:
            await self._stop_background()
            self._record_quietly(SessionInterrupted(reason=f"internal error: {type(exc).__name__}: {exc}"))
            self.journal.close()
            raise
        self._finishing = True
        message = self.secrets.redactor(message)  # printed as it is by headless runs and the cockpit
        await self._stop_background()
        report, report_error = await self._write_report(exit_state, message)
        self.journal.close()
        return SessionResult(exit_state, report, self.journal_path, message=message, report_error=report_error)

    def _record_quietly(self, event: EventBase) -> None:
        if self._fatal is None and not self.journal.closed:
            try:
                self.record([event])
            except JournalError:
                pass

    async def _drive(self) -> Outcome:
        summaries: dict[tuple[str, str], str]
        if self.state.finished is not None:
            self._reopen(self.state.finished)
        if self.state.started is None:
            summaries = await self._summaries()
            self.record([SessionStarted(
                operator=self.operator, plan_path=str(Path(self.loaded.path).resolve()),
                plan_sha256=self.loaded.sha256, plan_name=self.plan.metadata.name, host=socket.gethostname(),
                pid=os.getpid(), tool_version=__version__, outline=self._outline(summaries))])
        else:
            self.record([SessionResumed(operator=self.operator, host=socket.gethostname(), pid=os.getpid(),
                                        last_seq=self.journal.last_seq)])
            summaries = {(step["id"], action["id"]): action.get("summary", "")
                         for step in self.state.started.outline.get("steps", [])
                         for action in step.get("actions", [])}
        started = self.state.started
        assert started is not None
        clock = WindowClock(started.ts, self.plan.inputs.constraints.window)
        if self.plan.health:
            from rollback_tui.health.monitor import Monitor

            self.monitor = Monitor(self.plan, self.secrets, self._record_background, sample_every=self.sample_every)
            await self.monitor.start()
        self._background.append(asyncio.create_task(clock.warn(self._record_background, already=self.state.warned)))
        self.runner = Runner(self.plan, decisions=self.decisions, operator=self.operator, secrets=self.secrets,
                             record=self.record, clock=clock, history=self._history, workdir=self.workdir,
                             monitor=self.monitor, summaries=summaries, before_finish=self._stop_background,
                             render_plan=self._render_plan)
        if self._interrupt_reason:
            self.runner.interrupt_reason = self._interrupt_reason
        return await self.runner.run()

    def _reopen(self, finished: SessionFinished) -> None:
        """Reopen a blocked session: journal where it continues from; the replay then asks the halting question."""
        cut = reopen_point(self.events)
        if cut is None:
            raise JournalError(f"journal {self.journal_path}: cannot find the decision or check that blocked the "
                               "session, so it cannot be reopened", hint="start a new session with `rollback-tui run`")
        reason = self.reopen_reason or "resumed after the blocking issue was addressed"
        self._history.extend(self.record([SessionReopened(
            reason=reason, previous_exit_state=finished.exit_state, reopened_by=self.operator,
            continue_after_seq=cut, actor=self.operator)]))

    async def _render_plan(self, plan: Any, secrets: SecretStore, workdir: Path) -> str:
        """The plan review's document, from the descriptions the outline was made of (an adapter's describe can
        be slow: an alembic child, a network read), described now only if they were not."""
        from rollback_tui.review.render import render_plan

        described = self._described if plan is self.plan and workdir == self.workdir else None
        return await render_plan(plan, secrets, workdir, descriptions=described)

    async def _summaries(self) -> dict[tuple[str, str], str]:
        try:
            from rollback_tui.review.render import describe_plan

            described = await describe_plan(self.plan, self.secrets, self.workdir)
            self._described = described
            return {key: description.summary for key, description in described.items()}
        except Exception as exc:  # the outline is for viewers; a failure here must not stop the rollback
            log.warning("cannot describe the plan's actions: %s", exc)
            return {}

    def _outline(self, summaries: dict[tuple[str, str], str]) -> dict[str, Any]:
        plan = self.plan
        steps = []
        for step_id in STEP_ORDER:
            step = plan.step(step_id)
            actions = []
            for action in step.actions if step else []:
                group = plan.host_groups.get(getattr(action, "group", "") or "")
                actions.append({"id": action.id, "kind": action.kind, "manual": action.manual,
                                "summary": summaries.get((step_id.value, action.id), action.description),
                                "hosts": list(group.hosts) if group else []})
            steps.append({"id": step_id.value, "applicable": step is not None,
                          "title": step.display_title if step else STEP_TITLES[step_id],
                          "question": step.display_question if step else STEP_QUESTIONS[step_id],
                          "notes": step.notes if step else "", "actions": actions,
                          "checks": len(step.verify) if step else 0})
        probes = [{"id": probe.id, "kind": probe.kind, "category": probe.category, "trigger": probe.trigger,
                   "description": probe.description, **threshold_outline(probe)} for probe in plan.health]
        return {
            "metadata": plan.metadata.model_dump(mode="json"),
            "window": plan.inputs.constraints.window,
            "roles": [role.model_dump(mode="json") for role in plan.approvals.roles],
            "allow_same_person": plan.approvals.allow_same_person,
            "rollback": plan.rollback.model_dump(mode="json"),
            "steps": steps,
            "probes": probes,
            "variables": dict(getattr(self.loaded, "variables", {}) or {}),
            "workdir": str(self.workdir),
            "journal_path": str(Path(self.journal_path).resolve()),
            "report_path": str(Path(self.report_path).resolve()),
        }

    async def _stop_background(self) -> None:
        tasks, self._background = self._background, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        if self.monitor is not None:
            monitor, self.monitor = self.monitor, None
            try:
                await monitor.stop()
            except Exception as exc:  # stopping probes is best effort at the end
                log.warning("health monitor did not stop cleanly: %s", exc)

    # ------------------------------------------------------------ the end

    async def _already_finished(self, finished: SessionFinished) -> SessionResult:
        """Resume of a finished session: nothing to run; the report is written again if it is missing, or if
        its `.sig` is (a crash between the two writes: the report is regenerated from the journal and signed)."""
        from rollback_tui.report.writer import signature_missing

        report, error = None, ""
        if not self.report_path.exists() or (not self.no_sign and signature_missing(self.report_path)):
            report, error = await self._write_report(finished.exit_state, finished.message)
        self.journal.close()
        return SessionResult(finished.exit_state, report, self.journal_path, report_error=error,
                             message=f"the session already finished ({finished.exit_state}): {finished.message}; "
                                     "that outcome is final (only a blocked session can be reopened)")

    async def _write_report(self, exit_state: ExitState, message: str) -> tuple[Any | None, str]:
        """Write the report whatever the outcome; a report problem never loses the journal."""
        events = list(self.events)
        if self.state.finished is None:
            # the journal could not take the end (disk full): the report still says how it ended
            events.append(SessionFinished(seq=(events[-1].seq + 1) if events else 1, exit_state=exit_state,
                                          scopes=self.runner._scopes() if self.runner else {}, message=message))
        try:
            from rollback_tui.report.writer import write_report
        except ImportError as exc:
            return None, f"the report writer is not available ({exc}); the journal holds everything"
        try:
            outcome = await asyncio.to_thread(
                write_report, events, self.report_path, sign_key=self.sign_key, no_sign=self.no_sign,
                operator=self.operator, passphrase=self.passphrase, journal_path=self.journal_path)
        except RollbackError as exc:
            return None, str(exc)
        except Exception as exc:  # never lose the session over its report: the journal is the record
            log.exception("report writer failed")
            return None, f"{type(exc).__name__}: {exc}"
        return outcome, getattr(outcome, "error", "") or ""
