"""File-storage syncs against moto's S3 server (real HTTP, boto3), into real stores.

Each test uses its own bucket. Runs go through FileSyncEngine exactly as the API runs them:
run records, row logs, sync_file bookkeeping and the destination's commit.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from tests.peers.http_destination.fixtures import HttpPeer, http_peer, http_peer_server
from tests.peers.moto.fixtures import S3Peer, s3_peer
from tests.support import REPO
from zerocopy import errors
from zerocopy.destinations.factory import destination_factory
from zerocopy.errors import ZerocopyError
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.state.models import Credential, Workspace
from zerocopy.state.sync_models import (
    StoreEvent,
    StoreProfile,
    Sync,
    SyncFile,
    SyncRowLog,
)
from zerocopy.sync.files import (
    FileSourceSettings,
    FileSyncEngine,
    S3FileStore,
    check_bucket_name,
    key_problem,
    preview_files,
)
from zerocopy.sync.types import DataType, RowError, ValidRow

__all__ = ["http_peer", "http_peer_server", "s3_peer"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("moto")]

BOX_KEY = SecretBox.generate_key()
BOX = SecretBox([BOX_KEY])


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'state.sqlite3'}")
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


@pytest.fixture
def bucket(s3_peer: S3Peer) -> str:
    name = f"zc-{uuid.uuid4().hex[:12]}"
    s3_peer.client().create_bucket(Bucket=name)
    return name


def put(peer: S3Peer, bucket: str, key: str, body: str) -> None:
    peer.client().put_object(Bucket=bucket, Key=key, Body=body.encode())


async def make_sync(db: Database, peer: S3Peer, bucket: str, data_type: str, **kw: Any) -> str:
    async with db.transaction() as s:
        ws = Workspace(name=f"ws-{uuid.uuid4().hex[:6]}")
        s.add(ws)
        await s.flush()
        cred = Credential(
            workspace_id=ws.id,
            name="s3",
            kind="s3",
            settings={"endpoint_url": peer.endpoint_url, "region": peer.region},
            secret_ciphertext=BOX.encrypt(
                {"access_key_id": peer.access_key_id, "secret_access_key": peer.secret_access_key}
            ),
        )
        s.add(cred)
        await s.flush()
        sync = Sync(
            workspace_id=ws.id,
            name="files",
            credential_id=cred.id,
            source_settings={"bucket": bucket, "prefix": kw.pop("prefix", "in/")},
            data_type=data_type,
            status="active",
            **kw,
        )
        s.add(sync)
        await s.flush()
        return sync.id


def engine(db: Database, **kw: Any) -> FileSyncEngine:
    return FileSyncEngine(db, adapter_factory=None, box=BOX, **kw)


async def profiles(db: Database) -> dict[str, dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.execute(sa.select(StoreProfile.external_id, StoreProfile.attributes))).all()
    return {ext: attrs for ext, attrs in rows}


async def row_log(db: Database, run_id: str) -> list[tuple[str, str | None, str | None]]:
    async with db.session() as s:
        rows = await s.execute(
            sa.select(SyncRowLog.verdict, SyncRowLog.code, SyncRowLog.message)
            .where(SyncRowLog.run_id == run_id)
            .order_by(SyncRowLog.position)
        )
        return [tuple(r) for r in rows.all()]  # type: ignore[misc]


JSONL = (
    '{"external_id": "u1", "payload": {"plan": "gold", "tags": ["a"]}}\n'
    '{"EXTERNAL_ID": "u2", "PAYLOAD": "{\\"plan\\": \\"silver\\"}"}\n'
    "\n"
    '{"email": "Three@Example.com", "phone": "+1 555 0100", "payload": {"plan": null}}\n'
)
CSV = (
    "external_id,payload\r\n"
    'u4,"{""plan"": ""bronze"",\n ""note"": ""a, b""}"\r\n'
    ',"{""plan"": ""x""}"\r\n'
)


async def test_jsonl_and_csv_files_are_delivered_once(
    db: Database, s3_peer: S3Peer, bucket: str
) -> None:
    put(s3_peer, bucket, "in/a.jsonl", JSONL)
    put(s3_peer, bucket, "in/b.csv", CSV)
    put(s3_peer, bucket, "in/readme.txt", "not a data file")
    put(s3_peer, bucket, "other/c.jsonl", '{"external_id": "outside", "payload": {}}\n')
    sync_id = await make_sync(db, s3_peer, bucket, "user_attributes")
    run = await engine(db).run(sync_id)
    assert (run.status, run.rows_read, run.rows_delivered, run.rows_errored) == (
        "partial_success",
        5,
        4,
        1,
    )
    got = await profiles(db)
    assert set(got) == {"u1", "u2", "u4", None}
    assert got["u1"] == {"plan": "gold", "tags": ["a"]}
    assert got["u2"] == {"plan": "silver"}
    assert got["u4"] == {"plan": "bronze", "note": "a, b"}
    errors_logged = [r for r in await row_log(db, run.id) if r[0] == "error"]
    assert [r[1] for r in errors_logged] == ["no_identifier"]
    again = await engine(db).run(sync_id)
    assert (again.status, again.rows_read) == ("success", 0)
    # A new upload of the same key is a new version (new ETag): processed again.
    put(s3_peer, bucket, "in/a.jsonl", '{"external_id": "u1", "payload": {"plan": "platinum"}}\n')
    third = await engine(db).run(sync_id)
    assert (third.status, third.rows_read, third.rows_delivered) == ("success", 1, 1)
    assert (await profiles(db))["u1"]["plan"] == "platinum"
    async with db.session() as s:
        files = (await s.execute(sa.select(SyncFile.key, SyncFile.status))).all()
    assert sorted(files) == [("in/a.jsonl", "processed")] * 2 + [("in/b.csv", "processed")]


async def test_jsonl_file_with_an_invalid_line_is_skipped_whole(
    db: Database, s3_peer: S3Peer, bucket: str
) -> None:
    put(
        s3_peer,
        bucket,
        "in/1-bad.jsonl",
        '{"external_id": "b1", "payload": {}}\n{"external_id": "b2", "payload": \n',
    )
    put(s3_peer, bucket, "in/2-good.ndjson", '{"external_id": "g1", "payload": {"x": 1}}\n')
    sync_id = await make_sync(db, s3_peer, bucket, "user_attributes")
    run = await engine(db).run(sync_id)
    assert (run.status, run.rows_delivered, run.rows_errored) == ("partial_success", 1, 1)
    assert set(await profiles(db)) == {"g1"}
    (entry,) = [r for r in await row_log(db, run.id) if r[0] == "error"]
    assert entry[1] == "file_invalid"
    assert "in/1-bad.jsonl" in (entry[2] or "") and "line 2" in (entry[2] or "")
    # Skipped files are not retried until re-uploaded.
    assert (await engine(db).run(sync_id)).rows_errored == 0


async def test_csv_with_broken_quoting_is_skipped_and_ragged_rows_are_row_errors(
    db: Database, s3_peer: S3Peer, bucket: str
) -> None:
    put(s3_peer, bucket, "in/broken.csv", 'external_id,payload\nx1,"{""a"": 1}\nx2,"oops\n')
    put(s3_peer, bucket, "in/ragged.csv", 'external_id,payload\ny1,{},extra\ny2,"{}"\n')
    sync_id = await make_sync(db, s3_peer, bucket, "user_attributes")
    run = await engine(db).run(sync_id)
    assert set(await profiles(db)) == {"y2"}
    codes = sorted(r[1] for r in await row_log(db, run.id) if r[0] == "error")
    assert codes == ["file_invalid", "invalid_field"]


async def test_a_limited_run_resumes_inside_the_file_without_duplicates(
    db: Database, s3_peer: S3Peer, bucket: str
) -> None:
    lines = "".join(
        f'{{"external_id": "e{i}", "payload": {{"name": "login", "time": "2026-01-0{i + 1}T00:00:00Z"}}}}\n'
        for i in range(5)
    )
    put(s3_peer, bucket, "in/events.jsonl", lines)
    sync_id = await make_sync(db, s3_peer, bucket, "custom_events", row_limit=3)
    first = await engine(db).run(sync_id)
    assert (first.status, first.rows_delivered) == ("limit_exceeded", 3)
    second = await engine(db).run(sync_id)
    assert (second.status, second.rows_delivered) == ("success", 2)
    third = await engine(db).run(sync_id)
    assert third.rows_read == 0
    async with db.session() as s:
        times = sorted(str(t) for t in (await s.scalars(sa.select(StoreEvent.time))).all())
        files = (await s.execute(sa.select(SyncFile.key))).all()
    assert len(times) == 5 and len(set(times)) == 5
    assert files == [("in/events.jsonl",)]


async def test_catalog_csv_with_deleted_through_the_http_destination(
    db: Database, s3_peer: S3Peer, bucket: str, http_peer: HttpPeer
) -> None:
    put(
        s3_peer,
        bucket,
        "in/items.csv",
        'ID,PAYLOAD,DELETED\nsku-1,"{""price"": 10, ""title"": ""A, B""}",false\nsku-2,"{}",true\n',
    )
    sync_id = await make_sync(
        db, s3_peer, bucket, "catalog_items", catalog_name="products", destination="http"
    )
    settings = SimpleNamespace(
        http_destination_url=http_peer.url, http_destination_key=http_peer.key
    )
    run = await engine(db, destination_factory=destination_factory(db, settings)).run(sync_id)
    assert (run.status, run.rows_delivered) == ("success", 2)
    items = {r["id"]: r for r in http_peer.state()["rows"].values()}
    assert items["sku-1"]["fields"] == {"price": 10, "title": "A, B"}
    assert items["sku-1"]["deleted"] is False and items["sku-2"]["deleted"] is True
    assert items["sku-1"]["catalog"] == "products"


async def test_missing_bucket_is_a_sync_level_error(db: Database, s3_peer: S3Peer) -> None:
    sync_id = await make_sync(db, s3_peer, f"zc-missing-{uuid.uuid4().hex[:8]}", "user_attributes")
    run = await engine(db).run(sync_id)
    assert (run.status, run.error_code) == ("error", errors.SCOPE_NOT_FOUND)
    assert s3_peer.secret_access_key not in (run.error_message or "")


def test_s3_naming_rules() -> None:
    for good in ("abc", "my.bucket-1", "a" * 63):
        check_bucket_name(good)
    for bad in ("ab", "Upper", "a..b", "192.168.1.1", "-abc", "a" * 64, "xn--abc"):
        with pytest.raises(ZerocopyError):
            check_bucket_name(bad)
    assert key_problem("in/ok file (1).csv") is None
    assert key_problem("in/\x07bell.csv") == "the key contains control characters"
    assert key_problem("k" * 1025) is not None
    with pytest.raises(ZerocopyError) as info:
        FileSourceSettings.from_dict({"bucket": "okay", "format": "xml"})
    assert info.value.code == errors.VALIDATION_ERROR


async def test_preview_validates_the_first_rows_of_the_first_pending_file(
    s3_peer: S3Peer, bucket: str
) -> None:
    put(s3_peer, bucket, "in/1.jsonl", JSONL)
    put(s3_peer, bucket, "in/2.csv", CSV)
    store = S3FileStore(
        FileSourceSettings(bucket=bucket, prefix="in/", endpoint_url=s3_peer.endpoint_url),
        {"access_key_id": s3_peer.access_key_id, "secret_access_key": s3_peer.secret_access_key},
    )
    preview = await preview_files(store, DataType.USER_ATTRIBUTES)
    assert preview.files == ["in/1.jsonl", "in/2.csv"] and preview.previewed == "in/1.jsonl"
    assert all(isinstance(v, ValidRow) for v in preview.verdicts)
    ids = [v.identifier.value for v in preview.verdicts if isinstance(v, ValidRow) and v.identifier]
    assert ids == ["u1", "u2", "three@example.com"]
    # Files are taken oldest first (LastModified, then key): with the earlier two gone, the
    # new invalid file is the first pending one whatever second it was written in.
    put(s3_peer, bucket, "in/0.jsonl", "{not json}\n")
    s3_peer.client().delete_object(Bucket=bucket, Key="in/1.jsonl")
    s3_peer.client().delete_object(Bucket=bucket, Key="in/2.csv")
    bad = await preview_files(store, DataType.USER_ATTRIBUTES)
    assert bad.previewed == "in/0.jsonl"
    (verdict,) = bad.verdicts
    assert isinstance(verdict, RowError) and verdict.code == "file_invalid"


CHILD = """
import sys, anyio
from zerocopy.secrets import SecretBox
from zerocopy.state.db import Database
from zerocopy.sync.files import FileSyncEngine

