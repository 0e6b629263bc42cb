"""What each browser tab of `--web` runs: the follow/replay cockpit with nothing that writes a file."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rollback_tui.ui.app import CockpitApp

#: command-palette entries left out: the export writes a file on the server; a screenshot is a download that
#: textual.js fetches from /download/KEY, outside the token-guarded path, so the server would refuse it (403)
WRITING_COMMANDS = ("Export report", "Screenshot")


class ObserverApp(CockpitApp):
    """The read-only follow/replay cockpit (no decision bindings: its driver is read-only), minus the export."""

    def get_system_commands(self, screen: Any) -> Iterable[Any]:
        for command in super().get_system_commands(screen):
            if command.title not in WRITING_COMMANDS:
                yield command

    def action_export_report(self) -> None:
        self.notify("the web view is read-only: export from a terminal (`rollback-tui follow` or `replay`)",
                    severity="warning")

    def save_screenshot(self, *args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the web view writes no file on the server")

    def deliver_screenshot(self, *args: Any, **kwargs: Any) -> str | None:
        self.notify("no screenshot from the web view: use the browser's own", severity="warning")
        return None


def end_with_server(server_pid: int) -> None:
    """The server's end, even by SIGKILL, ends this process too: Linux sends it SIGTERM (PR_SET_PDEATHSIG)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG
    if os.getppid() != server_pid:  # the server was gone before that
        raise SystemExit(0)


def main(argv: Sequence[str] | None = None) -> int:
    from rollback_tui.termsafe import SafeWriter
    from rollback_tui.ui import launch

    parser = argparse.ArgumentParser(prog="rollback-tui-web-observer")
    parser.add_argument("--server-pid", type=int, required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    follow = sub.add_parser("follow")
    follow.add_argument("journal", type=Path)
    follow.add_argument("--theme", default=None)
    replay = sub.add_parser("replay")
    replay.add_argument("source", type=Path)
    replay.add_argument("--speed", type=float, default=1.0)
    replay.add_argument("--unverified", action="store_true")
    replay.add_argument("--allowed-signers", type=Path, default=None)
    replay.add_argument("--theme", default=None)
    args = parser.parse_args(argv)
    end_with_server(args.server_pid)
    sys.stderr = SafeWriter(sys.stderr)  # the server copies this to its own terminal
    if args.command == "follow":
        return int(launch.follow(args.journal, args.theme, app_class=ObserverApp))
    return int(launch.replay(args.source, args.speed, args.unverified, args.allowed_signers, args.theme,
                             app_class=ObserverApp))


if __name__ == "__main__":
    raise SystemExit(main())
