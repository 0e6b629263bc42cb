"""The cockpit App: folds events into a SessionView, routes screens, turns keys into the engine's decisions."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.message import Message
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from rollback_tui.errors import PlanError
from rollback_tui.procedure.exits import EXIT_SIGINT as EXIT_INTERRUPTED
from rollback_tui.procedure.exits import EXIT_USAGE
from rollback_tui.termsafe import one_line, safe, scrub
from rollback_tui.ui.decision import CHOICES, DESTRUCTIVE, FOOTER_WORDS, DecisionPane, needs_reason
from rollback_tui.ui.inbox import HiddenOutput, Inbox
from rollback_tui.ui.keybar import KeyBar
from rollback_tui.ui.logpane import LogPane
from rollback_tui.ui.panes import Checklist, HeaderBar, HealthPane
from rollback_tui.ui.startup import hold_gc, release_gc
from rollback_tui.ui.themes import (BUILTIN_NAMES, DEFAULT_THEME, VARIABLE_DEFAULTS, default_theme, load_themes,
                                    user_themes_present)
from rollback_tui.ui.viewmodel import SessionView

#: The phase screens and prompts are imported when first shown (not before the first frame); until then no
#: screen can be one of them.
SCREENS_MODULE = "rollback_tui.ui.screens"
MODALS_MODULE = "rollback_tui.ui.modals"


def _is_instance(obj: object, module: str, *names: str) -> bool:
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, tuple(getattr(loaded, name) for name in names))


def is_phase_screen(screen: object, name: str = "PhaseScreen") -> bool:
    return _is_instance(screen, SCREENS_MODULE, name)


def is_prompt(screen: object) -> bool:
    return _is_instance(screen, MODALS_MODULE, "TextPrompt", "ConfirmPrompt", "DetailScreen")


def phase_screen(kind: str) -> Screen[Any]:
    from rollback_tui.ui import screens

    classes: dict[str, type[Screen[Any]]] = {"input": screens.InputsScreen, "plan_review": screens.PlanReviewScreen,
                                             "approval": screens.ApprovalsScreen, "summary": screens.SummaryScreen}
    return classes[kind]()
COMPACT_WIDTH = 120
#: Room for a step's state word in the step list: "announcing the decision", the longest one a step shows while
#: it runs or asks (a constant, so the list does not change width when a state word is added or shown).
STEP_WORD_ROOM = 23


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _older_output_counted(events: Iterable[Any], keep: int) -> list[Any]:
    """Light output batches (record/lightevents.py) older than the last `keep` lines the log pane can hold are
    only counted (HiddenOutput): a replay or resume of a long journal never reads lines nobody can scroll to."""
    events = list(events)
    lines, cut = 0, 0
    for index in range(len(events) - 1, -1, -1):
        event = events[index]
        if getattr(event, "full", None) is not None:
            lines += event.line_count
            if lines > keep:
                cut = index + 1
                break
    if not cut:
        return events
    out: list[Any] = []
    for event in events[:cut]:
        if getattr(event, "full", None) is None:
            out.append(event)
            continue
        last = out[-1] if out else None
        if not isinstance(last, HiddenOutput) or last.step != event.step:
            last = HiddenOutput(event.step)
            out.append(last)
        last.events += 1
        last.lines += event.line_count
        last.last_seq = max(last.last_seq, event.seq)
    return out + events[cut:]


class EventsArrived(Message):
    """Wakes the app to drain its inbox; queued copies are redundant (the inbox holds the events)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, EventsArrived)


