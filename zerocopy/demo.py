"""``zerocopy demo``: the newcomer's first run, end to end on the embedded default.

Fixture marketing warehouse in a DuckDB file → workspace, credential, source (tested) →
segments checked and created → refreshed → the warehouse changes → refreshed again. Every
step goes through the same services and refresh engine the HTTP API uses.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import anyio
import click

from zerocopy.errors import ZerocopyError
from zerocopy.services import credentials, segments, sources, workspaces
from zerocopy.services.context import Runtime, open_runtime
from zerocopy.settings import Settings, sqlite_url
from zerocopy.state.models import Credential, RefreshRun, RunTrigger, Segment, Source

DEMO_DIR = "demo"
SCHEMA = "marketing"
DEFAULT_USERS = 400
RUN_POLL_S = 0.05

SEGMENTS: list[tuple[str, str, str]] = [
    (
        "Paid US subscribers",
        "US users on a paid plan who accept marketing messages.",
        """
        SELECT external_user_id
        FROM users
        WHERE country = 'US'
          AND plan IN ('pro', 'enterprise')
          AND is_subscribed
        """,
    ),
    (
        "Cart abandoners",
        "Users whose most recent event is an add_to_cart (CTE + window function).",
        """
        WITH ranked AS (
          SELECT external_user_id,
                 name,
                 ROW_NUMBER() OVER (
                   PARTITION BY external_user_id ORDER BY occurred_at DESC, event_id DESC
                 ) AS rn
          FROM events
        )
        SELECT external_user_id
        FROM ranked
        WHERE rn = 1 AND name = 'add_to_cart'
        """,
    ),
    (
        "Big spenders",
        "Users whose purchases add up to at least 500 (join + aggregate).",
        """
        SELECT p.external_user_id
        FROM purchases AS p
        JOIN users AS u ON u.external_user_id = p.external_user_id
        GROUP BY p.external_user_id
        HAVING SUM(p.price * p.quantity) >= 500
        """,
    ),
]

INVALID_SQL = "SELECT email FROM users WHERE country = 'US'"
"""A query a marketer might write: it forgets the id column, so the check refuses it."""

# The warehouse changes between the two refreshes (DuckDB SQL, run by "the customer").
WAREHOUSE_CHANGES: list[tuple[str, str]] = [
    (
        "25 new US users on the pro plan sign up, each with a fresh add_to_cart",
        """
        INSERT INTO users (external_user_id, email, country, created_at, updated_at, plan,
                           lifetime_value, is_subscribed, first_name, attributes)
        SELECT 'u9' || lpad(i::VARCHAR, 7, '0'), 'new' || i || '@example.com', 'US',
               TIMESTAMP '2026-01-01', TIMESTAMP '2026-01-01', 'pro', 0, true, 'New', '{}'
        FROM range(1, 26) t(i);
        INSERT INTO events (event_id, external_user_id, name, occurred_at, properties)
        SELECT 'e9' || lpad(i::VARCHAR, 9, '0'), 'u9' || lpad(i::VARCHAR, 7, '0'),
               'add_to_cart', TIMESTAMP '2026-01-02', '{}'
        FROM range(1, 26) t(i);
        """,
    ),
    (
        "8 paid US subscribers unsubscribe",
        """
        UPDATE users SET is_subscribed = false
        WHERE external_user_id IN (
          SELECT external_user_id FROM users
          WHERE country = 'US' AND plan IN ('pro', 'enterprise') AND is_subscribed
            AND external_user_id < 'u9'
          ORDER BY external_user_id LIMIT 8);
        """,
    ),
    (
        "12 cart abandoners come back and check out",
        """
        INSERT INTO events (event_id, external_user_id, name, occurred_at, properties)
        SELECT 'e8' || lpad(row_number() OVER (ORDER BY external_user_id)::VARCHAR, 9, '0'),
               external_user_id, 'checkout', TIMESTAMP '2026-01-03', '{}'
        FROM (
          SELECT external_user_id FROM (
            SELECT external_user_id, name, ROW_NUMBER() OVER (
                     PARTITION BY external_user_id ORDER BY occurred_at DESC, event_id DESC) AS rn
            FROM events)
          WHERE rn = 1 AND name = 'add_to_cart' AND external_user_id < 'u9'
          ORDER BY external_user_id LIMIT 12);
        """,
    ),
    (
        "5 big spenders get full refunds (their purchases are deleted)",
        """
        DELETE FROM purchases WHERE external_user_id IN (
          SELECT external_user_id FROM purchases
          GROUP BY external_user_id HAVING SUM(price * quantity) >= 500
          ORDER BY external_user_id LIMIT 5);
        """,
    ),
]


def _say(text: str = "", **style: Any) -> None:
    click.secho(text, **style)


def _step(n: int, title: str) -> None:
    _say()
    _say(f"{n}. {title}", bold=True)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def demo_settings(settings: Settings) -> Settings:
    """The demo's own data dir (recreated) with a SQLite state file inside it."""
    demo_dir = Path(settings.data_dir) / DEMO_DIR
    if demo_dir.exists():
        shutil.rmtree(demo_dir)
    demo_dir.mkdir(parents=True)
    return settings.with_(data_dir=demo_dir, database_url=sqlite_url(demo_dir / "zerocopy.sqlite3"))


