"""Screens before and after execution: required inputs, plan review, approvals, and the summary at the end."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from rollback_tui.termsafe import one_line
from rollback_tui.ui.decision import key_hint, health_summary, needs_reason, CHOICES
from rollback_tui.ui.keybar import KeyBar
from rollback_tui.ui.panes import HeaderBar, colour_of
from rollback_tui.ui.viewmodel import SessionView

if TYPE_CHECKING:
    from rollback_tui.ui.app import CockpitApp

CATEGORY_TITLES = {"artifact": "Artifacts", "decision": "Decisions already made", "constraint": "Constraints"}
SCOPES = ("flags", "code", "configuration", "database", "infrastructure")
SCOPE_WORDS = {"rolled_back": "✔ rolled back", "not_rolled_back": "✖ not rolled back",
               "not_applicable": "– not applicable", "manual": "✔ rolled back by hand"}


class PhaseScreen(Screen[None]):
    """Header, a scrolling body drawn from the view, the footer with the keys that apply."""

    phase = ""

    def compose(self) -> ComposeResult:
        app: CockpitApp = self.app  # type: ignore[assignment]
        yield HeaderBar(app.clock, id="header")
        yield Static(id="health-strip")  # health is on every screen, from the first one on
        yield Static(id="phase-ask")  # the question and its keys: pinned above the body, never scrolled away
        with VerticalScroll(id="phase-body"):
            yield from self.compose_body()
        yield KeyBar()

    def compose_body(self) -> ComposeResult:
        yield Static(id="phase-text")

    def on_mount(self) -> None:
        app: CockpitApp = self.app  # type: ignore[assignment]
        self.draw(app.view, app.now(), app.read_only)

    def on_resize(self) -> None:
        app: CockpitApp = self.app  # type: ignore[assignment]
        self.set_class(self.size.width < 120, "-compact")
        self.draw(app.view, app.now(), app.read_only)

    def draw(self, view: SessionView, now: datetime, read_only: bool) -> None:
        if not self.query(HeaderBar) or not self.query("#phase-text"):
            return  # not composed yet: on_mount draws it
        header = self.query_one(HeaderBar)
        header.mode_line = getattr(self.app, "mode_line", "")
        header.waiting = getattr(self.app, "waiting", "")
        header.draw(view, now)
        self.query_one("#health-strip", Static).update(self.health_strip(view))
        ask = self.ask_block(view, read_only)
        self.query_one("#phase-ask", Static).update(ask)
        self.query_one("#phase-ask", Static).display = bool(ask)
        self.query_one("#phase-text", Static).update(self.body(view, read_only))

    def health_strip(self, view: SessionView) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        out.append(" Health: ", style="bold")
        if not view.probes:
            out.append((getattr(self.app, "waiting", "") or "waiting for the session to start")
                       if view.started_at is None else "no health probes in this plan", style="italic")
            return out
        states = {probe.id: probe.state for probe in view.probes.values()}
        full = health_summary(self, states)
        out.append_text(full if len(full) + 9 <= self.size.width else health_summary(self, states, compact=True))
        return out

    def body(self, view: SessionView, read_only: bool) -> Text:
        return Text()

    #: the pending request kinds this screen asks
    kinds: tuple[str, ...] = ()

    def ask_block(self, view: SessionView, read_only: bool) -> Text:
        out = Text()
        request = view.pending
        if request is None or request.kind not in self.kinds:
            if not view.exit_state and not view.current_step:
                out.append(f"{view.outcome}…", style="italic")  # e.g. preparing the plan review: say so
            return out
        out.append(request.question, style="bold")
        out.append("\n")
        if read_only:
            out.append("read-only: waiting for the operator's answer", style="italic")
            return out
        padding = 8 if self.app.has_class("-screen-share") and not self.has_class("-compact") else 6
        out.append_text(key_hint(request.options, extra=self.extra_keys(view), width=max(20, self.size.width - padding)))
        reasons = [CHOICES[c][1] for c in request.options if c in CHOICES and needs_reason(c, request.needs_reason)]
        if reasons:
            out.append(f"\nA reason is asked for: {', '.join(reasons)}.", style="italic")
        return out

    def extra_keys(self, view: SessionView) -> list[tuple[str, str, str]]:
        return []


class InputsScreen(PhaseScreen):
    """Required Inputs: each required input with its check result; a missing one shows its remediation path."""

    phase = "inputs"
    kinds = ("input",)

    def body(self, view: SessionView, read_only: bool) -> Text:
        out = Text()
        out.append("Required inputs", style="bold underline")
        out.append("  (procedure section Required Inputs: a missing input halts the rollback or takes its "
                   "remediation path)\n")
        for category in ("artifact", "decision", "constraint"):
            items = [i for i in view.inputs if i.category == category]
            if not items:
                continue
            out.append(f"\n{CATEGORY_TITLES[category]}\n", style="bold")
            for item in items:
                if item.ok is True:
                    out.append("  ✔ present  ", style=f"bold {colour_of(self, 'done')}")
                elif item.ok is False:
                    out.append("  ✖ MISSING  ", style=f"bold {colour_of(self, 'failed')}")
                else:
                    out.append("  ? confirm  ", style=f"bold {colour_of(self, 'awaiting_decision')}")
                out.append(item.id, style="bold")
                if item.detail:
                    out.append(f": {item.detail}")
                out.append("\n")
                if item.ok is not True and item.remediation:
                    out.append(f"             remediation: {item.remediation}\n", style="italic")
                if item.choice:
                    out.append(f"             operator chose: {item.choice.replace('_', ' ')}\n")
        return out


class PlanReviewScreen(PhaseScreen):
    """Plan Requirement: the rendered Rollback Plan; nothing runs before the operator approves it."""

    phase = "plan_review"
    kinds = ("plan_review",)
    BINDINGS = [Binding("pagedown", "scroll(1)", "Page down", id="review.pagedown"),
                Binding("pageup", "scroll(-1)", "Page up", id="review.pageup"),
                Binding("i", "raw_messages", "Raw messages", show=False, id="review.raw")]

    def __init__(self) -> None:
        super().__init__()
        self.raw_messages: list[str] = []

    def compose_body(self) -> ComposeResult:
        yield Static(id="phase-text")
        yield Static(id="plan-markdown")

    def draw(self, view: SessionView, now: datetime, read_only: bool) -> None:
        request = view.pending
        detail = request.evidence.get("detail", "") if request and request.kind == "plan_review" else ""
        if detail and getattr(self, "_shown", None) != detail:
            self._shown = detail
            self._markdown, self.raw_messages = fold_library_messages(detail)
        super().draw(view, now, read_only)
        if not self.query("#plan-markdown") or not detail or getattr(self, "_drawn", None) == detail:
            return
        from rich.markdown import Markdown

        self._drawn = detail
        # no OSC 8 hyperlinks: a link in plan text is shown as text and its address, never made clickable
        self.query_one("#plan-markdown", Static).update(Markdown(self._markdown, hyperlinks=False))

    def extra_keys(self, view: SessionView) -> list[tuple[str, str, str]]:
        return [("i", "raw library messages", "raw")] if self.raw_messages else []

    def action_raw_messages(self) -> None:
        from rollback_tui.ui.modals import DetailScreen

        if self.raw_messages:
            self.app.push_screen(DetailScreen("What the library said", [Text(m) for m in self.raw_messages]))

    def body(self, view: SessionView, read_only: bool) -> Text:
        out = Text()
        out.append("Rollback Plan review", style="bold underline")
        out.append("  (procedure section Plan Requirement: the plan is reviewed before execution begins)")
        if view.plan_review is not None:
            out.append(f"\nPlan {'approved' if view.plan_review else 'rejected'}.")
        out.append("\n")
        return out

    def action_scroll(self, pages: int) -> None:
        body = self.query_one("#phase-body", VerticalScroll)
        if pages > 0:
            body.scroll_page_down()
        else:
            body.scroll_page_up()


#: A library's own words quoted in a plan review detail (`Alembic said: CommandError: …`).
LIBRARY_SAID = re.compile(r"^(?P<indent>\s*)(?P<who>[A-Z][\w.-]{1,30}) said: (?P<raw>.+)$", re.MULTILINE)


def fold_library_messages(markdown: str) -> tuple[str, list[str]]:
    """Each quoted library message replaced by one sentence of ours; the raw texts, for the `i` key."""
    raw: list[str] = []

    def fold(match: re.Match[str]) -> str:
        raw.append(f"{match['who']}: {match['raw']}")
        return (f"{match['indent']}{match['who']} could not preview this action: the reason is under Risks and "
                f"unknowns (key i shows {match['who']}'s own message)")

    return LIBRARY_SAID.sub(fold, markdown), raw


def same_person_note(view: SessionView, approval: dict[str, str]) -> Text:
    """' ⚠ same person as for <role>' when the approver also approved for another role (a plan allowing it): the
    engine's `same_person_as`, or (journals from before it was recorded) the same name, case aside."""
    roles = {a["role"]: a["role_title"] for a in view.approvals}
    also = approval.get("same_person_as") or ""
    name = approval["name"].strip().casefold()
    others = [roles.get(also, also)] if also else [
        a["role_title"] for a in view.approvals if a["role"] != approval["role"] and a["name"].strip().casefold() == name]
    out = Text()
    if others:
        allowed = "allowed by this plan" if view.allow_same_person else "NOT allowed by this plan"
        out.append(f"  ⚠ same person as for {', '.join(others)} ({allowed})", style="bold")
    return out


