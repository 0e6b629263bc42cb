"""The health pane draws a value probe's values (prometheus) as a chart with its threshold line and says the current
value in words; samples carry the value since it was added, and older journals (3-element samples) still fold.
Driven on a real demo run with Prometheus (tests/ui/fixtures/demo-metrics.journal.jsonl, recorded by
`rollback-tui demo --headless --answers auto --no-sign --operator alice` with prometheus on PATH)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rollback_tui.record.events import HealthSample, SessionStarted
from rollback_tui.record.journal import read_journal
from rollback_tui.ui.app import CockpitApp
from rollback_tui.ui.panes import HealthPane, value_chart, value_words
from rollback_tui.ui.viewmodel import SessionView
from demo_gates import FIXTURE as OLD_FIXTURE
from harness import LastAskDriver, wait_for_request
from test_demo_snapshots import screen_text

FIXTURE = Path(__file__).parent / "fixtures" / "demo-metrics.journal.jsonl"


def _events(path: Path) -> list[Any]:
    return list(read_journal(path).events)


def _until_validate_gate(events: list[Any]) -> list[Any]:
    for index, event in enumerate(events):
        if event.type == "decision_requested" and event.kind == "gate" and event.step == "validate":
            return events[:index + 1]
    raise AssertionError("no validate gate")


def _fold(events: list[Any]) -> SessionView:
    view = SessionView()
    for event in events:
        view.apply(event)
    return view


# ---------------------------------------------------------------- the chart, drawn


def test_the_chart_draws_values_newest_last_and_the_threshold_where_no_bar_covers_it() -> None:
    top, bottom = value_chart([None, 1.0, 0.6, 0.3, 0.0, 0.0], (0.01,), 10)
    assert top == (" █▂   ", "top 1")
    assert bottom == ("·██▅──", "base 0  ─ limit 0.01")  # ─: the limit, at the bottom of a 0..1 scale
    # a threshold above the values: the scale reaches it, its line in the top row over the low bars
    top, bottom = value_chart([0.2, 0.3, 0.1], (0.4,), 10)
    assert top == ("─▄─", "top 0.4  ─ limit 0.4") and bottom == ("██▄", "base 0")
    # a range: each bound labelled in its own row; the newest `width` values only
    top, bottom = value_chart([5.0, 0.02, 0.03], (0.01, 0.05), 2)
    assert top[1] == "top 0.05  ─ limit 0.05" and bottom[1] == "base 0  ─ limit 0.01" and len(top[0]) == len(bottom[0]) == 2
    # no value yet at all: gaps, never a made-up bar
    assert value_chart([None, None], (0.01,), 8)[1][0] == "··"


def test_the_current_value_in_words() -> None:
    assert value_words(0.0042, "< 0.01", (0.01,)) == "now 0.0042, good when < 0.01"
    assert value_words(None, "between 0.01 and 0.05", (0.01, 0.05)) == "no value yet, good when between 0.01 and 0.05"
    assert value_words(0.0, "< 0.01", (0.01,), short=True) == "now 0 (good: < 0.01)"
    assert value_words(3.0, "", ()) == "now 3"


# ---------------------------------------------------------------- the fold


def test_values_fold_from_samples_and_the_threshold_from_the_outline() -> None:
    events = _until_validate_gate(_events(FIXTURE))
    view = _fold(events)
    probe = view.probes["checkout-5xx-ratio"]
    assert probe.kind == "prometheus" and probe.condition == "< 0.01" and probe.thresholds == (0.01,)
    assert probe.measures and probe.value == 0.0
    recorded = [row[3] for event in events if event.type == "health_sample"
                for row in event.samples.get("checkout-5xx-ratio", []) if len(row) > 3]
    assert list(probe.values)[-len(recorded):] == recorded[-len(probe.values):]
    assert 1.0 in probe.values  # the bad release: every /quote failed, before the rollback
    for other in ("checkout-health", "checkout-release", "orders-intact"):  # no values: latency sparklines
        assert not view.probes[other].measures and not view.probes[other].values


def test_an_old_journal_without_values_still_folds() -> None:
    """The demo journal recorded before samples had values: every sample is [t, state, latency]."""
    events = _events(OLD_FIXTURE)
    samples = [row for event in events if event.type == "health_sample" for rows in event.samples.values()
               for row in rows]
    assert samples and all(len(row) == 3 for row in samples)
    view = _fold(events)
    for probe in view.probes.values():
        assert not probe.measures and probe.value is None and not probe.values
        assert probe.history  # the latency sparkline as before


def test_a_value_probe_of_an_old_journal_and_odd_values() -> None:
    started = SessionStarted(seq=1, plan_path="p.yaml", plan_sha256="0" * 64, plan_name="p", operator="alice", pid=1,
                             host="h",
                             tool_version="0", outline={"probes": [{"id": "ratio", "kind": "prometheus",
                                                                    "condition": "< 0.01", "thresholds": [0.01]}]})
    view = SessionView()
    view.apply(started)
    view.apply(HealthSample(seq=2, samples={"ratio": [[-2.0, "down", 3.0], [-1.0, "down", 3.0, "NaN"],
                                                      [-0.5, "healthy", 2.0, 0.004], [-0.1, "unknown", None]]}))
    probe = view.probes["ratio"]
    assert list(probe.values) == [None, None, 0.004, None] and probe.value is None  # no value now: said so


# ---------------------------------------------------------------- on screen


async def _health_at(size: tuple[int, int], svg: Path | None = None) -> tuple[str, str]:
    events = _until_validate_gate(_events(FIXTURE))
    now: datetime = events[-1].ts + timedelta(seconds=5)
    app = CockpitApp(LastAskDriver(events), clock=lambda: now, operator="alice", theme="incident-dark")
    async with app.run_test(size=size) as pilot:
        await wait_for_request(pilot, "gate", "validate")
        await pilot.pause()
        pane = str(app.main_screen.query_one(HealthPane).render())
        shown = screen_text(app)
        if svg is not None:
            svg.write_text(app.export_screenshot())
        app._ask[1].cancel()  # type: ignore[index]
    return pane, shown


async def test_at_160_columns_the_chart_threshold_and_words_are_on_screen(tmp_path: Path) -> None:
    svg = Path(os.environ.get("VALUE_SPARKLINE_SVG") or tmp_path / "health-160x48.svg")
    pane, shown = await _health_at((160, 48), svg)
    rows = pane.splitlines()
    at = next(i for i, row in enumerate(rows) if " checkout-5xx-ratio " in row)
    assert rows[at].startswith("● healthy") and rows[at].rstrip().endswith("now 0, good when < 0.01")
    top, bottom = rows[at + 1], rows[at + 2]
    assert top.rstrip().endswith("top 1") and "█" in top  # the bad release's ratio of 1, before the rollback
    assert bottom.rstrip().endswith("base 0  ─ limit 0.01") and "───" in bottom.split(" base")[0]
    assert bottom.split(" base")[0].rstrip().endswith("─")  # the newest values are 0: under the line
    assert "now 0, good when < 0.01" in shown and "base 0  ─ limit 0.01" in shown  # on screen, not cut
    latency = next(r for r in rows if " checkout-health " in r).rstrip()
    assert "good when" not in latency and latency[-1] in "▁▂▃▄▅▆▇█·"  # latency probes keep their sparkline


async def test_at_80_columns_the_value_is_said_in_words() -> None:
    pane, shown = await _health_at((80, 24))
    rows = shown.splitlines()  # what the terminal shows: a narrow pane cuts a long row, so the words get their own
    at = next(i for i, row in enumerate(rows) if "● healthy   checkout-5xx-" in row)
    assert "now 0 (good: < 0.01)" in rows[at + 1]
    assert "base 0" not in pane  # compact: no chart rows
