"""Clients of the two real schema peers: check-jsonschema (PyPI) and yaml-language-server (npm, over LSP stdio)."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schema" / "plan.schema.json"
YAMLLS_DIR = ROOT / "tests" / "peers" / "yamlls"
YAMLLS = YAMLLS_DIR / "node_modules" / "yaml-language-server" / "bin" / "yaml-language-server"


def check_jsonschema(paths: list[Path]) -> dict[str, list[dict[str, Any]] | None]:
    """Schema errors (path, message) of each file, in one run; None for a file it cannot parse as YAML."""
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), "-o", "json",
                           *map(str, paths)], capture_output=True, text=True, timeout=300)
    report = json.loads(done.stdout)
    out: dict[str, list[dict[str, Any]] | None] = {str(path): [] for path in paths}
    for error in report.get("errors", []):
        out[error["filename"]].append(error)  # type: ignore[union-attr]
    for error in report.get("parse_errors", []):
        out[error["filename"]] = None
    return out


def json_path(text: str) -> tuple[Any, ...]:
    """`$.steps[0].actions[1].kind` -> ('steps', 0, 'actions', 1, 'kind')."""
    parts: list[Any] = []
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", text[1:]):
        parts.append(int(index) if index else name)
    return tuple(parts)


class LanguageServer:
    """yaml-language-server over stdio, configured with the published schema for every .yaml file."""

    def __init__(self) -> None:
        node = shutil.which("node")
        assert node is not None and YAMLLS.is_file(), "node and tests/peers/yamlls (npm ci) are needed"
        self.proc = subprocess.Popen([node, str(YAMLLS), "--stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self._id = 0
        self._buffer = b""
        self.settings = {"validate": True, "schemas": {SCHEMA.as_uri(): "*.yaml"}, "schemaStore": {"enable": False}}
        self.request("initialize", {"processId": os.getpid(), "rootUri": ROOT.as_uri(), "capabilities": {
            "textDocument": {"publishDiagnostics": {}}}})
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": self.settings}})

    def _send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def request(self, method: str, params: Any, timeout: float = 60) -> Any:
        self._id += 1
        self._send({"id": self._id, "method": method, "params": params})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self._read(deadline)
            if message is None:
                continue
            if message.get("id") == self._id and "method" not in message:
                return message.get("result")
            if "method" in message and "id" in message:
                self._answer(message)
        raise TimeoutError(f"yaml-language-server did not answer {method}")

    def _answer(self, message: dict[str, Any]) -> None:
        """A request from the server: its configuration (the yaml section), else an empty answer."""
        if message["method"] == "workspace/configuration":
            items = message.get("params", {}).get("items", [])
            result: Any = [self.settings if item.get("section") == "yaml" else None for item in items]
        else:
            result = None
        self._send({"id": message["id"], "result": result})

    def _read(self, deadline: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while b"\r\n\r\n" not in self._buffer or len(self._buffer) < self._needed():
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError("yaml-language-server exited")
            self._buffer += chunk
        head, _, rest = self._buffer.partition(b"\r\n\r\n")
        length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
        body, self._buffer = rest[:length], rest[length:]
        return json.loads(body)  # type: ignore[no-any-return]

    def _needed(self) -> int:
        head, sep, _ = self._buffer.partition(b"\r\n\r\n")
        match = re.search(rb"Content-Length: (\d+)", head)
        return len(head) + len(sep) + int(match.group(1)) if match and sep else 1 << 62

    def diagnostics(self, path: Path, timeout: float = 60) -> list[dict[str, Any]]:
        """Schema diagnostics of one file (yaml-language-server validates it on open)."""
        uri = path.resolve().as_uri()
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1,
                                                              "text": path.read_text()}})
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] | None = None
        while time.monotonic() < deadline:
            message = self._read(min(deadline, time.monotonic() + (0.4 if found is not None else timeout)))
            if message is None:
                if found is not None:
                    break  # no newer diagnostics within a moment: the last ones stand
                continue
            if "method" in message and "id" in message:
                self._answer(message)
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                found = message["params"]["diagnostics"]
        self.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
        assert found is not None, f"no diagnostics for {path}"
        return found

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=10)
            self.notify("exit", None)
            self.proc.wait(timeout=10)
        except Exception:
            pass
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
