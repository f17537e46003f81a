"""Key pairs zerocopy generates for the user: RSA for Snowflake key-pair auth, ed25519 for SSH.

The private key goes to the encrypted credential store; the public key is shown so the user
can register it (``ALTER USER … SET RSA_PUBLIC_KEY='…'`` or ``authorized_keys``).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa


@dataclass(frozen=True, slots=True)
class RsaKeyPair:
    private_key_pem: str
    """Unencrypted PKCS#8 PEM (stored encrypted by :class:`SecretBox`)."""
    public_key_pem: str
    public_key_body: str
    """Base64 body of the public key without PEM header/footer/newlines, for ``RSA_PUBLIC_KEY``."""
    fingerprint: str
    """``SHA256:<base64>`` as Snowflake shows in ``DESC USER`` (``RSA_PUBLIC_KEY_FP``)."""

    def __repr__(self) -> str:
        return f"RsaKeyPair(fingerprint={self.fingerprint!r}, private_key=<hidden>)"


@dataclass(frozen=True, slots=True)
class SshKeyPair:
    private_key_openssh: str
    public_key_line: str
    """``ssh-ed25519 AAAA… zerocopy`` for ``authorized_keys``."""
    fingerprint: str
    """``SHA256:<base64 without padding>`` as ``ssh-keygen -l`` prints it."""

    def __repr__(self) -> str:
        return f"SshKeyPair(fingerprint={self.fingerprint!r}, private_key=<hidden>)"


def generate_rsa_keypair(bits: int = 2048) -> RsaKeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    public_pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return RsaKeyPair(
        private_key_pem=private_pem,
        public_key_pem=public_pem,
        public_key_body=base64.b64encode(public_der).decode(),
        fingerprint=rsa_fingerprint(public_der),
    )


def rsa_fingerprint(public_key: bytes | str) -> str:
    """Snowflake's fingerprint: SHA-256 of the DER SubjectPublicKeyInfo, base64, ``SHA256:`` prefix.

    Accepts DER bytes, a PEM string or the bare base64 body.
    """
    if isinstance(public_key, str):
        text = public_key.strip()
        if text.startswith("-----BEGIN"):
            der = serialization.load_pem_public_key(text.encode()).public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        else:
            der = base64.b64decode("".join(text.split()))
    else:
        der = public_key
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def generate_ssh_keypair(comment: str = "zerocopy") -> SshKeyPair:
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    blob = base64.b64decode(public.split()[1])
    fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    return SshKeyPair(
        private_key_openssh=private,
        public_key_line=f"{public} {comment}".strip(),
        fingerprint=fingerprint,
    )
