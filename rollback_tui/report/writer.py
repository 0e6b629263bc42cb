"""Writing the report: render, sign (agent or key file), write with mode 0600; never lose a report."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rollback_tui.record.events import Event
from rollback_tui.errors import ReportError, RollbackError, SignatureError
from rollback_tui.report.chain import iter_log
from rollback_tui.report.keys import Signer, find_signer
from rollback_tui.report.render import SIGNATURE_PREFIX, ReportHeader, compose_around_log, signed_line
from rollback_tui.safeio import atomic_write, fsync_dir, read_regular

NO_SIGN_NOTE = "written with --no-sign: nothing proves who wrote it or that it is unchanged."


@dataclass
class ReportOutcome:
    path: Path
    sig_path: Path | None
    signed: bool
    signer: str
    """Key fingerprint and comment, or '' when unsigned."""
    error: str
    """Why the report is unsigned when signing was wanted ('' otherwise)."""


def sig_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def _directory_error(directory: Path, problem: str, journal_path: Path | None) -> ReportError:
    keep = f"; the journal {journal_path} keeps the whole session" if journal_path else ""
    return ReportError(f"cannot write the report in {directory}: {problem}",
                       hint=f"make {directory} writable or pass --report PATH in a writable directory{keep}; "
                            "then write it again from the journal (rollback-tui resume JOURNAL)")


def write_private(path: Path, data: bytes) -> None:
    """Atomically replace `path` with `data`, mode 0600 (reports can hold hostnames and reasons). The temp file comes
    from mkstemp in the same directory: a symlink planted at a predictable temp name is never written through."""
    atomic_write(path, data, mode=0o600)


def _remove_stale_signatures(path: Path) -> None:
    """A rewritten report invalidates every signature made over the old bytes."""
    sig_path_for(path).unlink(missing_ok=True)
    cosigners = path.with_name(path.name + ".cosigners")
    try:
        entries = json.loads(read_regular(cosigners, limit=1024 * 1024, what="cosigners file")).get("cosigners", [])
    except (OSError, ValueError, AttributeError, RollbackError):
        entries = []
    for entry in entries:
        name = str(entry.get("signature", "")) if isinstance(entry, dict) else ""
        if name and "/" not in name and name.startswith(path.name + "."):
            path.with_name(name).unlink(missing_ok=True)
    cosigners.unlink(missing_ok=True)


def signature_missing(path: Path) -> bool:
    """A report whose header says it is signed but whose `.sig` is not there (a crash between the two writes)."""
    path = Path(path)
    if sig_path_for(path).exists() or not path.is_file():
        return False
    try:
        with path.open("rb") as handle:
            head = handle.read(8192).decode("utf-8", "replace").split("\n## ", 1)[0]
    except OSError:
        return False
    return any(line.startswith(SIGNATURE_PREFIX) for line in head.split("\n"))


def _stream(events: list[Event], header: ReportHeader, directory: Path, name: str) -> tuple[str, bytes]:
    """Write the report to a fresh temp file beside its final place (mode 0600, fsynced), streaming the event
    log line by line; returns the temp path and the file's SHA-512 (what an SSHSIG signs)."""
    before, after = compose_around_log(events, header, len(events))
    digest = hashlib.sha512()
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb", buffering=1024 * 1024) as handle:
            os.fchmod(handle.fileno(), 0o600)

            def put(data: bytes) -> None:
                digest.update(data)
                handle.write(data)

            put(before.encode("utf-8") + b"\n")
            heads: list[str] = []
            pending: list[bytes] = []
            for line in iter_log(events, heads):
                pending.append(line)
                if len(pending) >= 1024:
                    put(b"\n".join(pending) + b"\n")
                    pending = []
            if pending:
                put(b"\n".join(pending) + b"\n")
            put(after(heads[0]).encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    return tmp_name, digest.digest()


def write_report(events: list[Event], path: Path, *, sign_key: Path | None, no_sign: bool, operator: str,
                 passphrase: Callable[[], str] | None = None, journal_path: Path | None = None) -> ReportOutcome:
    """Write `<path>` and `<path>.sig`. Signing problems leave an unsigned report that says why (and
    ReportOutcome.error); an unwritable directory raises ReportError. Blocking: call it from a thread.
    The report is streamed to a temp file and signed over its SHA-512, so a long session's report is never whole
    in memory; the temp file replaces the report only when complete."""
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise _directory_error(directory, "no such directory", journal_path)
    events = list(events)
    journal = str(journal_path) if journal_path else ""
    signer: Signer | None = None
    error = ""
    armored = ""
    tmp_name = ""
    try:
        if not no_sign:
            try:
                signer = find_signer(sign_key, passphrase)
                header = ReportHeader(signature=signed_line(operator, signer.fingerprint, signer.comment,
                                                            sig_path_for(path).name), journal=journal)
                tmp_name, digest = _stream(events, header, directory, path.name)
                armored = signer.sign_digest(digest)
            except SignatureError as exc:
                error, signer = str(exc), None
                if tmp_name:
                    os.unlink(tmp_name)
                    tmp_name = ""
        if signer is None:
            why = NO_SIGN_NOTE if no_sign else f"signing failed ({error}); written unsigned so that it is not lost."
            tmp_name, _ = _stream(events, ReportHeader(unsigned=why, journal=journal), directory, path.name)
        _remove_stale_signatures(path)
        os.replace(tmp_name, path)
        tmp_name = ""
        fsync_dir(directory)
        if armored:
            write_private(sig_path_for(path), armored.encode("ascii"))
    except OSError as exc:
        raise _directory_error(directory, exc.strerror or str(exc), journal_path) from None
    finally:
        if tmp_name:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
    return ReportOutcome(path=path, sig_path=sig_path_for(path) if armored else None, signed=bool(armored),
                         signer=signer.label if signer and armored else "", error=error)


async def write_report_async(events: list[Event], path: Path, *, sign_key: Path | None, no_sign: bool, operator: str,
                             passphrase: Callable[[], str] | None = None,
                             journal_path: Path | None = None) -> ReportOutcome:
    """write_report in a worker thread, so the event loop keeps running (a 100k-event report takes ~0.5 s).
    `passphrase` is then called from that thread: a UI must hop to its own loop to ask (call_from_thread)."""
    import asyncio

    return await asyncio.to_thread(write_report, events, path, sign_key=sign_key, no_sign=no_sign, operator=operator,
                                   passphrase=passphrase, journal_path=journal_path)
