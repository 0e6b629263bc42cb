"""`checkout-service` on the demo host: restart, status, the whole situation, or watch health for a while."""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from rollback_tui.demo.layout import FLAG, SERVICE, Layout


RESUME_HINT = "is the demo running? `rollback-tui demo --resume`"


class Unreachable(Exception):
    """A demo service did not answer: one line for the operator, never a traceback."""


def _why(exc: BaseException) -> str:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "timed out"
    return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__


def _request(url: str, method: str = "GET", timeout: float = 60.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    where = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None
    except (OSError, http.client.HTTPException) as exc:
        raise Unreachable(f"cannot reach {where} ({_why(exc)}): {RESUME_HINT}") from None
    except ValueError:
        raise Unreachable(f"{where} answered something that is not JSON: {RESUME_HINT}") from None


def _ports(layout: Layout) -> dict[str, Any]:
    try:
        return layout.read_ready()
    except (OSError, ValueError):
        raise Unreachable(f"the demo services are not running (no {layout.ready}): {RESUME_HINT}") from None


def restart(layout: Layout) -> int:
    ready = _ports(layout)
    status, body = _request(f"http://127.0.0.1:{ready['hook_port']}/-/restart", "POST")
    if status != 200:
        print(f"{SERVICE}: restart failed: {body.get('error') if isinstance(body, dict) else body}", file=sys.stderr)
        return 1
    before, after = body["before"], body["after"]
    print(f"stopped {SERVICE} {before['version']} (pid {before['pid']})")
    print(f"started {SERVICE} {after['version']} (pid {after['pid']}) from {layout.deploy}")
    print(f"{SERVICE} is answering on 127.0.0.1:{after['port']}")
    return 0


def status(layout: Layout) -> int:
    """Exit 0 when the service runs and runs the release that is checked out (like `systemctl status`)."""
    ready = _ports(layout)
    _, info = _request(f"http://127.0.0.1:{ready['hook_port']}/-/status")
    if not info.get("running"):
        print(f"{SERVICE}: not running")
        return 3
    print(f"{SERVICE}: running release {info['version']} (pid {info['pid']}); checked out: {info['checkout_version']}")
    if info["version"] != info["checkout_version"]:
        print(f"{SERVICE}: the running release is not the checked-out one: restart it")
        return 3
    return 0


def _git(layout: Layout, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(layout.deploy), *args], capture_output=True, text=True)
    return done.stdout.strip() or done.stderr.strip()


def _database(layout: Layout) -> list[str]:
    try:
        with closing(sqlite3.connect(f"file:{layout.db}?mode=ro", uri=True)) as db:
            revision = db.execute("SELECT version_num FROM alembic_version").fetchone()
            tables = [row[0] for row in db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name != 'alembic_version' ORDER BY name")]
            counts = ", ".join(f"{name} {db.execute(f'SELECT count(*) FROM {name}').fetchone()[0]}" for name in tables)
    except sqlite3.Error as exc:
        return [f"unreadable: {exc}"]
    return [f"revision {revision[0] if revision else '(none)'}", f"rows: {counts}"]


def situation(layout: Layout) -> int:
    """Everything an incident commander wants on one screen before deciding the scope."""
    ready = _ports(layout)
    _, info = _request(f"http://127.0.0.1:{ready['hook_port']}/-/status")
    code, health = _request(f"http://127.0.0.1:{ready['web_port']}/health", timeout=10)
    print(f"== {SERVICE}")
    print(f"running release {info.get('version')} (pid {info.get('pid')}), checked out {info.get('checkout_version')}")
    print(f"health: HTTP {code} {health.get('status')}")
    for reason in health.get("reasons", []):
        print(f"  - {reason}")
    for name, detail in health.get("checks", {}).items():
        print(f"  {name}: {detail}")
    print("== deploy repository")
    print(f"HEAD: {_git(layout, 'describe', '--tags', '--always')}; releases: {_git(layout, 'tag', '--sort=-creatordate').replace(chr(10), ', ')}")
    print(_git(layout, "log", "--oneline", "--decorate", "-n", "4"))
    print("== feature flags")
    flags = json.loads(layout.flags.read_text()).get("flags", {})
    flag = flags.get(FLAG, {})
    print(f"{FLAG}: state {flag.get('state')}, default {flag.get('defaultVariant')}, targeting {json.dumps(flag.get('targeting'))}")
    print("== database")
    for line in _database(layout):
        print(line)
    print("== deployment snapshot")
    manifest = json.loads(layout.manifest.read_text())
    release = manifest["release"]
    print(f"known-good release {release['version']} (git tag {release['git_tag']}, database revision "
          f"{release['db_revision']}); files: {', '.join(manifest['files'].values())} in {layout.snapshot}")
    return 0


def watch_health(layout: Layout, seconds: float) -> int:
    """Sample /health every half second for `seconds`: exit 0 only if every sample was 200 (seed 7: 'services healthy')."""
    ready = _ports(layout)
    url = f"http://127.0.0.1:{ready['web_port']}/health"
    deadline = time.monotonic() + seconds
    samples, failures, last_print = 0, 0, 0.0
    while True:
        try:
            code, body = _request(url, timeout=5)
            reason = "; ".join(body.get("reasons", [])) if isinstance(body, dict) else ""
        except Unreachable as exc:
            code, reason = 0, str(exc)
        samples += 1
        if code != 200:
            failures += 1
            print(f"health: HTTP {code or 'no answer'} {reason}")
        now = time.monotonic()
        if now - last_print >= 1.0:
            print(f"{samples} samples, {failures} failing, {max(0.0, deadline - now):.0f}s to go")
            last_print = now
        if now >= deadline:
            break
        time.sleep(0.5)
    print(f"{SERVICE} health: {samples - failures}/{samples} samples healthy over {seconds:g}s")
    return 0 if failures == 0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=SERVICE, description=__doc__)
    parser.add_argument("--sandbox", type=Path, required=True)
    parser.add_argument("command", choices=["restart", "status", "situation", "watch-health"])
    parser.add_argument("--seconds", type=float, default=6.0, help="watch-health: how long to watch")
    args = parser.parse_args(argv)
    layout = Layout(args.sandbox.resolve())
    try:
        if args.command == "watch-health":
            return watch_health(layout, args.seconds)
        return {"restart": restart, "status": status, "situation": situation}[args.command](layout)
    except Unreachable as exc:
        print(f"{SERVICE}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # a damaged sandbox: one line
        print(f"{SERVICE}: {type(exc).__name__}: {exc} (sandbox {layout.root}): {RESUME_HINT}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