async def main(url, sync_id, key):
    db = Database(url)
    engine = FileSyncEngine(db, adapter_factory=None, box=SecretBox([key]), delivery_rows=50)
    await engine.run(sync_id)

anyio.run(main, *sys.argv[1:4])
"""


async def test_kill_9_mid_file_then_a_new_run_equals_one_clean_run(
    db: Database, s3_peer: S3Peer, bucket: str, tmp_path: Path
) -> None:
    """Events make any double delivery visible: after kill -9 and a new run, every line once."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import anyio

    from zerocopy.state.sync_models import SyncRun

    n = 6000  # large enough that the kill lands mid-file even if delivery gets much faster
    lines = "".join(
        f'{{"external_id": "k{i % 40}", "payload": {{"name": "e{i}", '
        f'"time": "2026-01-01T00:00:00Z"}}}}\n'
        for i in range(n)
    )
    put(s3_peer, bucket, "in/big.jsonl", lines)
    sync_id = await make_sync(db, s3_peer, bucket, "custom_events")
    proc = await anyio.open_process(
        [sys.executable, "-c", CHILD, db.url, sync_id, BOX_KEY],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            async with db.session() as s:
                delivered = await s.scalar(
                    sa.select(SyncRun.rows_delivered).where(SyncRun.sync_id == sync_id)
                )
            if delivered and delivered >= 200:
                break
            await anyio.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        with anyio.fail_after(10):
            await proc.wait()
    async with db.session() as s:
        partial = await s.scalar(sa.select(sa.func.count()).select_from(StoreEvent))
    assert partial is not None and 0 < partial < n, "the kill did not land mid-file"
    eng = engine(db, stale_after_s=0.0)
    assert await eng.reap_lost(0.0)
    final = await eng.run(sync_id)
    assert final.status == "success"
    async with db.session() as s:
        names = (await s.scalars(sa.select(StoreEvent.name))).all()
        files = (await s.execute(sa.select(SyncFile.key))).all()
    assert len(names) == n and len(set(names)) == n
    assert files == [("in/big.jsonl",)]
    assert final.rows_delivered == n - partial
