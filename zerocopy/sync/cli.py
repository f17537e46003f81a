"""``zerocopy sync ...``: create / test / activate / run / cancel / runs / errors / export / sweep.

Commands work on the state database of the settings (``ZEROCOPY_*``), scoped to one
workspace (``--workspace`` or ``ZEROCOPY_WORKSPACE``). Output is JSON (one object, or JSON
lines for ``export --format jsonl``). Exit codes: 0 done, 1 failed (run ended ``error`` /
``cancelled``, or a refused request), 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import click

from zerocopy.errors import ZerocopyError

EXIT_FAILED = 1
EXIT_USAGE = 2

workspace_option = click.option(
    "--workspace", "workspace_id", envvar="ZEROCOPY_WORKSPACE", required=True,
    help="Workspace id (or ZEROCOPY_WORKSPACE).",
)  # fmt: skip


def _run(fn: Callable[[Any], Awaitable[Any]], *, runner: bool = False) -> Any:
    from zerocopy.logging import configure_logging
    from zerocopy.services.context import open_runtime
    from zerocopy.settings import get_settings

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_format)  # stderr: stdout stays JSON

    async def main() -> Any:
        async with open_runtime(settings, start_runner=runner) as runtime:
            return await fn(runtime)

    try:
        return anyio.run(main)
    except ZerocopyError as exc:
        click.echo(json.dumps({"error": exc.to_dict()}, default=str), err=True)
        sys.exit(EXIT_FAILED)


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _sync_dict(sync: Any) -> dict[str, Any]:
    from zerocopy.sync.watermark import WatermarkState

    return {
        "id": sync.id,
        "name": sync.name,
        "data_type": sync.data_type,
        "status": sync.status,
        "table": sync.table_name,
        "frequency": sync.frequency,
        "watermark": WatermarkState.from_json(sync.watermark).value,
    }


def run_dict(run: Any) -> dict[str, Any]:
    """A run as the CLI prints it."""
    from zerocopy.sync.watermark import WatermarkState

    return {
        "id": run.id,
        "sync_id": run.sync_id,
        "status": run.status,
        "rows_read": run.rows_read,
        "rows_skipped": run.rows_skipped,
        "rows_delivered": run.rows_delivered,
        "rows_errored": run.rows_errored,
        "watermark_before": WatermarkState.from_json(run.watermark_before).value,
        "watermark_after": WatermarkState.from_json(run.watermark_after).value,
        "duration_s": run.duration_s,
        "error": {"code": run.error_code, "message": run.error_message} if run.error_code else None,
    }


@click.group()
def sync() -> None:
    """Ingestion syncs: warehouse table → validated rows → profile store or HTTP endpoint."""


@sync.command("create")
@workspace_option
@click.option("--name", required=True)
@click.option("--data-type", required=True, help="user_attributes, custom_events, purchases, "
              "user_deletes, catalog_items or accounts.")  # fmt: skip
@click.option("--source", "source_id", required=True, help="Source id (credential + scope).")
@click.option("--table", required=True, help="Table or view (case-insensitive).")
@click.option("--catalog", "catalog_name", default=None, help="Catalog (catalog_items).")
@click.option("--frequency", default="1d", show_default=True)
@click.option("--lookback-minutes", default=0, show_default=True, type=int)
@click.option("--row-limit", default=None, type=int)
@click.option("--contact", "contacts", multiple=True, help="E-mail to notify (repeatable).")
@click.option("--destination", default="builtin", show_default=True)
def sync_create(workspace_id: str, **opts: Any) -> None:
    """Create a sync in draft."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.create_sync(
                s,
                workspace_id,
                contacts=list(opts.pop("contacts")),
                table=opts.pop("table"),
                **opts,
            )

    _echo(_sync_dict(_run(go)))


@sync.command("test")
@workspace_option
@click.argument("sync_id")
def sync_test(workspace_id: str, sync_id: str) -> None:
    """Reach the table, check its columns, validate the first 10 rows (row verdicts)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.test_sync(s, rt, workspace_id, sync_id)

    out = _run(go)
    _echo(
        {
            "table": out.table,
            "columns": out.columns,
            "preview": [
                {"position": p.position, "valid": p.valid, "code": p.code, "message": p.message}
                for p in out.preview
            ],
        }
    )


@sync.command("activate")
@workspace_option
@click.argument("sync_id")
def sync_activate(workspace_id: str, sync_id: str) -> None:
    """Activate a tested sync."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.activate_sync(s, workspace_id, sync_id)

    _echo(_sync_dict(_run(go)))


@sync.command("run")
@workspace_option
@click.argument("sync_id")
def sync_run(workspace_id: str, sync_id: str) -> None:
    """Run a sync now, in this process, and print the finished run."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            run = await syncs.start_run(s, rt, workspace_id, sync_id, trigger="cli")
        return await syncs.execute_run(rt, run.id)

    run = _run(go)
    _echo(run_dict(run))
    if run.status in ("error", "cancelled"):
        sys.exit(EXIT_FAILED)


@sync.command("cancel")
@workspace_option
@click.argument("run_id")
def sync_cancel(workspace_id: str, run_id: str) -> None:
    """Ask a running sync run (in any process) to stop."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.cancel_run(s, rt, workspace_id, run_id)

    _echo(run_dict(_run(go)))


@sync.command("runs")
@workspace_option
@click.argument("sync_id")
@click.option("--limit", default=20, show_default=True, type=int)
def sync_runs(workspace_id: str, sync_id: str, limit: int) -> None:
    """Runs of a sync, newest first."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.list_runs(s, workspace_id, sync_id, limit=limit)

    _echo([run_dict(r) for r in _run(go)])


@sync.command("errors")
@workspace_option
@click.argument("run_id")
@click.option("--all", "all_rows", is_flag=True, help="Every logged row, not only errors.")
@click.option("--limit", default=100, show_default=True, type=int)
def sync_errors(workspace_id: str, run_id: str, all_rows: bool, limit: int) -> None:
    """Row errors of a run (payload and reason)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.list_row_logs(
                s, workspace_id, run_id, errors_only=not all_rows, limit=limit
            )

    _echo([syncs.row_log_dict(r) for r in _run(go)])


@sync.command("export")
@workspace_option
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl")
@click.option("--all", "all_rows", is_flag=True, help="Every logged row, not only errors.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
def sync_export(
    workspace_id: str, run_id: str, fmt: str, all_rows: bool, output: Path | None
) -> None:
    """Export a run's row log as CSV or JSON lines (stdout or --output)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> bytes:
        async with rt.db.session() as s:
            await syncs.get_run(s, workspace_id, run_id)
        chunks = [
            c async for c in syncs.export_row_logs(rt.db, run_id, fmt=fmt, errors_only=not all_rows)
        ]
        return b"".join(chunks)

    data = _run(go)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)


@sync.command("sweep")
def sync_sweep() -> None:
    """Retention: delete row logs older than 30 days and runs older than 12 months."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        return await syncs.sweep_retention(rt.db)

    _echo(_run(go))
