"""``zerocopy segment ...``: validate, create / list / show / update / delete, refresh, runs,
cancel, members, schedule / resume.

``segment refresh`` executes the run in this process (under the source's concurrency slot,
like a worker) and prints the finished run; with ``ZEROCOPY_RUNNER=procrastinate`` it queues
a job for ``zerocopy worker`` processes and prints the queued run (``--wait``: the final one;
Ctrl-C stops waiting, prints the run as it is and exits 130).
A run that does not succeed exits 1, its run still printed on stdout. Ctrl-C (or SIGTERM)
during an in-process refresh cancels the run properly (warehouse query cancelled, temporary
table dropped) and prints it ``cancelled``.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

import anyio
import click

from zerocopy.commands._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    echo,
    hint,
    parse_json_option,
    read_file_arg,
    read_text_arg,
    run,
    usage,
    workspace_option,
)

POLL_S = 0.5
"""How often ``refresh --wait`` looks at a run another process executes."""
EXIT_INTERRUPTED = 130
"""``refresh --wait`` stopped by Ctrl-C before the run ended (128 + SIGINT, as shells do)."""

id_column_option = click.option(
    "--id-column", default=None, help="Column holding the user id (default external_user_id).",
)  # fmt: skip
dialect_option = click.option(
    "--dialect", default=None, help="Dialect the SQL is written in (default: the warehouse's).",
)  # fmt: skip
schedule_option = click.option(
    "--schedule", "schedule_json", default=None, metavar="JSON|manual",
    help='e.g. \'{"frequency": "daily", "hour": 2, "minute": 30}\'; "manual" for none.',
)  # fmt: skip
contact_option = click.option(
    "--contact", "contacts", multiple=True, help="E-mail told about a stale pause (repeatable).",
)  # fmt: skip


def _sql(sql: str | None, sql_file: str | None, *, required: bool) -> str | None:
    if sql is not None and sql_file is not None:
        raise usage("give the SQL with --sql or --sql-file, not both")
    if sql_file is not None:
        text = read_file_arg(sql_file, "SQL")
        if not text.strip():
            raise usage(f"SQL file {sql_file!r} is empty")
        return text
    if sql is None and required:
        raise usage("give the SQL with --sql SQL or --sql-file FILE ('-' for stdin)")
    return sql


def _schedule(
    schedule_json: str | None, contacts: tuple[str, ...], option: str = "--schedule"
) -> tuple[bool, Any]:
    """(whether to set a schedule, the document: ``None`` = manual); usage errors name
    ``option``, the command's own spelling (``segment create --schedule``, ``segment
    schedule --set``)."""
    if schedule_json is None:
        if contacts:
            raise usage(f"--contact goes with {option}")
        return False, None
    if schedule_json.strip().lower() in ("manual", "none", "null"):
        return True, None
    doc = parse_json_option(schedule_json, option)
    if not isinstance(doc, dict):
        raise usage(f'{option} must be a JSON object like {{"frequency": "daily", "hour": 2}}')
    return True, doc


def _check_schedule(doc: Any, contacts: tuple[str, ...] = ()) -> None:
    """The schedule and its contacts as ``set_schedule`` checks them, before anything is
    saved: a refused ``--contact`` must not leave the segment half-updated."""
    from zerocopy.scheduling.schedule import SEGMENT_FREQUENCIES, parse_schedule
    from zerocopy.scheduling.schedules import _contacts as check_schedule_contacts
    from zerocopy.services.contacts import check_contacts

    parse_schedule(doc, SEGMENT_FREQUENCIES)
    if contacts:
        check_schedule_contacts(list(contacts))
        check_contacts(list(contacts))


def _segment_read(segment: Any) -> Any:
    from api.views import segment_read

    return segment_read(segment)


def _run_read(run_row: Any) -> Any:
    from api.views import run_read

    return run_read(run_row)


@click.group()
def segment() -> None:
    """Segments: SQL checked against the source's catalog, refreshed in the warehouse."""


