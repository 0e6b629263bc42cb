"""Verifying a report: signatures (expected namespace, no SHA-1 RSA), the hash chain, and every section."""

from __future__ import annotations

import gc
import json
import os
import stat
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rollback_tui.record import events as ev
from rollback_tui.record.events import Event
from rollback_tui.errors import ReportError, SignatureError
from rollback_tui.report import sshsig
from rollback_tui.report.allowed import SOURCES_HINT, AllowedSigners, Source, read
from rollback_tui.report.chain import decode_log
from rollback_tui.report.document import TITLE_PREFIX, ParsedReport, parse_report
from rollback_tui.report.render import FORMAT_MARK, LOG_HEADING, compose, signed_operator, split_sections

COSIGNERS_MAX_BYTES = 256 * 1024
COSIGNERS_MAX = 100
#: Logs at least this long are frozen out of the cyclic GC once loaded (see verify_report).
FREEZE_AT = 10_000
ALLOWED_SIGNERS_HINT = SOURCES_HINT + ' (lines like `alice namespaces="rollback-tui" ssh-ed25519 AAAA...`)'


@dataclass
class SignerInfo:
    identity: str
    role: str
    fingerprint: str
    ok: bool
    """The signature is valid AND an allowed-signers source vouches for the key as `identity`."""
    detail: str = ""
    """Why not ok, or what was (not) checked."""
    valid: bool = False
    """The signature alone is cryptographically valid over the file (says nothing of whose key it is)."""
    trusted: bool = False
    """Valid, and the allowed-signers source vouches for the key as `identity` in namespace rollback-tui
    (exactly what `ssh-keygen -Y verify -I identity` decides)."""


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str]
    signers: list[SignerInfo]
    line_endings_note: str
    events: list[Event]
    notes: list[str] = field(default_factory=list)
    """Things checked or not checked that are not failures (e.g. identity not checked)."""
    integrity_ok: bool = False
    """Hash chain intact and every section matches the event log (says nothing of who wrote it)."""
    signature_ok: bool | None = None
    """The operator's signature: True valid, False invalid or missing, None the report says it is unsigned."""
    dropped: list[str] = field(default_factory=list)
    trust: str = ""
    """The allowed-signers source used ('' when there was none: every signer is then unverified)."""
    unverified: bool = False
    """A signature is cryptographically valid but nothing says whose key it is (no allowed-signers source)."""
    operator: str = ""
    """The operator the report's signature must come from (the signature line, checked against the events)."""


def cosigners_path(report: Path) -> Path:
    return report.with_name(report.name + ".cosigners")


def read_cosigners(report: Path) -> list[dict[str, Any]]:
    path = cosigners_path(report)
    if not os.path.lexists(path):
        return []
    try:
        data = sshsig.read_small(path, COSIGNERS_MAX_BYTES, "co-signers file")
        entries = json.loads(data.decode("utf-8", "replace")).get("cosigners", [])
        if not isinstance(entries, list) or len(entries) > COSIGNERS_MAX:
            raise ValueError(f"'cosigners' must be a list of at most {COSIGNERS_MAX} entries")
    except (OSError, ValueError, AttributeError) as exc:
        raise SignatureError(f"co-signers file {path} is unreadable: {exc}") from None
    return [e for e in entries if isinstance(e, dict)]


def _line_endings(raw: bytes) -> tuple[bytes, str]:
    """The LF form of the bytes and what differs from it ('' when nothing)."""
    changes = []
    data = raw
    if b"\r\n" in data:
        data = data.replace(b"\r\n", b"\n")
        changes.append("its line endings were changed to CRLF")
    if not data.endswith(b"\n"):
        data += b"\n"
        changes.append("its final newline was dropped")
    return data, " and ".join(changes)


