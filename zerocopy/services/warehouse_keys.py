"""Key pairs zerocopy generates for credentials, their rotation, one login per workspace, setup SQL.

Which key a credential needs is the adapter class's answer (``generated_key``), never a branch
on the kind here: Snowflake asks for an RSA pair with two public-key slots (rotated through
:mod:`zerocopy.keyrotation`), PostgreSQL/Redshift behind an SSH bastion for an ed25519 pair.
The private key is stored encrypted with the credential's other secrets and never leaves the
server; the client sees the public key, its fingerprint and the statement that registers it.

Stored in the credential's encrypted secrets: ``<secret>`` (the key every connection uses),
``pending_<secret>`` (a rotation's new key, until a test proves it), ``retired_<secret>``
(the previous key, until the user has removed it) and ``key_rotation`` (the public rotation
record as JSON: slots, public keys, fingerprints, phase).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from dialects.keys import GeneratedKeySpec
from dialects.protocol import Scope
from dialects.registry import create_adapter
from zerocopy import errors, keyrotation
from zerocopy.credential_kinds import kind_class
from zerocopy.errors import ZerocopyError
from zerocopy.logging import get_logger, register_secret
from zerocopy.secrets import SecretBox, generate_rsa_keypair, generate_ssh_keypair
from zerocopy.services._common import get_scoped
from zerocopy.state.models import Credential, Source

if TYPE_CHECKING:
    from zerocopy.services.context import Runtime

log = get_logger(__name__)

ROTATION_FIELD = "key_rotation"
"""Secret field holding the rotation record (public data, kept with the keys it describes)."""


def pending_field(spec: GeneratedKeySpec) -> str:
    return f"pending_{spec.secret}"


def retired_field(spec: GeneratedKeySpec) -> str:
    return f"retired_{spec.secret}"


def managed_fields(spec: GeneratedKeySpec) -> frozenset[str]:
    """Secret fields zerocopy writes itself; a client may never send them."""
    return frozenset({spec.secret, pending_field(spec), retired_field(spec), ROTATION_FIELD})


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated pair: the private key goes to the store, the rest may be shown."""

    private_key: str
    public_key: str
    """What the user registers: base64 SPKI body (RSA) or the OpenSSH line (ed25519)."""
    fingerprint: str

    def __repr__(self) -> str:
        return f"NewKey(fingerprint={self.fingerprint!r}, private_key=<hidden>)"


@dataclass(frozen=True, slots=True)
class KeyState:
    """What the API shows about a credential's generated key (never a private key)."""

    algorithm: str
    secret: str
    public_key: str | None
    fingerprint: str | None
    installed_by: str
    statements: list[str] = field(default_factory=list)
    """What the user must run now to register (or retire) keys; empty when nothing is due."""
    rotation: keyrotation.Rotation | None = None


def generate_key(spec: GeneratedKeySpec) -> NewKey:
    """A new pair of the spec's algorithm; its private key is redacted from logs at once."""
    if spec.algorithm == "rsa":
        rsa_pair = generate_rsa_keypair()
        new = NewKey(rsa_pair.private_key_pem, rsa_pair.public_key_body, rsa_pair.fingerprint)
    else:
        ssh_pair = generate_ssh_keypair()
        new = NewKey(ssh_pair.private_key_openssh, ssh_pair.public_key_line, ssh_pair.fingerprint)
    register_secret(new.private_key)
    return new


# ---------------------------------------------------------------------------- rotation record
def _rotation_to_json(rotation: keyrotation.Rotation) -> str:
    return orjson.dumps(dataclasses.asdict(rotation)).decode()


def _key_from(data: dict[str, Any] | None) -> keyrotation.Key | None:
    if not data:
        return None
    return keyrotation.Key(
        key_id=str(data["key_id"]),
        public_key=str(data["public_key"]),
        fingerprint=str(data["fingerprint"]),
        slot=data["slot"],
    )


def _rotation_from_json(text: str) -> keyrotation.Rotation:
    data = orjson.loads(text)
    current = _key_from(data["current"])
    assert current is not None
    return keyrotation.Rotation(
        user=str(data["user"]),
        current=current,
        phase=data.get("phase", "idle"),
        pending=_key_from(data.get("pending")),
        retired=_key_from(data.get("retired")),
        last_error=data.get("last_error"),
    )


def _new_key_id() -> str:
    return uuid.uuid4().hex[:12]