class ApprovalsScreen(PhaseScreen):
    """Validation & Acceptance Criteria: each required role signs off by name."""

    phase = "approval"
    kinds = ("approval",)

    def body(self, view: SessionView, read_only: bool) -> Text:
        out = Text()
        out.append("Approvals", style="bold underline")
        out.append("  (procedure section Validation & Acceptance Criteria: each role signs off by name)\n\n")
        given = {a["role"]: a for a in view.approvals}
        request = view.pending
        for role in view.roles:
            role_id = role.get("id", "")
            title = role.get("title", role_id)
            gates = ", ".join(role.get("approves") or [])
            if role_id in given:
                out.append("  ✔ approved ", style=f"bold {colour_of(self, 'done')}")
                out.append(f"{title} ({gates}) by {given[role_id]['name']}")
                also = given[role_id].get("same_person_as")
                if also:  # the plan allows it; the operator still sees that one person holds two roles
                    out.append(f"  ⚠ same person as the {self._title(view, also)} approver",
                               style=f"bold {colour_of(self, 'awaiting')}")
                out.append("\n")
            elif request is not None and request.kind == "approval" and request.subject == role_id:
                out.append("  ? asking   ", style=f"bold {colour_of(self, 'awaiting_decision')}")
                out.append(f"{title} ({gates})\n")
            else:
                out.append(f"  · pending  {title} ({gates})\n")
        if not view.roles:
            for approval in view.approvals:
                out.append(f"  ✔ approved {approval['role_title']} by {approval['name']}\n")
        if request is not None and request.kind == "approval" and not read_only:
            out.append("\nApproving asks for the approver's name.", style="italic")
        return out

    @staticmethod
    def _title(view: SessionView, role_id: str) -> str:
        return next((str(r.get("title") or role_id) for r in view.roles if r.get("id") == role_id), role_id)


