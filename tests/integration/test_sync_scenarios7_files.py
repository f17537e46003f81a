"""Round 7: a JSON-lines line that names one column twice (``external_id`` and
``EXTERNAL_ID``) is an invalid line: its file is skipped whole and reported (``file_invalid``),
as a CSV header naming a column twice is. Column names are case-insensitive, so the line had
two values for one column and the last spelling silently won (the row went to profile
``"b"``, or a purchase's PAYLOAD was another one than the line's first).
"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_sync_scenarios2_files import STATES, Files, attrs, files
from tests.integration.test_sync_spec_harness import Spec, spec_fixture  # noqa: F401
from tests.peers.moto.fixtures import s3_peer

__all__ = ["files", "s3_peer"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("moto")]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_a_jsonl_line_naming_a_column_twice_invalidates_its_file(
    spec: Spec, files: Files
) -> None:
    files.put(
        "d/twice.jsonl",
        '{"external_id": "ok1", "payload": {"x": 1}}\n'
        '{"external_id": "a", "EXTERNAL_ID": "b", "payload": {"x": 2}}\n',
    )
    files.put(
        "d/payload.jsonl",
        '{"external_id": "p1", "payload": {"x": 3}, "Payload": {"x": 4}}\n',
    )
    # Different spellings on different lines are one column, as before.
    files.put(
        "d/mixed.jsonl",
        '{"external_id": "m1", "payload": {"x": 5}}\n{"EXTERNAL_ID": "m2", "PAYLOAD": {"x": 6}}\n',
    )
    sync_id = await files.ready("user_attributes", "d/")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("partial_success", 2), run
    errors = await spec.rows(run["id"])
    assert sorted(e["code"] for e in errors) == ["file_invalid", "file_invalid"], errors
    text = json.dumps(errors)
    assert "twice.jsonl" in text and "payload.jsonl" in text and "EXTERNAL_ID" in text, text
    assert "more than once" in text, text
    for gone in ("ok1", "a", "b", "p1"):
        assert await attrs(spec, gone) is None, gone
    assert await attrs(spec, "m1") == {"x": 5}
    assert await attrs(spec, "m2") == {"x": 6}
