"""SSH public keys and signatures with `cryptography` alone: ed25519, ecdsa nistp256/384/521, rsa-sha2-256/512."""

from __future__ import annotations

from rollback_tui.errors import SignatureError
from rollback_tui.report.sshsig import RSA_SHA2, WireReader

#: ecdsa key type -> (curve name in the blob, hash used by the signature)
ECDSA = {"ecdsa-sha2-nistp256": ("nistp256", "sha256"), "ecdsa-sha2-nistp384": ("nistp384", "sha384"),
         "ecdsa-sha2-nistp521": ("nistp521", "sha512")}
#: OpenSSH refuses RSA keys under 1024 bits (SSH_RSA_MINIMUM_MODULUS_SIZE).
RSA_MIN_BITS = 1024
RSA_MAX_BITS = 16384
SUPPORTED = ("ssh-ed25519", *ECDSA, "ssh-rsa")


def _mpint(reader: WireReader) -> int:
    raw = reader.string()
    if raw and raw[0] & 0x80:
        raise SignatureError("the key or signature holds a negative number")
    return int.from_bytes(raw, "big")


def _hash(name: str) -> object:
    from cryptography.hazmat.primitives import hashes

    return {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[name]


def verify_signature(public_blob: bytes, signature: bytes, data: bytes) -> None:
    """Check an SSH signature encoding (`string alg, string sig`) over `data`; SignatureError when it fails."""
    from cryptography.exceptions import InvalidSignature

    key = WireReader(public_blob)
    kind = key.string().decode("ascii", "replace")
    sig = WireReader(signature)
    sig_alg = sig.string().decode("ascii", "replace")
    blob = sig.string()
    if not sig.at_end():
        raise SignatureError("the signature has trailing bytes")
    try:
        if kind == "ssh-ed25519":
            _ed25519(key, sig_alg, blob, data)
        elif kind in ECDSA:
            _ecdsa(kind, key, sig_alg, blob, data)
        elif kind == "ssh-rsa":
            _rsa(key, sig_alg, blob, data)
        else:
            raise SignatureError(f"unsupported signer key type {kind!r} (certificates are not supported)")
    except InvalidSignature:
        raise SignatureError("the signature does not match the file's bytes") from None
    except ValueError as exc:  # a malformed point or key the crypto layer refuses
        raise SignatureError(f"the signer's {kind} key is malformed ({exc})") from None


def _ed25519(key: WireReader, sig_alg: str, blob: bytes, data: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    public = key.string()
    if not key.at_end() or len(public) != 32:
        raise SignatureError("the signer's ssh-ed25519 key is malformed")
    if sig_alg != "ssh-ed25519" or len(blob) != 64:
        raise SignatureError(f"signature algorithm {sig_alg!r} does not fit an ssh-ed25519 key")
    Ed25519PublicKey.from_public_bytes(public).verify(blob, data)


def _ecdsa(kind: str, key: WireReader, sig_alg: str, blob: bytes, data: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    curve_name, hash_name = ECDSA[kind]
    if key.string().decode("ascii", "replace") != curve_name:
        raise SignatureError(f"the signer's {kind} key names another curve")
    point = key.string()
    if not key.at_end():
        raise SignatureError(f"the signer's {kind} key has trailing bytes")
    if sig_alg != kind:
        raise SignatureError(f"signature algorithm {sig_alg!r} does not fit an {kind} key")
    curve = {"nistp256": ec.SECP256R1(), "nistp384": ec.SECP384R1(), "nistp521": ec.SECP521R1()}[curve_name]
    public = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
    inner = WireReader(blob)
    r, s = _mpint(inner), _mpint(inner)
    if not inner.at_end():
        raise SignatureError("the ecdsa signature has trailing bytes")
    public.verify(encode_dss_signature(r, s), data, ec.ECDSA(_hash(hash_name)))  # type: ignore[arg-type]


def _rsa(key: WireReader, sig_alg: str, blob: bytes, data: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    e, n = _mpint(key), _mpint(key)
    if not key.at_end():
        raise SignatureError("the signer's ssh-rsa key has trailing bytes")
    if sig_alg not in RSA_SHA2:
        raise SignatureError(f"RSA signature algorithm {sig_alg} (SHA-1) is rejected, as OpenSSH rejects it")
    if not RSA_MIN_BITS <= n.bit_length() <= RSA_MAX_BITS:
        raise SignatureError(f"the signer's RSA key has {n.bit_length()} bits ({RSA_MIN_BITS}-{RSA_MAX_BITS} accepted)")
    size = (n.bit_length() + 7) // 8
    if len(blob) > size:
        raise SignatureError("the RSA signature is longer than the key's modulus")
    public = rsa.RSAPublicNumbers(e, n).public_key()
    hash_name = "sha512" if sig_alg == "rsa-sha2-512" else "sha256"
    # OpenSSH pads a short signature with leading zeros (ssh_rsa_verify); so do we
    public.verify(blob.rjust(size, b"\0"), data, padding.PKCS1v15(), _hash(hash_name))  # type: ignore[arg-type]
