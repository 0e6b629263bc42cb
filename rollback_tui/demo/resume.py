"""Resuming a demo session: start the sandbox's services again (from its files), sign with its key, continue."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rollback_tui.demo.home import DemoHome, home_of_journal, homes, session_started, state_of
from rollback_tui.demo.layout import PREFERRED_PORTS
from rollback_tui.errors import JournalError, RollbackError
from rollback_tui.frontend.options import SessionOptions, default_operator
from rollback_tui.procedure.exits import EXIT_USAGE

_PORTS = tuple(PREFERRED_PORTS)


def _fail(text: str, hint: str = "") -> int:
    print(f"rollback-tui demo: {text}" + (f"\n  {hint}" if hint else ""), file=sys.stderr)
    return EXIT_USAGE


def latest_resumable() -> DemoHome | None:
    """The newest demo session under the demo parent that can be resumed."""
    return next((home for home in homes() if state_of(home) == "resumable"), None)


def _options(opts: SessionOptions, home: DemoHome) -> SessionOptions:
    """The demo's operator (named in its allowed_signers) unless another is given, and the sandbox's key."""
    operator = home.operator if opts.operator == default_operator() and home.operator else opts.operator
    key = home.sandbox / "keys" / "operator_ed25519"
    sign_key = None if opts.no_sign else (opts.sign_key or (key if key.is_file() else None))
    return dataclasses.replace(opts, operator=operator, sign_key=sign_key, journal=home.journal)


def _plan_for(home: DemoHome, recorded: dict[str, str], now: dict[str, str], plan_sha: str) -> Any:
    """None when the services are on the recorded ports (the plan reloads as it was); otherwise the plan loaded
    with the new ports, after checking its file is the one the session started with (same sha256)."""
    ports = {name: now[name] for name in _PORTS if name in now}  # prom_port only with metrics
    if all(recorded.get(name) == port for name, port in ports.items()):
        return None
    from rollback_tui.plan.loader import load_plan

    loaded = load_plan(home.sandbox / "demo.yaml", {**recorded, **ports})
    if loaded.sha256 != plan_sha:
        raise JournalError(f"the demo plan {home.sandbox / 'demo.yaml'} changed since the session started; "
                           "resuming it could repeat or skip work", hint="start a new demo: `rollback-tui demo`")
    return loaded


def _run_session(journal: Path, opts: SessionOptions, loaded: Any) -> int:
    if opts.headless:
        from rollback_tui.frontend.headless import drive, make_decisions, printer
        from rollback_tui.engine.session import Session

        try:
            session = Session.resume(journal, decisions=make_decisions(opts.answers or "auto", opts.operator),
                                     operator=opts.operator, loaded=loaded, report_path=opts.report,
                                     sign_key=opts.sign_key, no_sign=opts.no_sign, listeners=[printer()])
        except RollbackError as exc:
            return _fail(str(exc))
        return asyncio.run(drive(session))
    from rollback_tui.ui.launch import _call_with_supported, _run_app, cockpit_for_session

    async def factory(decisions: Any, listeners: list[Any], passphrase: Callable[[], str]) -> Any:
        def build() -> Any:
            from rollback_tui.engine.session import Session

            return _call_with_supported(
                Session.resume, journal, decisions=decisions, operator=opts.operator, loaded=loaded,
                report_path=opts.report, sign_key=opts.sign_key, no_sign=opts.no_sign, listeners=listeners,
                passphrase=passphrase)

        return await asyncio.to_thread(build)

    return _run_app(cockpit_for_session(factory, opts, loading=f"loading journal {journal.name} …"))


def _final(journal: Path, opts: SessionOptions, home: DemoHome, state: str, message: str) -> int:
    """A final demo journal: its outcome and report (no services, no cockpit). The sandbox (and its plan) is gone
    once a session is final, so only a missing report needs the engine (which reloads the plan)."""
    from rollback_tui.procedure.exits import EXIT_FOR_STATE

    report = Path(opts.report or home.report)
    if report.is_file() and (opts.no_sign or Path(f"{report}.sig").is_file()):
        print(f"the session already finished ({state}): {message}; that outcome is final")
        print(f"report: {report}\njournal: {journal}")
        return EXIT_FOR_STATE.get(state, EXIT_USAGE)
    if opts.headless:
        from rollback_tui.frontend.headless import resume

        return resume(opts)
    from rollback_tui.ui.launch import _before_resume

    code = _before_resume(journal, opts)
    return EXIT_USAGE if code is None else code


def cmd_demo_resume(opts: SessionOptions, journal: Path | None) -> int:
    """`rollback-tui resume DEMO-JOURNAL` or `rollback-tui demo --resume [JOURNAL]`."""
    from rollback_tui.demo.commands import _finish, _say, _say_services, _settle
    from rollback_tui.demo.home import claim
    from rollback_tui.demo.sandbox import Sandbox
    from rollback_tui.engine.peek import peek_journal

    if journal is None:
        home = latest_resumable()
        if home is None:
            return _fail("no demo session to resume", "start one with `rollback-tui demo`")
    else:
        home = home_of_journal(journal)
        if home is None:
            return _fail(f"{journal}: not the journal of a demo session (or its sandbox is gone)",
                         "resume other sessions with `rollback-tui resume JOURNAL`")
        if journal.resolve() != home.journal.resolve():  # a copy: the sandbox's state is its original's
            return _fail(f"{journal}: the demo sandbox {home.sandbox} belongs to the journal {home.journal}",
                         f"resume that one: `rollback-tui resume {home.journal}`")
    journal = home.journal
    try:
        peek = peek_journal(journal)
    except OSError as exc:
        return _fail(f"journal {journal}: cannot open: {exc.strerror}")
    if peek.holder:
        return _fail(f"journal {journal} is in use by a live session: {peek.holder}",
                     f"only one session may write a journal; watch it with `rollback-tui follow {journal}`")
    opts = _options(opts, home)
    if peek.final_state:
        code = _final(journal, opts, home, peek.final_state, peek.final_message)
        _settle(home)
        return code
    started = session_started(journal) or {}
    recorded = {str(k): str(v) for k, v in ((started.get("outline") or {}).get("variables") or {}).items()}
    if not (home.sandbox / "demo.yaml").is_file():
        return _fail(f"the sandbox of {journal} is gone ({home.sandbox})", "start a new demo: `rollback-tui demo`")
    claim(home)
    sandbox = Sandbox(home.sandbox, opts.operator)
    _say(f"starting the sandbox services again in {home.sandbox}")
    status, state = EXIT_USAGE, ""
    try:
        ports = {name: int(recorded[name]) for name in _PORTS if recorded.get(name, "").isdigit()}
        try:
            sandbox.start(ports=ports)
        except RollbackError as exc:  # e.g. a recorded port taken meanwhile: once more, on free ports
            _say(f"the services did not start on the recorded ports ({str(exc).splitlines()[-1].strip()}); "
                 "trying free ports")
            sandbox.start(ports=dict.fromkeys(_PORTS, 0))
        with sandbox:
            _say_services(sandbox.variables)
            try:
                loaded = _plan_for(home, recorded, sandbox.variables, str(started.get("plan_sha256", "")))
            except RollbackError as exc:
                return _fail(str(exc))
            status = _run_session(journal, opts, loaded)
            _say("stopping the sandbox services")
    finally:
        state = _settle(home)
    if state != "final":
        return status
    verified = _finish(home.report, journal, home.allowed_signers, opts)
    return status if status != 0 else verified