# ----------------------------------------------------------------------------- validate
@segment.command("validate")
@workspace_option
@click.option("--source", "source_id", required=True, help="Source id.")
@dialect_option
@id_column_option
@click.argument("query", required=False, metavar="SQL|-")
def segment_validate(
    workspace_id: str,
    source_id: str,
    dialect: str | None,
    id_column: str | None,
    query: str | None,
) -> None:
    """Check SQL against the source's catalog (nothing saved). Exit 0 valid, 1 invalid."""
    from zerocopy import errors
    from zerocopy.services import cost, segments

    sql = read_text_arg(query, "SQL")

    async def go(rt: Any) -> dict[str, Any]:
        async with rt.db.session() as s:
            result = await segments.validate_sql(
                s,
                rt,
                workspace_id,
                source_id=source_id,
                sql=sql,
                dialect=dialect,
                id_column=id_column or segments.DEFAULT_ID_COLUMN,
            )
            out: dict[str, Any] = result.to_dict()
            out.update(await cost.validate_estimate(s, rt, workspace_id, source_id, result))
            return out

    out = run(go, workspace_id)
    echo(out)
    if not out.get("valid"):
        codes = {e.get("code") for e in out.get("errors", [])}
        sys.exit(EXIT_USAGE if errors.UNKNOWN_DIALECT in codes else EXIT_FAILED)


# ----------------------------------------------------------------------------- CRUD
@segment.command("create")
@workspace_option
@click.option("--source", "source_id", required=True, help="Source id.")
@click.option("--name", required=True)
@click.option("--sql", default=None, help="The segment SQL.")
@click.option("--sql-file", default=None, help="File with the segment SQL ('-' for stdin).")
@click.option("--description", default=None)
@dialect_option
@id_column_option
@schedule_option
@contact_option
def segment_create(
    workspace_id: str,
    source_id: str,
    name: str,
    sql: str | None,
    sql_file: str | None,
    description: str | None,
    dialect: str | None,
    id_column: str | None,
    schedule_json: str | None,
    contacts: tuple[str, ...],
) -> None:
    """Create a segment (refused with the check's first error code if the SQL is invalid)."""
    from zerocopy.scheduling import schedules
    from zerocopy.services import segments

    text = _sql(sql, sql_file, required=True)
    assert text is not None
    set_schedule, doc = _schedule(schedule_json, contacts)

    async def go(rt: Any) -> Any:
        if set_schedule:
            _check_schedule(doc, contacts)  # before anything is saved
        async with rt.db.session() as s:
            created = await segments.create_segment(
                s,
                rt,
                workspace_id,
                name=name,
                source_id=source_id,
                sql=text,
                description=description,
                dialect=dialect,
                id_column=id_column or segments.DEFAULT_ID_COLUMN,
            )
            if set_schedule:
                try:
                    await schedules.set_schedule(
                        rt.db, workspace_id, created.id, doc, list(contacts) or None
                    )
                except Exception:
                    # One command, one outcome: no half-created segment (e.g. a bad contact).
                    with anyio.CancelScope(shield=True):
                        await segments.delete_segment(s, workspace_id, created.id)
                    raise
                await s.refresh(created)
            return _segment_read(created)

    echo(run(go, workspace_id))


@segment.command("list")
@workspace_option
def segment_list(workspace_id: str) -> None:
    """Every segment of the workspace."""
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return [_segment_read(x) for x in await segments.list_segments(s, workspace_id)]

    echo(run(go, workspace_id))


@segment.command("show")
@workspace_option
@click.argument("segment_id")
def segment_show(workspace_id: str, segment_id: str) -> None:
    """One segment: SQL, member count, last refresh."""
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return _segment_read(await segments.get_segment(s, workspace_id, segment_id))

    echo(run(go, workspace_id))


@segment.command("update")
@workspace_option
@click.argument("segment_id")
@click.option("--name", default=None)
@click.option("--sql", default=None, help="New SQL (checked again before it is saved).")
@click.option("--sql-file", default=None, help="File with the new SQL ('-' for stdin).")
@click.option("--description", default=None)
@dialect_option
@id_column_option
@schedule_option
@contact_option
def segment_update(
    workspace_id: str,
    segment_id: str,
    name: str | None,
    sql: str | None,
    sql_file: str | None,
    description: str | None,
    dialect: str | None,
    id_column: str | None,
    schedule_json: str | None,
    contacts: tuple[str, ...],
) -> None:
    """Change a segment; membership stays until the next refresh."""
    from zerocopy.scheduling import schedules
    from zerocopy.services import segments

    text = _sql(sql, sql_file, required=False)
    set_schedule, doc = _schedule(schedule_json, contacts)

    async def go(rt: Any) -> Any:
        if set_schedule:
            _check_schedule(doc, contacts)
        async with rt.db.session() as s:
            updated = await segments.update_segment(
                s,
                rt,
                workspace_id,
                segment_id,
                name=name,
                description=description,
                sql=text,
                dialect=dialect,
                id_column=id_column,
            )
            if set_schedule:
                await schedules.set_schedule(
                    rt.db, workspace_id, updated.id, doc, list(contacts) or None
                )
                await s.refresh(updated)
            return _segment_read(updated)

    echo(run(go, workspace_id))


