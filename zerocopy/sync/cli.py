"""``zerocopy sync ...``: create / list / show / update / delete / test / activate / pause /
run / reset-watermark / cancel / schedule / runs / errors / export / sweep.

Commands work on the state database of the settings (``ZEROCOPY_*``), scoped to one
workspace (``--workspace`` or ``ZEROCOPY_WORKSPACE``). Each prints the response body of the
API route it mirrors (the API's own DTOs) as JSON on stdout, or JSON lines / CSV for
``export``; logs go to stderr. Exit codes: 0 done, 1 failed (run ended ``error`` /
``cancelled``, or a refused request: ``{"error": {...}}`` on stderr), 2 usage error.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

EXIT_FAILED = 1
EXIT_USAGE = 2

workspace_option = click.option(
    "--workspace", "workspace_id", envvar="ZEROCOPY_WORKSPACE", required=True,
    help="Workspace id (or ZEROCOPY_WORKSPACE).",
)  # fmt: skip


def _run(fn: Callable[[Any], Awaitable[Any]], workspace_id: str | None = None) -> Any:
    """The runtime for ``fn`` (no runner); a refused request is ``{"error": ...}``, exit 1."""
    from zerocopy.commands._common import run

    return run(fn, workspace_id)


def _echo(data: Any) -> None:
    """API DTOs (or plain data) as indented JSON on stdout, encoded as the API encodes them."""
    from zerocopy.commands._common import echo

    echo(data)


def sync_read(sync: Any) -> Any:
    """A sync as the API shows it (``SyncRead``)."""
    from api.controllers.syncs import sync_read as api_sync_read

    return api_sync_read(sync)


def run_read(run: Any) -> Any:
    """A sync run as the API shows it (``SyncRunRead``)."""
    from api.controllers.syncs import run_read as api_run_read

    return api_run_read(run)


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    """``--notifications``: a JSON object, or a usage error."""
    if text is None:
        return None
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"{option} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise click.UsageError(f"{option} must be a JSON object")
    return doc


notifications_option = click.option(
    "--notifications", "notifications_json", default=None, metavar="JSON",
    help='JSON object, e.g. \'{"notify_on_error": true, "row_error_threshold_pct": 5}\' '
         "(notify_on_error, notify_on_success, success_even_if_no_rows, "
         "row_error_threshold_pct, webhook_url).",
)  # fmt: skip
row_log_option = click.option(
    "--row-log", type=click.Choice(["all", "errors"]), default=None,
    help="Rows to log per run: every row or only refused ones (default all).",
)  # fmt: skip


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
@notifications_option
@row_log_option
@click.option("--destination", default="builtin", show_default=True)
def sync_create(
    workspace_id: str, notifications_json: str | None, row_log: str | None, **opts: Any
) -> None:
    """Create a sync in draft (``POST /v1/syncs``); test it, then activate it."""
    from zerocopy.services import syncs

    notifications = _json_object(notifications_json, "--notifications")

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            created = await syncs.create_sync(
                s,
                workspace_id,
                contacts=list(opts.pop("contacts")),
                table=opts.pop("table"),
                notifications=notifications,
                row_log=row_log or "all",
                **opts,
            )
            return sync_read(created)

    _echo(_run(go, workspace_id))


@sync.command("list")
@workspace_option
def sync_list(workspace_id: str) -> None:
    """Every sync of the workspace, oldest first (``GET /v1/syncs``)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return [sync_read(x) for x in await syncs.list_syncs(s, workspace_id)]

    _echo(_run(go, workspace_id))