def _section_problems(parsed: ParsedReport, expected: str) -> list[str]:
    """Compare the file (log body cut out) with the regenerated text; line numbers are the file's."""
    have = split_sections(parsed.without_log)
    want = split_sections(expected)
    have_titles = [t for t, _ in have]
    problems = []
    line_of: dict[str, int] = {}
    number = 1
    for title, body in have:
        line_of.setdefault(title, number)
        number += body.count("\n") + (1 if title != "Header" else 0) + 1
        if title == LOG_HEADING[3:]:
            number += len(parsed.log_lines)
    have_map = dict(have)
    for title, body in want:
        if title not in have_map:
            problems.append(f"section '{title}' was removed")
            continue
        if have_map[title] != body:
            old, new = have_map[title].split("\n"), body.split("\n")
            at = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
            offset = line_of[title] + at + (1 if title != "Header" else 0)
            shown = old[at] if at < len(old) else "(end of section)"
            wanted = new[at] if at < len(new) else "(end of section)"
            problems.append(f"section '{title}' does not match what the event log generates: line {offset} reads "
                            f"{shown[:120]!r}, the events give {wanted[:120]!r}")
    extra = [t for t in have_titles if t not in dict(want)]
    problems += [f"section '{t}' was added (it is not generated from the event log)" for t in extra]
    if not problems and have_titles != [t for t, _ in want]:
        problems.append("sections were reordered")
    return problems


def _check_signature(sig_path: Path, raw: bytes, lf: bytes, change: str) -> tuple[Any, sshsig.SshSig, str]:
    """(key, signature, note): the note is set when only the line endings stop the signature matching."""
    sig = sshsig.load(sig_path)
    try:
        return sshsig.verify(raw, sig), sig, ""
    except SignatureError:
        if not change:
            raise
        try:
            key = sshsig.verify(lf, sig, sshsig.NAMESPACE)
        except SignatureError:
            raise SignatureError("the signature does not match the file's bytes") from None
        return key, sig, (f"the only change to the signed file is that {change}: its content is authentic; "
                          "restore the signed bytes (e.g. `dos2unix`, or add the final newline) to verify it exactly")


def _signer(sig_path: Path, raw: bytes, lf: bytes, change: str, identity: str, role: str,
            allowed: AllowedSigners | None) -> tuple[SignerInfo, str, str]:
    """(info, problem, line-endings note) for one signature file: valid over the bytes, then vouched for."""
    if not os.path.lexists(sig_path):
        return SignerInfo(identity, role, "", False, "signature file missing"), f"signature file {sig_path} is missing", ""
    try:
        key, sig, note = _check_signature(sig_path, raw, lf, change)
    except SignatureError as exc:
        return (SignerInfo(identity, role, "", False, str(exc)),
                f"{role} signature {sig_path.name} ({identity}): {exc}", "")
    if note:
        return SignerInfo(identity, role, sig.fingerprint, False, note), f"{sig_path.name}: {note}", note
    if allowed is None:
        detail = "signature cryptographically valid, signer UNVERIFIED (no allowed-signers source)"
        return (SignerInfo(identity, role, sig.fingerprint, False, detail, valid=True),
                f"{sig_path.name}: the signature is cryptographically valid, but the signer is unverified: nothing says "
                f"key {sig.fingerprint} belongs to {identity!r} ({SOURCES_HINT})", "")
    why = allowed.check(key, identity)
    if why:
        return (SignerInfo(identity, role, sig.fingerprint, False, f"not trusted as {identity!r}", valid=True),
                f"{sig_path.name}: key {sig.fingerprint} is not trusted to sign as {identity!r} in namespace "
                f"rollback-tui: {why}", "")
    return (SignerInfo(identity, role, sig.fingerprint, True, f"trusted as {identity!r} by {allowed.source.path}",
                       valid=True, trusted=True), "", "")


def _source(allowed_signers: Path | None, source: Source | None) -> AllowedSigners | None:
    if source is None and allowed_signers is not None:
        source = Source(Path(allowed_signers), "--allowed-signers")
    return read(source) if source is not None else None


