"""The report of a long journal is streamed (light output batches, signed over its SHA-512): same bytes, valid."""

from __future__ import annotations

import subprocess
from pathlib import Path

from report_sshtools import Key

from rollback_tui.record import events as ev
from rollback_tui.record.journal import Journal, read_journal
from rollback_tui.record.lightevents import OutputRef
from rollback_tui.report.render import ReportHeader, render_report, signed_line
from rollback_tui.report.verify import verify_report
from rollback_tui.report.writer import write_report


def _journal(path: Path) -> None:
    events: list[ev.EventBase] = [
        ev.SessionStarted(operator="olivia", plan_path="/p.yaml", plan_sha256="0" * 64, plan_name="long",
                          host="h", pid=1, tool_version="0", outline={"window": 600, "steps": []}),
        ev.StepStarted(step="assess"), ev.ActionStarted(step="assess", action="look", kind="shell")]
    events += [ev.ActionOutput(step="assess", action="look", host="web-1",
                               lines=[f"line {n} é \x1b[31m \"quoted\" \\ {'x' * (n % 50)}" for n in range(k % 7)])
               for k in range(5000)]
    events += [ev.ActionFinished(step="assess", action="look", status="ok"),
               ev.SessionFinished(exit_state="completed")]
    with Journal.create(path) as journal:
        for start in range(0, len(events), 1000):
            journal.append_many(events[start:start + 1000])


def test_a_streamed_signed_report_is_the_rendered_report_and_verifies(tmp_path: Path, keys: dict[str, Key]) -> None:
    journal = tmp_path / "j.jsonl"
    _journal(journal)
    light = read_journal(journal, light=True).events
    assert sum(isinstance(event, OutputRef) for event in light) == 5000
    key = keys["ed25519"]
    report = tmp_path / "r.md"
    outcome = write_report(light, report, sign_key=key.path, no_sign=False, operator="olivia",
                           journal_path=journal)
    assert outcome.signed and outcome.error == ""
    full = read_journal(journal).events
    fingerprint = outcome.signer.split()[0]
    header = ReportHeader(signature=signed_line("olivia", fingerprint, outcome.signer[len(fingerprint):].strip(),
                                                "r.md.sig"), journal=str(journal))
    assert report.read_bytes() == render_report(full, header).encode("utf-8")
    allowed = tmp_path / "allowed"
    allowed.write_text(key.allowed_line("olivia") + "\n")
    result = verify_report(report, allowed_signers=allowed)
    assert result.ok, result.problems
    assert sum(isinstance(event, OutputRef) for event in result.events) == 5000  # read light from the report too
    assert [event.lines for event in result.events[3:10]] == [event.lines for event in full[3:10]]
    checked = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", "olivia", "-n", "rollback-tui",
                              "-s", f"{report}.sig"], input=report.read_bytes(), capture_output=True)
    assert checked.returncode == 0, checked.stderr
