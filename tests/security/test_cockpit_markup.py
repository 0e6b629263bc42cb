"""Rich/Textual markup in plan or host text is shown as text: it cannot style, link or hide anything on screen."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from textual.content import Content
from textual.geometry import Region

from rollback_tui.record import events as ev
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.drivers import ScriptDriver

LINK = "[link=https://evil.invalid/steal]click to approve[/link]"
STYLE = "[reverse bold green]✔ verified[/]"
TS = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def empty_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROLLBACK_TUI_CONFIG_DIR", str(tmp_path))


def rendered(widget: object) -> tuple[str, bool]:
    """The widget's text as drawn, and whether any drawn cell carries a link."""
    size = widget.size  # type: ignore[attr-defined]
    strips = widget.render_lines(Region(0, 0, size.width, size.height))  # type: ignore[attr-defined]
    text = "\n".join("".join(segment.text for segment in strip) for strip in strips)
    linked = any(segment.style is not None and segment.style.link for strip in strips for segment in strip)
    return text, linked


def events() -> list[object]:
    outline = {"metadata": {"name": f"plan {STYLE}"},
               "steps": [{"id": "flags", "title": f"Flags {LINK}", "applicable": True,
                          "actions": [{"id": "off", "kind": "shell"}]}]}
    return [
        ev.SessionStarted(operator="op", plan_path="/p.yaml", plan_sha256="0" * 64, plan_name=f"plan {STYLE}",
                          host="h", pid=1, tool_version="0", outline=outline, ts=TS, seq=1),
        ev.StepStarted(step="flags", attempt=1, ts=TS, seq=2),
        ev.ActionOutput(step="flags", action="off", stream="stdout", lines=[f"host says {LINK}"], ts=TS, seq=3),
        ev.DecisionRequested(request_id=1, kind="gate", step="flags", question=f"Go? {LINK}",
                             options=["go", "abort"], needs_reason=["abort"], ts=TS, seq=4),
    ]


async def test_plan_and_host_markup_is_shown_literally() -> None:
    driver = ScriptDriver(events(), answer=False)
    app = CockpitApp(driver, operator="op")
    async with app.run_test(size=(160, 40)) as pilot:
        for _ in range(200):
            await pilot.pause()
            if app.view.pending is not None:
                break
        app.main_screen.query_one("#log").flush()
        app.redraw()
        await pilot.pause()
        header, linked = rendered(app.main_screen.query_one("#header"))
        assert "plan [reverse bold green]✔ verified[/]" in header and not linked
        checklist, linked = rendered(app.main_screen.query_one("#checklist"))
        assert "Flags [link" in checklist and not linked  # (the narrow pane cuts the rest)
        log, linked = rendered(app.main_screen.query_one("#log-lines"))
        assert "host says [link=https://evil.invalid/steal]" in log and not linked
        decision, linked = rendered(app.main_screen.query_one("#decision-head"))  # the question (pinned)
        assert "Go? [link=https://evil.invalid/steal]" in decision and not linked

        # the command palette parses markup in its titles: a step title there is escaped
        titles = [command[0] for command in app.get_system_commands(app.screen)]
        jump = next(title for title in titles if title.startswith("Jump to step 2"))
        assert Content.from_markup(jump).plain == f"Jump to step 2: Flags {LINK}"


async def test_prompts_show_markup_and_escapes_as_text() -> None:
    from rollback_tui.ui.modals import ConfirmPrompt, TextPrompt

    app = CockpitApp()
    async with app.run_test(size=(120, 30)) as pilot:
        app.push_screen(TextPrompt(f"Approve as {STYLE}", f"Go? {LINK}\x1b]52;c;SGVsbG8=\x07"))
        await pilot.pause()
        title, title_linked = rendered(app.screen.query_one("#prompt-title"))
        text, text_linked = rendered(app.screen.query_one("#prompt-text"))
        assert "Approve as [reverse bold green]✔ verified[/]" in title and not title_linked
        assert "Go? [link=https://evil.invalid/steal]" in text and "␛]52;c;SGVsbG8=␇" in text and not text_linked
        app.pop_screen()
        app.push_screen(ConfirmPrompt(f"Confirm {STYLE}", f"{LINK}"))
        await pilot.pause()
        text, linked = rendered(app.screen.query_one("#prompt-text"))
        assert "[link=https://evil.invalid/steal]" in text and not linked
