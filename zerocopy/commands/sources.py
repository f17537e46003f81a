"""``zerocopy source ...`` (create / test / list / show / update / delete / setup-sql) and
``zerocopy catalog tables|table`` (the catalog the last successful test stored)."""

from __future__ import annotations

from typing import Any

import click

from zerocopy.commands._common import echo, hint, run, workspace_option

runtime_option = click.option(
    "--max-runtime-minutes", type=int, default=None,
    help="Longest a query of this source may run, 1-60 (default 10).",
)  # fmt: skip


@click.group()
def source() -> None:
    """Sources: a credential plus the scope segments read; draft until a successful test."""


@source.command("create")
@workspace_option
@click.option("--name", required=True)
@click.option("--credential", "credential_id", required=True, help="Credential id.")
@click.option("--scope", required=True, help="schema, or database.schema / project.dataset.")
@runtime_option
def source_create(
    workspace_id: str,
    name: str,
    credential_id: str,
    scope: str,
    max_runtime_minutes: int | None,
) -> None:
    """Create a source in ``draft``; ``source test`` makes it ``active``."""
    from api.views import source_read
    from zerocopy.services import sources

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            created = await sources.create_source(
                s,
                workspace_id,
                name=name,
                credential_id=credential_id,
                scope=scope,
                max_runtime_minutes=10 if max_runtime_minutes is None else max_runtime_minutes,
            )
            return source_read(created)

    echo(run(go, workspace_id))


@source.command("test")
@workspace_option
@click.argument("source_id")
def source_test(workspace_id: str, source_id: str) -> None:
    """Connect, list the visible tables, store the catalog; ``active`` on success (else exit 1)."""
    from api.views import source_test_read
    from zerocopy.services import sources

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return source_test_read(await sources.test_source(s, rt, workspace_id, source_id))

    echo(run(go, workspace_id))


@source.command("list")
@workspace_option
def source_list(workspace_id: str) -> None:
    """Every source of the workspace."""
    from api.views import source_read
    from zerocopy.services import sources

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return [source_read(x) for x in await sources.list_sources(s, workspace_id)]

    echo(run(go, workspace_id))


@source.command("show")
@workspace_option
@click.argument("source_id")
def source_show(workspace_id: str, source_id: str) -> None:
    """One source and its last test's outcome."""
    from api.views import source_read
    from zerocopy.services import sources

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return source_read(await sources.get_source(s, workspace_id, source_id))

    echo(run(go, workspace_id))


@source.command("update")
@workspace_option
@click.argument("source_id")
@click.option("--name", default=None)
@click.option("--credential", "credential_id", default=None, help="Another credential id.")
@click.option("--scope", default=None)
@runtime_option
def source_update(
    workspace_id: str,
    source_id: str,
    name: str | None,
    credential_id: str | None,
    scope: str | None,
    max_runtime_minutes: int | None,
) -> None:
    """Rename, change credential, scope or max runtime (a new credential/scope: draft again)."""
    from api.views import source_read
    from zerocopy.services import sources

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            updated = await sources.update_source(
                s,
                workspace_id,
                source_id,
                name=name,
                credential_id=credential_id,
                scope=scope,
                max_runtime_minutes=max_runtime_minutes,
            )
            return source_read(updated)

    echo(run(go, workspace_id))


@source.command("delete")
@workspace_option
@click.argument("source_id")
def source_delete(workspace_id: str, source_id: str) -> None:
    """Delete a source no segment or sync uses (else ``source_in_use``)."""
    from zerocopy.services import sources

    async def go(rt: Any) -> None:
        async with rt.db.session() as s:
            await sources.delete_source(s, workspace_id, source_id)

    run(go, workspace_id)
    hint(f"deleted source {source_id}")  # the API answers 204: no body on stdout


@source.command("setup-sql")
@workspace_option
@click.argument("source_id")
@click.option("--raw", is_flag=True, help="Print only the SQL script, not JSON.")
def source_setup_sql(workspace_id: str, source_id: str, raw: bool) -> None:
    """The setup script of the source's credential for the source's scope (Snowflake)."""
    from zerocopy.commands.credentials import echo_setup_sql

    echo_setup_sql(workspace_id, None, source_id, None, None, raw)


# ----------------------------------------------------------------------------- catalog
@click.group()
def catalog() -> None:
    """Browse a source's catalog (stored by its last successful test)."""


source_option = click.option("--source", "source_id", required=True, help="Source id.")


@catalog.command("tables")
@workspace_option
@source_option
@click.option("--search", default=None, help="Match table name, description or column name.")
def catalog_tables(workspace_id: str, source_id: str, search: str | None) -> None:
    """Tables and views (no columns), optionally searched."""
    from api.views import table_summary
    from zerocopy.services import catalog as service

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await service.list_tables(s, workspace_id, source_id, search=search)
            return [table_summary(t) for t in found]

    echo(run(go, workspace_id))


@catalog.command("table")
@workspace_option
@source_option
@click.argument("name")
def catalog_table(workspace_id: str, source_id: str, name: str) -> None:
    """One table or view with its columns (``schema.table`` also accepted)."""
    from api.views import table_read
    from zerocopy.services import catalog as service

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return table_read(await service.get_table(s, workspace_id, source_id, name))

    echo(run(go, workspace_id))
