"""Round 14: file syncs on moto's S3 -- empty CSV files, and JSON-lines identifiers that are
not text.

* A CSV file of 0 bytes, or of blank lines only (what an export of no rows often writes), was
  skipped as ``file_invalid`` ("the file is empty") and turned the run into
  ``partial_success``, while an empty JSON-lines file was simply a file of no rows. Both are
  now files of no rows: processed once, no row error. A header-only CSV was and stays fine.
* A JSON-lines identifier, ``ID`` or ``NAME`` that was not a string was keyed by Python's
  spelling of it: ``{"external_id": {"a": 1}}`` created the profile ``"{'a': 1}"``, ``true``
  the profile ``"True"`` and ``42.0`` the profile ``"42.0"``. A boolean, object or array is now
  the row error ``invalid_identifier`` (``invalid_field`` for ``ID`` / ``NAME``), and an
  integral number is its integer text (``"42"``), as from a warehouse's DOUBLE column.
"""

from __future__ import annotations

import pytest

from tests.integration.test_sync_scenarios2_files import STATES, Files, attrs, files
from tests.integration.test_sync_spec_harness import Spec, spec_fixture  # noqa: F401
from tests.peers.moto.fixtures import s3_peer

__all__ = ["files", "s3_peer"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("moto")]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_empty_and_blank_csv_files_are_files_of_no_rows(spec: Spec, files: Files) -> None:
    files.put("e/empty.csv", "")
    files.put("e/blank.csv", "\r\n  \r\n")
    files.put("e/header.csv", "\ufeffEXTERNAL_ID,PAYLOAD\r\n")
    files.put("e/empty.jsonl", "")
    files.put("e/late-header.csv", '\r\nexternal_id,payload\r\nh1,"{""a"": 1}"\r\n')
    sync_id = await files.ready("user_attributes", "e/")
    run = await spec.run(sync_id)
    assert run["status"] == "success", (run, await spec.rows(run["id"]))
    assert (run["rows_read"], run["rows_delivered"], run["rows_errored"]) == (1, 1, 0), run
    assert await attrs(spec, "h1") == {"a": 1}
    again = await spec.run(sync_id)
    assert (again["status"], again["rows_read"]) == ("success", 0), again
    # A CSV whose header lacks a required column is still skipped whole.
    files.put("e/bad.csv", "nobody\r\n")
    bad = await spec.run(sync_id)
    assert bad["status"] == "partial_success", bad
    assert await spec.codes(bad["id"]) == ["file_invalid"]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_jsonl_identifiers_that_are_not_text(spec: Spec, files: Files) -> None:
    files.put(
        "u/ids.jsonl",
        '{"external_id": {"a": 1}, "payload": {"x": 1}}\n'
        '{"external_id": 42.0, "payload": {"x": 2}}\n'
        '{"external_id": true, "payload": {"x": 3}}\n'
        '{"external_id": ["z"], "payload": {"x": 4}}\n'
        '{"external_id": 7, "payload": {"x": 5}}\n'
        '{"email": false, "phone": "+15550100001", "payload": {"x": 6}}\n',
    )
    run = await spec.run(await files.ready("user_attributes", "u/"))
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        2,
        4,
    ), run
    errors = await spec.rows(run["id"])
    assert [(e["position"], e["code"]) for e in errors] == [
        (0, "invalid_identifier"),
        (2, "invalid_identifier"),
        (3, "invalid_identifier"),
        (5, "invalid_identifier"),
    ], errors
    assert "EXTERNAL_ID" in errors[0]["message"] and "object" in errors[0]["message"]
    assert errors[0]["row"]["external_id"] == {"a": 1}
    assert await attrs(spec, "42") == {"x": 2}
    assert await attrs(spec, "7") == {"x": 5}
    for never in ("42.0", "True", "{'a': 1}", "['z']"):
        assert await attrs(spec, never) is None, never
    assert await spec.profile(phone="+15550100001") is None


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_jsonl_item_ids_and_names_that_are_not_text(spec: Spec, files: Files) -> None:
    files.put(
        "a/accounts.jsonl",
        '{"id": {"n": 1}, "name": "Acme", "payload": {}}\n'
        '{"id": "a2", "name": ["Acme"], "payload": {}}\n'
        '{"id": 3.0, "name": "Three", "payload": {}}\n',
    )
    run = await spec.run(await files.ready("accounts", "a/"))
    assert (run["rows_delivered"], run["rows_errored"]) == (1, 2), run
    assert await spec.codes(run["id"]) == ["invalid_field", "invalid_field"]
    accounts = await spec.accounts()
    assert set(accounts) == {"3"} and accounts["3"]["name"] == "Three", accounts
