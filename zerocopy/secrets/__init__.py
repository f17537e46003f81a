"""Secrets: credential encryption at rest, key-pair generation, API keys.

Nothing here logs or returns a secret except the one-time values the caller must show once
(a new API key, a new private key handed to the encrypted store).
"""

from zerocopy.secrets.api_keys import (
    API_KEY_PREFIX,
    GeneratedApiKey,
    api_key_lookup_prefix,
    generate_api_key,
    hash_api_key,
    verify_api_key,
)
from zerocopy.secrets.box import SecretBox
from zerocopy.secrets.keypairs import (
    RsaKeyPair,
    SshKeyPair,
    generate_rsa_keypair,
    generate_ssh_keypair,
    rsa_fingerprint,
)

__all__ = [
    "API_KEY_PREFIX",
    "GeneratedApiKey",
    "RsaKeyPair",
    "SecretBox",
    "SshKeyPair",
    "api_key_lookup_prefix",
    "generate_api_key",
    "generate_rsa_keypair",
    "generate_ssh_keypair",
    "hash_api_key",
    "rsa_fingerprint",
    "verify_api_key",
]
