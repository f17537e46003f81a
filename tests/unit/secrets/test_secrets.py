"""Secret box, key pairs and API keys."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from zerocopy import errors
from zerocopy.errors import ZerocopyError
from zerocopy.secrets import (
    SecretBox,
    api_key_lookup_prefix,
    generate_api_key,
    generate_rsa_keypair,
    generate_ssh_keypair,
    hash_api_key,
    rsa_fingerprint,
    verify_api_key,
)


def test_box_round_trip_and_ciphertext_hides_the_secret() -> None:
    box = SecretBox([SecretBox.generate_key()])
    token = box.encrypt({"password": "canary-hunter2"})
    assert "canary" not in token and "hunter2" not in token
    assert box.decrypt(token) == {"password": "canary-hunter2"}
    assert box.decrypt(None) == {}
    assert "key" not in repr(box).lower().replace("<keys hidden>", "")


def test_box_rotation_and_wrong_key() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox([old]).encrypt({"token": "t0k3n"})
    both = SecretBox([new, old])
    assert both.decrypt(token) == {"token": "t0k3n"}
    rotated = both.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == {"token": "t0k3n"}
    with pytest.raises(ZerocopyError) as err:
        SecretBox([new]).decrypt(token)
    assert err.value.code == errors.INVALID_CREDENTIAL
    with pytest.raises(ZerocopyError):
        SecretBox(["not-a-key"])


def test_rsa_keypair_is_pkcs8_and_fingerprint_is_snowflakes() -> None:
    pair = generate_rsa_keypair()
    assert pair.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")  # PKCS#8
    key = serialization.load_pem_private_key(pair.private_key_pem.encode(), password=None)
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert pair.public_key_body == base64.b64encode(der).decode()
    assert "\n" not in pair.public_key_body and "BEGIN" not in pair.public_key_body
    expected = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert pair.fingerprint == expected
    assert rsa_fingerprint(pair.public_key_pem) == expected == rsa_fingerprint(pair.public_key_body)
    assert "PRIVATE" not in repr(pair)


def test_ssh_keypair_matches_ssh_keygen() -> None:
    pair = generate_ssh_keypair()
    assert pair.public_key_line.startswith("ssh-ed25519 AAAA")
    assert pair.private_key_openssh.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    keygen = shutil.which("ssh-keygen")
    if keygen is None:
        return  # the fingerprint format is still checked below
    out = subprocess.run(
        [keygen, "-l", "-E", "sha256", "-f", "/dev/stdin"],
        input=pair.public_key_line.encode(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert pair.fingerprint in out


def test_ssh_fingerprint_format() -> None:
    fp = generate_ssh_keypair().fingerprint
    assert fp.startswith("SHA256:") and not fp.endswith("=")


def test_api_keys() -> None:
    a, b = generate_api_key(), generate_api_key()
    assert a.key != b.key and a.prefix != b.prefix
    assert a.key.startswith("zc_") and a.key_hash == hash_api_key(a.key)
    assert a.key not in repr(a)
    assert api_key_lookup_prefix(a.key) == a.prefix
    assert verify_api_key(a.key, a.key_hash)
    assert not verify_api_key(b.key, a.key_hash)
    assert not verify_api_key(a.key + "x", a.key_hash)
    for bad in ["", "zc_", "Bearer x", "zc_short_x", "xx_" + a.key[3:]]:
        assert api_key_lookup_prefix(bad) is None
