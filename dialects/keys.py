"""What an adapter needs zerocopy to generate for a credential: a key pair, never a password.

An adapter class answers :meth:`dialects.base.BaseAdapter.generated_key` with a
:class:`GeneratedKeySpec` (or ``None``); the credential service generates the pair, stores the
private half as the named secret and shows the public half. No I/O and no key material here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KeyAlgorithm = Literal["rsa", "ed25519"]


@dataclass(frozen=True, slots=True)
class GeneratedKeySpec:
    """A key pair zerocopy generates for a credential of some warehouse."""

    secret: str
    """Secret field holding the private key (the client may not send it)."""
    algorithm: KeyAlgorithm
    """``rsa`` (PKCS#8 PEM private key, base64 SPKI public key) or ``ed25519`` (OpenSSH)."""
    installed_by: str
    """Where the user registers the public key, for messages (e.g. ``ALTER USER … SET …``)."""
    two_slot_rotation: bool = False
    """The warehouse holds two public keys per user (Snowflake ``RSA_PUBLIC_KEY``/``_2``), so
    the key rotates without downtime through :mod:`zerocopy.keyrotation`."""
