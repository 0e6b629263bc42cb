"""The report file: title, signature preamble, human sections, hash-chained event log, integrity (deterministic)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from rollback_tui.record.events import Event
from rollback_tui.report import closing, hosts, sections
from rollback_tui.report.chain import GENESIS, encode_log
from rollback_tui.report.facts import Facts, collect
from rollback_tui.report.md import code, inline

FORMAT_MARK = "<!-- rollback-tui report v1 -->"
SIGNATURE_PREFIX = "> **Signature:** "
UNSIGNED_PREFIX = "> **UNSIGNED REPORT:** "
JOURNAL_PREFIX = "> **Journal:** "
LOG_HEADING = "## Event log"
INTEGRITY_HEADING = "## Integrity"
HEAD_PREFIX = "- Chain head (SHA-256 of the last log line): `"
FENCE_OPEN = "```jsonl"
FENCE_CLOSE = "```"


@dataclass(frozen=True)
class ReportHeader:
    """The writer's facts that are not events: how the report is signed and where the journal is."""

    signature: str = ""
    """Text of the signature line, or '' for none."""
    unsigned: str = ""
    """Why the report is unsigned ('' when signed or not yet decided)."""
    journal: str = ""

    def lines(self) -> list[str]:
        out = []
        if self.unsigned:
            out.append(UNSIGNED_PREFIX + inline(self.unsigned, 1000))
        if self.signature:
            out.append(SIGNATURE_PREFIX + self.signature)
        if self.journal:
            out.append(JOURNAL_PREFIX + code(self.journal, 1000))
        return out


def signed_line(operator: str, fingerprint: str, comment: str, sig_name: str) -> str:
    who = f"{code(fingerprint)}" + (f" ({inline(comment)})" if comment else "")
    return (f"SSHSIG (namespace `rollback-tui`) by operator {code(operator)}, key {who}, in {code(sig_name)}. "
            "Check it with `rollback-tui verify` or `ssh-keygen -Y verify -n rollback-tui -I OPERATOR`.")


def signed_operator(signature_line: str) -> str:
    """The operator a signature line names ('' when it names none)."""
    match = re.search(r"by operator `([^`]+)`", signature_line)
    return match.group(1) if match else ""


#: Sections left out of a report that has nothing for them (the report of a session without waves is unchanged).
OPTIONAL = frozenset({"Hosts in waves"})
SECTIONS: list[tuple[str, Callable[[Facts, ReportHeader], list[str]]]] = [
    ("Summary", lambda f, h: sections.summary(f)),
    ("Outcome by scope", lambda f, h: sections.scopes(f)),
    ("Audit trail", lambda f, h: sections.audit(f)),
    ("Required inputs and plan review", lambda f, h: sections.inputs(f)),
    ("Steps", lambda f, h: sections.steps(f)),
    ("Hosts in waves", lambda f, h: hosts.section(f.waved)),
    ("Decisions", lambda f, h: sections.decisions(f)),
    ("Approvals", lambda f, h: sections.approvals(f)),
    ("Validation results", lambda f, h: closing.validation(f)),
    ("Health and rollback window", lambda f, h: closing.health(f)),
    ("Definition of done", lambda f, h: closing.done(f)),
    ("Signals", lambda f, h: closing.signals(f)),
    ("Links", lambda f, h: closing.links(f, h.journal)),
    ("Root cause analysis", lambda f, h: closing.root_cause(f)),
]


def compose(events: list[Event], header: ReportHeader, log_lines: list[str], head: str,
            log_count: int | None = None) -> str:
    """The whole file from the events plus the already-encoded log. Verify passes no log lines and their
    count instead, to compare everything but the log body (checked line by line by the chain)."""
    count = len(log_lines) if log_count is None else log_count
    before, after = compose_around_log(events, header, count)
    return before + "\n" + "".join(line + "\n" for line in log_lines) + after(head)


def compose_around_log(events: list[Event], header: ReportHeader, count: int) -> tuple[str, Callable[[str], str]]:
    """The file up to the log's opening fence, and (given the chain head) from its closing fence on: the file is
    `before + "\n" + every log line + "\n" + after(head)`, so a writer can stream the log in between."""
    facts = collect(events)
    name = str((facts.started.plan_name if facts.started else "") or facts.metadata.get("name") or "session")
    out = [f"# Rollback report: {inline(name)}", "", FORMAT_MARK]
    preamble = header.lines()
    if preamble:
        out += [""] + preamble
    for title, build in SECTIONS:
        body = build(facts, header)
        if body or title not in OPTIONAL:
            out += ["", f"## {title}", ""] + body
    seqs = [e.seq for e in events]
    events_line = f"- Events: {count}" + (f" (seq {min(seqs)}–{max(seqs)})" if seqs else "")
    out += ["", LOG_HEADING, "",
            f"{count} events in canonical JSON, one per line. Each line's `prev` is the SHA-256 of the line "
            "before it (the first line's: SHA-256 of `rollback-tui event log v1`). Every section above is generated "
            "from this log.", "", FENCE_OPEN]

    def after(head: str) -> str:
        return "\n".join([FENCE_CLOSE, "", INTEGRITY_HEADING, "", events_line, f"{HEAD_PREFIX}{head}`",
                          "- `rollback-tui verify REPORT` checks the signature, the hash chain, and that every section "
                          "matches what the event log generates.", ""])

    return "\n".join(out), after


def render_report(events: list[Event], header: ReportHeader | None = None) -> str:
    """The report's markdown for these events (deterministic: same events and header, same bytes)."""
    lines, head = encode_log(list(events))
    return compose(list(events), header or ReportHeader(), lines, head)


def split_sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs in file order; the part before the first '## ' heading is called 'Header'.
    The event log's fence is skipped over so no log line can pass for a heading."""
    parts: list[tuple[str, list[str]]] = [("Header", [])]
    in_log = False
    for line in text.split("\n"):
        if line == FENCE_OPEN and parts[-1][0] == LOG_HEADING[3:]:
            in_log = True
        elif in_log and line == FENCE_CLOSE:
            in_log = False
        elif not in_log and line.startswith("## "):
            parts.append((line[3:], []))
            continue
        parts[-1][1].append(line)
    return [(title, "\n".join(body)) for title, body in parts]


__all__ = ["GENESIS", "ReportHeader", "compose", "render_report", "signed_line", "split_sections"]
