"""A small synchronous ssh-agent client (draft-miller-ssh-agent): list identities, sign."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

from rollback_tui.report.sshsig import WireReader, key_type, ssh_string

REQUEST_IDENTITIES = 11
IDENTITIES_ANSWER = 12
SIGN_REQUEST = 13
SIGN_RESPONSE = 14
FAILURE = 5
RSA_SHA2_512 = 4
#: An agent answers in well under a second; a hung agent must not hang report writing.
TIMEOUT = 10.0


class AgentError(Exception):
    """The agent could not be reached, refused, or answered something unexpected."""


@dataclass(frozen=True)
class AgentKey:
    public_key: bytes
    comment: str

    @property
    def key_type(self) -> str:
        return key_type(self.public_key)


def agent_socket() -> str | None:
    return os.environ.get("SSH_AUTH_SOCK") or None


def _exchange(path: str, kind: int, payload: bytes) -> tuple[int, bytes]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(TIMEOUT)
            sock.connect(path)
            body = bytes([kind]) + payload
            sock.sendall(struct.pack(">I", len(body)) + body)
            size = struct.unpack(">I", _recv(sock, 4))[0]
            answer = _recv(sock, size)
    except OSError as exc:
        raise AgentError(f"ssh-agent at {path}: {exc.strerror or exc}") from None
    if not answer:
        raise AgentError(f"ssh-agent at {path} sent an empty answer")
    return answer[0], answer[1:]


def _recv(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise OSError("the agent closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def list_keys(path: str) -> list[AgentKey]:
    kind, payload = _exchange(path, REQUEST_IDENTITIES, b"")
    if kind != IDENTITIES_ANSWER:
        raise AgentError(f"ssh-agent at {path} refused to list its keys")
    reader = WireReader(payload)
    keys = []
    for _ in range(reader.uint32()):
        blob = reader.string()
        keys.append(AgentKey(blob, reader.string().decode("utf-8", "replace")))
    return keys


def sign(path: str, key: AgentKey, data: bytes) -> bytes:
    """The SSH signature encoding of `data`; RSA keys ask for rsa-sha2-512 (without it agents make SHA-1)."""
    flags = RSA_SHA2_512 if key.key_type == "ssh-rsa" else 0
    kind, payload = _exchange(path, SIGN_REQUEST, ssh_string(key.public_key) + ssh_string(data) + struct.pack(">I", flags))
    if kind != SIGN_RESPONSE:
        raise AgentError(f"ssh-agent at {path} refused to sign with {key.comment or key.key_type} "
                         "(a confirm-only key that was declined, or a locked agent)")
    return WireReader(payload).string()
