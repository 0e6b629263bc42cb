"""A canary secret used by every kind of action and probe never reaches the journal, the report or stdout."""

from __future__ import annotations

import base64
import http.server
import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

CANARY = "Canary-9f3Kq-p@ss/w:rd"
_RAW = CANARY.encode()
FORMS = [CANARY, base64.b64encode(_RAW).decode().rstrip("="), quote(CANARY, safe=""),
         base64.b64encode(_RAW).decode(), base64.urlsafe_b64encode(_RAW).decode(), quote(CANARY), quote_plus(CANARY),
         re.sub("%[0-9A-F]{2}", lambda match: match.group(0).lower(), quote(CANARY, safe="")),
         _RAW.hex(), _RAW.hex().upper(), json.dumps(CANARY)[1:-1].replace("/", "\\/"),
         "".join(f"\\u{ord(c):04x}" for c in CANARY)]
#: prints every form above, and the canary inside a basic-auth blob at each base64 alignment
PRINT_FORMS = (
    "import base64, sys; forms = sys.argv[1:]; c = forms[0].encode()\n"
    "for form in forms: print('form', form)\n"
    "for p in (b'', b'u:', b'us:'): print('blob', base64.b64encode(p + c + b'!').decode())")


@pytest.fixture
def echo_server() -> Iterator[str]:
    """An HTTP server that echoes request headers and path back in its body: a leak waiting to happen."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            echo = json.dumps({"path": self.path, "headers": dict(self.headers), "body": body.decode()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(echo)))
            self.end_headers()
            self.wfile.write(echo)

        do_GET = do_POST = _answer  # noqa: N815 - stdlib names

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def ssh_host(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A loopback SSH server in its own process, with a client key and a known_hosts file."""
    keys = tmp_path / "ssh"
    keys.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "client")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / "host")], check=True)
    port_file = keys / "ports"
    server = subprocess.Popen([sys.executable, "-m", "rollback_tui.loopback.sshd", "--port-file", str(port_file),
                               "--host-key", str(keys / "host"), "--authorized-keys", str(keys / "client.pub"),
                               "--count", "1"], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert server.poll() is None and time.monotonic() < deadline, "loopback sshd did not start"
            time.sleep(0.05)
        port = port_file.read_text().split()[0]
        host_key = (keys / "host.pub").read_text().split()
        (keys / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        yield {"port": port, "key": str(keys / "client"), "known_hosts": str(keys / "known_hosts")}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=10)


def test_canary_never_leaks(tmp_path: Path, echo_server: str, ssh_host: dict[str, str]) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"flags": {"new": {"state": "ENABLED", "variants": {"on": True, "off": False},
                                                   "defaultVariant": "on"}}}))
    env_file = tmp_path / "app.env"
    env_file.write_text("API_TOKEN=old-value-1234\nLOG_LEVEL=info\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""
metadata: {{name: canary-check}}
approvals: {{allow_same_person: true}}
rollback: {{scope: [flags, code, configuration]}}
secrets: {{canary: {{env: CANARY_SECRET}}}}
host_groups:
  local:
    hosts: ["127.0.0.1:{ssh_host['port']}"]
    user: tester
    key_file: {ssh_host['key']}
    known_hosts: {ssh_host['known_hosts']}
health:
  - id: echo
    kind: http
    url: "{echo_server}/health?token=${{secrets.canary}}"
    interval: 0.2
steps:
  - id: flags
    actions:
      - {{id: off, kind: flagd, file: "{flags}", flags: [new]}}
  - id: code
    actions:
      - id: argv-and-env
        kind: shell
        argv: ["{sys.executable}", "-c", "import os, sys; print(sys.argv[1]); print(os.environ['TOKEN'], file=sys.stderr)",
               "${{secrets.canary}}"]
        env: {{TOKEN: "${{secrets.canary}}"}}
      - id: forms
        kind: shell
        argv: ["{sys.executable}", "-c", {json.dumps(PRINT_FORMS)}, "${{secrets.canary}}",
               {", ".join(json.dumps(f.replace("${", "$${")) for f in FORMS[1:])}]
      - {{id: remote, kind: ssh, group: local, command: "echo ${{secrets.canary}}; echo ${{secrets.canary}} >&2"}}
      - id: webhook
        kind: http
        url: "{echo_server}/hook?t=${{secrets.canary}}"
        headers: {{Authorization: "Bearer ${{secrets.canary}}"}}
        json_body: {{token: "${{secrets.canary}}"}}
  - id: configuration
    actions:
      - {{id: env, kind: env_file, path: "{env_file}", values: {{API_TOKEN: "${{secrets.canary}}"}}}}
    verify:
      - {{kind: http, id: echo-check, url: "{echo_server}/check?token=${{secrets.canary}}", body_contains: "nothing"}}
""")
    journal, report = tmp_path / "s.journal.jsonl", tmp_path / "s.md"
    result = subprocess.run(
        [sys.executable, "-m", "rollback_tui", "run", str(plan), "--headless", "--answers", "auto", "--no-sign",
         "--journal", str(journal), "--report", str(report)],
        capture_output=True, text=True, timeout=180, env={**os.environ, "CANARY_SECRET": CANARY})
    # the step-4 check fails on purpose (its body never contains 'nothing'): auto stops there as blocked
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stdout + result.stderr
    texts = {"stdout": result.stdout, "stderr": result.stderr, "journal": journal.read_text(),
             "report": report.read_text()}
    assert "•••" in texts["journal"], "the secret was used and masked"
    for where, text in texts.items():
        for form in FORMS:
            assert form not in text, f"secret form {form!r} leaked into {where}"
        for prefix in (b"", b"u:", b"us:"):
            blob = base64.b64encode(prefix + _RAW + b"!").decode()
            assert blob[4:-4] not in text, f"the canary inside base64 {blob!r} leaked into {where}"
    assert "code/forms | form " + "•••" in texts["stdout"]
    # the secret really was used: it reached the env file and the remote command
    assert CANARY in env_file.read_text()
    for path in (journal, report):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