def build_warehouse(path: Path, users: int) -> dict[str, int]:
    """Generate the fixture marketing warehouse into the DuckDB file at ``path``."""
    from fixtures.warehouse import build, describe, load_duckdb

    warehouse = build(users=users)
    load_duckdb(path, SCHEMA, warehouse)
    return describe(warehouse)


def change_warehouse(path: Path) -> None:
    """Apply :data:`WAREHOUSE_CHANGES` to the warehouse, as its owner would."""
    import duckdb

    con = duckdb.connect(str(path))
    try:
        con.execute(f"SET schema = '{SCHEMA}'")
        for what, sql in WAREHOUSE_CHANGES:
            con.execute(sql)
            _say(f"   - {what}")
    finally:
        con.close()


async def _wait(runtime: Runtime, workspace_id: str, run_id: str) -> RefreshRun:
    while True:
        async with runtime.db.session() as session:
            run = await segments.get_run(session, workspace_id, run_id)
        if run.is_final:
            return run
        await anyio.sleep(RUN_POLL_S)


async def _temp_tables_left(runtime: Runtime, source: Source, cred: Credential) -> list[str]:
    """Temporary tables zerocopy left in the warehouse, asked of the warehouse itself."""
    async with runtime.adapter_for(source, cred) as adapter:
        return list(await adapter.list_temp_tables())


async def _refresh_all(
    runtime: Runtime,
    workspace_id: str,
    source: Source,
    cred: Credential,
    created: list[Segment],
) -> None:
    width = max(len(s.name) for s in created)
    for segment in created:
        async with runtime.db.session() as session:
            queued = await segments.request_refresh(
                session, runtime, workspace_id, segment.id, trigger=RunTrigger.DEMO
            )
        run = await _wait(runtime, workspace_id, queued.id)
        left = await _temp_tables_left(runtime, source, cred)
        if run.status != "succeeded":
            raise ZerocopyError(
                run.error_code or "internal_error",
                f"refresh of {segment.name!r} ended {run.status}: {run.error_message}",
            )
        gone = run.temp_table is not None and run.temp_table not in left
        _say(
            f"   {segment.name:<{width}}  members {run.member_count:>4}   "
            f"+{run.added:<4} -{run.removed:<4}  {_seconds(segments.run_duration(run)):>7}   "
            f"temp table {run.temp_table} ",
            nl=False,
        )
        if gone:
            _say("gone (checked in the warehouse)", fg="green")
        else:
            _say("STILL THERE", fg="red")
            raise ZerocopyError(
                "internal_error", f"temporary table {run.temp_table} was left in the warehouse"
            )
    if left:
        raise ZerocopyError("internal_error", f"temporary tables left behind: {left}")


