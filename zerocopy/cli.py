"""The ``zerocopy`` command: serve, worker, demo, workspace create, db upgrade, sql check.

Exit codes: 0 success (``sql check``: valid), 1 failure (``sql check``: invalid SQL),
2 usage error (bad option, unreadable file, unknown dialect, missing SQL).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import click

from zerocopy import errors
from zerocopy.errors import ZerocopyError

EXIT_INVALID = 1
EXIT_USAGE = 2


def _usage(message: str) -> click.UsageError:
    return click.UsageError(message)


def _load_settings() -> Any:
    from zerocopy.settings import get_settings

    return get_settings()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="zerocopy")
def main() -> None:
    """zerocopy: segments computed in your warehouse, membership served from here."""
    from zerocopy.state.membership import use_refresh_pool_everywhere

    use_refresh_pool_everywhere()


# --------------------------------------------------------------------------- serve
@main.command()
@click.option("--host", default=None, help="Interface to bind (default: settings host).")
@click.option("--port", default=None, type=int, help="Port to bind (default: settings port).")
def serve(host: str | None, port: int | None) -> None:
    """Run the HTTP API with the in-process refresh runner."""
    import uvicorn

    settings = _load_settings()
    # By import string: the CLI sits beside api/ (DESIGN.md), so zerocopy/ never imports it.
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level if settings.log_level != "info" else "warning",
    )


# --------------------------------------------------------------------------- worker
@main.command()
@click.option(
    "--concurrency",
    default=None,
    type=click.IntRange(min=1),
    help="Jobs at once in this process (default: ZEROCOPY_WORKER_CONCURRENCY or 4).",
)
@click.option(
    "--no-scheduler", is_flag=True, help="Only execute jobs; let other workers fire schedules."
)
def worker(concurrency: int | None, no_scheduler: bool) -> None:
    """Execute queued refreshes from the PostgreSQL job queue (start as many as you like)."""
    from zerocopy.logging import configure_logging
    from zerocopy.runner_procrastinate import run_worker
    from zerocopy.scheduling.config import load_config

    settings = _load_settings()
    configure_logging(settings.log_level, settings.log_format)
    try:
        config = load_config()
        if concurrency is not None:
            config = config.with_(concurrency=concurrency)
        anyio.run(lambda: run_worker(settings, config, scheduler=not no_scheduler))
    except ZerocopyError as exc:
        click.echo(f"error: {exc.code}: {exc.message}", err=True)
        sys.exit(EXIT_INVALID)


# --------------------------------------------------------------------------- demo
@main.command()
@click.option("--users", default=None, type=int, help="Fixture warehouse size (users).")
def demo(users: int | None) -> None:
    """Load the fixture warehouse into DuckDB, connect it, build segments, refresh them."""
    from zerocopy.demo import run_demo

    try:
        anyio.run(run_demo, _load_settings(), users)
    except ZerocopyError as exc:
        click.echo(f"demo failed: {exc.code}: {exc.message}", err=True)
        sys.exit(EXIT_INVALID)


@main.command("fixture-warehouse")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--users", default=400, show_default=True, type=click.IntRange(min=1))
@click.option("--schema", default="marketing", show_default=True)
def fixture_warehouse(path: Path, users: int, schema: str) -> None:
    """Write the fixture marketing warehouse into a DuckDB file (to try the API on)."""
    from fixtures.warehouse import build, describe, load_duckdb

    if path.exists():
        raise _usage(f"{path} already exists; pick a new file")
    warehouse = build(users=users)
    load_duckdb(path, schema, warehouse)
    rows = ", ".join(f"{name} {n}" for name, n in describe(warehouse).items())
    click.echo(f"{path}: schema {schema!r} with {rows}")


# --------------------------------------------------------------------------- workspace
@main.group()
def workspace() -> None:
    """Manage workspaces."""


@workspace.command("create")
@click.argument("name")
@click.option("--time-zone", default="UTC", show_default=True, help="IANA time zone.")
def workspace_create(name: str, time_zone: str) -> None:
    """Create a workspace and print its first API key (shown only once)."""
    from zerocopy.services import workspaces
    from zerocopy.services.context import open_database

    async def run() -> tuple[Any, str]:
        async with open_database(_load_settings()) as db, db.session() as session:
            return await workspaces.create_workspace(session, name=name, time_zone=time_zone)

    try:
        ws, key = anyio.run(run)
    except ZerocopyError as exc:
        # The API's error body on stderr, as every resource command prints it; a refused
        # name or time zone stays a usage error (exit 2: the command's arguments).
        from zerocopy.commands._common import print_error

        print_error(exc)
        sys.exit(EXIT_USAGE if exc.code == errors.VALIDATION_ERROR else EXIT_INVALID)
    click.echo(f"workspace: {ws.id} ({ws.name})")
    click.echo(f"api key:   {key}")
    click.echo("Store this key now: it is shown only once (zerocopy keeps only its hash).")


# --------------------------------------------------------------------------- db
@main.group()
def db() -> None:
    """Manage the state database."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the state database migrations (idempotent)."""
    from zerocopy.services.context import open_database

    settings = _load_settings()

    async def run() -> None:
        async with open_database(settings):
            pass

    anyio.run(run)
    click.echo("state database is up to date")


