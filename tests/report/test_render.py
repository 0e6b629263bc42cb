"""Rendering: the golden report, determinism, escaping of recorded text, exit states."""

from __future__ import annotations

from datetime import timedelta

from report_sessions import Recorder, outline, realistic_session
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode

from rollback_tui.record import events as ev
from rollback_tui.report.chain import GENESIS, decode_log, encode_log
from rollback_tui.report.render import ReportHeader, render_report, split_sections


class MarkdownSnapshot(SingleFileSnapshotExtension):
    _file_extension = "md"
    _write_mode = WriteMode.TEXT


def test_golden_report(snapshot) -> None:
    """The whole report of a realistic session; update with `pytest tests/report --snapshot-update` after reading the diff."""
    header = ReportHeader(signature="SSHSIG (namespace `rollback-tui`) by operator `alice`, key `SHA256:test`, in `r.md.sig`.",
                          journal="/var/lib/rollback/checkout.jsonl")
    assert render_report(realistic_session(), header) == snapshot(extension_class=MarkdownSnapshot)


def test_golden_aborted_report(snapshot) -> None:
    assert render_report(realistic_session("aborted"), ReportHeader(unsigned="written with --no-sign")) == snapshot(
        extension_class=MarkdownSnapshot)


def test_rendering_is_deterministic_and_sections_are_in_contract_order() -> None:
    events = realistic_session()
    text = render_report(events)
    assert text == render_report(list(events))
    titles = [title for title, _ in split_sections(text)]
    assert titles == ["Header", "Summary", "Outcome by scope", "Audit trail", "Required inputs and plan review", "Steps",
                      "Decisions", "Approvals", "Validation results", "Health and rollback window", "Definition of done",
                      "Signals", "Links", "Root cause analysis", "Event log", "Integrity"]
    assert text.endswith("\n") and "\r" not in text


def test_audit_trail_has_times_of_each_seed_item() -> None:
    sections = dict(split_sections(render_report(realistic_session())))
    audit = sections["Audit trail"]
    for line in ("| Rollback decision | 2026-11-26 09:30:16Z | plan review approved by alice |",
                 "| Feature flags disabled | 2026-11-26 09:30:39Z | step done |",
                 "| Infrastructure rolled back | — | not applicable |",
                 "| Rollback completion | 2026-11-26 09:31:55Z | completed |"):
        assert line in audit


def test_aborted_session_ticks_only_what_happened() -> None:
    sections = dict(split_sections(render_report(realistic_session("aborted"))))
    done = sections["Definition of done"]
    assert "- [x] Code rolled back successfully" in done
    assert "- [ ] Database migrations rolled back (if applicable) — step aborted" in done
    assert "- [ ] Rollback validated" in done
    assert "- [ ] Root cause analysis initiated" in done
    assert "❌ Aborted" in sections["Summary"]
    assert "| database | ❌ not rolled back | aborted |" in sections["Outcome by scope"]
    assert "abort by alice (action_failed, step database): data recovery needed; DBA paged" in sections["Root cause analysis"]


def test_recorded_text_cannot_forge_structure() -> None:
    """A reason with newlines, a fake heading, a fence and table pipes stays on one escaped line."""
    r = Recorder()
    r.add(ev.SessionStarted, 0, operator="eve", plan_path="p.yaml", plan_sha256="0" * 64, plan_name="x",
          host="h", pid=1, tool_version="0", outline=outline())
    r.decide("gate", "q?", ["go", "override"], "override", step="code",
             reason="ok\n## Signals\n```jsonl\n| a | b |\x1b[31m <b>bold</b>")
    text = render_report(r.events)
    titles = [title for title, _ in split_sections(text)]
    assert titles.count("Signals") == 1
    why = next(line for line in text.split("\n") if line.startswith("- Why: "))
    assert why == "- Why: ok ⏎ ## Signals ⏎ ```jsonl ⏎ \\| a \\| b \\|\\x1b[31m &lt;b>bold&lt;/b>"


def test_event_log_chain_round_trips() -> None:
    events = realistic_session()
    lines, head = encode_log(events)
    decoded = decode_log(lines)
    assert decoded.events == events and decoded.head == head and not decoded.broken and not decoded.dropped
    assert lines[0].startswith('{"prev":"' + GENESIS)
    assert encode_log([])[1] == GENESIS


def test_unfinished_session_says_so() -> None:
    events = realistic_session()[:30]
    sections = dict(split_sections(render_report(events)))
    assert "⏸ Unfinished" in sections["Summary"]
    assert "resume" in sections["Summary"]


def test_window_and_health_sections() -> None:
    r = Recorder()
    r.add(ev.SessionStarted, 0, operator="a", plan_path="p", plan_sha256="0" * 64, plan_name="n", host="h", pid=1,
          tool_version="0", outline=outline())
    r.add(ev.HealthAlert, probe="api", reason="down for 30s")
    r.add(ev.WindowWarning, 0, percent=100, elapsed=3600.0, window=3600.0)
    r.add(ev.SessionInterrupted, float(timedelta(minutes=1).total_seconds()), reason="SIGTERM")
    sections = dict(split_sections(render_report(r.events)))
    assert "`api`: down for 30s" in sections["Health and rollback window"]
    assert "100 % of the window used (1h of 1h)" in sections["Health and rollback window"]
    assert "interrupted: SIGTERM" in sections["Audit trail"]
    assert "the session was interrupted (SIGTERM)" in sections["Root cause analysis"]
