"""SSHSIG (OpenSSH PROTOCOL.sshsig): encode, armor, sign and verify with an expected namespace."""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback_tui.errors import SignatureError

NAMESPACE = "rollback-tui"
MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"
HASHES: dict[str, Callable[[bytes], Any]] = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
#: RSA signature algorithms OpenSSH accepts in an SSHSIG; plain `ssh-rsa` (SHA-1) is refused.
RSA_SHA2 = ("rsa-sha2-512", "rsa-sha2-256")


def ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


class WireReader:
    """Reads RFC 4251 `string`s and `uint32`s; any overrun is a SignatureError."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.data):
            raise SignatureError("the signature is truncated or malformed")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def uint32(self) -> int:
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        return self.take(self.uint32())

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def key_type(public_blob: bytes) -> str:
    """The algorithm name that starts an SSH public key blob (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)."""
    return WireReader(public_blob).string().decode("ascii", "replace")


def fingerprint(public_blob: bytes) -> str:
    """`SHA256:...` exactly as `ssh-keygen -l` prints it."""
    digest = base64.b64encode(hashlib.sha256(public_blob).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


@dataclass(frozen=True)
class SshSig:
    """A decoded SSHSIG blob."""

    public_key: bytes
    namespace: str
    hash_alg: str
    signature: bytes
    """The key type's SSH signature encoding: string sig_alg, string sig_blob."""

    @property
    def sig_alg(self) -> str:
        return WireReader(self.signature).string().decode("ascii", "replace")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.public_key)

    @property
    def key_type(self) -> str:
        return key_type(self.public_key)


def signed_data(message: bytes, namespace: str = NAMESPACE, hash_alg: str = "sha512") -> bytes:
    """What the key actually signs: the preamble, namespace, and the message's digest."""
    return signed_digest(HASHES[hash_alg](message).digest(), namespace, hash_alg)


def signed_digest(digest: bytes, namespace: str = NAMESPACE, hash_alg: str = "sha512") -> bytes:
    """signed_data for a message hashed already (a report streamed to disk)."""
    return MAGIC + ssh_string(namespace.encode()) + ssh_string(b"") + ssh_string(hash_alg.encode()) + ssh_string(digest)


def encode(public_key: bytes, signature: bytes, namespace: str = NAMESPACE, hash_alg: str = "sha512") -> bytes:
    return (MAGIC + struct.pack(">I", VERSION) + ssh_string(public_key) + ssh_string(namespace.encode())
            + ssh_string(b"") + ssh_string(hash_alg.encode()) + ssh_string(signature))


def armor(blob: bytes) -> str:
    """PEM-style armor wrapped at 70 columns, as ssh-keygen writes it (LF endings)."""
    text = base64.b64encode(blob).decode()
    lines = [text[i:i + 70] for i in range(0, len(text), 70)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def unarmor(text: str | bytes) -> bytes:
    """The blob inside an armored signature; tolerates CRLF and any wrap width."""
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.startswith(BEGIN):
        raise SignatureError("not an SSH signature: it does not start with '-----BEGIN SSH SIGNATURE-----'")
    end = text.find("\n" + END)
    if end < 0:
        raise SignatureError("not an SSH signature: no '-----END SSH SIGNATURE-----' line")
    body = "".join(text[len(BEGIN):end].split())
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SignatureError("the SSH signature is not valid base64") from None


def decode(blob: bytes) -> SshSig:
    """Parse a signature blob with ssh-keygen's structural rules (version, no trailing bytes)."""
    reader = WireReader(blob)
    if reader.take(6) != MAGIC:
        raise SignatureError("not an SSHSIG signature (bad preamble)")
    version = reader.uint32()
    if version > VERSION:
        raise SignatureError(f"unsupported SSHSIG version {version}")
    public_key = reader.string()
    namespace = reader.string().decode("utf-8", "replace")
    reader.string()  # reserved: ignored, as OpenSSH does
    hash_alg = reader.string().decode("ascii", "replace")
    signature = reader.string()
    if not reader.at_end():
        raise SignatureError("the signature has trailing bytes")
    return SshSig(public_key, namespace, hash_alg, signature)


#: An armored SSHSIG of a 16k-bit RSA key is under 4 KB; anything near this cap is not a signature.
MAX_SIG_BYTES = 64 * 1024


def read_small(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file of at most `limit` bytes: a FIFO, device or huge file is refused, never read."""
    import os
    import stat

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise SignatureError(f"{what} {path} is not a regular file")
            data = handle.read(limit + 1)
    except OSError as exc:
        raise SignatureError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SignatureError(f"{what} {path} is larger than {limit} bytes")
    return data


def load(path: Path) -> SshSig:
    return decode(unarmor(read_small(path, MAX_SIG_BYTES, "signature")))


def verify(message: bytes, sig: SshSig, namespace: str = NAMESPACE) -> bytes:
    """Check one signature over `message` (with `cryptography`, no asyncssh import); returns the signer's
    public key blob, raises SignatureError saying why not."""
    if sig.namespace != namespace:
        raise SignatureError(f"the signature is for namespace {sig.namespace!r}, not {namespace!r}")
    if sig.hash_alg not in HASHES:
        raise SignatureError(f"unsupported hash algorithm {sig.hash_alg!r} (sha256 or sha512 expected)")
    return verify_digest(HASHES[sig.hash_alg](message).digest(), sig, namespace)


def verify_digest(digest: bytes, sig: SshSig, namespace: str = NAMESPACE) -> bytes:
    """`verify` for a message hashed already with the signature's hash algorithm."""
    from rollback_tui.report.sshkeys import verify_signature

    if sig.namespace != namespace:
        raise SignatureError(f"the signature is for namespace {sig.namespace!r}, not {namespace!r}")
    if sig.hash_alg not in HASHES:
        raise SignatureError(f"unsupported hash algorithm {sig.hash_alg!r} (sha256 or sha512 expected)")
    if sig.key_type == "ssh-rsa" and sig.sig_alg not in RSA_SHA2:
        raise SignatureError(f"RSA signature algorithm {sig.sig_alg} (SHA-1) is rejected, as OpenSSH rejects it")
    verify_signature(sig.public_key, sig.signature, signed_digest(digest, namespace, sig.hash_alg))
    return sig.public_key
