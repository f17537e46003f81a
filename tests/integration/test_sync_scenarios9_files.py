"""Round 15: ``DELETED`` written as a JSON number in a JSON-lines file.

A warehouse's DOUBLE or DECIMAL ``DELETED`` column of ``1.0`` / ``0.0`` deletes / keeps, as
``1`` / ``0`` do. In a JSON-lines file the same ``1.0`` was turned into the text ``"1.0"`` and
refused (``invalid_field``), so an export that writes every number as a float could not
delete anything. It is now read as the warehouse value is; other numbers are still refused,
and an object is shown in the row error as the JSON it was, not Python's spelling of it.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_scenarios2_files import STATES, Files, files
from tests.integration.test_sync_spec_harness import Spec, spec_fixture  # noqa: F401
from tests.peers.moto.fixtures import s3_peer

__all__ = ["files", "s3_peer"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("moto")]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_jsonl_deleted_as_a_json_number(spec: Spec, files: Files) -> None:
    ids = ["a1", "a2", "a3", "a4", "a5", "a6"]
    files.put(
        "acc/1.jsonl",
        "".join(f'{{"id": "{i}", "name": "N-{i}", "payload": {{"plan": "x"}}}}\n' for i in ids),
    )
    sync_id = await files.ready("accounts", "acc/")
    assert (await spec.run(sync_id))["rows_delivered"] == 6
    files.put(
        "acc/2.jsonl",
        '{"id": "a1", "deleted": 1.0}\n'
        '{"id": "a2", "name": "N-a2", "payload": {"plan": "y"}, "deleted": 0.0}\n'
        '{"id": "a3", "deleted": 1}\n'
        '{"id": "a4", "deleted": 2.0}\n'
        '{"id": "a5", "deleted": 0.5}\n'
        '{"id": "a6", "deleted": {"really": true}}\n',
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        3,
        3,
    ), (run, await spec.rows(run["id"]))
    refused = await spec.rows(run["id"])
    assert [(r["position"], r["code"]) for r in refused] == [
        (3, "invalid_field"),
        (4, "invalid_field"),
        (5, "invalid_field"),
    ], refused
    assert "'2'" in refused[0]["message"] and "'0.5'" in refused[1]["message"], refused
    assert '{"really":true}' in refused[2]["message"], refused[2]
    accounts = {a["id"]: a for a in (await spec.get("/v1/accounts")).json()}
    assert {k: v["fields"] for k, v in accounts.items()} == {
        "a2": {"plan": "y"},
        "a4": {"plan": "x"},
        "a5": {"plan": "x"},
        "a6": {"plan": "x"},
    }, accounts
