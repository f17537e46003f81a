"""Round 15: integers past 64 bits, kept exactly wherever they travel.

JSON has no size limit on integers, and warehouses hand them out: a ``HUGEINT`` or
``DECIMAL(38, 0)`` field in a STRUCT payload, a 20-digit number in a JSON text. Before:

* a JSON-text PAYLOAD (warehouse table or JSON-lines file) read them as floats:
  ``99999999999999999999`` was stored as ``1e20`` (shown ``-1e+20`` by the SQLite store and
  ``-100000000000000000000`` by the PostgreSQL one), while the same number in a STRUCT was
  kept exact;
* a sync to the HTTP destination whose payload held one failed every run with
  ``internal_error`` ("Integer exceeds 64-bit range"), stuck on that row for good;
* exporting a run's row log holding one failed half-way (JSON lines and CSV).

They are now kept exactly: in the store, in the HTTP batches and in the export.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb
import pytest

from tests.integration.test_http_destination import http_sync, sync_db, sync_engine
from tests.integration.test_sync_scenarios2_files import STATES, Files, attrs, files
from tests.integration.test_sync_spec_harness import Spec, j, spec_fixture  # noqa: F401
from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from tests.peers.moto.fixtures import s3_peer
from zerocopy.state.db import Database

__all__ = ["files", "http_peer", "http_peer_server", "s3_peer", "sync_db"]

pytestmark = pytest.mark.anyio

COLS = {"UPDATED_AT": "ts", "EXTERNAL_ID": "text", "PAYLOAD": "text"}
BIG = {
    "neg": -99999999999999999999,
    "u64_plus_one": 18446744073709551616,
    "thirty": 123456789012345678901234567890,
    "nested": {"list": [170141183460469231731687303715884105727, 1.5, 7]},
    "u64": 18446744073709551615,
    "small": 42,
}
TEXT = json.dumps(BIG)


async def test_big_integers_in_a_json_text_payload_are_kept_exactly(spec: Spec) -> None:
    spec.warehouse.create(
        "big",
        COLS,
        [("2026-05-01 00:00:00", "b1", TEXT), ("2026-05-01 00:00:01", "b2", j({"x": 1}))],
    )
    sync_id = await spec.ready("user_attributes", "big")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    prof = await spec.profile(external_id="b1")
    assert prof is not None and prof["attributes"] == BIG, prof
    (logged,) = [r for r in await spec.rows(run["id"], errors_only=False) if r["position"] == 0]
    assert logged["row"]["payload"] == BIG, logged
    again = await spec.run(sync_id)  # read again at the boundary: the same row, skipped
    assert (again["rows_delivered"], again["rows_skipped"]) == (0, 1), again
    resp = await spec.get(
        f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "jsonl", "errors_only": "false"}
    )
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.text.splitlines()]
    assert [line["row"]["payload"] for line in lines] == [BIG, {"x": 1}], lines
    resp = await spec.get(
        f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "csv", "errors_only": "false"}
    )
    assert resp.status_code == 200, resp.text
    records = list(csv.DictReader(io.StringIO(resp.text)))
    assert [json.loads(r["row"])["payload"] for r in records] == [BIG, {"x": 1}], records


async def test_a_refused_row_with_big_integers_is_exported_as_written(spec: Spec) -> None:
    spec.warehouse.create("bigbad", COLS, [("2026-05-01 00:00:00", None, TEXT)])
    run = await spec.run(await spec.ready("user_attributes", "bigbad"))
    assert run["status"] == "partial_success", run
    resp = await spec.get(f"/v1/sync-runs/{run['id']}/rows/export", params={"format": "jsonl"})
    assert resp.status_code == 200, resp.text
    (line,) = [json.loads(x) for x in resp.text.splitlines()]
    assert line["code"] == "no_identifier" and json.loads(line["row"]["PAYLOAD"]) == BIG, line


@pytest.mark.peer("moto")
@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_big_integers_in_a_json_lines_file_are_kept_exactly(spec: Spec, files: Files) -> None:
    files.put(
        "big/a.jsonl",
        json.dumps({"external_id": "f1", "payload": BIG})
        + "\n"
        + json.dumps({"external_id": 99999999999999999999, "payload": {"n": 1}})
        + "\n",
    )
    run = await spec.run(await files.ready("user_attributes", "big/"))
    assert (run["status"], run["rows_delivered"]) == ("success", 2), run
    assert await attrs(spec, "f1") == BIG
    assert await attrs(spec, "99999999999999999999") == {"n": 1}


@pytest.mark.peer("http_destination")
@pytest.mark.parametrize("shape", ["struct", "text"])
async def test_the_http_destination_sends_big_integers_exactly(
    sync_db: Database, http_peer: HttpPeer, tmp_path: Path, shape: str
) -> None:
    duck = tmp_path / "wh.duckdb"
    with duckdb.connect(str(duck)) as con:
        if shape == "struct":
            con.execute(
                "CREATE TABLE users AS SELECT TIMESTAMP '2026-05-01' AS updated_at, "
                "'u1' AS external_id, {'a': 170141183460469231731687303715884105727::HUGEINT, "
                "'b': (-99999999999999999999)::DECIMAL(38, 0)} AS payload "
                "UNION ALL SELECT TIMESTAMP '2026-05-02', 'u2', {'a': 1::HUGEINT, 'b': 2}"
            )
        else:
            con.execute(
                "CREATE TABLE users AS SELECT TIMESTAMP '2026-05-01' AS updated_at, "
                "'u1' AS external_id, ? AS payload "
                "UNION ALL SELECT TIMESTAMP '2026-05-02', 'u2', '{\"a\": 1, \"b\": 2}'",
                [
                    json.dumps(
                        {"a": 170141183460469231731687303715884105727, "b": -99999999999999999999}
                    )
                ],
            )
    sync_id = await http_sync(sync_db, duck, {"batch_rows": 10})
    run = await sync_engine(sync_db, http_peer).run(sync_id)
    assert (run.status, run.rows_read, run.rows_delivered) == ("success", 2, 2), (
        run.error_code,
        run.error_message,
    )
    sent = {
        r["identifier"]["external_id"]: r["attributes"] for r in http_peer.state()["rows"].values()
    }
    assert sent == {
        "u1": {"a": 170141183460469231731687303715884105727, "b": -99999999999999999999},
        "u2": {"a": 1, "b": 2},
    }, sent
