"""``zerocopy credential ...``: create / list / show / update / delete, generated keys, setup SQL.

Secrets are write-only, as in the API: they come from ``--secret-file`` (``-`` = stdin),
``--secret-env`` or ``--secret`` and are never printed; reads show ``secret_fields`` names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click

from zerocopy.commands._common import (
    echo,
    hint,
    parse_secrets,
    parse_settings,
    run,
    secret_options,
    usage,
    workspace_option,
)


def credential_read(runtime: Any, cred: Any) -> Any:
    """``CredentialRead`` exactly as ``GET /v1/credentials/{id}`` builds it."""
    import msgspec

    from api.views import credential_read as view
    from zerocopy.services import credentials, warehouse_keys

    read = view(cred, credentials.secret_field_names(runtime.secret_box, cred))
    state = warehouse_keys.key_state(runtime.secret_box, cred)
    if state is None:
        return read
    return msgspec.structs.replace(read, key=key_read(state))


def key_read(state: Any) -> Any:
    """``CredentialKeyRead`` of a key state (the API controller's own serialiser)."""
    from api.controllers.credential_keys import key_read as view

    return view(state)


def _statements_hint(read: Any) -> None:
    """Tell the human what to do about a generated key and any warning (stdout has it too)."""
    for warning in getattr(read, "warnings", None) or []:
        hint(f"warning: {warning}")
    key = getattr(read, "key", read)
    if key is None:
        return
    if key.statements:
        hint(f"next, run this ({key.installed_by}):")
        for statement in key.statements:
            hint(f"  {statement}")
    elif key.public_key and key.rotation is None:
        hint(f"next, add this public key to {key.installed_by}:")
        hint(f"  {key.public_key}")


def _expires_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise usage(f"--expires-at must be an ISO 8601 date or time, got {value!r}") from None


@click.group()
def credential() -> None:
    """Warehouse logins: secrets are encrypted at rest and never shown again."""


@credential.command("create")
@workspace_option
@click.option("--kind", required=True, help="duckdb, postgres, redshift, snowflake, bigquery, "
              "databricks, fabric or s3.")  # fmt: skip
@click.option("--name", required=True)
@click.option("--setting", "setting_pairs", multiple=True, metavar="KEY=VALUE",
              help="A setting (repeatable); JSON values (5432, true, {...}) are taken as JSON.")  # fmt: skip
@click.option("--settings-json", default=None, help="All settings as one JSON object.")
@secret_options
@click.option("--expires-at", default=None, help="When the secret expires (fabric), ISO 8601.")
def credential_create(
    workspace_id: str,
    kind: str,
    name: str,
    setting_pairs: tuple[str, ...],
    settings_json: str | None,
    secret_pairs: tuple[str, ...],
    secret_files: tuple[str, ...],
    secret_envs: tuple[str, ...],
    expires_at: str | None,
) -> None:
    """Store a credential; print it (Snowflake / SSH tunnel: with the public key to register)."""
    from zerocopy.services import credentials

    settings = parse_settings(setting_pairs, settings_json)
    secrets = parse_secrets(secret_pairs, secret_files, secret_envs)
    when = _expires_at(expires_at)

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            cred = await credentials.create_credential(
                s,
                rt.secret_box,
                workspace_id,
                name=name,
                kind=kind,
                settings=settings,
                secrets=secrets,
                expires_at=when,
            )
            return credential_read(rt, cred)

    read = run(go, workspace_id)
    echo(read)
    _statements_hint(read)


@credential.command("list")
@workspace_option
def credential_list(workspace_id: str) -> None:
    """Every credential of the workspace."""
    from zerocopy.services import credentials

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await credentials.list_credentials(s, workspace_id)
            return [credential_read(rt, c) for c in found]

    echo(run(go, workspace_id))


@credential.command("show")
@workspace_option
@click.argument("credential_id")
def credential_show(workspace_id: str, credential_id: str) -> None:
    """One credential (secret names only, never values)."""
    from zerocopy.services import credentials

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            cred = await credentials.get_credential(s, workspace_id, credential_id)
            return credential_read(rt, cred)

    read = run(go, workspace_id)
    echo(read)
    _statements_hint(read)


@credential.command("update")
@workspace_option
@click.argument("credential_id")
@click.option("--name", default=None)
@click.option("--setting", "setting_pairs", multiple=True, metavar="KEY=VALUE",
              help="Set a setting, kept with the other stored settings (repeatable).")  # fmt: skip
@click.option("--unset-setting", "unset", multiple=True, metavar="KEY",
              help="Remove a stored setting (repeatable).")  # fmt: skip
@click.option("--settings-json", default=None, help="Replace all settings with this object.")
@secret_options
@click.option("--expires-at", default=None, help="When the (new) secret expires, ISO 8601.")
def credential_update(
    workspace_id: str,
    credential_id: str,
    name: str | None,
    setting_pairs: tuple[str, ...],
    unset: tuple[str, ...],
    settings_json: str | None,
    secret_pairs: tuple[str, ...],
    secret_files: tuple[str, ...],
    secret_envs: tuple[str, ...],
    expires_at: str | None,
) -> None:
    """Rename, change settings, replace some secrets (sources using it go back to draft)."""
    from zerocopy.services import credentials

    changes = parse_settings(setting_pairs, None)
    replace = parse_settings((), settings_json) if settings_json is not None else None
    secrets = parse_secrets(secret_pairs, secret_files, secret_envs) or None
    when = _expires_at(expires_at)

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            settings = None
            if replace is not None or changes or unset:
                cred = await credentials.get_credential(s, workspace_id, credential_id)
                base = dict(cred.settings or {}) if replace is None else replace
                settings = {k: v for k, v in {**base, **changes}.items() if k not in unset}
            cred = await credentials.update_credential(
                s,
                rt.secret_box,
                workspace_id,
                credential_id,
                name=name,
                settings=settings,
                secrets=secrets,
                expires_at=when,
            )
            return credential_read(rt, cred)

    read = run(go, workspace_id)
    echo(read)
    _statements_hint(read)


@credential.command("delete")
@workspace_option
@click.argument("credential_id")
def credential_delete(workspace_id: str, credential_id: str) -> None:
    """Delete a credential no source or sync uses (else ``credential_in_use``)."""
    from zerocopy.services import credentials

    async def go(rt: Any) -> None:
        async with rt.db.session() as s:
            await credentials.delete_credential(s, workspace_id, credential_id)

    run(go, workspace_id)
    hint(f"deleted credential {credential_id}")  # the API answers 204: no body on stdout


@credential.command("setup-sql")
@workspace_option
@click.argument("credential_id")
@click.option("--source", "source_id", default=None, help="Take database/schema from a source.")
@click.option("--database", default=None, help="Database of the scope.")
@click.option("--schema", default=None, help="Schema of the scope.")
@click.option("--raw", is_flag=True, help="Print only the SQL script, not JSON.")
def credential_setup_sql(
    workspace_id: str,
    credential_id: str,
    source_id: str | None,
    database: str | None,
    schema: str | None,
    raw: bool,
) -> None:
    """The one-time setup script (Snowflake: role, grants, user with the public key)."""
    echo_setup_sql(workspace_id, credential_id, source_id, database, schema, raw)


def echo_setup_sql(
    workspace_id: str,
    credential_id: str | None,
    source_id: str | None,
    database: str | None,
    schema: str | None,
    raw: bool,
) -> None:
    """``GET /v1/credentials/{id}/setup-sql``; the credential defaults to the source's."""
    from api.schemas.credential_keys import SetupSqlRead
    from zerocopy.services import credentials, sources, warehouse_keys

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            cred_id = credential_id
            if cred_id is None:
                assert source_id is not None
                cred_id = (await sources.get_source(s, workspace_id, source_id)).credential_id
            cred = await credentials.get_credential(s, workspace_id, cred_id)
            sql = await warehouse_keys.setup_script(
                s,
                rt.secret_box,
                workspace_id,
                cred.id,
                database=database,
                schema=schema,
                source_id=source_id,
            )
            return SetupSqlRead(credential_id=cred.id, kind=cred.kind, sql=sql)

    read = run(go, workspace_id)
    if raw:
        click.echo(read.sql)
    else:
        echo(read)


# ----------------------------------------------------------------------------- key pairs
@credential.group("key")
def credential_key() -> None:
    """The key pair zerocopy generated (Snowflake, SSH tunnel) and its rotation without downtime.

    rotate → register the new key (printed ALTER USER) → test → run the printed UNSET →
    finish; abort drops a pending key.
    """


def _key_command(workspace_id: str, credential_id: str, action: str, **kw: Any) -> None:
    from zerocopy import errors
    from zerocopy.errors import ZerocopyError
    from zerocopy.services import credentials, warehouse_keys

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            if action == "show":
                cred = await credentials.get_credential(s, workspace_id, credential_id)
                state = warehouse_keys.key_state(rt.secret_box, cred)
                if state is None:
                    raise ZerocopyError(
                        errors.NOT_FOUND,
                        f"credential {cred.name!r} has no key pair generated by zerocopy",
                        details={"credential_id": cred.id},
                    )
            elif action == "test":
                state = await warehouse_keys.test_pending_key(
                    s, rt, workspace_id, credential_id, **kw
                )
            else:
                step = {
                    "rotate": warehouse_keys.start_rotation,
                    "finish": warehouse_keys.finish_rotation,
                    "abort": warehouse_keys.abort_rotation,
                }[action]
                state = await step(s, rt.secret_box, workspace_id, credential_id)
            return key_read(state)

    read = run(go, workspace_id)
    echo(read)
    _statements_hint(read)


@credential_key.command("show")
@workspace_option
@click.argument("credential_id")
def key_show(workspace_id: str, credential_id: str) -> None:
    """Public key, fingerprint and the statements to run now."""
    _key_command(workspace_id, credential_id, "show")


@credential_key.command("rotate")
@workspace_option
@click.argument("credential_id")
def key_rotate(workspace_id: str, credential_id: str) -> None:
    """Generate the next key for the free slot (e.g. ``ALTER USER … SET RSA_PUBLIC_KEY_2``)."""
    _key_command(workspace_id, credential_id, "rotate")


@credential_key.command("test")
@workspace_option
@click.argument("credential_id")
@click.option(
    "--source", "source_id", default=None, help="Source to log in with (default: oldest)."
)
def key_test(workspace_id: str, credential_id: str, source_id: str | None) -> None:
    """Log in with the pending key; on success it becomes current (nothing changes on failure)."""
    _key_command(workspace_id, credential_id, "test", source_id=source_id)


@credential_key.command("finish")
@workspace_option
@click.argument("credential_id")
def key_finish(workspace_id: str, credential_id: str) -> None:
    """The old public key is removed in the warehouse: forget its private key."""
    _key_command(workspace_id, credential_id, "finish")


@credential_key.command("abort")
@workspace_option
@click.argument("credential_id")
def key_abort(workspace_id: str, credential_id: str) -> None:
    """Drop the pending key (prints the UNSET that clears its slot)."""
    _key_command(workspace_id, credential_id, "abort")