# ---------------------------------------------------------------------------- create / update
def _spec_for(kind: str, settings: Any) -> GeneratedKeySpec | None:
    if not isinstance(settings, dict):
        return None  # the field check that follows reports the bad settings
    return kind_class(kind).generated_key(settings)


def _refuse_managed(kind: str, spec: GeneratedKeySpec | None, sent: Any) -> None:
    """A client may not send a private key zerocopy generates (nor the rotation record)."""
    if spec is None or not isinstance(sent, dict):
        return
    for name in sorted(managed_fields(spec) & set(sent)):
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            f"do not send secret {name!r}: zerocopy generates the {kind} key pair itself and "
            f"shows its public key for you to register ({spec.installed_by})",
            details={"field": name},
        )


async def ensure_login_free(
    session: AsyncSession,
    workspace_id: str,
    kind: str,
    settings: Any,
    *,
    exclude_id: str | None = None,
) -> None:
    """``conflict`` when another workspace already has a credential for the same login."""
    if not isinstance(settings, dict):
        return
    cls = kind_class(kind)
    identity = cls.login_identity(settings)
    if identity is None:
        return
    stmt = sa.select(Credential).where(
        Credential.kind == kind, Credential.workspace_id != workspace_id
    )
    if exclude_id is not None:
        stmt = stmt.where(Credential.id != exclude_id)
    for other in (await session.scalars(stmt)).all():
        try:
            other_identity = cls.login_identity(dict(other.settings or {}))
        except ZerocopyError:
            continue
        if other_identity == identity:
            raise ZerocopyError(
                errors.CONFLICT,
                f"the {kind} login {identity} is already used by another workspace; "
                f"a warehouse user belongs to one workspace only: create a separate user for "
                f"this workspace (GET /v1/credentials/{{id}}/setup-sql prints the script)",
                details={"field": "user", "identity": identity},
            )


@dataclass(slots=True)
class PreparedSecrets:
    """Secrets to store for a new or changed credential, and the key columns to set."""

    secrets: dict[str, str]
    public_key: str | None = None
    fingerprint: str | None = None
    changed: bool = False

    def apply(self, cred: Credential) -> None:
        """Set the credential's public-key columns (when a key was generated or dropped)."""
        if self.changed:
            cred.public_key = self.public_key
            cred.key_fingerprint = self.fingerprint
            cred.pending_public_key = None

    def __repr__(self) -> str:
        return f"PreparedSecrets(fields={sorted(self.secrets)}, public_key={self.public_key!r})"


def _with_new_key(
    spec: GeneratedKeySpec, settings: dict[str, Any], secrets: dict[str, str]
) -> PreparedSecrets:
    new = generate_key(spec)
    out = {k: v for k, v in secrets.items() if k not in managed_fields(spec)}
    out[spec.secret] = new.private_key
    if spec.two_slot_rotation:
        rotation = keyrotation.initial(
            str(settings.get("user") or ""), _new_key_id(), new.public_key, new.fingerprint
        )
        out[ROTATION_FIELD] = _rotation_to_json(rotation)
    return PreparedSecrets(out, new.public_key, new.fingerprint, changed=True)


async def prepare_new(
    session: AsyncSession,
    workspace_id: str,
    kind: str,
    settings: Any,
    secrets: Any,
) -> PreparedSecrets:
    """For a new credential: refuse client-sent keys and a login another workspace uses;
    generate the key pair the adapter asks for."""
    spec = _spec_for(kind, settings)
    _refuse_managed(kind, spec, secrets)
    await ensure_login_free(session, workspace_id, kind, settings)
    if spec is None or not isinstance(secrets, dict):
        return PreparedSecrets(secrets)
    return _with_new_key(spec, settings, secrets)


async def prepare_update(
    session: AsyncSession,
    cred: Credential,
    settings: Any,
    merged_secrets: dict[str, str],
    *,
    sent: Any,
) -> dict[str, str]:
    """For changed settings/secrets: the same refusals; a key generated when newly needed
    (e.g. an SSH tunnel added) and dropped when no longer needed. Sets the key columns."""
    spec = _spec_for(cred.kind, settings)
    old_spec = _spec_for(cred.kind, cred.settings or {})
    _refuse_managed(cred.kind, spec or old_spec, sent)
    await ensure_login_free(session, cred.workspace_id, cred.kind, settings, exclude_id=cred.id)
    if spec is None:
        if old_spec is None:
            return merged_secrets
        prepared = PreparedSecrets(
            {k: v for k, v in merged_secrets.items() if k not in managed_fields(old_spec)},
            changed=True,
        )
    elif merged_secrets.get(spec.secret):
        return merged_secrets
    else:
        prepared = _with_new_key(spec, settings, merged_secrets)
    prepared.apply(cred)
    return prepared.secrets