async def run_demo(settings: Settings, users: int | None = None) -> None:
    """The whole demo; raises :class:`ZerocopyError` when a step fails."""
    from zerocopy.logging import configure_logging

    configure_logging("warning", "console")
    started = time.perf_counter()
    settings = demo_settings(settings)
    data_dir = Path(settings.data_dir)
    warehouse_path = data_dir / "warehouse.duckdb"
    users = users or DEFAULT_USERS

    _say(
        "zerocopy demo: segments computed in the warehouse, membership served by zerocopy",
        bold=True,
    )
    _say(f"   data dir {data_dir} (recreated)  ·  warehouse DuckDB  ·  state SQLite")

    _step(1, "Fixture warehouse")
    t0 = time.perf_counter()
    counts = await anyio.to_thread.run_sync(build_warehouse, warehouse_path, users)
    rows = ", ".join(f"{name} {n}" for name, n in counts.items())
    _say(f"   {warehouse_path.name}, schema {SCHEMA!r}: {rows}  ({time.perf_counter() - t0:.2f} s)")

    async with open_runtime(settings) as runtime:
        async with runtime.db.session() as session:
            _step(2, "Workspace, credential, source")
            ws, key = await workspaces.create_workspace(session, name="Demo workspace")
            _say(f"   workspace  {ws.name} (API key {key[:16]}…, shown once, stored hashed)")
            cred = await credentials.create_credential(
                session,
                runtime.secret_box,
                ws.id,
                name="Demo warehouse",
                kind="duckdb",
                settings={"path": str(warehouse_path)},
            )
            _say(f"   credential {cred.name} ({cred.kind}: {warehouse_path.name})")
            source = await sources.create_source(
                session,
                ws.id,
                name="Marketing",
                credential_id=cred.id,
                scope=SCHEMA,
                max_runtime_minutes=5,
            )
            _say(f"   source     {source.name}, scope {source.scope!r}: {source.status}")

            _step(3, "Connection test")
            outcome = await sources.test_source(session, runtime, ws.id, source.id)
            _say(
                f"   {outcome.source.status}: {len(outcome.tables)} tables and views "
                f"in {outcome.elapsed_s:.2f} s"
            )
            for table in outcome.tables:
                _say(
                    f"   - {table.name:<22} {table.kind:<5} {len(table.columns):>2} columns  "
                    f"{table.description or ''}"
                )

            _step(4, "Segments, checked against the catalog before they are saved")
            created: list[Segment] = []
            for name, description, sql in SEGMENTS:
                result = await segments.validate_sql(
                    session, runtime, ws.id, source_id=source.id, sql=sql
                )
                segment = await segments.create_segment(
                    session,
                    runtime,
                    ws.id,
                    name=name,
                    source_id=source.id,
                    sql=sql,
                    description=description,
                )
                created.append(segment)
                reads = ", ".join(result.tables)
                _say(f"   ✓ {name:<20} valid, reads {reads}", fg="green")
            refused = await segments.validate_sql(
                session, runtime, ws.id, source_id=source.id, sql=INVALID_SQL
            )
            first = refused.errors[0]
            _say(f"   ✗ {INVALID_SQL!r}", fg="yellow")
            where = f" (line {first.line}, column {first.column})" if first.line else ""
            _say(f"     refused: {first.code}{where}: {first.message}", fg="yellow")
            try:
                await segments.create_segment(
                    session, runtime, ws.id, name="Broken", source_id=source.id, sql=INVALID_SQL
                )
            except ZerocopyError as exc:
                _say(f"     creating it fails too: {exc.code}; nothing reached the warehouse")
            else:
                raise ZerocopyError("internal_error", "an invalid segment was accepted")

        _step(5, "First refresh")
        await _refresh_all(runtime, ws.id, source, cred, created)

        _step(6, "The warehouse changes")
        await anyio.to_thread.run_sync(change_warehouse, warehouse_path)

        _step(7, "Second refresh (added / removed since the first)")
        await _refresh_all(runtime, ws.id, source, cred, created)

        from zerocopy.sync.demo import run_sync_demo

        _step(8, "Ingestion syncs into the built-in profile store (rows, errors, watermark)")
        await run_sync_demo(runtime, ws.id, source.id, warehouse_path, SCHEMA)

    _say()
    _say(f"Done in {time.perf_counter() - started:.1f} s.", bold=True)
    _say("Next: `zerocopy serve`, then follow the README's curl walkthrough.")
