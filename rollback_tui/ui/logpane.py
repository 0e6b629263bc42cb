"""The log pane: every output line with its step and host; filters, search, pause; bounded memory under floods."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Log, Static

from rollback_tui.termsafe import lines_one_line, one_line

STEP_SHORT = {"configuration": "config", "database": "db", "infrastructure": "infra", "": "-"}
LEVELS = ("out", "err", "info")
LEVEL_OF_STREAM = {"stdout": "out", "stderr": "err", "info": "info"}

Record = tuple[str, str, str, str]
"""(step, host, level, text)"""


class LogPane(Vertical):
    """A Textual Log fed by ONE write_lines call per ~33 ms; filters rebuild from a bounded deque of records."""

    #: Bound on the app (so they work whatever has focus) as `log_<action>`; listed here for the keymap.
    KEYS = [
        Binding("slash", "log('search')", "Search", id="log.search"),
        Binding("space", "log('toggle_follow')", "Pause log", id="log.follow"),
        Binding("f5", "log('cycle_step')", "Log step", id="log.step"),
        Binding("f6", "log('cycle_host')", "Log host", id="log.host"),
        Binding("f7", "log('cycle_level')", "Log level", id="log.level"),
    ]

    def __init__(self, *, max_records: int = 100_000, max_lines: int = 5_000, flush_every: float = 0.033,
                 **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.records: deque[Record] = deque(maxlen=max_records)
        self.max_lines = max_lines
        self.flush_every = flush_every
        self.pending: list[str] = []
        self.flush_scheduled = False
        self.following = True
        self.step_filter = ""
        self.host_filter = ""
        self.level_filter = ""
        self.search = ""
        self.compact = False
        self.steps_seen: list[str] = []
        self.hosts_seen: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="log-status")
        yield Log(max_lines=self.max_lines, id="log-lines")

    def on_mount(self) -> None:
        self._draw_status()

    # ------------------------------------------------------------ feeding

    def add(self, step: str, host: str, stream: str, lines: Iterable[str]) -> None:
        """Record lines and queue the visible ones for the next flush (cheap; called per event). Each line is made
        one terminal-safe row here (a CR, LF or escape sequence in a host's output is shown, never obeyed)."""
        step, host = one_line(step), one_line(host)
        level = LEVEL_OF_STREAM.get(stream, stream)
        if step not in self.steps_seen and step:
            self.steps_seen.append(step)
        if host and host not in self.hosts_seen and len(self.hosts_seen) < 500:
            self.hosts_seen.append(host)
        visible = self._matches_meta(step, host, level)
        prefix = self._prefix(step, host, level)
        records = self.records
        pending = self.pending
        search = self.search
        for text in lines_one_line(lines if isinstance(lines, list) else list(lines)):
            records.append((step, host, level, text))
            if visible and (not search or search in text):
                pending.append(prefix + text)
        if len(pending) > self.max_lines:
            del pending[: len(pending) - self.max_lines]
        if pending and not self.flush_scheduled:
            self.flush_scheduled = True
            self.set_timer(self.flush_every, self.flush)

    def flush(self) -> None:
        """Write every queued line with one write_lines call."""
        self.flush_scheduled = False
        if not self.pending:
            return
        lines, self.pending = self.pending, []
        log = self.query_one("#log-lines", Log)
        log.write_lines(lines, scroll_end=self.following)
        if self.following:  # the Log only follows when already at the end; a pane resize can move it off
            log.scroll_end(animate=False, immediate=True, x_axis=False)
        self._draw_status()

    def _prefix(self, step: str, host: str, level: str) -> str:
        short = STEP_SHORT.get(step, step)
        mark = {"err": "!", "info": "·"}.get(level, "│")
        if self.compact:
            return f"{short[:6]:<6} {host[:8]:<8}{mark} "
        return f"{short:<8} {host or '-':<14} {level:<4}{mark} "

    def _matches_meta(self, step: str, host: str, level: str) -> bool:
        return ((not self.step_filter or step == self.step_filter)
                and (not self.host_filter or host == self.host_filter)
                and (not self.level_filter or level == self.level_filter))

    def rebuild(self) -> None:
        """Redraw the Log from the records under the current filters (after a filter or layout change)."""
        self.pending = []
        self.flush_scheduled = False
        out: list[str] = []
        search = self.search
        for step, host, level, text in reversed(self.records):
            if self._matches_meta(step, host, level) and (not search or search in text):
                out.append(self._prefix(step, host, level) + text)
                if len(out) >= self.max_lines:
                    break
        out.reverse()
        log = self.query_one("#log-lines", Log)
        log.clear()
        if out:
            log.write_lines(out, scroll_end=True)
        self._draw_status()

    def clear_records(self) -> None:
        self.records.clear()
        self.steps_seen.clear()
        self.hosts_seen.clear()
        self.rebuild()

    # ------------------------------------------------------------ filters

    def set_filters(self, *, step: str | None = None, host: str | None = None, level: str | None = None,
                    search: str | None = None) -> None:
        if step is not None:
            self.step_filter = step
        if host is not None:
            self.host_filter = host
        if level is not None:
            self.level_filter = level
        if search is not None:
            self.search = search
        self.rebuild()

    @staticmethod
    def _cycle(current: str, choices: list[str]) -> str:
        options = ["", *choices]
        index = options.index(current) if current in options else 0
        return options[(index + 1) % len(options)]

    def action_cycle_step(self) -> None:
        self.set_filters(step=self._cycle(self.step_filter, self.steps_seen))

    def action_cycle_host(self) -> None:
        self.set_filters(host=self._cycle(self.host_filter, self.hosts_seen))

    def action_cycle_level(self) -> None:
        self.set_filters(level=self._cycle(self.level_filter, list(LEVELS)))

    def action_toggle_follow(self) -> None:
        self.following = not self.following
        log = self.query_one("#log-lines", Log)
        log.auto_scroll = self.following
        if self.following:
            log.scroll_end(animate=False)
        self._draw_status()

    def _search_box(self) -> Input | None:
        boxes = self.query("#log-search")
        return boxes.first(Input) if boxes else None

    def action_search(self) -> None:
        box = self._search_box()
        if box is None:  # mounted on first use: one widget less to build before the first frame
            box = Input(placeholder="search the log (Enter to apply, Esc to close)", id="log-search")
            self.mount(box)
        box.display = True
        box.value = self.search
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.set_filters(search=event.value)
        self.query_one("#log-lines", Log).focus()

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        box = self._search_box()
        if key == "escape" and box is not None and box.display:
            box.display = False
            self.query_one("#log-lines", Log).focus()
            getattr(event, "stop")()

    def _draw_status(self) -> None:
        parts = [
            "▶ following" if self.following else "‖ paused (space resumes)",
            f"step: {self.step_filter or 'all'}",
            f"host: {self.host_filter or 'all'}",
            f"level: {self.level_filter or 'all'}",
        ]
        if self.search:
            parts.append(f"search: {one_line(self.search)!r}")
        parts.append(f"{len(self.records):,} lines kept")
        self.query_one("#log-status", Static).update(Text(" · ".join(parts), no_wrap=True, overflow="ellipsis"))
