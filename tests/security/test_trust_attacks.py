"""Trust is never implied: forged, re-signed, mis-attributed, expired and cut-down reports never verify; every
signature the tests make is also judged by the real `ssh-keygen -Y verify`, and both verdicts agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from trust_helpers import Key, agree, allowed, keygen, needs_ssh_keygen, session, signer, ssh_keygen_verify

from rollback_tui.cli import main
from rollback_tui.record import events as ev
from rollback_tui.report.cosign import cosign_path, cosign_report
from rollback_tui.report.verify import verify_report
from rollback_tui.report.writer import write_report

pytestmark = needs_ssh_keygen


@pytest.fixture(autouse=True)
def no_ambient_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the machine's own trust sources: HOME, XDG config and git config all point into tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("ROLLBACK_TUI_ALLOWED_SIGNERS", raising=False)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Key]:
    base = tmp_path_factory.mktemp("keys")
    return {name: keygen(base / name, kind) for name, kind in
            (("root", "ed25519"), ("dana", "ecdsa"), ("terry", "rsa"), ("mallory", "ed25519"))}


def trust_file(tmp_path: Path, people: dict[str, Key], *names: str, options: str = 'namespaces="rollback-tui"') -> Path:
    return allowed(tmp_path / "allowed_signers", [f"{name} {options} {people[name].pub}" for name in names])


def signed(tmp_path: Path, key: Key, operator: str = "root", events: list[ev.Event] | None = None) -> Path:
    out = write_report(events or session(operator), tmp_path / "r.md", sign_key=key.path, no_sign=False,
                       operator=operator)
    assert out.signed, out.error
    return out.path


def sig(report: Path) -> Path:
    return Path(f"{report}.sig")


def verify_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["verify", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_genuine_report_verifies_with_both(tmp_path: Path, people: dict[str, Key],
                                           capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root")
    assert agree(report, sig(report), trust, "root")
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust))
    assert code == 0 and out.rstrip().endswith("result: OK"), out


def test_no_allowed_signers_is_unverified_exit_6(tmp_path: Path, people: dict[str, Key],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    assert agree(report, sig(report), None, "root")  # cryptographically valid for both
    code, out = verify_cli(capsys, str(report))
    assert code == 6
    assert "allowed signers: none found" in out and "signer: [UNVERIFIED] root (operator)" in out
    assert "cryptographically valid, but the signer is unverified" in out
    assert "result: UNVERIFIED" in out and "result: OK" not in out


def test_rewritten_approvals_resigned_with_an_unknown_key(tmp_path: Path, people: dict[str, Key],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    trust = trust_file(tmp_path, people, "root", "dana", "terry")
    forged_events = session("root", approvers=("mallory", "mallory"))  # approvals rewritten, chain rebuilt
    report = signed(tmp_path, people["mallory"], "root", forged_events)
    result = verify_report(report, allowed_signers=trust)
    assert result.integrity_ok and signer(result, "root").valid  # a consistent forgery, a valid signature...
    assert not result.ok  # ...by a key nobody vouches for
    assert not agree(report, sig(report), trust, "root", result)
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust))
    assert code == 6 and "result: OK" not in out and "result: FAILED" in out
    assert "not trusted to sign as 'root'" in out and "that key is not listed at all" in out
    code, out = verify_cli(capsys, str(report))  # and without any trust source: still not OK
    assert code == 6 and "result: OK" not in out


def test_key_allowed_but_principal_is_not_the_operator(tmp_path: Path, people: dict[str, Key],
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    trust = trust_file(tmp_path, people, "root", "mallory")
    report = signed(tmp_path, people["mallory"], operator="root")  # mallory's key, signing root's session
    result = verify_report(report, allowed_signers=trust)
    assert not result.ok and not agree(report, sig(report), trust, "root", result)
    assert any("listed only for 'mallory'" in p for p in result.problems)
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--identity", "mallory")
    assert code == 6 and "result: OK" not in out
    assert "--identity 'mallory' was given, but the report's operator (who signed it) is 'root'" in out


def test_signature_line_naming_another_operator_than_the_events(tmp_path: Path, people: dict[str, Key]) -> None:
    trust = trust_file(tmp_path, people, "root", "mallory")
    report = signed(tmp_path, people["mallory"], operator="mallory", events=session("root"))
    result = verify_report(report, allowed_signers=trust)
    assert not result.ok
    assert any("names operator 'mallory', but the session's events name 'root'" in p for p in result.problems)
    assert not ssh_keygen_verify(report, sig(report), trust, "root")  # the session's operator did not sign it


def test_identity_option_says_exactly_what_differs(tmp_path: Path, people: dict[str, Key],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = allowed(tmp_path / "allowed_signers", [f"root,alice {people['root'].pub}"])
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--identity", "alice")
    assert code == 6
    assert "signer: [FAIL] root (operator)" in out and "--identity 'alice' given, but the report's operator is 'root'" in out
    assert verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--identity", "root")[0] == 0
    assert agree(report, sig(report), trust, "root")


@pytest.mark.parametrize("options, accepted", [
    ('namespaces="git"', False),
    ('namespaces="file,git"', False),
    ('namespaces="rollback-*"', True),
    ('namespaces="git,rollback-tui"', True),
    ('valid-before="20200101"', False),
    ('valid-before="20200101Z"', False),
    ('valid-after="20990101"', False),
    ('valid-after="20200101",valid-before="20990101"', True),
    ('cert-authority', False),
    ("", True),
])
def test_allowed_signers_options_as_openssh_reads_them(tmp_path: Path, people: dict[str, Key], options: str,
                                                      accepted: bool) -> None:
    report = signed(tmp_path, people["root"])
    trust = allowed(tmp_path / "allowed_signers", [f"root {options} {people['root'].pub}".replace("  ", " ")])
    result = verify_report(report, allowed_signers=trust)
    assert agree(report, sig(report), trust, "root", result) == accepted
    assert result.ok == accepted, result.problems
    if "valid-before" in options and not accepted:
        assert any("expired" in p for p in result.problems)


@pytest.mark.parametrize("principals, accepted", [
    ("root", True), ("ro?t", True), ("*", True), ("admin,root", True), ('"admin,root"', True),
    ("!root,*", False), ("*,!root", False), ("Root", False), ("roo", False), ("root@example.com", False),
])
def test_principal_patterns_as_openssh_matches_them(tmp_path: Path, people: dict[str, Key], principals: str,
                                                    accepted: bool) -> None:
    report = signed(tmp_path, people["root"])
    trust = allowed(tmp_path / "allowed_signers", [f"{principals} {people['root'].pub}"])
    result = verify_report(report, allowed_signers=trust)
    assert agree(report, sig(report), trust, "root", result) == accepted
    assert result.ok == accepted


def test_signature_for_another_namespace(tmp_path: Path, people: dict[str, Key]) -> None:
    report = signed(tmp_path, people["root"])
    sig(report).unlink()
    subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "git", "-f", str(people["root"].path), str(report)],
                   check=True, capture_output=True)
    trust = trust_file(tmp_path, people, "root", options="")
    result = verify_report(report, allowed_signers=trust)
    assert not result.ok and not agree(report, sig(report), trust, "root", result)
    assert any("namespace 'git', not 'rollback-tui'" in p for p in result.problems)


def test_cosign_role_forged(tmp_path: Path, people: dict[str, Key], capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root", "dana", "terry")
    cosign_report(report, people["dana"].path, "dana", "devops-lead")
    assert agree(report, cosign_path(report, "dana"), trust, "dana")
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--require-role", "devops-lead")
    assert code == 0, out
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--require-role", "tech-lead")
    assert code == 6 and "required role 'tech-lead': no co-signature for it" in out
    # dana's real signature, but the (unsigned) co-signers list edited to claim terry's role
    listing = Path(f"{report}.cosigners")
    data = json.loads(listing.read_text())
    data["cosigners"][0]["role"] = "tech-lead"
    listing.write_text(json.dumps(data))
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust), "--require-role", "tech-lead")
    assert code == 6 and "claims role 'tech-lead', but no approval event names 'dana'" in out
    assert "result: OK" not in out


def test_cosignature_by_an_unknown_key_for_a_real_approver(tmp_path: Path, people: dict[str, Key],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root", "dana", "terry")
    cosign_report(report, people["mallory"].path, "terry", "tech-lead")  # mallory signs as terry
    result = verify_report(report, allowed_signers=trust, require_roles=["tech-lead"])
    assert not result.ok and not agree(report, cosign_path(report, "terry"), trust, "terry", result)
    assert any("required role 'tech-lead': its co-signature does not verify" in p for p in result.problems)
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust))
    assert code == 6 and "not trusted to sign as 'terry'" in out


@pytest.mark.parametrize("cut", ["event log", "integrity", "both"])
def test_removed_log_sections_exit_6(tmp_path: Path, people: dict[str, Key], cut: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root")
    text = report.read_text()
    log_at, integrity_at = text.index("\n## Event log"), text.index("\n## Integrity")
    if cut == "event log":
        text = text[:log_at] + text[integrity_at:]
    elif cut == "integrity":
        text = text[:integrity_at] + "\n"
    else:
        text = text[:log_at] + "\n"
    report.write_text(text)
    assert not ssh_keygen_verify(report, sig(report), trust, "root")
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(trust))
    assert code == 6, out
    assert "result: FAILED" in out


def test_sources_in_order_flag_env_xdg_git(tmp_path: Path, people: dict[str, Key], monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    good = allowed(tmp_path / "good", [f"root {people['root'].pub}"])
    bad = allowed(tmp_path / "bad", [f"root {people['mallory'].pub}"])
    home = Path(os.environ["HOME"])
    subprocess.run(["git", "config", "--global", "gpg.ssh.allowedSignersFile", "~/git_signers"], check=True)
    (home / "git_signers").write_text(good.read_text())
    code, out = verify_cli(capsys, str(report))
    assert code == 0 and f"{home / 'git_signers'} (from git config gpg.ssh.allowedSignersFile)" in out
    config = home / ".config" / "rollback-tui"
    config.mkdir(parents=True)
    (config / "allowed_signers").write_text(bad.read_text())
    code, out = verify_cli(capsys, str(report))
    assert code == 6 and "rollback-tui config directory" in out
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # XDG_CONFIG_HOME replaces ~/.config
    (tmp_path / "xdg" / "rollback-tui").mkdir(parents=True)
    (tmp_path / "xdg" / "rollback-tui" / "allowed_signers").write_text(good.read_text())
    assert verify_cli(capsys, str(report))[0] == 0
    monkeypatch.setenv("ROLLBACK_TUI_ALLOWED_SIGNERS", str(bad))
    code, out = verify_cli(capsys, str(report))
    assert code == 6 and "from $ROLLBACK_TUI_ALLOWED_SIGNERS" in out
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(good))
    assert code == 0 and "from --allowed-signers" in out


def test_a_repository_cannot_name_its_own_trust_file(tmp_path: Path, people: dict[str, Key],
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "handed-over"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    forged = allowed(repo / "trust-me", [f"root {people['mallory'].pub}"])
    subprocess.run(["git", "-C", str(repo), "config", "gpg.ssh.allowedSignersFile", str(forged)], check=True)
    report = write_report(session("root"), repo / "r.md", sign_key=people["mallory"].path, no_sign=False,
                          operator="root").path
    monkeypatch.chdir(repo)
    code, out = verify_cli(capsys, str(report))
    assert code == 6 and "allowed signers: none found" in out and "result: OK" not in out


def test_a_trust_file_that_is_not_a_regular_file_or_too_big(tmp_path: Path, people: dict[str, Key],
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for target in (fifo, tmp_path, Path("/dev/zero")):
        code, out = verify_cli(capsys, str(report), "--allowed-signers", str(target))
        assert code == 2 and "is not a regular file" in out, out
    big = tmp_path / "big"
    big.write_bytes(b"#" * (1 << 20) + b"\n")
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(big))
    assert code == 2 and "larger than" in out
    broken = allowed(tmp_path / "broken", ["# fine", f'root namespaces=rollback-tui {people["root"].pub}'])
    code, out = verify_cli(capsys, str(report), "--allowed-signers", str(broken))
    assert code == 2 and f"{broken}:2:6: missing start quote" in out
    assert "Traceback" not in out


def test_verify_and_replay_do_not_import_asyncssh(tmp_path: Path, people: dict[str, Key]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root")
    code = ("import sys\nfrom rollback_tui.cli import main\n"
            f"assert main(['verify', {str(report)!r}, '--allowed-signers', {str(trust)!r}]) == 0\n"
            f"assert main(['replay', {str(report)!r}]) == 6\n"  # refused before any screen: no trusted signer
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'asyncssh')\n"
            "assert not bad, bad\nprint('clean')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": os.environ["HOME"]})
    assert done.returncode == 0 and "clean" in done.stdout, done.stdout + done.stderr


def test_replay_refuses_an_untrusted_report_and_says_unverified(tmp_path: Path, people: dict[str, Key],
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from rollback_tui.report.load import load_events
    from rollback_tui.ui.app import CockpitApp
    from rollback_tui.ui.drivers import ReplayDriver
    from rollback_tui.ui.launch import replay_status

    report = signed(tmp_path, people["root"])
    assert main(["replay", str(report)]) == 6
    err = capsys.readouterr().err
    assert "UNVERIFIED: no trusted signer" in err and "--unverified" in err
    loaded = load_events(report)
    note, warning = replay_status(loaded)
    assert warning.startswith("UNVERIFIED")
    assert CockpitApp(ReplayDriver(loaded.events), mode_note=note, warning=warning).mode_line.startswith("⚠ UNVERIFIED")
    trust = trust_file(tmp_path, people, "root")
    note, warning = replay_status(load_events(report, allowed_signers=trust))
    assert warning == "" and note.startswith("✔ report verified: signed by root")


async def test_replay_unverified_shows_it_in_the_header(tmp_path: Path, people: dict[str, Key]) -> None:
    from rollback_tui.report.load import load_events
    from rollback_tui.ui.app import CockpitApp
    from rollback_tui.ui.drivers import ReplayDriver
    from rollback_tui.ui.launch import replay_status

    loaded = load_events(signed(tmp_path, people["root"]))
    note, warning = replay_status(loaded)
    app = CockpitApp(ReplayDriver(loaded.events, speed=1e6), mode_note=note, warning=warning)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.walk_children() if hasattr(w, "render"))
        assert "UNVERIFIED" in shown


def test_resume_signs_a_report_whose_signature_a_crash_lost(tmp_path: Path, people: dict[str, Key]) -> None:
    import yaml

    steps = [{"id": sid, "actions": [{"id": "a", "kind": "shell", "argv": ["echo", sid]}]}
             for sid in ("assess", "flags", "code", "validate")]
    plan = tmp_path / "plan.yaml"
    plan.write_text(yaml.safe_dump({"version": 1, "metadata": {"name": "crash test"},
                                    "rollback": {"scope": ["flags", "code"]}, "steps": steps}))
    common = ["--headless", "--answers", "auto", "--operator", "root", "--sign-key", str(people["root"].path)]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rollback_tui", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)

    done = cli("run", str(plan), *common, "--journal", "j.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    report, signature = tmp_path / "j.md", tmp_path / "j.md.sig"
    written = report.read_bytes()
    signature.unlink()  # the crash: the report is on disk, its .sig never made it
    trust = trust_file(tmp_path, people, "root")
    assert not verify_report(report, allowed_signers=trust).ok
    again = cli("resume", "j.jsonl", *common)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"signature: {signature.resolve()}" in again.stdout
    assert report.read_bytes() == written  # regenerated from the journal: the very same bytes, now signed
    assert verify_report(report, allowed_signers=trust).ok
    assert agree(report, signature, trust, "root")
    before = signature.read_bytes()
    assert cli("resume", "j.jsonl", *common).returncode == 0  # signed already: nothing is rewritten
    assert signature.read_bytes() == before


@pytest.mark.parametrize("planted", ["sig-fifo", "sig-dev-zero", "cosigners-fifo", "cosigners-dev-zero", "report-fifo"])
def test_planted_special_files_are_refused_not_read(tmp_path: Path, people: dict[str, Key], planted: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    report = signed(tmp_path, people["root"])
    trust = trust_file(tmp_path, people, "root")
    name, kind = planted.split("-", 1)
    target = {"sig": sig(report), "cosigners": Path(f"{report}.cosigners"), "report": report}[name]
    target.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.symlink_to("/dev/zero")
    code, out = verify_cli(capsys, str(tmp_path / "r.md"), "--allowed-signers", str(trust))
    assert code == (2 if name == "report" else 6), out
    assert "is not a regular file" in out and "result: OK" not in out


KINDS = [("ed25519", ["-t", "ed25519"]), ("ecdsa256", ["-t", "ecdsa", "-b", "256"]),
         ("ecdsa384", ["-t", "ecdsa", "-b", "384"]), ("ecdsa521", ["-t", "ecdsa", "-b", "521"]),
         ("rsa", ["-t", "rsa", "-b", "2048"])]


@pytest.mark.parametrize("kind, args", KINDS, ids=[k for k, _ in KINDS])
def test_every_key_type_both_ways_with_cryptography(tmp_path: Path, kind: str, args: list[str]) -> None:
    key = tmp_path / f"id_{kind}"
    subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", kind, "-f", str(key)], check=True, capture_output=True)
    trust = allowed(tmp_path / "allowed_signers", [f"root {Path(f'{key}.pub').read_text().strip()}"])
    report = signed(tmp_path, Key(key))  # signed by our cryptography-based signer
    assert agree(report, sig(report), trust, "root") and verify_report(report, allowed_signers=trust).ok
    sig(report).unlink()
    subprocess.run(["ssh-keygen", "-Y", "sign", "-n", "rollback-tui", "-f", str(key), str(report)], check=True,
                   capture_output=True)  # signed by OpenSSH
    assert agree(report, sig(report), trust, "root") and verify_report(report, allowed_signers=trust).ok


@pytest.mark.parametrize("algorithm, accepted", [("rsa-sha2-256", True), ("rsa-sha2-512", True), ("ssh-rsa", False)])
def test_rsa_signature_algorithms(tmp_path: Path, algorithm: str, accepted: bool) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    from rollback_tui.report import sshsig

    key = tmp_path / "id_rsa"
    subprocess.run(["ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-f", str(key)], check=True,
                   capture_output=True)
    trust = allowed(tmp_path / "allowed_signers", [f"root {Path(f'{key}.pub').read_text().strip()}"])
    report = signed(tmp_path, Key(key))
    private = serialization.load_ssh_private_key(key.read_bytes(), None)
    public = sshsig.decode(sshsig.unarmor(sig(report).read_bytes())).public_key
    digest = {"rsa-sha2-256": hashes.SHA256(), "rsa-sha2-512": hashes.SHA512(), "ssh-rsa": hashes.SHA1()}[algorithm]
    raw = private.sign(sshsig.signed_data(report.read_bytes()), padding.PKCS1v15(), digest)  # type: ignore[union-attr]
    blob = sshsig.encode(public, sshsig.ssh_string(algorithm.encode()) + sshsig.ssh_string(raw))
    sig(report).write_text(sshsig.armor(blob))
    result = verify_report(report, allowed_signers=trust)
    assert agree(report, sig(report), trust, "root", result) == accepted
    assert result.ok == accepted
    if not accepted:
        assert any("(SHA-1) is rejected" in p for p in result.problems)


def test_crlf_allowed_signers_file_is_read(tmp_path: Path, people: dict[str, Key]) -> None:
    report = signed(tmp_path, people["root"])
    trust = tmp_path / "allowed_signers"
    trust.write_bytes(f'# comment\r\nroot namespaces="rollback-tui" {people["root"].pub}\r\n'.encode())
    result = verify_report(report, allowed_signers=trust)
    assert agree(report, sig(report), trust, "root", result) and result.ok


def test_any_allowed_signers_line_parses_or_is_refused_with_a_position() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rollback_tui.errors import SignatureError
    from rollback_tui.report.allowed import parse_line

    pieces = st.sampled_from(['root', ',', '*', '!', '"', '\\', ' ', '\t', 'namespaces=', 'valid-before=', 'valid-after=',
                              '"20990101"', 'cert-authority', 'ssh-ed25519', 'ssh-rsa', 'AAAAC3NzaC1lZDI1NTE5',
                              'AAAAC3NzaC1lZDI1NTE5AAAAIObPVvkzw63EcpIkKJ7IUvHbHhQUtVXGKiLU5U50X5u+', '=', '#', 'é'])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(pieces, max_size=12).map("".join) | st.text(max_size=80))
    def check(line: str) -> None:
        try:
            parse_line(line, 7, "as")
        except SignatureError as exc:
            assert str(exc).startswith("as:7:")

    check()


def test_mangled_signatures_are_refused_never_crash(tmp_path: Path) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from rollback_tui.errors import SignatureError
    from rollback_tui.report import sshsig
    from rollback_tui.report.sshkeys import verify_signature

    s = sshsig.ssh_string
    kinds = st.sampled_from([b"ssh-ed25519", b"ssh-rsa", b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp521", b"x"])
    field = st.binary(max_size=80) | st.sampled_from([b"", b"\x00", b"\x80" * 3, b"\x01\x00\x01", b"\xff" * 33])

    @settings(max_examples=500, deadline=None)
    @given(kinds, st.lists(field, max_size=3), st.sampled_from([b"ssh-ed25519", b"rsa-sha2-512", b"ssh-rsa",
                                                               b"ecdsa-sha2-nistp256"]), field, st.binary(max_size=8))
    def check(kind: bytes, key_fields: list[bytes], alg: bytes, sig_blob: bytes, tail: bytes) -> None:
        key = s(kind) + b"".join(s(f) for f in key_fields)
        try:
            verify_signature(key, s(alg) + s(sig_blob) + tail, b"data")
        except SignatureError:
            return
        raise AssertionError("a made-up signature verified")

    check()