def verify_report(path: Path, *, allowed_signers: Path | None = None, identity: str | None = None,
                  source: Source | None = None, require_roles: tuple[str, ...] | list[str] = ()) -> VerifyResult:
    """Check everything; raises ReportError only when the file is unreadable or not a report at all, and
    SignatureError when the allowed-signers source cannot be read. Without a source no signer is trusted."""
    allowed = _source(allowed_signers, source)
    was_enabled = gc.isenabled()
    gc.disable()  # a 100k-event log allocates ~1M objects that all survive: collecting them is wasted time
    try:
        result = _verify(Path(path), allowed, identity, tuple(require_roles))
    finally:
        if was_enabled:
            gc.enable()
    if len(result.events) >= FREEZE_AT:
        # Otherwise the next full collection walks every event once more (0.7-1.5 s here for 100k, a visible
        # stall in the cockpit). Events hold no reference cycles, so refcounting still frees them.
        gc.freeze()
    return result


def _looks_like_report(text: str) -> bool:
    lines = text.split("\n", 5)
    return lines[0].startswith(TITLE_PREFIX) or FORMAT_MARK in lines[:5]


def _operator(parsed: ParsedReport, events: list[Event], identity: str | None, problems: list[str]) -> str:
    """Who must have signed: the operator the signature line names, who must be an operator of the session's
    events; `--identity` is an assertion about that operator, never a replacement for it."""
    operators = [e.operator for e in events if isinstance(e, (ev.SessionStarted, ev.SessionResumed))]
    named = signed_operator(parsed.header.signature)
    expected = named or (operators[-1] if operators else "")
    if named and operators and named not in operators:
        problems.append(f"the signature line names operator {named!r}, but the session's events name "
                        f"{', '.join(repr(o) for o in dict.fromkeys(operators))}: the report was signed for someone else")
    if identity is not None and identity != expected:
        problems.append(f"--identity {identity!r} was given, but the report's operator (who signed it) is "
                        f"{expected or 'not named'!r}" + (f"; run with --identity {expected}" if expected else ""))
    return expected or identity or "operator"


def _verify(path: Path, allowed: AllowedSigners | None, identity: str | None, require_roles: tuple[str, ...]) -> VerifyResult:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ReportError(f"{path} is not a regular file (a FIFO, device or directory is never read)",
                              hint="pass the <name>.md file the session wrote")
        raw = path.read_bytes()
    except OSError as exc:
        raise ReportError(f"cannot read report {path}: {exc.strerror or exc}") from None
    lf, change = _line_endings(raw)
    try:
        text, encoding_problem = lf.decode("utf-8"), ""
    except UnicodeDecodeError as exc:  # a changed byte: still check what can be checked, and say where
        text = lf.decode("utf-8", "replace")
        encoding_problem = f"the file is not valid UTF-8 at byte {exc.start}: it was changed or corrupted"
    try:
        parsed = parse_report(text, str(path))
    except ReportError as exc:
        if not _looks_like_report(text):
            raise
        # a rollback-tui report whose event log was cut out: an integrity failure, not an unreadable file
        return VerifyResult(False, [f"the event log was removed: {exc}"], [], "", [],
                            trust=allowed.source.describe() if allowed else "")
    log = decode_log(parsed.log_lines, parsed.log_first_line)
    problems = [encoding_problem] if encoding_problem else []
    problems += [f"event log: {p}" for p in log.broken] + [f"event log: {d}" for d in log.dropped]
    if not log.broken and parsed.recorded_head != log.head:
        last = log.events[-1] if log.events else None
        what = f"the last event (seq {last.seq}, {last.type})" if last else "the event log"
        problems.append(f"event log: {what} was changed, or events were removed from the end "
                        "(the chain head recorded in the Integrity section differs)")
    expected = compose(log.events, parsed.header, [], parsed.recorded_head or log.head, len(parsed.log_lines))
    problems += _section_problems(parsed, expected)
    integrity_ok = not problems
    result = VerifyResult(False, problems, [], "", log.events, integrity_ok=integrity_ok, dropped=log.dropped,
                          trust=allowed.source.describe() if allowed else "")
    operator = result.operator = _operator(parsed, log.events, identity, problems)
    sig_path = path.with_name(path.name + ".sig")
    if parsed.header.unsigned and not sig_path.exists():
        result.signature_ok = None
        problems.append(f"the report is unsigned: {parsed.header.unsigned}")
    else:
        info, problem, note = _signer(sig_path, raw, lf, change, operator, "operator", allowed)
        claimed = re.search(r"SHA256:[A-Za-z0-9+/]+", parsed.header.signature)
        if info.valid and claimed and claimed.group(0) != info.fingerprint:
            info.ok = info.valid = info.trusted = False
            problem = (f"the report names key {claimed.group(0)} but {sig_path.name} was made with {info.fingerprint}")
        if identity is not None and identity != operator:
            info.ok = False
            info.detail = f"--identity {identity!r} given, but the report's operator is {operator!r}"
        result.signers.append(info)
        result.signature_ok = info.valid
        result.line_endings_note = result.line_endings_note or note
        if problem:
            problems.append(problem)
        elif integrity_ok is False and info.ok:
            result.notes.append("the signature is valid, so the inconsistencies above were signed as they are")
    _check_cosigners(path, raw, lf, change, allowed, log.events, result)
    _check_required_roles(require_roles, log.events, result)
    if change and not result.line_endings_note:
        result.line_endings_note = f"the file differs from how it was written: {change}"
    result.unverified = allowed is None and any(s.valid for s in result.signers)
    if result.unverified:
        result.notes.append(f"no allowed-signers source: the signers are UNVERIFIED ({ALLOWED_SIGNERS_HINT})")
    elif allowed is not None:
        result.notes.append(f"allowed signers: {allowed.source.describe()}")
    if not log.events:
        problems.append("the event log is empty: there is no session to verify")
    result.ok = not problems and bool(result.signers) and all(s.ok for s in result.signers)
    return result


