"""The decision pane (question, evidence, keys) and the choice vocabulary: keys, words, reasons, confirmations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static

from rollback_tui.procedure.choices import CHOICES as TABLE
from rollback_tui.procedure.choices import DESTRUCTIVE, KINDS, NEEDS_REASON
from rollback_tui.ui.evidence import check_rows, check_word
from rollback_tui.ui.panes import colour_of, fmt_seconds
from rollback_tui.ui.viewmodel import SessionView, health_label

#: choice -> (key, words on screen), from the procedure's table. Keys are bound on the app with ids `decide.<choice>`
#: (remappable); the footer uses the shorter words, so 80 columns hold every offered key.
CHOICES: dict[str, tuple[str, str]] = {choice.id: (choice.key, choice.words) for choice in TABLE.values()}
FOOTER_WORDS: dict[str, str] = {choice.id: choice.short for choice in TABLE.values()}
#: The key that shows the evidence full-screen, one item at a time (bound on the app: `decision.inspect`).
INSPECT_KEY = ("i", "evidence full-screen", "evidence")
KIND_TITLES = KINDS

__all__ = ["CHOICES", "DESTRUCTIVE", "FOOTER_WORDS", "INSPECT_KEY", "KIND_TITLES", "DecisionPane", "key_hint",
           "needs_reason"]


def needs_reason(choice: str, requested: list[str]) -> bool:
    """The request says which choices need a reason; the table says it too (they agree: the engine asks from it)."""
    return choice in requested or choice in NEEDS_REASON


def key_hint(options: list[str], compact: bool = False, extra: Sequence[tuple[str, str, str]] = (),
             width: int = 0) -> Text:
    """The keys of these choices (and `extra` (key, words, short words) hints) as unbreakable tokens; with a
    `width`, laid out in lines of that width so that no line break ever parts a key from its words."""
    keys = [(*CHOICES.get(c, ("?", c)), FOOTER_WORDS.get(c, CHOICES.get(c, ("?", c))[1])) for c in options]
    out = Text()
    column = 0
    for key, words, short in [*keys, *extra]:
        token = Text()
        if compact:  # one unbreakable token per choice, so a narrow pane never parts a key from its words
            token.append(key, style="bold reverse")
            token.append(":" + short.replace(" ", "-") + "  ")
        else:
            token.append(f"\u00a0{key}\u00a0", style="bold reverse")  # no-break spaces: a key never parts from its words
            token.append("\u00a0" + words.replace(" ", "\u00a0") + "  ")
        if width and column and column + len(token.plain.rstrip()) > width:
            out.rstrip()
            out.append("\n")  # (Rich would break at a no-break space too: it wraps at any Unicode space)
            column = 0
        out.append_text(token)
        column += len(token)
    return out


def health_summary(widget: Static | Vertical, states: dict[str, str], compact: bool = False) -> Text:
    """Every probe's state in words; compact: the probes that are not healthy by name, the healthy ones counted."""
    out = Text()
    if not compact:
        for index, (probe, state) in enumerate(states.items()):
            out.append("  " if index else "")
            out.append(health_label(state), style=f"bold {colour_of(widget, state)}")  # type: ignore[arg-type]
            out.append(f" {probe}")
        return out
    by_state: dict[str, list[str]] = {}
    for probe, state in states.items():
        by_state.setdefault(state, []).append(probe)
    for index, state in enumerate(sorted(by_state, key=lambda st: COMPACT_ORDER.get(st, 1))):
        probes = by_state[state]
        out.append("  " if index else "")
        out.append(health_label(state), style=f"bold {colour_of(widget, state)}")  # type: ignore[arg-type]
        # the failing ones by name; the others counted
        out.append(f" {', '.join(probes)}" if state in ("down", "degraded") else f" ×{len(probes)}")
    return out


#: compact health: the worst first
COMPACT_ORDER = {"down": 0, "degraded": 0, "unknown": 1, "healthy": 2}