# ---------------------------------------------------------------------------- reading
def key_state(box: SecretBox, cred: Credential) -> KeyState | None:
    """The generated key of ``cred`` as the API shows it; ``None`` when it has none."""
    spec = _spec_for(cred.kind, dict(cred.settings or {}))
    if spec is None:
        return None
    stored = box.decrypt(cred.secret_ciphertext)
    rotation = _rotation(stored, cred)
    statements: list[str] = []
    if rotation is not None:
        statements = rotation.statements() or [
            keyrotation.set_key_sql(rotation.user, rotation.current)
        ]
    return KeyState(
        algorithm=spec.algorithm,
        secret=spec.secret,
        public_key=cred.public_key,
        fingerprint=cred.key_fingerprint,
        installed_by=spec.installed_by,
        statements=statements,
        rotation=rotation,
    )


def _rotation(stored: dict[str, str], cred: Credential) -> keyrotation.Rotation | None:
    text = stored.get(ROTATION_FIELD)
    if not text:
        return None
    rotation = _rotation_from_json(text)
    user = str((cred.settings or {}).get("user") or rotation.user)
    # Statements name the credential's user as it is now (settings may have been edited).
    return dataclasses.replace(rotation, user=user)


# ---------------------------------------------------------------------------- rotation
async def _rotatable(
    session: AsyncSession, box: SecretBox, workspace_id: str, credential_id: str
) -> tuple[Credential, GeneratedKeySpec, dict[str, str], keyrotation.Rotation]:
    cred = await get_scoped(session, Credential, workspace_id, credential_id)
    spec = _spec_for(cred.kind, dict(cred.settings or {}))
    stored = box.decrypt(cred.secret_ciphertext)
    rotation = _rotation(stored, cred)
    if spec is None or not spec.two_slot_rotation or rotation is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"credential {cred.name!r} ({cred.kind}) has no generated key with two slots to "
            "rotate through; to replace an SSH key, remove 'ssh_tunnel' and add it again",
            details={"credential_id": cred.id},
        )
    return cred, spec, stored, rotation


def _store(
    box: SecretBox, cred: Credential, stored: dict[str, str], rotation: keyrotation.Rotation
) -> None:
    stored[ROTATION_FIELD] = _rotation_to_json(rotation)
    cred.secret_ciphertext = box.encrypt(stored)
    cred.public_key = rotation.current.public_key
    cred.key_fingerprint = rotation.current.fingerprint
    cred.pending_public_key = rotation.pending.public_key if rotation.pending else None


async def start_rotation(
    session: AsyncSession, box: SecretBox, workspace_id: str, credential_id: str
) -> KeyState:
    """Generate the next key for the free slot; logins keep using the current key."""
    cred, spec, stored, rotation = await _rotatable(session, box, workspace_id, credential_id)
    new = generate_key(spec)
    rotation = keyrotation.start(rotation, _new_key_id(), new.public_key, new.fingerprint)
    stored[pending_field(spec)] = new.private_key
    _store(box, cred, stored, rotation)
    await session.commit()
    log.info("key_rotation_started", credential_id=cred.id, fingerprint=new.fingerprint)
    state = key_state(box, cred)
    assert state is not None
    return state


async def _first_source(session: AsyncSession, cred: Credential) -> Source | None:
    stmt = sa.select(Source).where(Source.credential_id == cred.id).order_by(Source.created_at)
    return (await session.scalars(stmt)).first()


async def _rotation_source(
    session: AsyncSession, cred: Credential, source_id: str | None
) -> Source:
    if source_id is not None:
        source = await get_scoped(session, Source, cred.workspace_id, source_id)
        if source.credential_id != cred.id:
            raise ZerocopyError(
                errors.VALIDATION_ERROR,
                f"source {source.name!r} does not use credential {cred.name!r}",
                details={"field": "source_id"},
            )
        return source
    found = await _first_source(session, cred)
    if found is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"credential {cred.name!r} has no source to test the new key with; "
            "create a source for it first (POST /v1/sources)",
            details={"credential_id": cred.id},
        )
    return found


