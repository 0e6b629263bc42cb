"""Command line: argv and subcommands; each subcommand's work lives in its own module, exit codes in procedure/exits."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from rollback_tui import __version__
from rollback_tui.errors import RollbackError
from rollback_tui.frontend.options import SessionOptions, default_operator
from rollback_tui.procedure.exits import EXIT_INTERNAL, EXIT_OK, EXIT_SIGINT, EXIT_USAGE

__all__ = ["SessionOptions", "build_parser", "default_operator", "dispatch", "main"]


def _parse_vars(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"rollback-tui: --var takes NAME=VALUE, not {item!r}")
        out[name] = value
    return out


def _session_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--operator", default=None, help="operator name (default: the login name)")
    parser.add_argument("--sign-key", type=Path, default=None,
                        help="SSH private key that signs the report (default: ssh-agent's first key, else ~/.ssh/id_ed25519)")
    parser.add_argument("--no-sign", action="store_true", help="write an unsigned report (it says so at the top)")
    parser.add_argument("--journal", type=Path, default=None, help="journal path (JSON Lines)")
    parser.add_argument("--report", type=Path, default=None, help="report path (<name>.md; the signature is <name>.md.sig)")
    parser.add_argument("--theme", default=None, help="cockpit theme (incident-dark, incident-light, high-contrast, screen-share)")
    parser.add_argument("--headless", action="store_true", help="no cockpit: decisions from --answers, one line per event")
    parser.add_argument("--answers", default=None, help="answers file (YAML) or 'auto' for headless runs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rollback-tui", description="Drive a production rollback, step by step.")
    parser.add_argument("--version", action="version", version=f"rollback-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="open the cockpit on a local sandbox and roll it back for real")
    _session_args(demo)
    demo.add_argument("--keep", type=Path, default=None, help="build the sandbox in DIR and keep it afterwards")
    demo.add_argument("--resume", nargs="?", const="", default=None, metavar="JOURNAL",
                      help="continue a quit or interrupted demo (default: the newest one), its services started again")
    demo.add_argument("--clean", action="store_true",
                      help="remove the folders of finished demo sessions (with --all: resumable ones too)")
    demo.add_argument("--all", action="store_true", help="with --clean: also remove sessions that could be resumed")

    run = sub.add_parser("run", help="open the cockpit on a plan")
    run.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (YAML)")
    run.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                     help="set a plan variable (repeatable)")
    _session_args(run)

    resume = sub.add_parser("resume", help="continue an interrupted session from its journal")
    resume.add_argument("journal_path", type=Path, metavar="JOURNAL")
    _session_args(resume)

    validate = sub.add_parser("validate", help="check a plan and its required inputs")
    validate.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (YAML)")
    validate.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                          help="set a plan variable (repeatable)")

    plan = sub.add_parser("plan", help="print the Rollback Plan (markdown) for review")
    plan.add_argument("plan", type=Path, metavar="PLAN", help="the plan file (YAML)")
    plan.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                      help="write the markdown to FILE instead of standard output")
    plan.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                      help="set a plan variable (repeatable)")

    sub.add_parser("schema", help="print the JSON Schema of the plan format")

    verify = sub.add_parser("verify", help="check a report's signature and integrity")
    verify.add_argument("report", type=Path)
    verify.add_argument("--allowed-signers", type=Path, default=None,
                        help="trusted keys (default: $ROLLBACK_TUI_ALLOWED_SIGNERS, ~/.config/rollback-tui/allowed_signers, "
                             "git's gpg.ssh.allowedSignersFile)")
    verify.add_argument("--identity", default=None, help="fail unless the report's operator is NAME")
    verify.add_argument("--require-role", action="append", default=[], metavar="ROLE",
                        help="fail unless a trusted co-signature for ROLE is there (repeatable)")

    cosign = sub.add_parser("cosign", help="add an approver's signature to a report",
                            description="Sign REPORT as an approver: writes REPORT.IDENTITY.sig beside it (SSHSIG, "
                                        "namespace rollback-tui); `verify` checks it and the role it claims.")
    cosign.add_argument("report", type=Path, metavar="REPORT", help="the report (.md) to co-sign")
    cosign.add_argument("--key", type=Path, required=True, metavar="KEY",
                        help="the approver's SSH private key (ed25519, ecdsa or rsa)")
    cosign.add_argument("--identity", required=True, metavar="NAME",
                        help="the approver's name, as given in the report's approval events")
    cosign.add_argument("--role", default="", metavar="ROLE",
                        help="the role approved (e.g. tech-lead); checked against the report's approvals")

    replay = sub.add_parser("replay", help="replay a saved session (report or journal) in the cockpit")
    replay.add_argument("source", type=Path)
    replay.add_argument("--speed", type=float, default=1.0)
    replay.add_argument("--unverified", action="store_true",
                        help="open a report that fails verification or has no trusted signer (shown UNVERIFIED)")
    replay.add_argument("--allowed-signers", type=Path, default=None)
    replay.add_argument("--theme", default=None)
    _web_args(replay)

    follow = sub.add_parser("follow", help="a read-only live mirror of a running session")
    follow.add_argument("journal_path", type=Path, metavar="JOURNAL", help="the journal of a running session")
    follow.add_argument("--theme", default=None, help="cockpit theme")
    _web_args(follow)
    return parser


def _web_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--web", action="store_true",
                        help="serve this read-only view to browsers (a URL with a secret token is printed)")
    parser.add_argument("--port", type=int, default=None, help="with --web: TCP port (default: any free port)")
    parser.add_argument("--bind", default=None, metavar="ADDR",
                        help="with --web: listen address (default 127.0.0.1; beyond loopback, a warning is printed)")
    parser.add_argument("--max-observers", type=int, default=None, metavar="N",
                        help="with --web: browsers watching at once (default 20)")


def _web_options(args: argparse.Namespace) -> dict[str, object] | None:
    given = {name: value for name in ("port", "bind", "max_observers") if (value := getattr(args, name)) is not None}
    if not args.web:
        if given:
            raise RollbackError(f"--{next(iter(given)).replace('_', '-')} needs --web (it sets up the browser view)")
        return None
    return given


def session_options(args: argparse.Namespace) -> SessionOptions:
    opts = SessionOptions(
        plan=getattr(args, "plan", None),
        journal=getattr(args, "journal_path", None) or args.journal,
        report=args.report,
        sign_key=args.sign_key,
        no_sign=args.no_sign,
        theme=args.theme,
        headless=args.headless,
        answers=args.answers,
        variables=_parse_vars(getattr(args, "var", [])),
        keep=getattr(args, "keep", None),
    )
    if args.operator:
        opts.operator = args.operator
    return opts


def _call(target: str, *args: object) -> int:
    module_name, func = target.split(":")
    return int(getattr(importlib.import_module(module_name), func)(*args))


def dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "schema":
        return _call("rollback_tui.frontend.plan_commands:cmd_schema")
    if command == "validate":
        return _call("rollback_tui.frontend.plan_commands:cmd_validate", args.plan, _parse_vars(args.var))
    if command == "plan":
        return _call("rollback_tui.frontend.plan_commands:cmd_plan", args.plan, _parse_vars(args.var), args.output)
    if command == "verify":
        return _call("rollback_tui.report.commands:cmd_verify", args.report, args.allowed_signers, args.identity,
                     args.require_role)
    if command == "cosign":
        return _call("rollback_tui.report.commands:cmd_cosign", args.report, args.key, args.identity, args.role)
    if command == "replay":
        return _call("rollback_tui.ui.launch:replay", args.source, args.speed, args.unverified,
                     args.allowed_signers, args.theme, _web_options(args))
    if command == "follow":
        return _call("rollback_tui.ui.launch:follow", args.journal_path, args.theme, _web_options(args))
    opts = session_options(args)
    if command == "demo":
        if args.clean:
            return _call("rollback_tui.demo.clean:cmd_demo_clean", args.all)
        if args.resume is not None:
            return _call("rollback_tui.demo.resume:cmd_demo_resume", opts, Path(args.resume) if args.resume else None)
        return _call("rollback_tui.demo.commands:cmd_demo", opts)
    if opts.headless and not opts.answers:
        print("rollback-tui: --headless needs --answers FILE or --answers auto", file=sys.stderr)
        return EXIT_USAGE
    if command == "run":
        target = "rollback_tui.frontend.headless:run" if opts.headless else "rollback_tui.ui.launch:run"
        return _call(target, opts)
    if command == "resume" and opts.journal is not None:
        from rollback_tui.demo.home import home_of_journal  # a demo journal: its sandbox's services come back

        if home_of_journal(opts.journal) is not None:
            return _call("rollback_tui.demo.resume:cmd_demo_resume", opts, opts.journal)
    if command == "resume":
        target = "rollback_tui.frontend.headless:resume" if opts.headless else "rollback_tui.ui.launch:resume"
        return _call(target, opts)
    raise AssertionError(command)


def main(argv: Sequence[str] | None = None) -> int:
    """Every byte a subcommand prints goes through termsafe (control characters from input shown, never sent)."""
    from rollback_tui.termsafe import SafeWriter

    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = SafeWriter(sys.stdout), SafeWriter(sys.stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = streams


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return dispatch(args)
    except RollbackError as exc:
        print(f"rollback-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rollback-tui: interrupted", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:
        return EXIT_OK
    except Exception as exc:  # a bug: one line on screen, the traceback in a file
        crash = _write_crash_log()
        # only a session has a journal to speak of; validate, plan and schema never run anything
        after = {"run": "\n  the journal is intact; 'rollback-tui resume JOURNAL' continues the session",
                 "resume": "\n  the journal is intact; 'rollback-tui resume JOURNAL' continues the session",
                 "validate": "\n  nothing was run", "plan": "\n  nothing was run", "schema": ""}.get(args.command, "")
        print(f"rollback-tui: internal error: {type(exc).__name__}: {exc}\n  details: {crash}{after}",
              file=sys.stderr)
        return EXIT_INTERNAL


def _write_crash_log() -> str:
    import tempfile
    import traceback

    fd, path = tempfile.mkstemp(prefix="rollback-tui-crash-", suffix=".txt")
    with open(fd, "w") as handle:
        traceback.print_exc(file=handle)
    return path
