"""Sync scenarios, fourth round: a phone that moves with EMAIL + PHONE rows.

Issue 8: "email and phone may come together, and then email is the identifier"; "email and
phone match the most recently updated profile". The phone of such a row becomes the profile's
phone: the profile it left no longer answers to it, and a later row by that phone — in the same
run or the next — goes where a lookup by phone would go. The result must not depend on whether
the rows came in one batch or one per run.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_sync_scenarios3 import other_workspace
from tests.integration.test_sync_spec_harness import (  # noqa: F401
    Spec,
    j,
    spec_fixture,
)

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "EMAIL": "text", "PHONE": "text"}
COLS |= {"PAYLOAD": "text"}


def row(
    minute: int, payload: dict[str, Any], *, ext: str | None = None, email: str | None = None,
    phone: str | None = None,
) -> tuple[Any, ...]:  # fmt: skip
    return (f"2026-03-01 00:{minute:02d}:00", ext, email, phone, j(payload))


async def _attrs(spec: Spec, **ident: str) -> dict[str, Any] | None:
    prof = await spec.profile(**ident)
    return None if prof is None else prof["attributes"]


async def _load(spec: Spec, rows: list[tuple[Any, ...]], *, one_run_per_row: bool) -> None:
    if not one_run_per_row:
        spec.warehouse.create("users", COLS, rows)
        run = await spec.run(await spec.ready("user_attributes", "users"))
        assert (run["status"], run["rows_delivered"]) == ("success", len(rows)), run
        return
    spec.warehouse.create("users_split", COLS, rows[:1])
    sync_id = await spec.ready("user_attributes", "users_split")
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    for r in rows[1:]:
        spec.warehouse.insert("users_split", COLS, [r])
        assert (await spec.run(sync_id))["rows_delivered"] == 1


SCENARIOS = {
    # a@x.com moves from phone 1 to phone 2; then a row by phone 1 comes: nobody holds it.
    "left-phone": [
        row(0, {"a": 1}, email="a@x.com", phone="+15550000001"),
        row(1, {"a": 2}, email="a@x.com", phone="+1 555 000 0002"),
        row(2, {"p1": True}, phone="+15550000001"),
    ],
    # b took phone 2 at 00:09 (another sync, before); a@x.com gets it too, at 00:02: b stays
    # its most recently updated holder.
    "older-holder": [
        row(2, {"a": 1}, email="a@x.com", phone="+15550000002"),
        row(3, {"a": 2}, email="a@x.com"),  # a@x.com's profile is updated again: still older
        row(4, {"q": 1}, phone="+15550000002"),
    ],
}
B_TAKES_PHONE_2 = row(9, {"phone": "+15550000002", "b": 1}, ext="b")


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_a_phone_given_next_to_an_email_moves_the_same_in_one_run_or_many(
    spec: Spec, name: str
) -> None:
    rows = SCENARIOS[name]
    split = await other_workspace(spec)
    if name == "older-holder":
        spec.warehouse.create("b", COLS, [B_TAKES_PHONE_2])  # one warehouse, two workspaces
        for ws in (spec, split):
            assert (await ws.run(await ws.ready("user_attributes", "b")))["status"] == "success"
    await _load(spec, rows, one_run_per_row=False)
    await _load(split, rows, one_run_per_row=True)
    for ws in (spec, split):
        if name == "left-phone":
            assert await _attrs(ws, email="a@x.com") == {"a": 2}
            holder = await ws.profile(phone="+15550000001")
            assert holder is not None and holder["email"] is None
            assert holder["attributes"] == {"p1": True}
            assert (await ws.profile(phone="+15550000002"))["email"] == "a@x.com"  # type: ignore[index]
        else:
            assert await _attrs(ws, external_id="b") == {"phone": "+15550000002", "b": 1, "q": 1}
            assert await _attrs(ws, email="a@x.com") == {"a": 2}
            assert (await ws.profile(phone="+15550000002"))["external_id"] == "b"  # type: ignore[index]