# --------------------------------------------------------------------------- sql
@main.group()
def sql() -> None:
    """Work with segment SQL offline."""


def _read_catalog(path: str) -> tuple[str, dict[str, Any]]:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise _usage(f"cannot read catalog file {path!r}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise _usage(f"catalog file {path!r} is not valid JSON: {exc}") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("scope"), str)
        or not isinstance(doc.get("tables"), dict)
    ):
        raise _usage(
            f"catalog file {path!r} must be "
            '{"scope": "<schema>", "tables": {schema: {table: {column: type}}}}'
        )
    return doc["scope"], doc["tables"]


@sql.command("check")
@click.option("--dialect", "dialect", required=True, help="Dialect the SQL is written in.")
@click.option("--to", "target", default=None, help="Warehouse dialect to transpile to.")
@click.option("--catalog", "catalog_path", required=True, help="Catalog JSON file.")
@click.option("--id-column", default="external_user_id", show_default=True)
@click.argument("query", required=False)
def sql_check(
    dialect: str, target: str | None, catalog_path: str, id_column: str, query: str | None
) -> None:
    """Check segment SQL (argument, or '-' for stdin) and print the result as JSON."""
    from zerocopy.sql import check_segment_sql

    scope, tables = _read_catalog(catalog_path)
    if query is None or query == "-":
        if query is None and sys.stdin.isatty():
            raise _usage("give the SQL as an argument or '-' to read it from stdin")
        query = sys.stdin.read()
        if not query.strip():
            raise _usage("no SQL given: stdin was empty")
    try:
        result = check_segment_sql(
            query, dialect=dialect, catalog=tables, scope=scope, id_column=id_column, target=target
        )
    except ZerocopyError as exc:
        if exc.code == errors.UNKNOWN_DIALECT:
            raise _usage(exc.message) from None
        raise
    out = result.to_dict()
    codes = {e.get("code") for e in out.get("errors", [])}
    if errors.UNKNOWN_DIALECT in codes:
        click.echo(json.dumps(out, indent=2), err=True)
        sys.exit(EXIT_USAGE)
    click.echo(json.dumps(out, indent=2))
    sys.exit(0 if result.valid else EXIT_INVALID)


# --------------------------------------------------------------------------- sync
from zerocopy.sync.cli import sync as _sync_group  # noqa: E402  (its own module: zerocopy/sync/)

main.add_command(_sync_group)

# --------------------------------------------------------------------------- resources
from zerocopy.commands import register as _register_commands  # noqa: E402  (zerocopy/commands/)

_register_commands(main, workspace)
