"""Workspace API keys: shown once, stored as a lookup prefix plus a SHA-256 hash.

Format: ``zc_<prefix>_<secret>``. The prefix (12 hex chars) finds the row; the hash of the
whole key is compared in constant time. The keys carry 256 random bits, so a fast hash is
enough (no password-stretching needed, and key checks stay cheap per request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

API_KEY_PREFIX = "zc_"


@dataclass(frozen=True, slots=True)
class GeneratedApiKey:
    key: str
    """The full key: print it once, never store it."""
    prefix: str
    key_hash: str

    def __repr__(self) -> str:
        return f"GeneratedApiKey(prefix={self.prefix!r}, key=<hidden>)"


def generate_api_key() -> GeneratedApiKey:
    prefix = secrets.token_hex(6)
    key = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    return GeneratedApiKey(key=key, prefix=prefix, key_hash=hash_api_key(key))


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_lookup_prefix(key: str) -> str | None:
    """The stored lookup prefix of ``key``, or ``None`` when it is not shaped like our keys."""
    if not key.startswith(API_KEY_PREFIX):
        return None
    prefix, sep, rest = key[len(API_KEY_PREFIX) :].partition("_")
    if not sep or not rest or len(prefix) != 12:
        return None
    return prefix


def verify_api_key(key: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_api_key(key), key_hash)