def _check_required_roles(roles: tuple[str, ...], events: list[Event], result: VerifyResult) -> None:
    """`--require-role ROLE`: a valid, trusted co-signature for that role (its id or its title) must be there."""
    titles = {a.role: a.role_title for a in events if isinstance(a, ev.ApprovalGiven)}
    for wanted in roles:
        found = [s for s in result.signers[1:] if wanted in (s.role, titles.get(s.role, ""))]
        if any(s.ok for s in found):
            continue
        if found:
            why = "; ".join(f"{s.identity}: {s.detail or 'not valid'}" for s in found)
            result.problems.append(f"required role {wanted!r}: its co-signature does not verify ({why})")
        else:
            result.problems.append(f"required role {wanted!r}: no co-signature for it "
                                   f"(add one with `rollback-tui cosign REPORT --key KEY --identity NAME --role {wanted}`)")


def approval_roles(events: list[Event], identity: str) -> list[ev.ApprovalGiven]:
    return [e for e in events if isinstance(e, ev.ApprovalGiven) and e.name == identity]


def _check_cosigners(path: Path, raw: bytes, lf: bytes, change: str, allowed: AllowedSigners | None, events: list[Event],
                     result: VerifyResult) -> None:
    try:
        entries = read_cosigners(path)
    except SignatureError as exc:
        result.problems.append(str(exc))
        return
    for entry in entries:
        identity, role, name = str(entry.get("identity", "")), str(entry.get("role", "")), str(entry.get("signature", ""))
        if not name or "/" in name or not name.startswith(path.name + "."):
            result.problems.append(f"co-signer {identity!r}: bad signature file name {name!r}")
            continue
        info, problem, note = _signer(path.with_name(name), raw, lf, change, identity, role or "co-signer", allowed)
        if problem:
            result.problems.append(problem)
        result.line_endings_note = result.line_endings_note or note
        approvals = approval_roles(events, identity)
        if not any(role in (a.role, a.role_title) for a in approvals):
            given = ", ".join(f"{a.role} ({a.gate})" for a in approvals) or "none"
            info.ok = False
            info.detail = f"claims role {role!r} but the approval events name {identity!r} for: {given}"
            result.problems.append(f"co-signer {identity!r} claims role {role!r}, but no approval event names "
                                   f"{identity!r} for that role (approvals by {identity!r}: {given})")
        result.signers.append(info)
