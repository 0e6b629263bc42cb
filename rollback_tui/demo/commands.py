"""`rollback-tui demo`: build the sandbox, start its services, run the cockpit (or headless), verify the report."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rollback_tui.frontend.options import SessionOptions
from rollback_tui.procedure.exits import EXIT_OK, EXIT_SIGNATURE, EXIT_USAGE
from rollback_tui.errors import RollbackError

REPORT_NAME = "checkout-demo-rollback"


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _outputs(opts: SessionOptions, keep: Path | None) -> tuple[Path, Path]:
    """Report and journal paths; they outlive the sandbox (which is removed unless --keep)."""
    if opts.report is not None:
        report = opts.report.resolve()
    else:
        folder = keep / "out" if keep else Path(tempfile.mkdtemp(prefix="rollback-demo-report-"))
        report = folder / f"{REPORT_NAME}.md"
    report.parent.mkdir(parents=True, exist_ok=True)
    journal = opts.journal.resolve() if opts.journal else report.with_name(report.stem + ".journal.jsonl")
    return report, journal


def _allowed_signers_for(key: Path, operator: str, target: Path) -> Path | None:
    """An allowed_signers file for a key given with --sign-key (from KEY.pub, or derived from the key)."""
    import asyncssh

    try:
        public = asyncssh.read_public_key(str(key) + ".pub")
    except (OSError, ValueError, asyncssh.KeyImportError):
        try:
            public = asyncssh.read_private_key(str(key)).convert_to_public()
        except (OSError, ValueError, asyncssh.KeyImportError):
            return None  # e.g. a passphrase-protected key without its .pub: nothing to print
    line = public.export_public_key().decode().split()
    target.write_text(f'{operator} namespaces="rollback-tui" {line[0]} {line[1]}\n')
    return target


def _ssh_keygen_verify(report: Path, allowed: Path, operator: str) -> tuple[bool, str]:
    if shutil.which("ssh-keygen") is None:
        return False, "ssh-keygen not installed (openssh-client): skipped"
    with open(report, "rb") as message:
        done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", str(allowed), "-I", operator, "-n", "rollback-tui",
                               "-s", str(report) + ".sig"], stdin=message, capture_output=True, text=True)
    text = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, text[0] if text else f"exit status {done.returncode}"


def _verify_with_rollback_tui(report: Path, allowed: Path, operator: str) -> tuple[bool, str]:
    from rollback_tui.report.verify import verify_report

    try:
        result = verify_report(report, allowed_signers=allowed, identity=operator)
    except RollbackError as exc:
        return False, str(exc).splitlines()[0]
    if not result.ok:
        return False, "; ".join(result.problems) or "no valid signature"
    signer = next(s for s in result.signers if s.ok)
    return True, (f"signed by {signer.identity} ({signer.fingerprint}), integrity intact, "
                  f"{len(result.events)} events")


def _finish(report: Path, journal: Path, allowed: Path | None, opts: SessionOptions, kept: Path | None) -> int:
    """Print where everything is and verify the report; EXIT_SIGNATURE if a signed report does not verify."""
    if not opts.headless:  # the headless runner printed both already
        print(f"report: {report}" if report.exists() else f"report: (not written) {report}")
        print(f"journal: {journal}")
    signature = Path(str(report) + ".sig")
    status = EXIT_OK
    if report.exists() and signature.exists() and allowed is not None:
        print(f"allowed_signers: {allowed}")
        for label, check in (("rollback-tui verify", _verify_with_rollback_tui),
                             ("ssh-keygen -Y verify", _ssh_keygen_verify)):
            ok, text = check(report, allowed, opts.operator)
            print(f"{label}: {'OK' if ok else 'FAILED'}: {text}")
            if not ok and "skipped" not in text:
                status = EXIT_SIGNATURE
        print(f"verify it yourself: ssh-keygen -Y verify -f {allowed} -I {opts.operator} -n rollback-tui "
              f"-s {signature} < {report}")
        print(f"  or: rollback-tui verify {report} --allowed-signers {allowed}")
    elif report.exists():
        print("signature: none (unsigned report)" if opts.no_sign else "signature: none written")
    print(f"sandbox: kept in {kept}" if kept else "sandbox: removed (use --keep DIR to keep it)")
    return status


def cmd_demo(opts: SessionOptions) -> int:
    """Build, start, roll back, stop; the sandbox is removed afterwards unless `--keep DIR`."""
    if shutil.which("git") is None:
        print("rollback-tui demo: git is not installed; install git (apt-get install git / brew install git) "
              "and run it again", file=sys.stderr)
        return EXIT_USAGE
    from rollback_tui.demo.sandbox import build_sandbox

    keep = opts.keep.resolve() if opts.keep else None
    root = keep or Path(tempfile.mkdtemp(prefix="rollback-demo-")) / "sandbox"
    _say(f"building the sandbox in {root}")
    status = EXIT_OK
    allowed: Path | None = None
    try:
        sandbox = build_sandbox(root, operator=opts.operator)
        report, journal = _outputs(opts, keep)
        sign_key = None if opts.no_sign else (opts.sign_key or sandbox.sign_key)
        if sign_key is not None and sign_key == sandbox.sign_key:
            allowed = report.with_name("allowed_signers")
            shutil.copyfile(sandbox.allowed_signers, allowed)
            shutil.copyfile(str(sandbox.sign_key) + ".pub", report.with_name("operator_ed25519.pub"))
        elif sign_key is not None:
            allowed = _allowed_signers_for(sign_key, opts.operator, report.with_name("allowed_signers"))
        with sandbox.start():
            v = sandbox.variables
            _say(f"services up: checkout-service http://127.0.0.1:{v['web_port']}/health, "
                 f"SSH host 127.0.0.1:{v['ssh_port']}, webhook sink http://127.0.0.1:{v['hook_port']}/hooks")
            session = dataclasses.replace(opts, plan=sandbox.plan_path, report=report, journal=journal,
                                          sign_key=sign_key, variables={**sandbox.variables, **opts.variables})
            if opts.headless:
                from rollback_tui.frontend.headless import run_plan_headless

                status = run_plan_headless(
                    sandbox.plan_path, answers=opts.answers or "auto", operator=opts.operator, journal=journal,
                    report=report, sign_key=sign_key, no_sign=opts.no_sign, variables=session.variables)
            else:
                from rollback_tui.ui.launch import run_cockpit_on_plan

                status = run_cockpit_on_plan(sandbox.plan_path, session.variables, session)
            _say("stopping the sandbox services")
    finally:
        if keep is None:
            shutil.rmtree(root.parent, ignore_errors=True)
    verified = _finish(report, journal, allowed, opts, keep)
    return status if status != EXIT_OK else verified