class DecisionPane(Vertical):
    """The current question, its evidence and the keys. The question and the keys (with the health summary) are
    pinned; only the evidence between them scrolls, so no screen size or theme can push the keys out."""

    compact = False
    DEFAULT_CSS = """
    DecisionPane > #decision-head { height: auto; }
    DecisionPane > #decision-foot { height: auto; dock: bottom; }  /* whatever else overflows, never the keys */
    DecisionPane > #decision-evidence { height: 1fr; scrollbar-size-vertical: 1; }
    DecisionPane #decision-body { height: auto; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checks: list[dict[str, Any]] = []
        self.plain_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="decision-head")
        with VerticalScroll(id="decision-evidence"):
            yield Static(id="decision-body")
        yield Static(id="decision-foot")

    def draw(self, view: SessionView, now: datetime | None, read_only: bool) -> None:
        if not self.is_mounted or not self.query("#decision-foot"):
            return
        request = view.pending
        width = max(20, self.content_size.width or 60)
        self.set_class(request is not None, "-asking")
        head, body, foot = Text(), Text(), Text()
        if request is None:
            self.checks = []
            head.append("No decision pending.", style="bold")
            waiting = str(getattr(self.app, "waiting", "") or "")
            if view.started_at is None and waiting:
                head.append(f"\n{waiting[:1].upper()}{waiting[1:]}")
            if view.exit_state:
                head.append(f"\nThe session ended: {view.outcome}.")
            elif view.current_step:
                step = view.step(view.current_step)
                head.append(f"\nStep {self._number(view, step.id)} · {step.title}: {view.outcome}.")
            if view.decisions:
                last = view.decisions[-1]
                head.append(f"\nLast decision: {last['choice'].replace('_', '-')} on {last['step'] or last['kind']}"
                            f" by {last['by']}" + (f": {last['reason']}" if last["reason"] else ""))
        else:
            self._draw_request(view, request, read_only, width, head, body, foot)
        self._show(head, body, foot, width)

    def _draw_request(self, view: SessionView, request: Any, read_only: bool, width: int,
                      head: Text, body: Text, foot: Text) -> None:
        step = view.step(request.step) if request.step else None
        head.append(f"{KIND_TITLES.get(request.kind, request.kind)}", style="bold reverse")
        if step is not None:
            head.append(f"  Step {self._number(view, step.id)} · {step.title}", style="bold")
        if request.action:
            head.append(f" · action {request.action}")
        head.append(f"\n{request.question}", style="bold")  # the question wraps: it is never cut
        evidence = request.evidence
        self.checks = list(evidence.get("verifications") or [])
        rows: list[Text] = []
        for check in self.checks:
            colour = colour_of(self, "done" if check_word(check)[2] else "failed")
            rows += check_rows(check, width - 1, colour)  # one column for the evidence's scroll bar
        if evidence.get("failed_hosts"):
            rows.append(Text(f"Failed hosts: {', '.join(evidence['failed_hosts'])}", style="bold"))
        if request.kind not in ("plan_review",) and evidence.get("detail"):
            rows.append(Text(str(evidence["detail"]).splitlines()[0], style="italic"))
        body.append_text(Text("\n").join(rows))
        health = evidence.get("health") or {}
        used, window = float(evidence.get("window_used") or 0), float(evidence.get("window") or view.window)
        if health:
            foot.append("Health: ", style="bold")
            foot.append_text(health_summary(self, {p: str(h.get("state", "unknown")) for p, h in health.items()},
                                            self.compact))
        if window and not self.compact:  # compact: the header shows the time used
            foot.append(" · " if health else "")
            used_text = f"time used {fmt_seconds(used)} of {fmt_seconds(window)} ({int(used * 100 / window)} %)"
            foot.append(used_text.replace(" ", "\u00a0"))  # one unbreakable phrase
        if foot:
            foot.append("\n")
        if read_only:
            foot.append("read-only: this cockpit shows the session, it does not decide  ", style="italic")
            foot.append_text(key_hint([], self.compact, [INSPECT_KEY] if self.checks else []))
        else:
            foot.append_text(key_hint(request.options, self.compact, [INSPECT_KEY] if self.checks else [], width))
            reasons = [CHOICES.get(c, ("", c))[1] for c in request.options if needs_reason(c, request.needs_reason)]
            if reasons and not self.compact:
                foot.append(f"\nA reason is asked for: {', '.join(reasons)}.", style="italic")

    def _show(self, head: Text, body: Text, foot: Text, width: int) -> None:
        self.query_one("#decision-head", Static).update(head)
        self.query_one("#decision-body", Static).update(body)
        self.query_one("#decision-foot", Static).update(foot)
        self.query_one("#decision-evidence").display = bool(body)
        self.query_one("#decision-foot").display = bool(foot)  # (docked: an empty one would cover the last row)
        self.plain_text = "\n".join(part.plain for part in (head, body, foot) if part)
        console = self.app.console
        lines = sum(len(part.wrap(console, width)) for part in (head, foot) if part)
        lines += len(body.wrap(console, max(1, width - 1))) if body else 0
        # The pane's height is what it shows (CSS max-height caps it; then the evidence scrolls, the rest stays).
        self.styles.height = lines + self.styles.gutter.height
        self.call_after_refresh(self._mark_overflow)

    def _mark_overflow(self) -> None:
        """Say in the border when the evidence is taller than its room, and how to see the rest."""
        evidence = self.query_one("#decision-evidence", VerticalScroll)
        more = evidence.display and evidence.max_scroll_y > 0
        subtitle = "more evidence: shift+↑↓" if more else ""
        if self.border_subtitle != subtitle:
            self.border_subtitle = subtitle

    def scroll_evidence(self, lines: int) -> None:
        self.query_one("#decision-evidence", VerticalScroll).scroll_relative(y=lines, animate=False)

    @staticmethod
    def _number(view: SessionView, step_id: str) -> int:
        for index, step in enumerate(view.steps):
            if step.id == step_id:
                return index + 1
        return 0
