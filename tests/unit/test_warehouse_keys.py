"""Generated keys on credential changes (no database needed for kinds without a login rule)."""

from __future__ import annotations

import pytest

from zerocopy import errors, keyrotation
from zerocopy.errors import ZerocopyError
from zerocopy.services import warehouse_keys
from zerocopy.state.models import Credential

pytestmark = pytest.mark.anyio

BASE = {"host": "10.0.0.5", "database": "dw", "user": "zc"}
TUNNEL = {"host": "bastion.example", "user": "zc"}


async def test_ssh_key_generated_when_a_tunnel_is_added_and_dropped_when_removed() -> None:
    cred = Credential(workspace_id="w", name="pg", kind="postgres", settings=dict(BASE))
    secrets = await warehouse_keys.prepare_update(
        None,  # type: ignore[arg-type]  # postgres has no login rule: no query is made
        cred,
        {**BASE, "ssh_tunnel": TUNNEL},
        {"password": "pw"},
        sent={},
    )
    assert secrets["password"] == "pw"
    assert secrets["ssh_private_key"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert cred.public_key and cred.public_key.startswith("ssh-ed25519 ")
    assert cred.key_fingerprint and cred.key_fingerprint.startswith("SHA256:")

    cred.settings = {**BASE, "ssh_tunnel": TUNNEL}
    kept = await warehouse_keys.prepare_update(
        None,  # type: ignore[arg-type]
        cred,
        {**BASE, "ssh_tunnel": {**TUNNEL, "port": 2222}},
        secrets,
        sent={},
    )
    assert kept["ssh_private_key"] == secrets["ssh_private_key"]  # same key, new port

    dropped = await warehouse_keys.prepare_update(
        None,  # type: ignore[arg-type]
        cred,
        dict(BASE),
        secrets,
        sent={},
    )
    assert dropped == {"password": "pw"} and cred.public_key is None


async def test_a_client_cannot_send_a_generated_key() -> None:
    cred = Credential(
        workspace_id="w", name="pg", kind="redshift", settings={**BASE, "ssh_tunnel": TUNNEL}
    )
    with pytest.raises(ZerocopyError) as caught:
        await warehouse_keys.prepare_update(
            None,  # type: ignore[arg-type]
            cred,
            cred.settings,
            {"ssh_private_key": "mine"},
            sent={"ssh_private_key": "mine"},
        )
    assert caught.value.code == errors.INVALID_CREDENTIAL
    assert caught.value.details == {"field": "ssh_private_key"}
    assert "mine" not in caught.value.message


def test_rotation_record_round_trips() -> None:
    rotation = keyrotation.initial("svc", "k1", "QUJD", "SHA256:a")
    rotation = keyrotation.start(rotation, "k2", "REVG", "SHA256:b")
    text = warehouse_keys._rotation_to_json(rotation)
    assert warehouse_keys._rotation_from_json(text) == rotation