@sync.command("show")
@workspace_option
@click.argument("sync_id")
def sync_show(workspace_id: str, sync_id: str) -> None:
    """One sync with its committed watermark and last test (``GET /v1/syncs/{id}``)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return sync_read(await syncs.get_sync(s, workspace_id, sync_id))

    _echo(_run(go, workspace_id))


@sync.command("update")
@workspace_option
@click.argument("sync_id")
@click.option("--name", default=None)
@click.option("--data-type", default=None,
              help="Never changes: another value is refused (data_type_immutable).")  # fmt: skip
@click.option("--source", "source_id", default=None, help="Another source id (draft again).")
@click.option("--table", default=None, help="Another table or view (draft again).")
@click.option("--frequency", default=None)
@click.option("--lookback-minutes", default=None, type=int)
@click.option("--row-limit", default=None, type=int)
@click.option("--no-row-limit", is_flag=True, help="Remove the per-run row limit.")
@click.option("--contact", "contacts", multiple=True,
              help="E-mail to notify (repeatable; replaces the list).")  # fmt: skip
@click.option("--no-contacts", is_flag=True, help="Remove every contact.")
@notifications_option
@row_log_option
@click.option("--status", type=click.Choice(["draft", "active", "paused"]), default=None,
              help="active needs a passed test (conflict otherwise).")  # fmt: skip
def sync_update(
    workspace_id: str,
    sync_id: str,
    contacts: tuple[str, ...],
    no_contacts: bool,
    no_row_limit: bool,
    notifications_json: str | None,
    **changes: Any,
) -> None:
    """Change a sync (``PATCH /v1/syncs/{id}``); options left out stay as they are.

    A new source or table puts the sync back in draft (test it again).
    """
    from zerocopy.services import syncs

    if contacts and no_contacts:
        raise click.UsageError("--contact and --no-contacts: not both")
    if no_row_limit and changes.get("row_limit") is not None:
        raise click.UsageError("--row-limit and --no-row-limit: not both")
    changes = {k: v for k, v in changes.items() if v is not None}
    if no_row_limit:
        changes["row_limit"] = None
    if contacts or no_contacts:
        changes["contacts"] = list(contacts)
    changes["notifications"] = _json_object(notifications_json, "--notifications")

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return sync_read(await syncs.update_sync(s, workspace_id, sync_id, **changes))

    _echo(_run(go, workspace_id))


@sync.command("delete")
@workspace_option
@click.argument("sync_id")
def sync_delete(workspace_id: str, sync_id: str) -> None:
    """Delete a sync, its runs and row logs (``sync_in_progress`` while a run runs)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> None:
        async with rt.db.session() as s:
            await syncs.delete_sync(s, workspace_id, sync_id)

    _run(go, workspace_id)
    click.echo(f"deleted sync {sync_id}", err=True)  # the API answers 204: no body on stdout


@sync.command("test")
@workspace_option
@click.argument("sync_id")
def sync_test(workspace_id: str, sync_id: str) -> None:
    """Reach the table, check its columns, validate the first 10 rows (row verdicts)."""
    from api.schemas.syncs import PreviewRowRead, SyncTestRead
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            out = await syncs.test_sync(s, rt, workspace_id, sync_id)
            return SyncTestRead(
                sync=sync_read(out.sync),
                table=out.table,
                columns=out.columns,
                preview=[
                    PreviewRowRead(
                        position=p.position,
                        valid=p.valid,
                        code=p.code,
                        message=p.message,
                        row=p.row,
                    )
                    for p in out.preview
                ],
                elapsed_s=out.elapsed_s,
            )

    _echo(_run(go, workspace_id))


@sync.command("activate")
@workspace_option
@click.argument("sync_id")
def sync_activate(workspace_id: str, sync_id: str) -> None:
    """Activate a tested sync, or resume a paused one (``conflict`` until a test passes)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return sync_read(await syncs.activate_sync(s, workspace_id, sync_id))

    _echo(_run(go, workspace_id))


@sync.command("pause")
@workspace_option
@click.argument("sync_id")
def sync_pause(workspace_id: str, sync_id: str) -> None:
    """``paused``: no scheduled runs until ``activate`` (``run`` still works)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return sync_read(await syncs.pause_sync(s, workspace_id, sync_id))

    _echo(_run(go, workspace_id))


