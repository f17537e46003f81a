"""Fernet encryption of a credential's secret fields (a JSON object) at rest."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from zerocopy import errors
from zerocopy.errors import ZerocopyError


class SecretBox:
    """Encrypts/decrypts secret dicts with the first key; decrypts with any (key rotation)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise ValueError("SecretBox needs at least one Fernet key")
        try:
            self._fernet = MultiFernet(
                [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
            )
        except ValueError:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                "ZEROCOPY_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes); "
                "generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`",
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys hidden>)"

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, secrets: Mapping[str, str]) -> str:
        """Token for ``secrets`` (stored in ``Credential.secret_ciphertext``)."""
        return self._fernet.encrypt(orjson.dumps(dict(secrets))).decode()

    def decrypt(self, token: str | None) -> dict[str, str]:
        """The secret fields behind ``token`` (``{}`` for none)."""
        if not token:
            return {}
        try:
            data = orjson.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "the credential's secrets cannot be decrypted with the configured "
                "ZEROCOPY_SECRET_KEY (was the key changed?); restore the old key as a second "
                "comma-separated key or re-enter the credential's secrets",
            ) from None
        return {str(k): str(v) for k, v in data.items()}

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the newest key."""
        return self._fernet.rotate(token.encode()).decode()