class MainScreen(Screen[None]):
    """Header; checklist over health on the left; decision over log on the right; footer."""

    left_width: int | None = None

    def compose(self) -> ComposeResult:
        app: CockpitApp = self.app  # type: ignore[assignment]
        # Compact or not from the terminal's size now, so the first frame is drawn once (not again on resize).
        compact = app.size.width < COMPACT_WIDTH
        self.set_class(compact, "-compact")
        panes = (Checklist(id="checklist"), HealthPane(id="health"), DecisionPane(id="decision"),
                 LogPane(id="log", max_records=app.log_records, max_lines=app.log_lines))
        for pane in panes:
            pane.compact = compact
        checklist, health, decision, log = panes
        yield HeaderBar(app.clock, id="header")
        with Horizontal(id="body"):
            with Vertical(id="left"):
                yield checklist
                yield health
            with Vertical(id="right"):
                yield decision
                yield log
        yield KeyBar(compact=compact)

    def on_mount(self) -> None:
        self.query_one("#checklist").border_title = "Steps"
        self.query_one("#checklist").border_subtitle = "tab · ↑↓ · enter: hosts"
        self.query_one("#health").border_title = "Health"
        self.query_one("#decision").border_title = "Decision"
        self.query_one("#log").border_title = "Log"
        app: CockpitApp = self.app  # type: ignore[assignment]
        app.main_ready()

    def fit_left(self, view: SessionView) -> None:
        """Widen the step list so no step name is cut when the terminal has the room (up to 40 % of it)."""
        if self.has_class("-compact") or not view.steps:
            if self.left_width is not None:
                self.left_width = self.query_one("#left").styles.width = None  # the stylesheet's width
            return
        longest = max(len(step.title) for step in view.steps) + STEP_WORD_ROOM + 6  # "›1 ? " and two spaces
        gutter = 8 if self.app.has_class("-screen-share") else 4  # border and padding
        base = 48 if self.app.has_class("-screen-share") else 42
        width = max(base, min(longest + gutter, int(self.size.width * 0.4)))
        if self.left_width != width:  # set only when it changes: a style change lays the screen out again
            self.left_width = width
            self.query_one("#left").styles.width = width

    def on_resize(self) -> None:
        compact = self.size.width < COMPACT_WIDTH
        self.set_class(compact, "-compact")
        log = self.query_one(LogPane)
        app: CockpitApp = self.app  # type: ignore[assignment]
        if log.compact == compact:
            app.redraw_soon()  # the decision pane wraps its evidence to its width
            return
        for pane in (self.query_one(Checklist), self.query_one(HealthPane), log, self.query_one(DecisionPane)):
            pane.compact = compact
        app.redraw_soon()
        self.query_one(KeyBar).compact = compact
        if log.records:
            log.rebuild()


def _decide_bindings() -> list[Binding]:
    return [Binding(key, f"decide('{choice}')", FOOTER_WORDS.get(choice, words), id=f"decide.{choice}")
            for choice, (key, words) in CHOICES.items()]


