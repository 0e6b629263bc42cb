"""What the screens say is true and complete: loading is not 'no probes', keys and step names are never cut,
evidence is shown in full (digests shortened alike), sparklines end with the newest sample, library messages are
folded behind a key. Driven on the real demo's recorded gates where there is one."""

from __future__ import annotations

from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.evidence import _shorten_pair, check_rows
from rollback_tui.ui.keybar import KeyBar
from rollback_tui.ui.panes import HeaderBar, HealthPane, sparkline
from rollback_tui.ui.screens import fold_library_messages
from demo_gates import demo_app, until_question
from harness import settle, wait_for_request
from test_demo_snapshots import screen_text


async def test_while_the_plan_loads_the_screen_says_so_never_no_probes() -> None:
    app = CockpitApp(loading="loading plan demo.yaml …")  # no driver: it stays loading
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        health = str(app.main_screen.query_one(HealthPane).render())
        assert "loading plan…" in health and "no health probes" not in health
        header = screen_text(app)
        assert "loading plan…" in header and "waiting for events" not in header


async def test_key_bar_shows_every_key_at_80_columns() -> None:
    app = demo_app(until_question("gate", "code"), theme="screen-share")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_request(pilot, "gate", "code")
        bar = app.main_screen.query_one(KeyBar)
        shown = screen_text(app)
        for _key, display, description, _enabled in bar.keys()[0]:
            assert f"{display} {description}" in shown, (display, description, shown)  # none cut off
        assert len(bar.span_rows) and max(bar.span_rows) == 1  # two rows at 80 columns, not one cut row
        app._ask[1].cancel()  # type: ignore[index]


async def test_step_names_are_not_cut_at_160_columns() -> None:
    app = demo_app(until_question("gate", "validate"), theme="incident-dark")
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_request(pilot, "gate", "validate")
        shown = screen_text(app)
        for step in app.view.steps:
            assert step.title in shown, step.title
        app._ask[1].cancel()  # type: ignore[index]


async def test_phase_screens_show_health_from_the_first_question() -> None:
    app = demo_app(until_question("input", "", "rollback-approved"))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_request(pilot, "input")
        await settle(pilot, lambda: app.phase == "input")
        await pilot.pause()
        first_rows = screen_text(app).splitlines()[:5]
        assert any(row.startswith(" Health:") for row in first_rows), first_rows
        assert "confirm: Rollback of checkout-service 1.5.0" in " ".join(screen_text(app).split())  # pinned
        app._ask[1].cancel()  # type: ignore[index]


async def test_plan_review_folds_the_library_message_behind_a_key() -> None:
    app = demo_app(until_question("plan_review"))
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_request(pilot, "plan_review")
        await settle(pilot, lambda: app.phase == "plan_review")
        await pilot.pause()
        screen = app.screen
        assert "CommandError" not in screen._markdown and "Alembic could not preview this action" in screen._markdown
        await pilot.press("i")
        await pilot.pause()
        assert "CommandError: This operation cannot proceed in --sql mode" in " ".join(screen_text(app).split())
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is screen
        app._ask[1].cancel()  # type: ignore[index]


def test_fold_keeps_other_text_and_collects_each_message() -> None:
    text = "intro\n  Alembic said: CommandError: boom\nplain line: not said\n  Git said: fatal: x\n"
    folded, raw = fold_library_messages(text)
    assert raw == ["Alembic: CommandError: boom", "Git: fatal: x"]
    assert "intro" in folded and "plain line: not said" in folded and "boom" not in folded


def test_digests_are_shortened_the_same_way_with_the_difference_visible() -> None:
    a = "sha256:" + "ab" * 10 + "0123456789" + "cd" * 17
    b = "sha256:" + "ab" * 10 + "01234f6789" + "cd" * 17
    seen, wanted = _shorten_pair(a, b)
    assert len(seen) < len(a) and len(seen) == len(wanted)
    assert "12345" in seen and "1234f" in wanted and seen.replace("12345", "1234f") == wanted  # same window, the difference in it
    same, same_too = _shorten_pair(f"{'e' * 64} (live)", f"{'e' * 64} (snapshot)")
    assert same.split()[0] == same_too.split()[0] == "e" * 12 + "…"
    assert _shorten_pair("5ba2f7973a6a1c77", "5ba2f7973a6a1c77 (snapshot)") == ("5ba2f7973a6a1c77",
                                                                               "5ba2f7973a6a1c77 (snapshot)")


def test_a_check_is_wrapped_never_cut() -> None:
    check = {"check": "sha256 of /srv/" + "x" * 90, "observed": "o" * 70, "expected": "z" * 70 + " (snapshot)",
             "ok": False}
    rows = [row.plain for row in check_rows(check, 40, "red")]
    assert all(len(row) <= 40 for row in rows)
    joined = "".join(row.strip() for row in rows)
    assert "x" * 90 in joined and "o" * 70 in joined and "z" * 70 in joined and "(snapshot)" in joined


def test_sparkline_ends_with_the_newest_sample_and_hides_old_failures_once_healthy() -> None:
    history = [None, None, *[float(i) for i in range(30)]]
    line = sparkline(history, 8)
    assert len(line) == 8 and line[-1] == "█"  # the newest (highest) last, the oldest dropped
    assert sparkline([None, 5.0, 6.0], 8, healthy=True) == "·▁█"
    assert sparkline([5.0, None], 8, healthy=False) == "▁×"


async def test_header_never_says_waiting_for_events_during_a_replay_load() -> None:
    app = CockpitApp(loading="loading journal demo.journal.jsonl …")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.main_screen.query_one(HeaderBar).waiting == "loading journal…"


async def test_evidence_that_does_not_fit_scrolls_by_key_and_says_so() -> None:
    app = demo_app(until_question("gate", "configuration"), theme="screen-share")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_request(pilot, "gate", "configuration")
        await pilot.pause()
        pane = app.main_screen.query_one("#decision")
        evidence = app.main_screen.query_one("#decision-evidence")
        assert evidence.max_scroll_y > 0 and "more evidence" in str(pane.border_subtitle)
        before = screen_text(app)
        await pilot.press("shift+down", "shift+down")
        await pilot.pause()
        after = screen_text(app)
        assert evidence.scroll_y > 0 and before != after
        for text in ("g:go", "n:no-go", "a:abort", "Health:"):  # the keys and health stay put
            assert text in after
        app._ask[1].cancel()  # type: ignore[index]


async def test_between_the_last_input_and_the_plan_review_the_screen_says_what_runs() -> None:
    from rollback_tui.ui.drivers import ScriptDriver

    events = until_question("plan_review")[:-1]  # the four inputs answered; the plan review is being prepared
    app = CockpitApp(ScriptDriver(events, answer=False), clock=lambda: events[-1].ts, operator="alice")
    async with app.run_test(size=(80, 24)) as pilot:
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert "preparing the plan review" in screen_text(app)
