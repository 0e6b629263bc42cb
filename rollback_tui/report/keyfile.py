"""Private key files read and used with `cryptography` (OpenSSH and PEM formats; ed25519, ecdsa, rsa)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollback_tui.errors import SignatureError
from rollback_tui.report.sshsig import WireReader, ssh_string

OPENSSH_MAGIC = b"openssh-key-v1\0"
#: how many SSH wire fields of private data follow the key type in an OpenSSH private section
PRIVATE_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 6, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
                  "ecdsa-sha2-nistp521": 3}


class NeedPassphrase(Exception):
    """The key is encrypted and no passphrase was given."""


class WrongPassphrase(Exception):
    """The passphrase does not decrypt the key."""


class Unsupported(Exception):
    """Not a format or key type this module handles (the caller may try another reader)."""


@dataclass
class KeyFile:
    private: Any
    public_key: bytes
    comment: str

    def sign(self, data: bytes) -> bytes:
        """The SSH signature encoding of `data` (RSA: rsa-sha2-512, never SHA-1)."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        key = self.private
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return ssh_string(b"ssh-ed25519") + ssh_string(key.sign(data))
        if isinstance(key, rsa.RSAPrivateKey):
            return ssh_string(b"rsa-sha2-512") + ssh_string(key.sign(data, padding.PKCS1v15(), hashes.SHA512()))
        if isinstance(key, ec.EllipticCurvePrivateKey):
            size = key.curve.key_size
            chosen: hashes.HashAlgorithm = hashes.SHA256() if size <= 256 else hashes.SHA384() if size <= 384 \
                else hashes.SHA512()
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(chosen)))
            name = WireReader(self.public_key).string()
            return ssh_string(name) + ssh_string(ssh_string(_mpint(r)) + ssh_string(_mpint(s)))
        raise Unsupported(type(key).__name__)


def _mpint(value: int) -> bytes:
    """RFC 4251 mpint body of a non-negative integer: big-endian, a leading zero byte when the top bit is set."""
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return b"\0" + raw if raw and raw[0] & 0x80 else raw


def load(path: Path, passphrase: str | None) -> KeyFile:
    """Read and decrypt `path`; NeedPassphrase, WrongPassphrase, Unsupported, or OSError."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    data = Path(path).read_bytes()
    secret = passphrase.encode() if passphrase else None
    try:
        if b"-----BEGIN OPENSSH PRIVATE KEY-----" in data:
            key: Any = serialization.load_ssh_private_key(data, secret)
        elif b"-----BEGIN " in data:
            key = serialization.load_pem_private_key(data, secret)
        else:
            raise Unsupported("not an OpenSSH or PEM private key")
    except TypeError as exc:  # encrypted without a password, or a password for a plain key
        if "password was not provided" in str(exc) or "encrypted" in str(exc).lower() and secret is None:
            raise NeedPassphrase() from None
        raise Unsupported(str(exc)) from None
    except ValueError as exc:
        if secret is not None and ("checksum" in str(exc) or "decrypt" in str(exc).lower() or "password" in str(exc).lower()):
            raise WrongPassphrase() from None
        raise Unsupported(str(exc)) from None
    except UnsupportedAlgorithm as exc:
        raise Unsupported(str(exc)) from None
    if not isinstance(key, (ed25519.Ed25519PrivateKey, rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise Unsupported(type(key).__name__)
    line = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(line.split()[1])
    return KeyFile(key, blob, _comment(data, blob) or _pub_comment(path, blob))


def _comment(data: bytes, blob: bytes) -> str:
    """The comment inside an unencrypted OpenSSH private key ('' when encrypted or not that format)."""
    try:
        text = data.decode("ascii")
        body = text.split("-----BEGIN OPENSSH PRIVATE KEY-----", 1)[1].split("-----END OPENSSH PRIVATE KEY-----", 1)[0]
        raw = base64.b64decode("".join(body.split()))
        if not raw.startswith(OPENSSH_MAGIC):
            return ""
        reader = WireReader(raw[len(OPENSSH_MAGIC):])
        if reader.string() != b"none":
            return ""
        reader.string()
        reader.string()
        if reader.uint32() != 1:
            return ""
        reader.string()
        private = WireReader(reader.string())
        check = private.take(8)
        if check[:4] != check[4:]:
            return ""
        kind = private.string().decode("ascii", "replace")
        for _ in range(PRIVATE_FIELDS.get(kind, -1)):
            private.string()
        if kind not in PRIVATE_FIELDS:
            return ""
        return private.string().decode("utf-8", "replace")
    except Exception:  # any oddity: no comment rather than a failure
        return ""


def _pub_comment(path: Path, blob: bytes) -> str:
    """The comment of KEY.pub, when it holds the same key."""
    try:
        fields = Path(f"{path}.pub").read_text(errors="replace").split(None, 2)
        if len(fields) >= 3 and base64.b64decode(fields[1]) == blob:
            return fields[2].strip()
    except (OSError, ValueError):
        pass
    return ""


def public_blob(pub_path: Path) -> bytes | None:
    """The key blob of an OpenSSH public key file (`type base64 [comment]`), or None."""
    try:
        fields = Path(pub_path).read_text(errors="replace").split()
        blob = base64.b64decode(fields[1], validate=True)
        return blob if WireReader(blob).string().decode("ascii", "replace") == fields[0] else None
    except (OSError, ValueError, IndexError, SignatureError):
        return None
