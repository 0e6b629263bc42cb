"""The decision pane (question, evidence, keys) and the choice vocabulary: keys, words, reasons, confirmations."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.widgets import Static

from rollback_tui.ui.panes import colour_of, fmt_seconds
from rollback_tui.ui.viewmodel import SessionView, health_label

#: choice -> (key, words on screen). Keys are bound on the app with ids `decide.<choice>` (remappable).
CHOICES: dict[str, tuple[str, str]] = {
    "go": ("g", "go"),
    "no_go": ("n", "no-go"),
    "retry": ("r", "retry all"),
    "retry_failed": ("f", "retry failed hosts"),
    "reassess": ("e", "reassess (back to step 1)"),
    "skip": ("s", "skip: not applicable"),
    "manual": ("m", "done by hand"),
    "override": ("o", "override failed check"),
    "abort": ("a", "abort rollback"),
    "approve": ("y", "approve"),
    "reject": ("x", "reject"),
    "remediate": ("p", "take remediation path"),
    "halt": ("h", "halt (blocked)"),
    "rerun": ("u", "run it again"),
    "verify_only": ("v", "verify only"),
    "mark_done": ("d", "mark done by hand"),
}

#: Choices that always need a reason, whatever the request says (seed: no-go, abort, manual, override).
ALWAYS_REASON = {"no_go", "abort", "manual", "override", "mark_done", "reject", "halt"}
#: Choices that change the outcome or skip safety: confirmed before they are sent.
DESTRUCTIVE = {"abort", "override", "manual", "skip", "mark_done", "reject", "halt", "reassess"}

KIND_TITLES = {"gate": "Go / no-go", "no_go": "No-go: what next?", "action_failed": "An action failed",
               "interrupted": "An action was interrupted", "input": "Required input", "plan_review": "Plan review",
               "approval": "Approval"}


def needs_reason(choice: str, requested: list[str]) -> bool:
    return choice in requested or choice in ALWAYS_REASON


def key_hint(options: list[str]) -> Text:
    out = Text()
    for choice in options:
        key, words = CHOICES.get(choice, ("?", choice))
        out.append(f" {key} ", style="bold reverse")
        out.append(f" {words}  ")
    return out


class DecisionPane(Static):
    """The current question and its evidence: each verification pass/fail, health states, time used, keys."""

    def draw(self, view: SessionView, now: datetime | None, read_only: bool) -> None:
        request = view.pending
        out = Text()
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
        out.append(f"{KIND_TITLES.get(request.kind, request.kind)}", style="bold reverse")
        if step is not None:
            out.append(f"  Step {self._number(view, step.id)} · {step.title}", style="bold")
        if request.action:
            out.append(f" · action {request.action}")
        out.append(f"\n{request.question}\n", style="bold")
        evidence = request.evidence
        checks = evidence.get("verifications") or []
        if checks:
            out.append("Evidence:\n", style="underline")
        for check in checks:
            ok = bool(check.get("ok"))
            out.append("  ✔ pass " if ok else "  ✖ FAIL ", style=f"bold {colour_of(self, 'done' if ok else 'failed')}")
            out.append(f"{check.get('check', '')}")
            observed, expected = check.get("observed", ""), check.get("expected", "")
            if observed or expected:
                out.append(f": observed {observed or '–'}" + (f", expected {expected}" if expected else ""))
            out.append("\n")
        health = evidence.get("health") or {}
        if health:
            out.append("Health: ")
            out.append("  ".join(f"{health_label(h.get('state', 'unknown'))} {probe}" for probe, h in health.items()))
            out.append("\n")
        if evidence.get("failed_hosts"):
            out.append(f"Failed hosts: {', '.join(evidence['failed_hosts'])}\n", style="bold")
        used, window = float(evidence.get("window_used") or 0), float(evidence.get("window") or view.window)
        if window:
            out.append(f"Time used: {fmt_seconds(used)} of {fmt_seconds(window)} ({int(used * 100 / window)} %)\n")
        if request.kind not in ("plan_review",) and evidence.get("detail"):
            out.append(f"{evidence['detail']}\n", style="italic")
        if read_only:
            out.append("read-only: this cockpit shows the session, it does not decide", style="italic")
        else:
            out.append_text(key_hint(request.options))
            reasons = [CHOICES.get(c, ("", c))[1] for c in request.options if needs_reason(c, request.needs_reason)]
            if reasons:
                out.append(f"\nA reason is asked for: {', '.join(reasons)}.", style="italic")
        self.update(out)

    @staticmethod
    def _number(view: SessionView, step_id: str) -> int:
        for index, step in enumerate(view.steps):
            if step.id == step_id:
                return index + 1
        return 0