class CockpitApp(App[int]):
    """One cockpit for live runs, resume, replay and follow; what feeds it is a driver (ui/drivers.py)."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # absolute: subclasses elsewhere (tests, bench) find it
    TITLE = "rollback-tui"
    BINDINGS = [
        *_decide_bindings(),
        Binding("p", "replay_pause", "Pause/play", id="replay.pause"),
        Binding("full_stop,right", "replay_step(1)", "Event +1", key_display=".", id="replay.forward"),
        Binding("comma,left", "replay_step(-1)", "Event -1", key_display=",", id="replay.back"),
        Binding("plus", "replay_speed(2.0)", "Faster", key_display="+", id="replay.faster"),
        Binding("minus", "replay_speed(0.5)", "Slower", key_display="-", id="replay.slower"),
        *[Binding(str(n), f"jump_step({n})", f"Step {n}", show=False, id=f"step.jump{n}") for n in range(1, 8)],
        Binding("i", "inspect", "Evidence", show=False, id="decision.inspect"),
        Binding("shift+down", "scroll_evidence(3)", "Evidence down", show=False, id="decision.evidence_down"),
        Binding("shift+up", "scroll_evidence(-3)", "Evidence up", show=False, id="decision.evidence_up"),
        *LogPane.KEYS,
        Binding("ctrl+q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, driver: Any = None, *, theme: str | None = None, clock: Callable[[], datetime] | None = None,
                 operator: str = "", state_hook: Callable[[dict[str, Any]], None] | None = None,
                 log_records: int = 100_000, log_lines: int = 5_000, mode_note: str = "",
                 warning: str = "", loading: str = "") -> None:
        super().__init__()
        self.driver = driver
        self.read_only = bool(getattr(driver, "read_only", False))
        self.mode = getattr(driver, "mode", "live")
        self.clock_override = clock
        self.operator = operator
        self.state_hook = state_hook
        self.log_records = log_records
        self.log_lines = log_lines
        self.mode_note = mode_note
        self.warning = warning
        self.loading = loading  # shown in the header until the driver has its session (the plan is loaded)
        self.plan_error: PlanError | None = None
        self.view = SessionView()
        self.inbox = Inbox()
        self.wake_posted = False
        self.redraw_scheduled = False
        self.summary_dismissed = False
        self.phase = ""
        self.report_info: dict[str, Any] = {}
        self.result: Any = None
        self.exit_code: int | None = None
        self._ask: tuple[Any, asyncio.Future[Any]] | None = None
        self._replay_position = ""
        self._main_thread = threading.get_ident()
        requested = theme or DEFAULT_THEME
        self.theme_error = ""
        self.theme_problems: list[str] = []
        self.config_problems: list[str] = []
        # The usual start (default theme, no user theme files) needs no theme file before the first frame:
        # the default is compiled in and the files are read right after the first frame.
        self.themes_pending = requested == DEFAULT_THEME and not user_themes_present()
        if self.themes_pending:
            self.register_theme(default_theme())
        else:
            self.theme_problems = self.load_theme_files()
            if requested not in self.available_themes:
                self.theme_error = f"unknown theme {requested!r}; using {DEFAULT_THEME}"
                requested = DEFAULT_THEME
        self.theme = requested

    def load_theme_files(self) -> list[str]:
        """Register the shipped and the user's theme files; one problem line per file skipped."""
        loaded = load_themes()
        for item in loaded.themes.values():
            self.register_theme(item)
        return loaded.problems

    # ------------------------------------------------------------ set-up

    def run(self, *args: Any, **kwargs: Any) -> int | None:
        """App.run with the garbage collector held until the first frame (see ui/startup.py)."""
        hold_gc()
        try:
            return super().run(*args, **kwargs)
        finally:
            release_gc()

    def refresh_css(self, animate: bool = True) -> None:
        if not hasattr(self, "main_screen"):
            # Setting the theme in __init__ queues this before the first screen exists, so before the stylesheet
            # was ever parsed: its first parse uses these variables anyway; re-parsing now would only parse every
            # source twice before the first frame (~5 ms).
            self.stylesheet.set_variables(self.get_css_variables())
            return
        super().refresh_css(animate)

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(VARIABLE_DEFAULTS)

    def get_default_screen(self) -> Screen[Any]:
        self.main_screen = MainScreen(id="main")
        return self.main_screen

    def clock(self) -> datetime:
        return self.now()

    def now(self) -> datetime:
        if self.clock_override is not None:
            return self.clock_override()
        if self.mode == "replay" and self.view.last_ts is not None:
            return self.view.last_ts
        return utc_now()

    @property
    def mode_line(self) -> str:
        note = f" · {self.mode_note}" if self.mode_note else ""
        if self.mode == "replay":
            line = f"REPLAY (read-only) {self._replay_position}{note}"  # the position first: it fits at 80 columns
        elif self.mode == "follow":
            line = f"FOLLOW (read-only live mirror) {self._replay_position}{note}"
        else:
            line = (f"LIVE · operator {self.operator}" if self.operator else "LIVE") + note
        if self.loading:
            line = f"{line} · {self.loading}"
        if self.warning:
            line = f"⚠ {self.warning} · {line}"
        return line

    @property
    def waiting(self) -> str:
        """What the panes say before the session's first event: the plan (or journal) is still being loaded."""
        if self.loading:
            return "loading journal…" if "journal" in self.loading else "loading plan…"
        return "waiting for the first event" if self.mode in ("replay", "follow") else "starting the session…"

    def on_mount(self) -> None:
        from rollback_tui.ui.keymap import load_keymap

        keymap = load_keymap(lambda: self.binding_ids)
        if keymap.keys:
            self.set_keymap(keymap.keys)
        self.config_problems = [*self.theme_problems, *keymap.problems,
                                *([self.theme_error] if self.theme_error else [])]
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.set_class(self.theme == "screen-share", "-screen-share")
        self.set_interval(1.0, self.redraw)

    @property
    def binding_ids(self) -> set[str]:
        """Every binding id the keymap may remap (the app's, the checklist's and the phase screens')."""
        from rollback_tui.ui.screens import PlanReviewScreen, SummaryScreen

        ids = {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id}
        for widget_class in (Checklist, SummaryScreen, PlanReviewScreen):
            ids |= {b.id for b in widget_class.BINDINGS if isinstance(b, Binding) and b.id}
        return ids

    def main_ready(self) -> None:
        """The main screen is composed: report configuration problems, draw, start feeding events."""
        self.report_config_problems(self.config_problems)
        self.redraw_soon()
        self.call_after_refresh(self.first_frame)

    def report_config_problems(self, problems: list[str]) -> None:
        for problem in problems:
            self.notify(safe(problem), title="configuration problem (skipped)", severity="warning", timeout=15,
                        markup=False)
            self.main_screen.query_one(LogPane).add("", "", "info", [f"configuration problem (skipped): {problem}"])

    def first_frame(self) -> None:
        """The first frame is on screen: only now turn the collector back on, read the theme files and start
        feeding events, so that nothing (a plan being loaded and validated, an engine starting) delays it."""
        release_gc()
        if self.driver is not None:
            self.run_driver()
        if self.themes_pending:
            self.themes_pending = False
            problems = self.load_theme_files()
            self.theme_problems += problems
            self.config_problems += problems
            self.report_config_problems(problems)

    def _theme_changed(self, _theme: Any) -> None:
        self.set_class(self.theme == "screen-share", "-screen-share")
        self.redraw()

    # ------------------------------------------------------------ events in

    def post_event(self, event: Any) -> None:
        """The engine's listener: thread-safe; events are drained in batches by `on_events_arrived`. The inbox is
        bounded: while the cockpit is behind, output batches past its budget are only counted (ui/inbox.py)."""
        self.inbox.append(event)
        if not self.wake_posted:
            self.wake_posted = True
            self.post_message(EventsArrived())

    @on(EventsArrived)
    def drain_inbox(self) -> None:
        self.wake_posted = False
        self.apply_now(self.inbox.drain())

    def apply_now(self, events: Iterable[Any]) -> None:
        """Fold events into the view, feed the log, and schedule one redraw. Every event of every driver passes
        here, so this is where plan, host and journal text is made terminal-safe (`scrub`: one line, control,
        bidi and zero-width characters shown escaped) before any pane sees it."""
        log = self._log_pane()
        view = self.view
        hook = self.state_hook
        panes_changed = False
        if hook is None and log is not None and log.records.maxlen:
            events = _older_output_counted(events, log.records.maxlen)
        for event in events:
            if isinstance(event, HiddenOutput):
                self._hidden_output(view, log, event)
                continue
            full = getattr(event, "full", None)
            if full is not None:  # an output batch read light from a journal (record/lightevents.py): its lines now
                event = full()
            event = scrub(event)
            view.apply(event)
            if log is not None:
                self._log_event(log, event)
            if hook is not None:
                hook(view.snapshot())
            panes_changed = panes_changed or event.type != "action_output"
        self._show_asked()
        if panes_changed:  # output only feeds the log pane (flushed on its own timer): no pane redraw for it
            self.redraw_soon()

    @staticmethod
    def _hidden_output(view: SessionView, log: LogPane | None, hidden: HiddenOutput) -> None:
        """Batches the inbox only counted: the view counts them, the log says how many lines it did not show."""
        view.events += hidden.events
        view.output_lines += hidden.lines
        view.last_seq = max(view.last_seq, hidden.last_seq)
        if log is not None:
            log.add(hidden.step, "", "info", [f"… {hidden.lines} lines of output not shown here (the journal has "
                                              "every line)"])

    def rebuild(self, events: Sequence[Any]) -> None:
        """Start the view over from these events (replay stepping back)."""
        self.view = SessionView()
        log = self._log_pane()
        if log is not None:
            log.records.clear()
            log.pending.clear()
        self.summary_dismissed = False
        hook, self.state_hook = self.state_hook, None
        try:
            self.apply_now(events)
        finally:
            self.state_hook = hook
        if log is not None:
            log.rebuild()

    def _log_pane(self) -> LogPane | None:
        try:
            return self.main_screen.query_one(LogPane)  # type: ignore[no-any-return]
        except Exception:
            return None

    @staticmethod
    def _log_event(log: LogPane, event: Any) -> None:
        kind = event.type
        if kind == "action_output":
            log.add(event.step, event.host, event.stream, event.lines)
        elif kind == "action_started":
            hosts = f" on {len(event.hosts)} host(s)" if event.hosts else ""
            log.add(event.step, "", "info", [f"▶ {event.action} ({event.kind}) attempt {event.attempt}{hosts}"])
        elif kind == "action_finished":
            extra = f": {event.error}" if event.error else ""
            log.add(event.step, "", "info", [f"■ {event.action} {event.status} in {event.duration:.1f}s{extra}"])
            for host in event.hosts:
                if host.status != "ok":
                    log.add(event.step, host.host, "err", [f"{host.status}: {host.error or host.exit_code}"])
        elif kind == "verification":
            word = "pass" if event.ok else "FAIL"
            log.add(event.step, "", "info", [f"{'✔' if event.ok else '✖'} {word} {event.check}: {event.observed}"])
        elif kind == "decision_made":
            reason = f": {event.reason}" if event.reason else ""
            log.add(event.step, "", "info", [f"decision {event.choice} by {event.by}{reason}"])
        elif kind in ("health_alert", "window_warning", "session_interrupted"):
            text = getattr(event, "reason", "") or f"{getattr(event, 'percent', '')} % of the rollback window used"
            log.add("", "", "info", [f"⚠ {text}"])

    # ------------------------------------------------------------ drawing

    def redraw_soon(self) -> None:
        if not self.redraw_scheduled:
            self.redraw_scheduled = True
            self.call_later(self.redraw)

    def redraw(self) -> None:
        self.redraw_scheduled = False
        self._route_screens()
        now = self.now()
        screen = self.screen
        if is_phase_screen(screen) and screen.is_mounted:
            screen.draw(self.view, now, self.read_only)
        main = self.main_screen
        if not main.is_mounted:
            return
        header = main.query_one(HeaderBar)
        header.mode_line = self.mode_line
        header.waiting = self.waiting
        header.draw(self.view, now)
        main.fit_left(self.view)
        main.query_one(Checklist).draw(self.view)
        main.query_one(HealthPane).draw(self.view, self.waiting)
        main.query_one(DecisionPane).draw(self.view, now, self.read_only)

    def _desired_phase(self) -> str:
        """The phase screen of the folded state (procedure/fold.py `screen`): the same after any replay seek."""
        screen = self.view.screen
        if screen == "summary":
            return "" if self.summary_dismissed else "summary"
        return "" if screen == "main" else screen

    def _route_screens(self) -> None:
        desired = self._desired_phase()
        if desired == self.phase:
            return
        if is_prompt(self.screen):
            return  # never pull a screen from under an open prompt
        if self.phase and is_phase_screen(self.screen):
            self.pop_screen()
        self.phase = desired
        if desired:
            self.push_screen(phase_screen(desired))

    def pop_screen(self) -> Any:
        if is_phase_screen(self.screen, "SummaryScreen"):
            self.summary_dismissed = True
            self.phase = ""
        return super().pop_screen()

    # ------------------------------------------------------------ the engine worker

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def run_driver(self) -> None:
        try:
            await self.driver.run(self)
        except PlanError as exc:
            self.plan_failed(exc)

    def loading_finished(self) -> None:
        """The driver has its session (the plan is loaded and valid): drop the header's loading note."""
        if self.loading:
            self.loading = ""
            self.redraw_soon()

    def plan_failed(self, error: PlanError) -> None:
        """The plan did not load: no session started; leave, and let the launcher print the problems (exit 2)."""
        self.plan_error = error
        self.exit(EXIT_USAGE)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "engine":
            return
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(safe(f"{type(error).__name__}: {error}"), title="the session stopped", severity="error",
                        timeout=30, markup=False)
            self._log_pane() and self._log_pane().add("", "", "err", [f"session error: {error}"])  # type: ignore[union-attr]
            self.report_info.setdefault("error", str(error))
        if event.state in (WorkerState.CANCELLED, WorkerState.ERROR) and self._quitting:
            self.exit(self.exit_code if self.exit_code is not None else 130)

    _quitting = False

    def session_result(self, result: Any) -> None:
        """The live session ended: remember the report and exit state for the summary and the exit code."""
        from rollback_tui.procedure.exits import EXIT_FOR_STATE

        self.result = result
        exit_state = getattr(result, "exit_state", None)
        self.exit_code = EXIT_FOR_STATE.get(exit_state, 1) if exit_state else EXIT_INTERRUPTED
        if getattr(result, "report_error", ""):
            self.report_info["signature"] = f"✖ report problem: {result.report_error}"
        report = getattr(result, "report", None)
        if report is not None:
            self.report_info["path"] = str(getattr(report, "path", ""))
            signed = getattr(report, "signed", False)
            error = getattr(report, "error", "")
            signer = getattr(report, "signer", "")
            self.report_info["signature"] = (f"✔ signed by {signer}" if signed else
                                             f"✖ NOT signed{': ' + error if error else ''}")
        journal = getattr(result, "journal_path", None)
        if journal:
            self.report_info["journal"] = str(journal)
        if self._quitting or not exit_state:
            self.result = None if not exit_state else result
            self.exit(self.exit_code)
            return
        self.redraw()

    # ------------------------------------------------------------ decisions

    def ask(self, request: Any) -> asyncio.Future[Any]:
        """Called by UIDecisionSource inside the engine worker; resolved by the decide keys."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._ask = (request, future)
        self._show_asked()
        future.add_done_callback(lambda _f: self._ask_done(future))
        self.refresh_bindings()
        self.redraw_soon()
        return future

    def _show_asked(self) -> None:
        """A resume asks again the question the journal recorded before the interruption (no new event), and the
        journal's SessionInterrupted, folded after it, clears it: the view shows the question being asked."""
        if self._ask is None:
            return
        request, pending = self._ask[0], self.view.pending
        folded = int(getattr(request, "seq", 0) or 0) <= self.view.last_seq  # a new request is folded as it comes
        if folded and (pending is None or pending.request_id != request.request_id):
            self.view._on_decision_requested(scrub(request))

    def _ask_done(self, future: asyncio.Future[Any]) -> None:
        if self._ask is not None and self._ask[1] is future:
            self._ask = None
        if self.is_running and self.screen_stack:
            self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "decide":
            if self._ask is None or self.read_only or is_prompt(self.screen):
                return False
            return parameters[0] in self._ask[0].options
        if action in ("replay_pause", "replay_step", "replay_speed"):
            return self.mode == "replay"
        if action == "log":
            return self.screen is self.main_screen
        return True

    def action_inspect(self) -> None:
        """The pending question's evidence full-screen, one check at a time, nothing shortened."""
        from rollback_tui.ui.modals import DetailScreen, check_detail

        checks = self.main_screen.query_one(DecisionPane).checks
        if checks and not is_prompt(self.screen):
            self.push_screen(DetailScreen("Evidence", [check_detail(c) for c in checks]))

    def action_scroll_evidence(self, lines: int) -> None:
        if self.screen is self.main_screen:
            self.main_screen.query_one(DecisionPane).scroll_evidence(lines)

    def action_log(self, name: str) -> None:
        getattr(self.main_screen.query_one(LogPane), f"action_{name}")()

    def action_decide(self, choice: str) -> None:
        from rollback_tui.ui.modals import ConfirmPrompt, TextPrompt

        if self._ask is None or choice not in self._ask[0].options:
            return
        request, future = self._ask
        words = CHOICES.get(choice, ("", choice))[1]
        destructive = choice in DESTRUCTIVE
        if request.kind == "approval" and choice == "approve":
            role = request.subject

            def got_name(name: str | None) -> None:
                if name:
                    problem = self._name_conflict(role, name)
                    if problem:
                        self.notify(safe(problem), title="approval refused", severity="error", markup=False)
                        return
                    self._resolve(future, choice, "", name)

            self.push_screen(TextPrompt(f"Approve as {self._role_title(role)}",
                                        "The approver's name (it is recorded in the report):",
                                        placeholder="name"), got_name)
            return
        if needs_reason(choice, list(request.needs_reason)):
            title = f"{'Confirm: ' if destructive else ''}{words}"

            def got_reason(reason: str | None) -> None:
                if reason:
                    self._resolve(future, choice, reason, self.operator)

            self.push_screen(TextPrompt(title, f"{request.question}\nWhy? (recorded with your name in the report)",
                                        placeholder="reason", destructive=destructive), got_reason)
            return
        if destructive:
            def confirmed(yes: bool | None) -> None:
                if yes:
                    self._resolve(future, choice, "", self.operator)

            self.push_screen(ConfirmPrompt(f"Confirm: {words}", request.question), confirmed)
            return
        self._resolve(future, choice, "", self.operator)

    def _resolve(self, future: asyncio.Future[Any], choice: str, reason: str, by: str) -> None:
        from rollback_tui.ui.drivers import make_decision

        if not future.done():
            future.set_result(make_decision(choice, reason, by))

    def _role_title(self, role_id: str) -> str:
        for role in self.view.roles:
            if role.get("id") == role_id:
                return str(role.get("title") or role_id)
        return role_id

    def _name_conflict(self, role: str, name: str) -> str:
        from rollback_tui.people import same_person

        if self.view.allow_same_person:
            return ""
        for approval in self.view.approvals:
            if approval["role"] != role and same_person(approval["name"], name):
                who = name if approval["name"] == name else f"{name!r} is the same person as {approval['name']!r}, who"
                return (f"{who} already approved as {approval['role_title']}; this plan needs a different "
                        f"person for {self._role_title(role)}")
        return ""

    def ask_passphrase(self) -> str:
        """Passphrase callable for the report signer; it runs in the signer's thread and asks in a modal."""
        if threading.get_ident() == self._main_thread:
            raise RuntimeError("the passphrase prompt must be called from a worker thread")

        async def in_worker() -> str:
            from rollback_tui.ui.modals import TextPrompt

            future: asyncio.Future[str] = asyncio.get_running_loop().create_future()

            def done(answer: str | None) -> None:
                future.set_result(answer or "")

            self.push_screen(TextPrompt("Signing key passphrase",
                                        "The report signing key is protected by a passphrase:",
                                        password=True, required=False), done)
            return await future

        return str(self.call_from_thread(in_worker))

    # ------------------------------------------------------------ replay and follow

    def set_replay_position(self, driver: Any) -> None:
        total = len(driver.events)
        state = "‖ paused" if driver.paused else ("■ end" if driver.position >= total else "▶ playing")
        when = self.view.last_ts.strftime("%H:%M:%SZ") if self.view.last_ts else "--:--:--"
        self._replay_position = f"· event {driver.position}/{total} · {state} ×{driver.speed:g} · {when}"
        self.redraw_soon()

    def follow_status(self, driver: Any) -> None:
        state = "session finished" if driver.finished else "tailing the journal"
        dropped = f" · {driver.dropped} unreadable line(s) skipped" if driver.dropped else ""
        position = f"· {state} · {self.view.events} events{dropped}"
        if position != self._replay_position:  # called every poll (~100 ms): redraw only when it says something new
            self._replay_position = position
            self.redraw_soon()

    def action_replay_pause(self) -> None:
        if self.mode == "replay":
            self.driver.toggle_pause()
            self.set_replay_position(self.driver)

    def action_replay_step(self, delta: int) -> None:
        if self.mode == "replay":
            self.driver.step(delta)

    def action_replay_speed(self, factor: float) -> None:
        if self.mode == "replay":
            self.driver.set_speed(factor)
            self.set_replay_position(self.driver)

    def action_jump_step(self, number: int) -> None:
        from rollback_tui.ui.viewmodel import STEP_IDS

        step_id = STEP_IDS[number - 1]
        if self.mode == "replay" and not self.driver.jump_to_step(step_id):
            self.notify(f"step {number} never started in this session", severity="warning")
        main = self.main_screen
        main.query_one(Checklist).select_step(step_id)
        if self.mode != "replay":
            main.query_one(LogPane).set_filters(step=step_id)

    # ------------------------------------------------------------ palette, export, quit

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name in [*BUILTIN_NAMES, *sorted(set(self.available_themes) - set(BUILTIN_NAMES) - _TEXTUAL_THEMES)]:
            yield SystemCommand(f"Theme: {name}", f"Switch the cockpit to the {name} theme",
                                lambda name=name: setattr(self, "theme", name))
        for number, step in enumerate(self.view.steps, start=1):
            yield SystemCommand(f"Jump to step {number}: {escape(one_line(step.title))}",
                                f"Select step {number} and filter its log",
                                lambda number=number: self.action_jump_step(number))
        yield SystemCommand("Export report", "Write the report of the session so far to a markdown file",
                            self.action_export_report)

    def action_export_report(self) -> None:
        self.export_report()

    @work(thread=True, group="export", exit_on_error=False)
    def export_report(self) -> None:
        from rollback_tui.ui.export import export_session

        try:
            path = export_session(self.driver, self.report_info)
        except Exception as exc:  # any failure is shown, never a crash: the journal is intact
            self.call_from_thread(self.notify, safe(f"export failed: {exc}"), severity="error", markup=False)
            return
        self.call_from_thread(self.notify, safe(f"report written to {path}"), title="export", markup=False)

    async def action_quit(self) -> None:
        from rollback_tui.ui.modals import ConfirmPrompt

        live = self.mode == "live" and self.driver is not None and self.result is None
        running = any(w.group == "engine" and w.is_running for w in self.workers)
        if live and running and self.loading and getattr(self.driver, "session", None) is None:
            self.exit(EXIT_INTERRUPTED)  # still loading the plan: no session has started, nothing to record
            return
        if not (live and running):
            self.exit(self.exit_code if self.exit_code is not None else 0)
            return

        def confirmed(yes: bool | None) -> None:
            if not yes:
                return
            self._quitting = True
            self.exit_code = EXIT_INTERRUPTED
            session = getattr(self.driver, "session", None)
            if session is not None and hasattr(session, "interrupt"):
                session.interrupt("quit from the cockpit")  # the engine records it; the session stays resumable
            else:
                self.workers.cancel_group(self, "engine")

        self.push_screen(ConfirmPrompt("Quit now?", "The session stops here and is recorded as interrupted; "
                                       "'rollback-tui resume JOURNAL' continues it."), confirmed)


_TEXTUAL_THEMES: set[str] = set()


def _textual_builtin_themes() -> set[str]:
    from textual.theme import BUILTIN_THEMES

    return set(BUILTIN_THEMES)


_TEXTUAL_THEMES = _textual_builtin_themes()
