"""Sync scenarios, fifth round: the replay look-up of events and purchases by row hash.

After a watermark reset, an event or purchase identified by e-mail or phone is inserted only
when no profile of the workspace holds that copy yet (the address may have moved since). That
look-up goes through a partial ``(workspace_id, row_hash)`` index of the rows identified by an
address; rows identified by external id, alias or braze id stay out of it (they are looked up
by profile), so their inserts do not pay for it.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
)

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "EMAIL": "text", "PAYLOAD": "text"}


def ev(second: int, ext: str | None, email: str | None, name: str) -> tuple[Any, ...]:
    return (
        f"2026-08-01 10:00:{second:02d}",
        ext,
        email,
        j({"name": name, "time": "2026-08-01T10:00:00Z", "properties": {"n": second}}),
    )


async def test_replayed_events_by_address_are_found_through_the_partial_index(
    spec: Spec,
) -> None:
    spec.warehouse.create(
        "evs",
        COLS,
        [
            ev(0, "u1", None, "by-id"),
            ev(1, None, "ann@example.com", "by-email"),
            ev(2, None, "ann@example.com", "by-email"),  # another copy (its own hash)
        ],
    )
    sync_id = await spec.ready("custom_events", "evs")
    assert (await spec.run(sync_id))["rows_delivered"] == 3
    db = spec.app.state.runtime.db
    async with db.session() as s:
        stored = (
            await s.execute(
                sa.text(
                    "SELECT name, by_address FROM store_event WHERE workspace_id = :ws "
                    "ORDER BY name"
                ),
                {"ws": spec.workspace_id},
            )
        ).all()
    assert [(n, bool(b)) for n, b in stored] == [
        ("by-email", True),
        ("by-email", True),
        ("by-id", False),
    ]
    # The replay inserts nothing twice.
    resp = await spec.post(f"/v1/syncs/{sync_id}/watermark/reset", json={"to": None})
    assert resp.status_code == 200, resp.text
    again = await spec.run(sync_id)
    assert again["status"] == "success", again
    ann = await spec.profile(email="ann@example.com")
    u1 = await spec.profile(external_id="u1")
    assert ann is not None and u1 is not None
    assert len(await spec.events(ann["id"])) == 2
    assert len(await spec.events(u1["id"])) == 1
    # The store's look-up by (workspace, row hash) uses the partial index on both databases.
    query = (
        "SELECT row_hash, count(*) FROM {t} WHERE workspace_id = :ws AND by_address = {yes} "
        "AND row_hash IN (:h1, :h2) GROUP BY row_hash"
    )
    params = {"ws": spec.workspace_id, "h1": "a" * 32, "h2": "b" * 32}
    for table in ("store_event", "store_purchase"):
        async with db.engine.connect() as conn:
            if db.is_postgres:
                await conn.execute(sa.text("SET enable_seqscan = off"))
                sql = "EXPLAIN " + query.format(t=table, yes="true")
            else:
                sql = "EXPLAIN QUERY PLAN " + query.format(t=table, yes="1")
            plan = " ".join(str(r) for r in (await conn.execute(sa.text(sql), params)).all())
        assert f"ix_{table}_address_row_hash" in plan, plan