@segment.command("delete")
@workspace_option
@click.argument("segment_id")
def segment_delete(workspace_id: str, segment_id: str) -> None:
    """Delete a segment and its membership (refused while a refresh runs)."""
    from zerocopy.services import segments

    async def go(rt: Any) -> None:
        async with rt.db.session() as s:
            await segments.delete_segment(s, workspace_id, segment_id)

    run(go, workspace_id)
    hint(f"deleted segment {segment_id}")  # the API answers 204: no body on stdout


# ----------------------------------------------------------------------------- runs
class _ThisProcess:
    """The runner of ``segment refresh`` without a queue: the command executes the run itself."""

    async def submit(self, run_id: str) -> None:
        return None


async def _refresh(rt: Any, workspace_id: str, segment_id: str, wait: bool) -> Any:
    from zerocopy.scheduling.config import load_config
    from zerocopy.services import segments

    config = load_config()
    if config.runner == "procrastinate":
        from zerocopy.runner_procrastinate import ProcrastinateRunner

        async with ProcrastinateRunner(rt.db, default_limit=config.source_limit) as queue:
            rt.runner = queue
            async with rt.db.session() as s:
                queued = await segments.request_refresh(
                    s, rt, workspace_id, segment_id, trigger="cli"
                )
        return await _wait(rt, workspace_id, queued) if wait else queued

    from zerocopy.scheduling.execution import SlottedEngine
    from zerocopy.scheduling.slots import SourceSlots

    rt.engine.heartbeat_s = config.heartbeat_s
    rt.engine.stale_after_s = config.worker_lost_after_s
    rt.runner = _ThisProcess()
    slotted = SlottedEngine(rt.engine, SourceSlots(rt.db, default_limit=config.source_limit))
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with rt.db.session() as s:
            queued = await segments.request_refresh(s, rt, workspace_id, segment_id, trigger="cli")
        hint(f"refreshing segment {segment_id} in this process (run {queued.id}); Ctrl-C cancels")
        return await _execute_here(rt, slotted, queued.id, signals)


async def _wait(rt: Any, workspace_id: str, run_row: Any) -> Any:
    """Poll until a worker has finished the run; Ctrl-C stops waiting (the run goes on)."""
    from zerocopy.services import segments

    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        # Said once the signals are ours: a Ctrl-C right after this line stops the wait.
        hint(f"run {run_row.id} queued; waiting for a worker (Ctrl-C stops waiting)")
        async with anyio.create_task_group() as tg:

            async def on_signal() -> None:
                async for signum in signals:
                    hint(
                        f"{signal.Signals(signum).name}: stopped waiting; run {run_row.id} goes "
                        f"on ('zerocopy segment cancel {run_row.id}' stops it)"
                    )
                    tg.cancel_scope.cancel()

            tg.start_soon(on_signal)
            while not run_row.is_final:
                await anyio.sleep(POLL_S)
                async with rt.db.session() as s:
                    run_row = await segments.get_run(s, workspace_id, run_row.id)
            tg.cancel_scope.cancel()
    return run_row


async def _execute_here(rt: Any, slotted: Any, run_id: str, signals: Any) -> Any:
    """Execute ``run_id``; SIGINT/SIGTERM cancel it properly (query cancelled, temp table
    dropped, run ``cancelled``) instead of killing the process mid-run."""
    async with anyio.create_task_group() as tg:
        execution = anyio.CancelScope()

        async def on_signal() -> None:
            async for signum in signals:
                hint(f"{signal.Signals(signum).name}: cancelling run {run_id}")
                if (await rt.engine.request_cancel(run_id)).is_final:
                    execution.cancel()  # cancelled while queued (e.g. waiting for a slot)

        tg.start_soon(on_signal)
        with execution:
            finished = await slotted.execute(run_id)
        tg.cancel_scope.cancel()
    if execution.cancel_called:
        return await rt.engine.get(run_id)
    return finished


@segment.command("refresh")
@workspace_option
@click.argument("segment_id")
@click.option("--wait", is_flag=True, help="With a job queue: wait for the run to end.")
def segment_refresh(workspace_id: str, segment_id: str, wait: bool) -> None:
    """Refresh now and print the run (exit 1 if it failed, timed out or was cancelled)."""
    from zerocopy.state.models import RunStatus

    async def go(rt: Any) -> Any:
        return _run_read(await _refresh(rt, workspace_id, segment_id, wait))

    read = run(go, workspace_id)
    echo(read)
    if read.status in RunStatus.FINAL and read.status != RunStatus.SUCCEEDED:
        sys.exit(EXIT_FAILED)
    if wait and read.status in RunStatus.ACTIVE:
        sys.exit(EXIT_INTERRUPTED)  # Ctrl-C stopped the wait, not the run


