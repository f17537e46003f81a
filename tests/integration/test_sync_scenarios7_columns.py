"""Round 7: a source table whose columns (or a schema whose tables) differ only in case.

Column and table names are matched without case, so PostgreSQL's quoted ``"UPDATED_AT"``
beside ``updated_at`` both name UPDATED_AT. The first in column order was used without a word
(the watermark on one timestamp, the other ignored; an identifier from one of two columns).
Now the sync's test and run refuse such a table with ``unknown_column`` naming both
spellings. A table name given exactly picks that table among tables differing only in case
(the first listed was used); one that matches several only without case is ``unknown_table``.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_spec_harness import Spec, spec_fixture  # noqa: F401

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

PG = [pytest.param(("postgres", "sqlite"), id="pg")]


@pytest.mark.parametrize("spec", PG, indirect=True)
async def test_two_spellings_of_one_column_are_refused(spec: Spec) -> None:
    spec.warehouse.create(
        "twice",
        {"UPDATED_AT": "ts", "updated_at": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"},
        [("2026-01-01T00:00:00", "2026-06-01T00:00:00", "u1", '{"a": 1}')],
    )
    sync = await spec.create_sync("user_attributes", "twice")
    resp = await spec.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "unknown_column" and err["details"]["ambiguous"] == ["UPDATED_AT"]
    assert "'UPDATED_AT' and 'updated_at'" in err["message"], err
    # A column the data type does not read may come twice.
    spec.warehouse.create(
        "extra",
        {
            "UPDATED_AT": "ts",
            "EXTERNAL_ID": "text",
            "PAYLOAD": "text",
            "note": "text",
            "NOTE": "text",
        },
        [("2026-01-01T00:00:00", "u2", '{"a": 2}', "x", "y")],
    )
    run = await spec.run(await spec.ready("user_attributes", "extra"))
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run


@pytest.mark.parametrize("spec", PG, indirect=True)
async def test_a_table_name_differing_only_in_case(spec: Spec) -> None:
    cols = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
    spec.warehouse.create("Users", cols, [("2026-01-01T00:00:00", "upper", '{"t": "Users"}')])
    spec.warehouse.create("users", cols, [("2026-01-01T00:00:00", "lower", '{"t": "users"}')])
    for name, who in (("users", "lower"), ("Users", "upper")):
        run = await spec.run(await spec.ready("user_attributes", name))
        assert (run["status"], run["rows_delivered"]) == ("success", 1), run
        assert await spec.profile(external_id=who) is not None, name
    sync = await spec.create_sync("user_attributes", "USERS")
    resp = await spec.post(f"/v1/syncs/{sync['id']}/test")
    assert resp.status_code == 422, resp.text
    err = resp.json()["error"]
    assert err["code"] == "unknown_table" and err["details"]["ambiguous"] == ["Users", "users"]
