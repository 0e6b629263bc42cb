"""`rollback-tui demo`: build the sandbox, start its services, run the cockpit (or headless), verify the report."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from rollback_tui.frontend.options import SessionOptions
from rollback_tui.procedure.exits import EXIT_OK, EXIT_SIGNATURE, EXIT_USAGE
from rollback_tui.errors import RollbackError

if TYPE_CHECKING:
    from rollback_tui.demo.home import DemoHome

REPORT_NAME = "checkout-demo-rollback"


def _say(text: str) -> None:
    print(f"demo: {text}", file=sys.stderr, flush=True)


def _outputs(opts: SessionOptions, out: Path) -> tuple[Path, Path]:
    """Report and journal paths (in `out` unless --report/--journal say otherwise); they outlive the sandbox."""
    report = opts.report.resolve() if opts.report is not None else out / f"{REPORT_NAME}.md"
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


def _finish(report: Path, journal: Path, allowed: Path | None, opts: SessionOptions) -> int:
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
    return status


def _settle(home: DemoHome) -> str:
    """After the demo (or a resume) ends: a final session's sandbox goes, a resumable one stays (and says how)."""
    from rollback_tui.demo.home import demo_parent, remove_tree, state_of

    state = state_of(home)
    root = home.root.resolve()  # never anything but a folder the demo made under its parent
    ours = root.parent == demo_parent().resolve() and home.sandbox.resolve().parent == root
    if home.keep or not ours:
        print(f"sandbox: kept in {home.sandbox}" + (" (--keep)" if home.keep else ""))
    elif state == "final":
        if home.sandbox.exists():
            remove_tree(home.sandbox)
            print(f"sandbox: removed (the session is final); `rollback-tui demo --clean` removes {home.root}")
    elif state == "unstarted":
        remove_tree(home.root)
        print("sandbox: removed (no session was started)")
    if state in ("resumable", "live"):
        print(f"sandbox: kept in {home.sandbox} so the session can be resumed (its services are stopped; resuming "
              f"starts them again):\n  rollback-tui resume {home.journal}\n  or: rollback-tui demo --resume")
    return state


def _new_home(opts: SessionOptions) -> tuple[Path, Path]:
    """(home folder, sandbox folder): --keep DIR is both; otherwise a new folder under the demo parent."""
    from rollback_tui.demo.home import demo_parent

    if opts.keep:
        root = opts.keep.resolve()
        return root, root
    parent = demo_parent()
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="demo-", dir=parent))
    return root, root / "sandbox"


def cmd_demo(opts: SessionOptions) -> int:
    """Build, start, roll back, stop. The sandbox stays while the session can be resumed (quit, interrupted,
    blocked) and goes when it is final; `--keep DIR` builds it in DIR and always keeps it."""
    if shutil.which("git") is None:
        print("rollback-tui demo: git is not installed; install git (apt-get install git / brew install git) "
              "and run it again", file=sys.stderr)
        return EXIT_USAGE
    from rollback_tui.demo.home import DemoHome, remove_tree
    from rollback_tui.demo.sandbox import build_sandbox

    root, sandbox_root = _new_home(opts)
    if not opts.keep:  # marked before the build, so --clean knows it even if this process is killed meanwhile
        report, journal = _outputs(opts, root / "out")
        DemoHome(root=root, sandbox=sandbox_root, journal=journal, report=report, operator=opts.operator,
                 keep=False, allowed_signers=None).write_marker()
    _say(f"building the sandbox in {sandbox_root}")
    try:
        sandbox = build_sandbox(sandbox_root, operator=opts.operator)
    except BaseException:
        if not opts.keep:
            remove_tree(root)
        raise
    if opts.keep:  # DIR had to be empty for the build
        report, journal = _outputs(opts, root / "out")
    sign_key = None if opts.no_sign else (opts.sign_key or sandbox.sign_key)
    allowed: Path | None = None
    if sign_key is not None and sign_key == sandbox.sign_key:
        allowed = report.with_name("allowed_signers")
        shutil.copyfile(sandbox.allowed_signers, allowed)
        shutil.copyfile(str(sandbox.sign_key) + ".pub", report.with_name("operator_ed25519.pub"))
    elif sign_key is not None:
        allowed = _allowed_signers_for(sign_key, opts.operator, report.with_name("allowed_signers"))
    home = DemoHome(root=root, sandbox=sandbox_root, journal=journal, report=report, operator=opts.operator,
                    keep=bool(opts.keep), allowed_signers=allowed)
    home.write_marker()
    status, state = EXIT_OK, ""
    try:
        with sandbox.start():
            _say_services(sandbox.variables)
            variables = {**sandbox.variables, **opts.variables}
            session = dataclasses.replace(opts, plan=sandbox.plan_path, report=report, journal=journal,
                                          sign_key=sign_key, variables=variables)
            if opts.headless:
                from rollback_tui.frontend.headless import run_plan_headless

                status = run_plan_headless(
                    sandbox.plan_path, answers=opts.answers or "auto", operator=opts.operator, journal=journal,
                    report=report, sign_key=sign_key, no_sign=opts.no_sign, variables=variables)
            else:
                from rollback_tui.ui.launch import run_cockpit_on_plan

                status = run_cockpit_on_plan(sandbox.plan_path, variables, session)
            _say("stopping the sandbox services")
    finally:
        state = _settle(home)
    if state != "final":  # resumable: the report is written when the session ends
        return status
    verified = _finish(report, journal, allowed, opts)
    return status if status != EXIT_OK else verified


def _say_services(v: dict[str, str]) -> None:
    from rollback_tui.demo.layout import Layout
    from rollback_tui.demo.metrics import read_choice

    _say(f"services up: checkout-service http://127.0.0.1:{v['web_port']}/health, "
         f"SSH host 127.0.0.1:{v['ssh_port']}, webhook sink http://127.0.0.1:{v['hook_port']}/hooks")
    enabled, note = read_choice(Layout(Path(v["sandbox"])))
    if enabled and "prom_port" in v:  # Prometheus is starting in the background; step 7's analysis waits for it
        _say(f"{note}: http://127.0.0.1:{v['prom_port']}/graph")
    else:
        _say(note)
