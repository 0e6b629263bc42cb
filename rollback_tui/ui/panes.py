"""The main screen's panes: header, step checklist, health. Each draws from a SessionView it is handed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Static

from rollback_tui.termsafe import one_line
from rollback_tui.ui.viewmodel import STATE_LABELS, ProbeView, SessionView, StepView, health_label, label

SHORT_WORDS = {"awaiting_decision": "awaiting", "not_applicable": "n/a", "skipped": "not done",
               "interrupted": "paused",
               "manual": "by hand", "retrying": "retry"}
SPARKS = "▁▂▃▄▅▆▇█"


def fmt_seconds(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def palette(widget: Static) -> dict[str, str]:
    """The current theme's cockpit colours ($go, $no-go, $degraded), cached per theme."""
    app = widget.app
    cache = getattr(app, "_palette_cache", None)
    if cache is None or cache[0] != app.theme:
        variables = app.get_css_variables()
        colours = {"go": variables.get("go", "green"), "nogo": variables.get("no-go", "red"),
                   "warn": variables.get("degraded", "yellow"), "dim": ""}
        cache = (app.theme, colours)
        app._palette_cache = cache  # type: ignore[attr-defined]
    return cache[1]


def colour_of(widget: Static, state: str) -> str:
    """The colour for a state; empty under NO_COLOR-like themes is fine: the word carries the meaning."""
    return palette(widget).get(state_style(state), "")


def state_style(state: str) -> str:
    """A CSS-ish semantic name for a state; the colour is a bonus, the word carries the meaning."""
    if state in ("done", "manual", "ok", "healthy"):
        return "go"
    if state in ("failed", "aborted", "timeout", "unreachable", "down"):
        return "nogo"
    if state in ("awaiting_decision", "retrying", "interrupted", "degraded", "running"):
        return "warn"
    return "dim"


