"""Snowflake key rotation without downtime, as a small pure state machine.

A Snowflake user holds up to two public keys, ``RSA_PUBLIC_KEY`` and ``RSA_PUBLIC_KEY_2``,
and a login with the private key of either succeeds
(https://docs.snowflake.com/en/user-guide/key-pair-auth#configuring-key-pair-rotation).
zerocopy rotates like this:

1. ``idle``: the current key sits in one slot; zerocopy logs in with its private key.
2. :func:`start`: a new key pair is generated; zerocopy stores the new private key as
   *pending* and shows ``ALTER USER … SET <free slot> = '<new public key>'``. Refreshes keep
   using the current key.
3. :func:`record_test`: a connection test with the pending key. Success promotes it to
   current (zerocopy logs in with it from now on) and shows
   ``ALTER USER … UNSET <old slot>`` to retire the old key; failure keeps everything as it
   was (the statement of step 2 was probably not run yet) and records the error.
4. :func:`finish`: once the user has run the UNSET, zerocopy forgets the old private key.
   :func:`abort` drops a pending key instead (and shows the UNSET of its slot).

The next rotation uses the slot that was freed, so keys alternate between the two slots.
No I/O here: the caller stores the :class:`Rotation` and the private keys, and runs tests.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from zerocopy import errors
from zerocopy.errors import ZerocopyError

Slot = Literal["RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_2"]
Phase = Literal["idle", "pending", "retiring"]

SLOTS: tuple[Slot, Slot] = ("RSA_PUBLIC_KEY", "RSA_PUBLIC_KEY_2")


@dataclass(frozen=True, slots=True)
class Key:
    """A public key zerocopy registered (its private key lives in the secret store)."""

    key_id: str
    """Id of the stored private key."""
    public_key: str
    """Base64 body of the public key, as ``RSA_PUBLIC_KEY`` takes it."""
    fingerprint: str
    """``SHA256:…`` as ``DESC USER`` shows it (``RSA_PUBLIC_KEY_FP``)."""
    slot: Slot


@dataclass(frozen=True, slots=True)
class Rotation:
    """What zerocopy stores about a Snowflake user's keys."""

    user: str
    current: Key
    phase: Phase = "idle"
    pending: Key | None = None
    """The new key, registered by the user but not yet proven by a test."""
    retired: Key | None = None
    """The previous key, to be removed with ``UNSET`` (phase ``retiring``)."""
    last_error: str | None = None

    @property
    def login_key_id(self) -> str:
        """The private key every connection uses right now (never the unproven pending one)."""
        return self.current.key_id

    def statements(self) -> list[str]:
        """What the user must run in Snowflake for the current phase (empty when idle)."""
        if self.phase == "pending" and self.pending is not None:
            return [set_key_sql(self.user, self.pending)]
        if self.phase == "retiring" and self.retired is not None:
            return [unset_key_sql(self.user, self.retired.slot)]
        return []


def _user_sql(user: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", user):
        # Plain lower- or upper-case names resolve to the same upper-case user unquoted.
        return user.upper() if user in (user.lower(), user.upper()) else f'"{user}"'
    return '"' + user.replace('"', '""') + '"'


def set_key_sql(user: str, key: Key) -> str:
    """``ALTER USER <user> SET RSA_PUBLIC_KEY[_2] = '<body>';``"""
    body = "".join(key.public_key.split())
    if not re.fullmatch(r"[A-Za-z0-9+/=]+", body):
        raise ZerocopyError(errors.INVALID_CREDENTIAL, "a public key body is base64 only")
    return f"ALTER USER {_user_sql(user)} SET {key.slot} = '{body}';"


def unset_key_sql(user: str, slot: Slot) -> str:
    """``ALTER USER <user> UNSET RSA_PUBLIC_KEY[_2];``"""
    return f"ALTER USER {_user_sql(user)} UNSET {slot};"


def other_slot(slot: Slot) -> Slot:
    return SLOTS[1] if slot == SLOTS[0] else SLOTS[0]


def initial(user: str, key_id: str, public_key: str, fingerprint: str) -> Rotation:
    """A credential's first key, registered in ``RSA_PUBLIC_KEY``."""
    return Rotation(user=user, current=Key(key_id, public_key, fingerprint, SLOTS[0]))


def first_statement(rotation: Rotation) -> str:
    """``ALTER USER … SET RSA_PUBLIC_KEY = '…'`` for a credential's first key."""
    return set_key_sql(rotation.user, rotation.current)


def _conflict(rotation: Rotation, action: str) -> ZerocopyError:
    return ZerocopyError(
        errors.CONFLICT,
        f"cannot {action} while the key rotation is {rotation.phase}",
        details={"phase": rotation.phase},
    )


def start(rotation: Rotation, key_id: str, public_key: str, fingerprint: str) -> Rotation:
    """Idle → pending: the new key goes to the slot the current key does not use."""
    if rotation.phase != "idle":
        raise _conflict(rotation, "start a rotation")
    slot = other_slot(rotation.current.slot)
    return dataclasses.replace(
        rotation,
        phase="pending",
        pending=Key(key_id, public_key, fingerprint, slot),
        last_error=None,
    )


def record_test(rotation: Rotation, *, ok: bool, error: str | None = None) -> Rotation:
    """Pending → retiring on a successful test with the pending key; unchanged otherwise."""
    if rotation.phase != "pending" or rotation.pending is None:
        raise _conflict(rotation, "test a pending key")
    if not ok:
        return dataclasses.replace(rotation, last_error=error or "the test with the new key failed")
    return dataclasses.replace(
        rotation,
        phase="retiring",
        current=rotation.pending,
        pending=None,
        retired=rotation.current,
        last_error=None,
    )


def finish(rotation: Rotation) -> Rotation:
    """Retiring → idle: the user ran the UNSET; the old private key can be deleted."""
    if rotation.phase != "retiring":
        raise _conflict(rotation, "finish a rotation")
    return dataclasses.replace(rotation, phase="idle", retired=None)


def abort(rotation: Rotation) -> tuple[Rotation, list[str]]:
    """Pending → idle, dropping the unproven key; returns the UNSET that clears its slot."""
    if rotation.phase != "pending" or rotation.pending is None:
        raise _conflict(rotation, "abort a rotation")
    statements = [unset_key_sql(rotation.user, rotation.pending.slot)]
    return dataclasses.replace(rotation, phase="idle", pending=None, last_error=None), statements


def keys_to_keep(rotation: Rotation) -> set[str]:
    """Private key ids the secret store must keep for this rotation state (others may go)."""
    keep = {rotation.current.key_id}
    if rotation.pending is not None:
        keep.add(rotation.pending.key_id)
    if rotation.retired is not None:
        # Kept until finish(): an UNSET not yet run means the old key still logs in.
        keep.add(rotation.retired.key_id)
    return keep