class SummaryScreen(PhaseScreen):
    """The end: outcome, per-scope result, report path and signature status."""

    phase = "summary"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to cockpit", id="summary.back"),
                Binding("q", "app.quit", "Quit", id="summary.quit")]

    def body(self, view: SessionView, read_only: bool) -> Text:
        app: CockpitApp = self.app  # type: ignore[assignment]
        out = Text()
        out.append("Session summary\n\n", style="bold underline")
        out.append("Outcome: ", style="bold")
        out.append(f"{view.outcome}\n", style=f"bold {colour_of(self, 'done' if view.exit_state == 'completed' else 'failed')}")
        if view.message:
            out.append(f"{view.message}\n")
        out.append("\nReport: ", style="bold")
        info: dict[str, Any] = app.report_info
        out.append(f"{one_line(str(info.get('path') or 'not written yet'))}\n")
        out.append("Signature: ", style="bold")
        out.append(f"{one_line(str(info.get('signature') or 'unknown'))}\n")
        if info.get("journal"):
            out.append("Journal: ", style="bold")
            out.append(f"{one_line(str(info['journal']))}\n")
        out.append("\nPer scope:\n", style="bold")
        for scope in SCOPES:
            outcome = view.scopes.get(scope, "not_applicable" if not view.scopes else "")
            if outcome:
                out.append(f"  {SCOPE_WORDS.get(outcome, outcome):<26} {scope}\n")
        if view.approvals:
            out.append("\nApprovals: ", style="bold")
            for index, approval in enumerate(view.approvals):
                out.append(("; " if index else "") + f"{approval['role_title']} by {approval['name']}")
                out.append_text(same_person_note(view, approval) if index else Text())
            out.append("\n")
        if view.signals:
            out.append("\nSignals: ", style="bold")
            out.append(", ".join(f"“{s}”" for s in view.signals) + "\n")
        out.append(f"\n{len(view.decisions)} decisions recorded; {view.output_lines:,} output lines.\n")
        out.append("Esc: back to the cockpit · q: quit", style="italic")
        return out
