"""Finding the operator's signing key: the ssh-agent, a key file (with a passphrase callable), or the defaults."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback_tui.errors import SignatureError
from rollback_tui.report import agent, keyfile, sshsig

DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa")
PASSPHRASE_ATTEMPTS = 3


@dataclass
class Signer:
    """Something that can sign: an agent key or a decrypted private key."""

    public_key: bytes
    comment: str
    source: str
    """'ssh-agent' or the key file's path."""
    _agent_path: str | None = None
    _agent_key: agent.AgentKey | None = None
    _private: Any = None

    @property
    def fingerprint(self) -> str:
        return sshsig.fingerprint(self.public_key)

    @property
    def label(self) -> str:
        """Fingerprint and comment, as the report and ReportOutcome.signer show it."""
        return f"{self.fingerprint} {self.comment}".strip()

    def sign(self, message: bytes, namespace: str = sshsig.NAMESPACE) -> str:
        """An armored SSHSIG over `message`, checked against itself before it is returned."""
        return self.sign_digest(hashlib.sha512(message).digest(), namespace)

    def sign_digest(self, digest: bytes, namespace: str = sshsig.NAMESPACE) -> str:
        """An armored SSHSIG over the message whose SHA-512 is `digest`, checked against itself."""
        data = sshsig.signed_digest(digest, namespace)
        try:
            if self._agent_key is not None and self._agent_path:
                signature = agent.sign(self._agent_path, self._agent_key, data)
            elif isinstance(self._private, keyfile.KeyFile):
                signature = self._private.sign(data)
            else:  # an asyncssh key (a format `cryptography` does not read)
                algorithm = b"rsa-sha2-512" if self._private.algorithm == b"ssh-rsa" else self._private.algorithm
                signature = self._private.sign(data, algorithm)
        except agent.AgentError as exc:
            raise SignatureError(str(exc)) from None
        blob = sshsig.encode(self.public_key, signature, namespace)
        # A signature that does not verify is worse than none: catch a misbehaving agent here.
        sshsig.verify_digest(digest, sshsig.decode(blob), namespace)
        return sshsig.armor(blob)


def _agent_keys() -> tuple[str | None, list[agent.AgentKey]]:
    path = agent.agent_socket()
    if not path:
        return None, []
    try:
        return path, agent.list_keys(path)
    except agent.AgentError:
        return path, []


def _public_blob_of(key_path: Path) -> bytes | None:
    """The public half from KEY.pub, if it is there (lets the agent sign for a protected key file)."""
    pub = Path(f"{key_path}.pub")
    return keyfile.public_blob(pub) if pub.is_file() else None


def _read(path: Path, secret: str | None) -> Signer:
    """One attempt: `cryptography` for OpenSSH/PEM ed25519, ecdsa and rsa keys; asyncssh for anything else.
    Raises keyfile.NeedPassphrase / WrongPassphrase, or SignatureError."""
    try:
        key = keyfile.load(path, secret)
        return Signer(key.public_key, key.comment, str(path), _private=key)
    except keyfile.Unsupported:
        pass
    except OSError as exc:
        raise SignatureError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
    import asyncssh  # other formats and key types (e.g. PuTTY, ed448)

    try:
        other = asyncssh.read_private_key(str(path), secret)
    except asyncssh.KeyImportError as exc:
        if "Passphrase must be specified" in str(exc):
            raise keyfile.NeedPassphrase() from None
        raise SignatureError(f"cannot read signing key {path}: {exc}") from None
    except asyncssh.KeyEncryptionError as exc:
        if "Incorrect passphrase" in str(exc):
            raise keyfile.WrongPassphrase() from None
        raise SignatureError(f"cannot read signing key {path}: {exc}") from None
    except OSError as exc:
        raise SignatureError(f"cannot read signing key {path}: {exc.strerror or exc}") from None
    return Signer(bytes(other.public_data), other.get_comment() or "", str(path), _private=other)


def load_key_file(path: Path, passphrase: Callable[[], str] | None) -> Signer:
    """Decrypt a private key file; a protected key asks `passphrase` (up to 3 times)."""
    if not path.is_file():
        raise SignatureError(f"signing key {path} does not exist", hint="pass --sign-key KEY or --no-sign")
    secret: str | None = None
    for attempt in range(PASSPHRASE_ATTEMPTS + 1):
        try:
            return _read(path, secret)
        except (keyfile.NeedPassphrase, keyfile.WrongPassphrase):
            pass
        if passphrase is None:
            raise SignatureError(
                f"key {path} is protected by a passphrase: nothing here can ask for it",
                hint="load it into ssh-agent (ssh-add), or sign from the cockpit, which asks for it")
        if attempt == PASSPHRASE_ATTEMPTS:
            raise SignatureError(f"key {path}: incorrect passphrase ({PASSPHRASE_ATTEMPTS} attempts)")
        try:
            secret = passphrase()
        except Exception as exc:  # the prompt was closed or failed: no signature, never a crash
            raise SignatureError(f"key {path} is protected by a passphrase: the prompt failed ({exc})") from None
        if not secret:
            raise SignatureError(f"key {path} is protected by a passphrase: none was given")
    raise AssertionError("unreachable")


def find_signer(sign_key: Path | None, passphrase: Callable[[], str] | None = None) -> Signer:
    """The key that signs: for an explicit key, the agent's copy of it if loaded, else the file;
    with no key, the agent's first key, else ~/.ssh/id_ed25519, id_ecdsa, id_rsa."""
    path, keys = _agent_keys()
    if sign_key is not None:
        wanted = _public_blob_of(sign_key)
        for key in keys:
            if wanted is not None and key.public_key == wanted:
                return Signer(key.public_key, key.comment, "ssh-agent", _agent_path=path, _agent_key=key)
        return load_key_file(sign_key, passphrase)
    if keys:
        return Signer(keys[0].public_key, keys[0].comment, "ssh-agent", _agent_path=path, _agent_key=keys[0])
    ssh_dir = Path.home() / ".ssh"
    for name in DEFAULT_KEYS:
        if (ssh_dir / name).is_file():
            return load_key_file(ssh_dir / name, passphrase)
    agent_note = f"the ssh-agent at {path} holds no key" if path else "no ssh-agent (SSH_AUTH_SOCK is not set)"
    raise SignatureError(f"no signing key found: {agent_note}, and no {', '.join(DEFAULT_KEYS)} in {ssh_dir}",
                         hint="pass --sign-key KEY, load a key with ssh-add, or use --no-sign")
