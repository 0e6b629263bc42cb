"""Entry points cli.py dispatches to: run, resume, replay, follow (and run_cockpit_on_plan for the demo)."""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from rollback_tui.errors import PlanError, RollbackError
from rollback_tui.procedure.exits import EXIT_SIGINT as EXIT_QUIT
from rollback_tui.procedure.exits import EXIT_SIGNATURE, EXIT_USAGE
from rollback_tui.ui.startup import hold_gc, release_gc


def _print_problems(exc: PlanError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    if exc.hint:
        print(f"  hint: {exc.hint}", file=sys.stderr)


def _call_with_supported(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Pass only the keyword arguments `func` accepts (the passphrase hook is optional in the engine)."""
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return func(*args, **kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return func(*args, **kwargs)
    return func(*args, **{k: v for k, v in kwargs.items() if k in params})


F = TypeVar("F", bound=Callable[..., int])


def gc_held(func: F) -> F:
    """Hold the garbage collector from the entry point (before Textual is imported) to the first frame."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> int:
        hold_gc()
        try:
            return func(*args, **kwargs)
        finally:
            release_gc()

    return wrapper  # type: ignore[return-value]


def _run_app(app: Any, *, announce: bool = True) -> int:
    code = app.run()
    if getattr(app, "plan_error", None) is not None:  # the plan did not load: no session was started
        _print_problems(app.plan_error)
        return EXIT_USAGE
    if app.result is None and app.report_info.get("journal") and app.mode == "live":
        print(f"journal: {app.report_info['journal']}\n  the session can be continued with "
              f"'rollback-tui resume {app.report_info['journal']}'", file=sys.stderr)
    elif app.report_info.get("path") and announce:
        if Path(f"{app.report_info['path']}.sig").exists():
            print(f"signature: {app.report_info['path']}.sig")
        print(f"report: {app.report_info['path']}")
        if app.report_info.get("journal"):
            print(f"journal: {app.report_info['journal']}")
    if app.report_info.get("error"):
        print(f"rollback-tui: {app.report_info['error']}", file=sys.stderr)
        return code if code not in (None, 0) else 1
    return int(code if code is not None else EXIT_QUIT)


def cockpit_for_session(factory: Callable[..., Any], opts: Any, *, loading: str = "") -> Any:
    """A CockpitApp running the session that `factory(decisions, listeners, passphrase)` builds."""
    from rollback_tui.ui.app import CockpitApp
    from rollback_tui.ui.drivers import LiveDriver

    return CockpitApp(LiveDriver(factory), theme=opts.theme, operator=opts.operator, loading=loading)


def session_factory(loaded: Any, opts: Any) -> Callable[..., Any]:
    def factory(decisions: Any, listeners: list[Any], passphrase: Callable[[], str]) -> Any:
        from rollback_tui.engine.session import Session

        return _call_with_supported(
            Session.start, loaded, decisions=decisions, operator=opts.operator, journal_path=opts.journal,
            report_path=opts.report, sign_key=opts.sign_key, no_sign=opts.no_sign, listeners=listeners,
            passphrase=passphrase)

    return factory


def load_plan_off_loop(plan_path: Path, variables: Mapping[str, str]) -> Any:
    """Load and validate the plan, and import the engine, in the calling (worker) thread; raises PlanError."""
    from rollback_tui.plan.loader import load_plan

    loaded = load_plan(Path(plan_path), dict(variables))
    importlib.import_module("rollback_tui.engine.session")  # slow to import too: keep it off the event loop

    return loaded


def plan_session_factory(plan_path: Path, variables: Mapping[str, str], opts: Any) -> Callable[..., Any]:
    """A session factory that loads the plan and starts the session in a thread: the cockpit is on screen
    and responsive meanwhile (plan validation, the engine's import and the journal's creation take ~0.3 s)."""

    async def factory(decisions: Any, listeners: list[Any], passphrase: Callable[[], str]) -> Any:
        def build() -> Any:
            loaded = load_plan_off_loop(Path(plan_path), dict(variables))
            return session_factory(loaded, opts)(decisions, listeners, passphrase)

        return await asyncio.to_thread(build)

    return factory


def cockpit_for_plan(plan_path: Path, variables: Mapping[str, str], opts: Any) -> Any:
    """The cockpit on a plan: its first frame is drawn at once, the plan is loaded and validated after it."""
    return cockpit_for_session(plan_session_factory(plan_path, variables, opts), opts,
                               loading=f"loading plan {Path(plan_path).name} …")


@gc_held
def run_cockpit_on_plan(plan_path: Path, variables: Mapping[str, str], opts: Any, *, announce: bool = False) -> int:
    """The cockpit on a plan. The plan is loaded and validated in a thread after the first frame; a PlanError
    closes the cockpit before any session starts, prints its positioned problems and returns 2.

    The demo calls this and prints the report and journal paths itself; `run` asks to `announce` them."""
    refused = refuse_special(Path(plan_path), "plan file")  # before the cockpit takes the terminal
    if refused is not None:
        return refused
    return _run_app(cockpit_for_plan(plan_path, variables, opts), announce=announce)


def run(opts: Any) -> int:
    """`rollback-tui run PLAN`: the cockpit on a plan (a plan file that is not there fails before the first frame)."""
    if not Path(opts.plan).is_file():
        what = "no such file" if not Path(opts.plan).exists() else "not a regular file"
        print(f"rollback-tui: {opts.plan}: {what}", file=sys.stderr)
        print("  give the path of a plan (YAML); `rollback-tui validate PLAN` checks one", file=sys.stderr)
        return EXIT_USAGE
    return run_cockpit_on_plan(opts.plan, opts.variables, opts, announce=True)


class _NoDecisions:
    """The decision source of a session that has ended for good: it is never asked."""

    async def decide(self, request: Any) -> Any:
        raise RollbackError("a finished session takes no decision")


def _before_resume(journal: Path, opts: Any) -> int | None:
    """Before any cockpit opens: refuse a journal a live session holds; a final one prints its outcome and exits
    with its code (writing a missing report) instead of opening a live cockpit. None: open the cockpit."""
    from rollback_tui.engine.peek import peek_journal

    try:
        peek = peek_journal(journal)
    except OSError as exc:
        print(f"rollback-tui: journal {journal}: cannot open: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if peek.holder:
        print(f"rollback-tui: journal {journal} is in use by a live session: {peek.holder}\n"
              f"  only one session may write a journal; watch it with `rollback-tui follow {journal}`",
              file=sys.stderr)
        return EXIT_USAGE
    if not peek.final_state:
        return None
    from rollback_tui.frontend.headless import drive
    from rollback_tui.engine.session import Session

    try:
        session = _call_with_supported(Session.resume, journal, decisions=_NoDecisions(), operator=opts.operator,
                                       report_path=opts.report, sign_key=opts.sign_key, no_sign=opts.no_sign,
                                       listeners=[], plan_path=opts.plan)
    except RollbackError as exc:
        print(f"rollback-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(drive(session))


@gc_held
def resume(opts: Any) -> int:
    """`rollback-tui resume JOURNAL`: the cockpit on an interrupted session."""
    journal = opts.journal
    refused = refuse_non_journal(journal)  # read-only: a FIFO, a link or a file that is no journal
    if refused is not None:
        return refused
    if journal is None or not Path(journal).is_file():
        print(f"rollback-tui: {journal}: no such journal", file=sys.stderr)
        return EXIT_USAGE
    refused = _before_resume(Path(journal), opts)
    if refused is not None:
        return refused

    async def factory(decisions: Any, listeners: list[Any], passphrase: Callable[[], str]) -> Any:
        def build() -> Any:  # in a thread: reading the journal and reloading the plan happen after the first frame
            from rollback_tui.engine.session import Session
            from rollback_tui.errors import JournalError

            try:
                return _call_with_supported(
                    Session.resume, Path(journal), decisions=decisions, operator=opts.operator,
                    report_path=opts.report, sign_key=opts.sign_key, no_sign=opts.no_sign, listeners=listeners,
                    passphrase=passphrase, plan_path=opts.plan)
            except JournalError as exc:  # refused before anything was written: leave and print it (exit 2)
                raise PlanError(str(exc).split("\n")) from None

        return await asyncio.to_thread(build)

    return _run_app(cockpit_for_session(factory, opts, loading=f"loading journal {Path(journal).name} …"))


@gc_held
def replay(source: Path, speed: float, unverified: bool, allowed_signers: Path | None, theme: str | None,
           web: Mapping[str, Any] | None = None, app_class: Any = None) -> int:
    """`rollback-tui replay REPORT|JOURNAL`: read-only, at the recorded pace times `speed`; with `web`, served to
    browsers once the report passed the same checks (ui/web.py)."""
    from rollback_tui.report.allowed import find_source
    from rollback_tui.report.load import load_events
    from rollback_tui.ui.app import CockpitApp
    from rollback_tui.ui.drivers import ReplayDriver

    if speed <= 0:
        print("rollback-tui: --speed must be greater than 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        loaded = _call_with_supported(load_events, Path(source), trust_source=find_source(allowed_signers))
    except RollbackError as exc:
        print(f"rollback-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    note, warning = replay_status(loaded)
    if warning and not unverified:
        print(f"rollback-tui: {source}: {warning}", file=sys.stderr)
        for problem in getattr(loaded.verify, "problems", []) or []:
            print(f"  {problem}", file=sys.stderr)
        print("  to look at it anyway (shown UNVERIFIED on screen): rollback-tui replay --unverified ...",
              file=sys.stderr)
        return EXIT_SIGNATURE
    if not loaded.events:
        print(f"rollback-tui: {source}: no events to replay", file=sys.stderr)
        return EXIT_USAGE
    if web is not None:
        extra = [*(["--unverified"] if unverified else []), *(["--theme", theme] if theme else []),
                 *(["--allowed-signers", str(Path(allowed_signers).absolute())] if allowed_signers else [])]
        return serve_web(web, "replay", str(Path(source).absolute()), "--speed", repr(speed), *extra,
                         what="the replay of a saved session")
    app = (app_class or CockpitApp)(ReplayDriver(loaded.events, speed), theme=theme, mode_note=note, warning=warning)
    app.report_info.update(replay_report_info(Path(source), loaded, note, warning))
    app.run()
    return 0


def replay_report_info(source: Path, loaded: Any, note: str, warning: str) -> dict[str, str]:
    """What the replay's summary says of the file being replayed: its path and its verification state."""
    if loaded.source == "journal":
        return {"path": f"none (replaying the journal {source})", "signature": "none: a journal is not signed",
                "journal": str(source)}
    return {"path": str(source), "signature": warning or note}


def replay_status(loaded: Any) -> tuple[str, str]:
    """(note, warning) for the header: verified by a trusted signer, unsigned journal, or UNVERIFIED (no trusted
    signer, or FAILED verification), shown all the time."""
    dropped = f" · {len(loaded.dropped)} unreadable line(s) dropped" if getattr(loaded, "dropped", None) else ""
    if loaded.source == "journal":
        return f"journal (not signed, not verified){dropped}", ""
    verify = loaded.verify
    if verify is None:
        return f"report (verification not run){dropped}", ""
    if verify.ok:
        signers = ", ".join(getattr(s, "identity", "") or getattr(s, "fingerprint", "") for s in verify.signers)
        return f"✔ report verified{(': signed by ' + signers) if signers else ''}{dropped}", ""
    if getattr(verify, "unverified", False) and getattr(verify, "integrity_ok", False) and all(
            "signer is unverified" in p for p in verify.problems):
        return dropped.lstrip(" ·"), "UNVERIFIED: no trusted signer (no allowed-signers source says whose key signed it)"
    return dropped.lstrip(" ·"), "UNVERIFIED: this report FAILED verification"


@gc_held
def follow(journal: Path, theme: str | None, web: Mapping[str, Any] | None = None, app_class: Any = None) -> int:
    """`rollback-tui follow JOURNAL`: a read-only live mirror tailing the journal."""
    from rollback_tui.ui.app import CockpitApp
    from rollback_tui.ui.drivers import FollowDriver

    if not os.path.lexists(journal):
        print(f"rollback-tui: {journal}: no such journal", file=sys.stderr)
        return EXIT_USAGE
    refused = refuse_special(Path(journal), "journal", follow=False)  # a FIFO would block the mirror's reads
    if refused is not None:
        return refused
    if web is not None:
        return serve_web(web, "follow", str(Path(journal).absolute()), *(["--theme", theme] if theme else []),
                         what="the follow view of a session")
    (app_class or CockpitApp)(FollowDriver(Path(journal)), theme=theme).run()
    return 0


def serve_web(web: Mapping[str, Any], *argv: str, what: str) -> int:
    """`--web`: serve the read-only cockpit running `argv` (ui/webapp.py) to browsers, with textual-serve."""
    try:
        from rollback_tui.ui.web import WebOptions, child_argv, serve
    except ImportError as exc:
        print(f"rollback-tui: --web needs the web extra ({exc.name} is missing): pip install 'rollback-tui[web]'",
              file=sys.stderr)
        return EXIT_USAGE
    return serve(child_argv(*argv), WebOptions(**web), what=what)


def refuse_special(path: Path, what: str, *, follow: bool = True) -> int | None:
    """Exit 2 with one line for a FIFO, device, socket or directory (a link too, unless `follow`); None: go on."""
    from rollback_tui.safeio import FileRefused, check_regular

    try:
        check_regular(path, follow=follow, what=what)
    except FileRefused as exc:
        print(f"rollback-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return None


def refuse_non_journal(journal: Path | None) -> int | None:
    """Before a cockpit opens, read-only and the first line only: exit 2 for what is no journal; None: go on."""
    if journal is None or not os.path.lexists(journal):
        return None  # said below as `no such journal`
    from rollback_tui.record.journal import check_resumable_header

    try:
        check_resumable_header(Path(journal))
    except RollbackError as exc:
        print(f"rollback-tui: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return None
