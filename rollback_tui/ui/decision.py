"""The decision pane: the question, its evidence and the keys of the choices offered (words from the procedure)."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from rollback_tui.procedure.choices import CHOICES as TABLE
from rollback_tui.procedure.choices import DESTRUCTIVE, KINDS, NEEDS_REASON
from rollback_tui.ui.panes import colour_of, fmt_seconds
from rollback_tui.ui.viewmodel import SessionView, health_label

#: choice -> (key, words on screen), from the procedure's table. Keys are bound on the app with ids `decide.<choice>`
#: (remappable); the footer uses the shorter words, so 80 columns hold every offered key.
CHOICES: dict[str, tuple[str, str]] = {choice.id: (choice.key, choice.words) for choice in TABLE.values()}
FOOTER_WORDS: dict[str, str] = {choice.id: choice.short for choice in TABLE.values()}
KIND_TITLES = KINDS

__all__ = ["CHOICES", "DESTRUCTIVE", "FOOTER_WORDS", "KIND_TITLES", "DecisionPane", "key_hint", "needs_reason"]


def needs_reason(choice: str, requested: list[str]) -> bool:
    """The request says which choices need a reason; the table says it too (they agree: the engine asks from it)."""
    return choice in requested or choice in NEEDS_REASON


def key_hint(options: list[str], compact: bool = False) -> Text:
    out = Text()
    if compact:  # one unbreakable token per choice, so a narrow pane never parts a key from its words
        for choice in options:
            key, words = CHOICES.get(choice, ("?", choice))
            out.append(key, style="bold reverse")
            out.append(":" + FOOTER_WORDS.get(choice, words).replace(" ", "-") + "  ")
        return out
    for choice in options:
        key, words = CHOICES.get(choice, ("?", choice))
        out.append(f"\u00a0{key}\u00a0", style="bold reverse")  # no-break spaces: a key never parts from its words
        out.append("\u00a0" + words.replace(" ", "\u00a0") + "  ")
    return out


class DecisionPane(Static):
    """The current question and its evidence: each verification pass/fail, health states, time used, keys."""

    compact = False

    def draw(self, view: SessionView, now: datetime | None, read_only: bool) -> None:
        request = view.pending
        out = Text()
        width = max(20, self.content_size.width or 60)

        def line(text: Text) -> None:
            text.truncate(width, overflow="ellipsis")
            out.append_text(text)
            out.append("\n")

        self.set_class(request is not None, "-asking")
        if request is None:
            out.append("No decision pending.", style="bold")
            if view.exit_state:
                out.append(f"\nThe session ended: {view.outcome}.")
            elif view.current_step:
                step = view.step(view.current_step)
                out.append(f"\nStep {self._number(view, step.id)} · {step.title}: {view.outcome}.")
            if view.decisions:
                last = view.decisions[-1]
                out.append(f"\nLast decision: {last['choice'].replace('_', '-')} on {last['step'] or last['kind']}"
                           f" by {last['by']}" + (f": {last['reason']}" if last["reason"] else ""))
            self.update(out)
            return
        step = view.step(request.step) if request.step else None
        title = Text()
        title.append(f"{KIND_TITLES.get(request.kind, request.kind)}", style="bold reverse")
        if step is not None:
            title.append(f"  Step {self._number(view, step.id)} · {step.title}", style="bold")
        if request.action:
            title.append(f" · action {request.action}")
        line(title)
        out.append(f"{request.question}\n", style="bold")  # the question wraps: it is never cut
        evidence = request.evidence
        checks = evidence.get("verifications") or []
        if checks and not self.compact:
            line(Text("Evidence:", style="underline"))
        for check in checks:
            ok = bool(check.get("ok"))
            row = Text()
            word = "unverified" if check.get("readback") == "none" else "pass" if ok else "FAIL"  # nothing read back
            row.append(f"  {'?' if ok and word == 'unverified' else '✔' if ok else '✖'} {word} ",
                       style=f"bold {colour_of(self, 'done' if ok else 'failed')}")
            row.append(f"{check.get('check', '')}")
            observed, expected = check.get("observed", ""), check.get("expected", "")
            if observed or expected:
                row.append(f": observed {observed or '–'}" + (f", expected {expected}" if expected else ""))
            line(row)
        health = evidence.get("health") or {}
        used, window = float(evidence.get("window_used") or 0), float(evidence.get("window") or view.window)
        facts = Text()
        if health:
            facts.append("Health: ")
            facts.append("  ".join(f"{health_label(h.get('state', 'unknown'))} {probe}" for probe, h in health.items()))
        if window:
            facts.append(" · " if health else "")
            facts.append(f"time used {fmt_seconds(used)} of {fmt_seconds(window)} ({int(used * 100 / window)} %)")
        if facts:
            line(facts)
        if evidence.get("failed_hosts"):
            line(Text(f"Failed hosts: {', '.join(evidence['failed_hosts'])}", style="bold"))
        if request.kind not in ("plan_review",) and evidence.get("detail"):
            line(Text(str(evidence["detail"]).splitlines()[0], style="italic"))
        if read_only:
            out.append("read-only: this cockpit shows the session, it does not decide", style="italic")
        else:
            out.append_text(key_hint(request.options, self.compact))
            reasons = [CHOICES.get(c, ("", c))[1] for c in request.options if needs_reason(c, request.needs_reason)]
            if reasons and not self.compact:
                out.append(f"\nA reason is asked for: {', '.join(reasons)}.", style="italic")
        self.update(out)

    @staticmethod
    def _number(view: SessionView, step_id: str) -> int:
        for index, step in enumerate(view.steps):
            if step.id == step_id:
                return index + 1
        return 0
