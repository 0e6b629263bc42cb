"""Co-signing: an approver adds their own SSHSIG over the report's exact bytes, tied to their approval event."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollback_tui.errors import ReportError, SignatureError
from rollback_tui.report.keys import find_signer
from rollback_tui.record import events as ev
from rollback_tui.report.verify import approval_roles, cosigners_path, read_cosigners, verify_report
from rollback_tui.report.writer import write_private


def sanitise(identity: str) -> str:
    """A file-name-safe form of an identity (alice@example.com stays; spaces and slashes become _)."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", identity).strip(".") or "cosigner"


def approval_roles_all(events: list[ev.Event]) -> list[ev.ApprovalGiven]:
    return [e for e in events if isinstance(e, ev.ApprovalGiven)]


def cosign_path(report: Path, identity: str) -> Path:
    return report.with_name(f"{report.name}.{sanitise(identity)}.sig")


@dataclass
class CosignOutcome:
    sig_path: Path
    role: str
    signer: str


def cosign_report(report: Path, key: Path, identity: str, role: str = "",
                  passphrase: Callable[[], str] | None = None) -> CosignOutcome:
    """Check the report, find the approval that backs `role`, sign, and record the co-signer.
    Raises SignatureError when the report fails verification, ReportError when the role is not backed."""
    report = Path(report)
    if not identity.strip():
        raise ReportError("a co-signer needs an identity (--identity NAME)")
    result = verify_report(report)
    if not result.integrity_ok or result.signature_ok is False:
        raise SignatureError(f"{report} fails verification; refusing to co-sign it:\n  - " + "\n  - ".join(result.problems),
                             hint="co-sign only the report the session wrote")
    approvals = approval_roles(result.events, identity)
    if not approvals:
        approvers = ", ".join(sorted({f"{a.name} ({a.role})" for a in approval_roles_all(result.events)})) or "none"
        raise ReportError(f"no approval event names {identity!r} in this session (approvers: {approvers})",
                          hint="only an approver can co-sign, with the name recorded when the approval was given")
    if not role:
        roles = sorted({a.role for a in approvals})
        if len(roles) != 1:
            raise ReportError(f"{identity!r} gave {len(roles)} approvals in this session ({', '.join(roles) or 'none'})",
                              hint="pass --role ROLE naming the approval you co-sign")
        role = roles[0]
    if not any(role in (a.role, a.role_title) for a in approvals):
        given = ", ".join(f"{a.role} ({a.gate})" for a in approvals) or "none"
        raise ReportError(f"no approval event names {identity!r} for role {role!r} (approvals by {identity!r}: {given})",
                          hint="co-sign with the identity and role recorded when the approval was given")
    signer = find_signer(key, passphrase)
    data = report.read_bytes()
    target = cosign_path(report, identity)
    write_private(target, signer.sign(data).encode("ascii"))
    entries = [e for e in read_cosigners(report) if e.get("identity") != identity]
    entries.append({"identity": identity, "role": role, "signature": target.name, "fingerprint": signer.fingerprint})
    write_private(cosigners_path(report), (json.dumps({"version": 1, "cosigners": entries}, indent=2) + "\n").encode())
    return CosignOutcome(target, role, signer.label)