class HeaderBar(Static):
    """Plan, incident, environment, operator, elapsed time, window countdown and the outcome (3 rows)."""

    def __init__(self, clock: Callable[[], datetime], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.clock = clock
        self.mode_line = "live"
        self.waiting = ""  # what the header says before the first event (e.g. "loading plan…")

    def draw(self, view: SessionView, now: datetime | None = None) -> None:
        now = now or self.clock()
        meta = view.metadata
        top = Text(no_wrap=True, overflow="ellipsis")
        top.append(" ROLLBACK ", style="bold reverse")
        top.append(f" {view.plan_name or meta.get('name', '…')}", style="bold")
        for key, prefix in (("incident", ""), ("environment", "env "), ("service", "svc ")):
            if meta.get(key):
                top.append(f" · {prefix}{meta[key]}")
        if view.operator:
            top.append(f" · operator {view.operator}")
        elapsed = view.elapsed(now)
        window = view.window
        percent = int(elapsed * 100 / window) if window else 0
        second = Text(no_wrap=True, overflow="ellipsis")
        second.append(f" elapsed {fmt_seconds(elapsed)}")
        if window:
            left = window - elapsed
            countdown = f"window left {fmt_seconds(left)}" if left >= 0 else f"window exceeded by {fmt_seconds(-left)}"
            second.append(f" · {countdown} ({percent} % of {fmt_seconds(window)})")
            if percent >= 100:
                second.append("  ✖ OVER WINDOW", style="bold")
            elif percent >= 80:
                second.append("  ⚠ 80 % OF WINDOW", style="bold")
        outcome = self.waiting if self.waiting and view.started_at is None else view.outcome
        second.append(f" · {outcome}", style="bold")
        third = Text(f" {one_line(self.mode_line)}", no_wrap=True, overflow="ellipsis")
        self.set_class(bool(window) and 80 <= percent < 100, "-warn")
        self.set_class(bool(window) and percent >= 100, "-over")
        self.update(Text("\n").join([top, second, third]))


class Checklist(Static, can_focus=True):
    """The seven steps with symbol and word, their actions, and (expanded) the hosts of SSH actions."""

    BINDINGS = [
        Binding("up", "move(-1)", "Prev step", show=False, id="checklist.up"),
        Binding("down", "move(1)", "Next step", show=False, id="checklist.down"),
        Binding("enter", "toggle_hosts", "Hosts", show=False, id="checklist.hosts"),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.view: SessionView | None = None
        self.selected = 0
        self.expanded: set[str] = set()
        self.compact = False

    def draw(self, view: SessionView) -> None:
        self.view = view
        self.update(self.render_steps(view))

    def render_steps(self, view: SessionView) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        focused = self.has_focus
        for index, step in enumerate(view.steps):
            symbol, word = STATE_LABELS.get(step.state, ("·", step.state))
            if self.compact:
                word = SHORT_WORDS.get(step.state, word)
            marker = "›" if focused and index == self.selected else " "
            line = Text(f"{marker}{index + 1} ", no_wrap=True, overflow="ellipsis")
            line.append(f"{symbol} {word}", style=f"bold {self._colour(step.state)}")
            line.append(f"  {step.title}", style="bold" if step.id == view.current_step else "")
            if step.attempt > 1:
                line.append(f" (attempt {step.attempt})")
            out.append_text(line)
            out.append("\n")
            show_actions = not self.compact or step.id == view.current_step or step.id in self.expanded
            if show_actions and step.applicable:
                self._render_actions(out, step)
        out.rstrip()
        return out

    def _render_actions(self, out: Text, step: StepView) -> None:
        for action in step.actions:
            symbol, word = STATE_LABELS.get(action.state, ("·", action.state))
            out.append(f"    {symbol} ", style=self._colour(action.state))
            out.append(f"{action.id}", style="")
            out.append(f" {word}" if action.state != "pending" else "", style=self._colour(action.state))
            if action.hosts:
                out.append(f" [{len(action.hosts)} host{'s' if len(action.hosts) != 1 else ''}]")
            out.append("\n")
            if action.hosts and step.id in self.expanded:
                for host in action.hosts:
                    state = action.host_states.get(host, "pending")
                    out.append(f"       {label(state)} {host}\n", style=self._colour(state))

    def _colour(self, state: str) -> str:
        return colour_of(self, state)

    def action_move(self, delta: int) -> None:
        if self.view is None:
            return
        self.selected = max(0, min(len(self.view.steps) - 1, self.selected + delta))
        self.draw(self.view)

    def action_toggle_hosts(self) -> None:
        if self.view is None:
            return
        step_id = self.view.steps[self.selected].id
        self.expanded ^= {step_id}
        self.draw(self.view)

    def select_step(self, step_id: str) -> None:
        if self.view is None:
            return
        for index, step in enumerate(self.view.steps):
            if step.id == step_id:
                self.selected = index
                self.expanded.add(step_id)
        self.draw(self.view)

    def on_focus(self) -> None:
        if self.view is not None:
            self.draw(self.view)

    def on_blur(self) -> None:
        if self.view is not None:
            self.draw(self.view)


class HealthPane(Static):
    """One row per probe: state in words, last latency, and at the right edge a sparkline of the newest samples."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.compact = False

    def draw(self, view: SessionView, waiting: str = "") -> None:
        out = Text(no_wrap=True, overflow="ellipsis")
        width = self.content_size.width or 40
        if not view.probes:
            # before the plan is loaded nobody knows its probes yet: never say there are none
            out.append((waiting or "waiting for the session to start") if view.started_at is None
                       else "no health probes in this plan", style="italic")
        for probe in view.probes.values():
            row = Text(no_wrap=True)
            row.append(f"{health_label(probe.state):<11}", style=f"bold {colour_of(self, probe.state)}")
            row.append(f" {probe.id}")
            row.append(f" {probe.latency_ms:.0f} ms" if probe.latency_ms is not None else " – ms")
            if probe.measures:
                words = value_words(probe.value, probe.condition, probe.thresholds, short=self.compact)
                room = width - len(row) - 2
                if room >= len(words):
                    row.append(" " * (width - len(row) - len(words)))
                    row.append(words, style=colour_of(self, probe.state))
                else:  # a narrow pane: the value on a line of its own, never cut off behind the probe's name
                    row.append(f"\n  {words}", style=colour_of(self, probe.state))
            else:
                room = width - len(row) - 2
                if not self.compact and room >= 4 and probe.history:
                    spark = sparkline(list(probe.history), min(room, 24), healthy=probe.state == "healthy")
                    row.append(" " * (width - len(row) - len(spark)) + spark)
            out.append_text(row)
            if not self.compact and probe.measures and any(v is not None for v in probe.values):
                self._chart(out, probe, width)
            if not self.compact and probe.reason and probe.state != "healthy":
                out.append(f"\n    {probe.reason}", style="italic")
            out.append("\n")
        out.rstrip()
        self.update(out)


    def _chart(self, out: Text, probe: ProbeView, width: int) -> None:
        """Two rows under the probe: its newest values as bars, the threshold as a line, the scale and the
        limit labelled at the right, in words and symbols (no colour needed)."""
        room = width - 4 - _CHART_LABEL
        if room < 8:
            return
        rows = value_chart(list(probe.values), probe.thresholds, min(room, 48))
        for text, label_text in rows:
            out.append(f"\n    {text}")
            out.append(f" {label_text}", style="italic")


#: Width kept at the right of a value chart for its labels (`base 0  ─ limit 0.01`).
_CHART_LABEL = 24
_LINE = "─"


def _fmt(value: float) -> str:
    return f"{value:.3g}"


def value_words(value: float | None, condition: str, thresholds: tuple[float, ...], *, short: bool = False) -> str:
    """The current value in words: `now 0.0042, good when < 0.01` (short: `now 0.0042 (good: < 0.01)`), or that
    there is none yet."""
    now = "no value yet" if value is None else f"now {_fmt(value)}"
    if not condition:
        return now
    return f"{now} (good: {condition})" if short else f"{now}, good when {condition}"


def value_chart(values: list[float | None], thresholds: tuple[float, ...], width: int) -> list[tuple[str, str]]:
    """The newest `width` values as two rows of bars (16 levels, newest last) from 0 (or the lowest value) to the
    highest value or threshold; each threshold is a line `─` in its row where no bar covers it. A sample
    without a value is `·` in the bottom row. Returns [(top row, its label), (bottom row, its label)]."""
    values = values[-width:]
    numbers = [v for v in values if v is not None]
    points = numbers + list(thresholds)
    if not points:
        return [(" " * len(values), ""), ("·" * len(values), "")]
    low = min(points) if min(points) < 0 else 0.0
    high = max(points)
    span = (high - low) or 1.0
    levels = 16

    def level(v: float) -> float:
        return (v - low) / span * levels

    row_of = {t: min(1, int(level(t) // 8)) for t in thresholds}
    lines = set(row_of.values())
    rows: list[str] = []
    for row in (1, 0):
        cells = []
        for v in values:
            if v is None:
                cells.append("·" if row == 0 else (_LINE if row in lines else " "))
                continue
            height = max(1, round(level(v))) if v > low else 0
            fill = min(8, max(0, height - 8 * row))
            cells.append("█" if fill == 8 else SPARKS[fill - 1] if fill else (_LINE if row in lines else " "))
        rows.append("".join(cells))
    def label(row: int, mark: str, edge: float) -> str:
        limits = "/".join(_fmt(t) for t in thresholds if row_of[t] == row)
        return f"{mark} {_fmt(edge)}" + (f"  {_LINE} limit {limits}" if limits else "")

    return [(rows[0], label(1, "top", high)), (rows[1], label(0, "base", low))]


def sparkline(values: list[float | None], width: int = 16, *, healthy: bool = False) -> str:
    """The newest `width` latency samples as block characters, newest last. A failed sample (no latency) is '×'
    while the probe is still failing; once it is healthy again, the failures before are drawn '·' (a gap), so a
    healthy probe never shows a failure mark beside it."""
    values = values[-width:]
    numbers = [v for v in values if v is not None]
    gap = "·" if healthy else "×"
    if not numbers:
        return gap * len(values)
    low, high = min(numbers), max(numbers)
    span = (high - low) or 1.0
    return "".join(gap if v is None else SPARKS[int((v - low) / span * (len(SPARKS) - 1))] for v in values)