@segment.command("cancel")
@workspace_option
@click.argument("run_id")
def segment_cancel(workspace_id: str, run_id: str) -> None:
    """Ask a queued or running refresh (in any process) to stop."""
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            return _run_read(await segments.cancel_run(s, rt, workspace_id, run_id))

    echo(run(go, workspace_id))


@segment.command("runs")
@workspace_option
@click.argument("segment_id")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 200))
def segment_runs(workspace_id: str, segment_id: str, limit: int) -> None:
    """The segment's most recent runs, newest first."""
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            from api.views import run_reads

            found = await segments.list_runs(s, workspace_id, segment_id, limit=limit)
            return await run_reads(s, found)

    echo(run(go, workspace_id))


@segment.command("run-status")
@workspace_option
@click.argument("run_id")
def segment_run_status(workspace_id: str, run_id: str) -> None:
    """One run: status, counts, error, timings."""
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        from api.views import run_reads

        async with rt.db.session() as s:
            return (await run_reads(s, [await segments.get_run(s, workspace_id, run_id)]))[0]

    echo(run(go, workspace_id))


# ----------------------------------------------------------------------------- members
async def _note_read(rt: Any, segment_id: str) -> None:
    """A member read (the API's middleware does the same): a read segment is not stale."""
    from zerocopy.logging import get_logger
    from zerocopy.scheduling import schedules

    try:
        await schedules.record_member_read(rt.db, segment_id)
    except Exception as exc:  # never fail a read for bookkeeping
        get_logger("zerocopy.commands").warning(
            "schedule.member_read_not_recorded", error=type(exc).__name__
        )


@segment.command("members")
@workspace_option
@click.argument("segment_id")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--cursor", "--after", "cursor", default=None, help="next_cursor of the last page.")
def segment_members(workspace_id: str, segment_id: str, limit: int, cursor: str | None) -> None:
    """One page of the current membership, ordered by id."""
    from api.schemas.segments import MemberPage
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            page = await segments.list_members(
                s, rt, workspace_id, segment_id, cursor=cursor, limit=limit
            )
        await _note_read(rt, segment_id)
        return MemberPage(
            segment_id=segment_id, items=page.items, next_cursor=page.next_cursor, total=page.total
        )

    echo(run(go, workspace_id))


@segment.command("member")
@workspace_option
@click.argument("segment_id")
@click.argument("external_id")
def segment_member(workspace_id: str, segment_id: str, external_id: str) -> None:
    """Whether one id is a member now (exit 0 either way: read ``member``)."""
    from api.schemas.segments import MemberCheck
    from zerocopy.services import segments

    async def go(rt: Any) -> Any:
        async with rt.db.session() as s:
            found = await segments.is_member(s, rt, workspace_id, segment_id, external_id)
        await _note_read(rt, segment_id)
        return MemberCheck(segment_id=segment_id, external_id=external_id, member=found)

    echo(run(go, workspace_id))


# ----------------------------------------------------------------------------- schedule
@segment.command("schedule")
@workspace_option
@click.argument("segment_id")
@click.option("--set", "schedule_json", default=None, metavar="JSON|manual",
              help='Set it: \'{"frequency": "hourly", "minute": 15}\'; "manual" for none.')  # fmt: skip
@contact_option
def segment_schedule(
    workspace_id: str, segment_id: str, schedule_json: str | None, contacts: tuple[str, ...]
) -> None:
    """Show (or --set) the schedule: next 5 runs, pause state, last run."""
    from zerocopy.scheduling import schedules

    set_schedule, doc = _schedule(schedule_json, contacts, "--set")

    async def go(rt: Any) -> Any:
        if set_schedule:
            return await schedules.set_schedule(
                rt.db, workspace_id, segment_id, doc, list(contacts) or None
            )
        return await schedules.schedule_view(rt.db, workspace_id, segment_id)

    echo(run(go, workspace_id))


@segment.command("resume")
@workspace_option
@click.argument("segment_id")
def segment_resume(workspace_id: str, segment_id: str) -> None:
    """Lift an automatic (stale) pause; the next run is the next occurrence after now."""
    from zerocopy.scheduling import schedules

    async def go(rt: Any) -> Any:
        return await schedules.resume_schedule(rt.db, workspace_id, segment_id)

    echo(run(go, workspace_id))
