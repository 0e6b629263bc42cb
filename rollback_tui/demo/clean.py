"""`rollback-tui demo --clean`: remove the demo's own session folders (finished ones; resumable ones on request)."""

from __future__ import annotations

import sys

from rollback_tui.procedure.exits import EXIT_OK
from rollback_tui.demo.home import demo_parent, homes, remove_tree, state_of


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_demo_clean(everything: bool) -> int:
    """Only folders under the demo parent that carry the demo's marker are touched; a live session never is."""
    parent = demo_parent()
    found = [(home, state_of(home)) for home in homes()]
    removable = [home for home, state in found if state in ("final", "unstarted")]
    resumable = [home for home, state in found if state == "resumable"]
    live = [home for home, state in found if state == "live"]
    if resumable and not everything:
        for home in resumable:
            print(f"resumable: {home.root} (rollback-tui resume {home.journal})")
        if _confirm(f"also remove the {len(resumable)} demo session(s) that could still be resumed?"):
            everything = True
        else:
            print(f"kept {len(resumable)} resumable demo session(s); `rollback-tui demo --clean --all` removes them")
    if everything:
        removable += resumable
    for home in removable:
        remove_tree(home.root)
        print(f"removed {home.root}")
    for home in live:
        print(f"in use, kept: {home.root}")
    if not found:
        print(f"no demo sessions under {parent}")
    else:
        print(f"removed {len(removable)} demo session folder(s) under {parent}")
    return EXIT_OK