@sync.command("run")
@workspace_option
@click.argument("sync_id")
def sync_run(workspace_id: str, sync_id: str) -> None:
    """Run a sync now, in this process, and print the finished run."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            run = await syncs.start_run(s, rt, workspace_id, sync_id, trigger="cli")
        return run_read(await syncs.execute_run(rt, run.id))

    done = _run(go, workspace_id)
    _echo(done)
    if done.status in ("error", "cancelled"):
        sys.exit(EXIT_FAILED)


@sync.command("reset-watermark")
@workspace_option
@click.argument("sync_id")
@click.option(
    "--to", "to", default=None, metavar="TIMESTAMP",
    help="ISO 8601 timestamp the next run reads from (no zone = UTC); left out: the whole "
         "table is read again.",
)  # fmt: skip
def sync_reset_watermark(workspace_id: str, sync_id: str, to: str | None) -> None:
    """Reset a sync's watermark (refused while it runs); prints the history record."""
    from datetime import datetime

    from zerocopy.services import syncs
    from zerocopy.sync.validate import parse_timestamp_us
    from zerocopy.sync.watermark import from_micros

    when: datetime | None = None
    if to is not None:
        micros = parse_timestamp_us(to)  # the ISO 8601 spellings syncs read everywhere
        if micros is None:
            raise click.UsageError(f"--to {to!r} is not an ISO 8601 timestamp")
        when = from_micros(micros)

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return run_read(await syncs.reset_watermark(s, rt, workspace_id, sync_id, when))

    _echo(_run(go, workspace_id))


@sync.command("cancel")
@workspace_option
@click.argument("run_id")
def sync_cancel(workspace_id: str, run_id: str) -> None:
    """Ask a running sync run (in any process) to stop.

    With ``ZEROCOPY_RUNNER=procrastinate`` a run whose job still waits in the queue is taken
    out of it and ends ``cancelled`` at once, as through the API."""
    from zerocopy.scheduling.config import load_config
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        config = load_config()
        if config.runner != "procrastinate":
            async with rt.db.session() as s:
                return run_read(await syncs.cancel_run(s, rt, workspace_id, run_id))
        from zerocopy.runner_procrastinate import ProcrastinateRunner

        async with ProcrastinateRunner(rt.db, default_limit=config.source_limit) as queue:
            rt.runner = queue
            async with rt.db.session() as s:
                return run_read(await syncs.cancel_run(s, rt, workspace_id, run_id))

    _echo(_run(go, workspace_id))


@sync.command("schedule")
@workspace_option
@click.argument("sync_id")
def sync_schedule(workspace_id: str, sync_id: str) -> None:
    """The sync's schedule (``GET /v1/syncs/{id}/schedule``): frequency in the workspace time
    zone, next 5 runs (none unless active), last run's outcome; change it with ``update
    --frequency``."""
    from zerocopy.scheduling.sync_scheduler import sync_schedule_view

    async def go(rt: Any) -> Any:
        return await sync_schedule_view(rt.db, workspace_id, sync_id)

    _echo(_run(go, workspace_id))


@sync.command("runs")
@workspace_option
@click.argument("sync_id")
@click.option(
    "--limit", default=50, show_default=True, type=click.IntRange(1, 500),
    help="As the API's limit (1-500).",
)  # fmt: skip
def sync_runs(workspace_id: str, sync_id: str, limit: int) -> None:
    """Runs of a sync, newest first."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await syncs.list_runs(s, workspace_id, sync_id, limit=limit)
            return [run_read(r) for r in found]

    _echo(_run(go, workspace_id))


@sync.command("errors")
@workspace_option
@click.argument("run_id")
@click.option("--all", "all_rows", is_flag=True, help="Every logged row, not only errors.")
@click.option(
    "--limit", default=100, show_default=True, type=click.IntRange(1, 1000),
    help="As the API's limit (1-1000).",
)  # fmt: skip
def sync_errors(workspace_id: str, run_id: str, all_rows: bool, limit: int) -> None:
    """Row errors of a run (payload and reason)."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return await syncs.list_row_logs(
                s, workspace_id, run_id, errors_only=not all_rows, limit=limit
            )

    _echo([syncs.row_log_dict(r) for r in _run(go, workspace_id)])


@sync.command("export")
@workspace_option
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="jsonl")
@click.option(
    "--all", "all_rows", is_flag=True, help="Every logged row (default: errors and warnings)."
)
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

    data = _run(go, workspace_id)
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        try:
            output.write_bytes(data)
        except OSError as exc:
            reason = exc.strerror or exc
            raise click.UsageError(f"cannot write --output {str(output)!r}: {reason}") from None


@sync.command("sweep")
def sync_sweep() -> None:
    """Retention: delete row logs older than 30 days and runs older than 12 months."""
    from zerocopy.services import syncs

    async def go(rt: Any) -> Any:
        return await syncs.sweep_retention(rt.db)

    _echo(_run(go))
