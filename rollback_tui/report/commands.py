"""`rollback-tui verify` and `rollback-tui cosign`: readable results and the exit codes of the contract."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

from rollback_tui.errors import JournalError, ReportError, SignatureError
from rollback_tui.procedure.exits import EXIT_OK
from rollback_tui.procedure.exits import EXIT_SIGNATURE as EXIT_FAILED
from rollback_tui.procedure.exits import EXIT_USAGE as EXIT_UNREADABLE
from rollback_tui.report.verify import VerifyResult, verify_report
from rollback_tui.termsafe import one_line


def format_result(report: Path, result: VerifyResult) -> str:
    seqs = [e.seq for e in result.events]
    out = [f"report: {report}",
           f"events: {len(result.events)}" + (f" (seq {min(seqs)}-{max(seqs)})" if seqs else "")
           + ("; hash chain intact, every section matches the event log" if result.integrity_ok else "")]
    out.append(f"allowed signers: {result.trust or 'none found (every signer is UNVERIFIED)'}")
    for signer in result.signers:
        mark = "ok  " if signer.ok else "UNVERIFIED" if result.unverified and signer.valid else "FAIL"
        who = f"{signer.identity} ({signer.role})"
        key = f" key {signer.fingerprint}" if signer.fingerprint else ""
        out.append(f"signer: [{mark}] {who}{key}" + (f" - {signer.detail}" if signer.detail else ""))
    if result.line_endings_note:
        out.append(f"line endings: {result.line_endings_note}")
    out += [f"note: {note}" for note in result.notes]
    if result.problems:
        out.append("problems:")
        out += [f"  - {problem}" for problem in result.problems]
    out.append("result: OK" if result.ok else f"result: {verdict(result)}")
    return "\n".join(out)


def verdict(result: VerifyResult) -> str:
    """FAILED, or UNVERIFIED when the only thing missing is a trusted signer (no allowed-signers source)."""
    if result.ok:
        return "OK"
    if result.unverified and result.integrity_ok and all(s.valid for s in result.signers):
        only_trust = all("signer is unverified" in p for p in result.problems)
        if only_trust:
            return "UNVERIFIED (the signatures are cryptographically valid; nothing says whose keys they are)"
    return "FAILED"


def cmd_verify(report: Path, allowed_signers: Path | None, identity: str | None,
               require_roles: list[str] | None = None) -> int:
    """0 verified by a trusted signer, 6 signature, trust or integrity failure, 2 unreadable or not a report."""
    from rollback_tui.report.allowed import find_source

    try:
        result = verify_report(Path(report), source=find_source(allowed_signers), identity=identity,
                               require_roles=require_roles or [])
    except (ReportError, JournalError) as exc:
        print(f"rollback-tui verify: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except SignatureError as exc:  # an unreadable allowed_signers file
        print(f"rollback-tui verify: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    print(format_result(Path(report), result))
    return EXIT_OK if result.ok else EXIT_FAILED


def _prompt(key: Path) -> str:
    if not sys.stdin.isatty():
        raise SignatureError(f"key {key} is protected by a passphrase and there is no terminal to ask for it",
                             hint="load it into ssh-agent (ssh-add) first")
    return getpass.getpass(one_line(f"passphrase for {key}: "))  # getpass writes to the tty, past cli.main's guard


def cmd_cosign(report: Path, key: Path, identity: str, role: str) -> int:
    """0 co-signed, 6 the report fails verification, 2 anything else the user must fix."""
    from rollback_tui.report.cosign import cosign_report

    try:
        outcome = cosign_report(Path(report), Path(key), identity, role, passphrase=lambda: _prompt(Path(key)))
    except SignatureError as exc:
        print(f"rollback-tui cosign: {exc}", file=sys.stderr)
        return EXIT_FAILED if "fails verification" in str(exc) else EXIT_UNREADABLE
    except ReportError as exc:
        print(f"rollback-tui cosign: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    print(f"co-signed {report} as {identity} ({outcome.role}) with {outcome.signer}\n"
          f"signature: {outcome.sig_path}\n"
          f"check: ssh-keygen -Y verify -f ALLOWED_SIGNERS -I {identity} -n rollback-tui -s {outcome.sig_path} < {report}")
    return EXIT_OK