async def test_pending_key(
    session: AsyncSession,
    runtime: Runtime,
    workspace_id: str,
    credential_id: str,
    *,
    source_id: str | None = None,
) -> KeyState:
    """Connection test of a source with the pending key: success makes it current."""
    from zerocopy.connections import connection_config

    box = runtime.secret_box
    cred, spec, stored, rotation = await _rotatable(session, box, workspace_id, credential_id)
    if rotation.phase != "pending":
        raise ZerocopyError(
            errors.CONFLICT,
            f"no new key waits for a test (rotation is {rotation.phase}); start one first",
            details={"phase": rotation.phase},
        )
    source = await _rotation_source(session, cred, source_id)
    config = connection_config(source, cred, box)
    pending_key = stored[pending_field(spec)]
    config = dataclasses.replace(config, secrets={**config.secrets, spec.secret: pending_key})
    try:
        with anyio.fail_after(source.max_runtime_s):
            async with create_adapter(cred.kind, config) as adapter:
                await adapter.test()
    except (ZerocopyError, TimeoutError) as exc:
        err = (
            exc
            if isinstance(exc, ZerocopyError)
            else ZerocopyError(errors.TIMED_OUT, "the test with the new key ran out of time")
        )
        rotation = keyrotation.record_test(rotation, ok=False, error=f"{err.code}: {err.message}")
        _store(box, cred, stored, rotation)
        await session.commit()
        raise ZerocopyError(
            err.code,
            f"the new key did not log in, so the current key stays in use; run "
            f"{' '.join(rotation.statements())} in the warehouse, then test again ({err.message})",
            details={**err.details, "phase": rotation.phase, "source_id": source.id},
        ) from exc
    old_private = stored[spec.secret]
    rotation = keyrotation.record_test(rotation, ok=True)
    stored[spec.secret] = pending_key
    stored[retired_field(spec)] = old_private
    stored.pop(pending_field(spec), None)
    _store(box, cred, stored, rotation)
    await session.commit()
    log.info("key_rotation_promoted", credential_id=cred.id, source_id=source.id)
    state = key_state(box, cred)
    assert state is not None
    return state


async def finish_rotation(
    session: AsyncSession, box: SecretBox, workspace_id: str, credential_id: str
) -> KeyState:
    """The user removed the old public key: forget its private key."""
    cred, spec, stored, rotation = await _rotatable(session, box, workspace_id, credential_id)
    rotation = keyrotation.finish(rotation)
    stored.pop(retired_field(spec), None)
    _store(box, cred, stored, rotation)
    await session.commit()
    state = key_state(box, cred)
    assert state is not None
    return state


async def abort_rotation(
    session: AsyncSession, box: SecretBox, workspace_id: str, credential_id: str
) -> KeyState:
    """Drop the unproven new key; ``statements`` is the UNSET that clears its slot."""
    cred, spec, stored, rotation = await _rotatable(session, box, workspace_id, credential_id)
    rotation, statements = keyrotation.abort(rotation)
    stored.pop(pending_field(spec), None)
    _store(box, cred, stored, rotation)
    await session.commit()
    state = key_state(box, cred)
    assert state is not None
    return dataclasses.replace(state, statements=statements)


# ---------------------------------------------------------------------------- setup SQL
async def setup_script(
    session: AsyncSession,
    box: SecretBox,
    workspace_id: str,
    credential_id: str,
    *,
    database: str | None = None,
    schema: str | None = None,
    source_id: str | None = None,
) -> str:
    """The warehouse's one-time setup script for this credential's user, role and key."""
    cred = await get_scoped(session, Credential, workspace_id, credential_id)
    settings = dict(cred.settings or {})
    if source_id is not None or not (database and schema):
        # The names default to the scope of a source using this credential, then settings.
        source = (
            await _rotation_source(session, cred, source_id)
            if source_id is not None
            else await _first_source(session, cred)
        )
        scope = Scope.parse(source.scope) if source is not None else None
        database = database or (scope.database if scope else None) or settings.get("database")
        schema = schema or (scope.schema if scope else None) or settings.get("schema")
    missing = [n for n, v in (("database", database), ("schema", schema)) if not v]
    if missing:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"the setup script needs the {' and '.join(missing)}: pass "
            f"{' and '.join(f'?{m}=' for m in missing)} or create a source for this credential",
            details={"field": missing[0]},
        )
    state = key_state(box, cred)
    script = kind_class(cred.kind).setup_script(
        settings,
        public_key=(state.public_key if state else None) or "",
        database=str(database),
        schema=str(schema),
    )
    if script is None:
        raise ZerocopyError(
            errors.VALIDATION_ERROR,
            f"zerocopy has no setup script for {cred.kind} credentials",
            details={"kind": cred.kind},
        )
    return script
