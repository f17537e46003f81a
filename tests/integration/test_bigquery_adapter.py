"""BigQuery adapter against bqemulator, with the driver's HTTP transport observed.

The emulator runs jobs synchronously, so BigQuery's own deadline (``job_timeout_ms``), job
cancel, table expiry and labels have no visible effect there. These tests therefore record
what the real ``google-cloud-bigquery`` client sends on the wire (a recording
``requests`` transport adapter mounted on the client's own session, which then forwards to
the emulator): the job id we chose before submitting, labels, ``jobTimeoutMs``,
``maximumBytesBilled``, the CTAS with its expiration, and the ``jobs.cancel`` calls, including
one that lands before the first response. Nothing of ours is replaced.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from requests.adapters import HTTPAdapter

from dialects.base import temp_table_name
from dialects.bigquery import BigQueryAdapter
from dialects.protocol import ConnectionConfig, QueryTag, Scope, Watermark
from fixtures import build
from fixtures.warehouse import Warehouse
from tests.peers.bqemulator.gate import running_gate
from tests.peers.bqemulator.server import Emulator, installed, load_warehouse, running_emulator
from tests.support import free_port, unavailable
from zerocopy import errors
from zerocopy.errors import ZerocopyError

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.peer("bqemulator"),
    pytest.mark.xdist_group("bigquery_integration"),
]

DATASET = "it"


@dataclass
class Peer:
    emulator: Emulator
    warehouse: Warehouse


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    if not installed():
        unavailable("bqemulator peer not installed: run tests/peers/bqemulator/install.sh")
    warehouse = build(users=60)
    with running_emulator() as emulator:
        client = emulator.client()
        load_warehouse(client, DATASET, warehouse)
        client.close()
        yield Peer(emulator, warehouse)


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    sent_at: float
    query: str = ""
    answered_at: float | None = None


class Recorder(HTTPAdapter):
    """Transport adapter on the driver's session: records each request, then really sends it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []
        self.before_send: Callable[[Call], None] | None = None
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        raw = request.body or b"{}"
        body = json.loads(raw if isinstance(raw, (str, bytes)) else b"{}") if raw else {}
        path, _, query = (request.path_url or "").partition("?")
        headers = {k.lower(): v for k, v in request.headers.items()}
        call = Call(str(request.method), path, body, headers, time.monotonic(), query)
        with self._lock:
            self.calls.append(call)
        if self.before_send is not None:
            self.before_send(call)
        response = super().send(request, **kwargs)
        call.answered_at = time.monotonic()
        return response

    def find(self, method: str, suffix: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.endswith(suffix)]

    def job_inserts(self) -> list[Call]:
        return [c for c in self.find("POST", "/jobs") if "configuration" in c.body]


def make_adapter(peer: Peer, *, max_runtime_s: float = 60, **settings: Any) -> BigQueryAdapter:
    return BigQueryAdapter(
        ConnectionConfig(
            settings=peer.emulator.settings(**settings),
            secrets={},
            scope=Scope(schema=DATASET, database=peer.emulator.project),
            max_runtime_s=max_runtime_s,
        )
    )


def record(adapter: BigQueryAdapter) -> Recorder:
    recorder = Recorder()
    adapter.client()._http.mount("http://", recorder)
    return recorder


def ids_sql(adapter: BigQueryAdapter) -> str:
    return f"SELECT DISTINCT external_user_id FROM {adapter.quote_table('users')}"


def run() -> tuple[str, QueryTag]:
    run_id = str(uuid.uuid4())
    return temp_table_name(run_id), QueryTag(run_id=run_id, segment_id="seg-42")


# ------------------------------------------------------------------------------ job config
async def test_peer_gap_job_config__ctas_job_is_submitted_with_our_id_labels_timeout_and_expiry(
    peer: Peer,
) -> None:
    table, tag = run()
    async with make_adapter(peer, max_runtime_s=90, maximum_bytes_billed="1000000000") as adapter:
        recorder = record(adapter)
        try:
            result = await adapter.materialize(
                ids_sql(adapter), table, deadline=anyio.current_time() + 30, tag=tag
            )
            inserts = recorder.job_inserts()
            assert len(inserts) == 1
            body = inserts[0].body
            assert body["jobReference"]["jobId"] == result.query_id
            assert result.query_id.startswith(f"zerocopy_refresh_{tag.run_id}_")
            config = body["configuration"]
            assert config["labels"] == {
                "zerocopy": "refresh",
                "run": tag.run_id,
                "segment": "seg-42",
            }
            assert 25_000 <= int(config["jobTimeoutMs"]) <= 30_000
            query = config["query"]
            assert query["maximumBytesBilled"] == "1000000000"
            assert query["useLegacySql"] is False
            assert query["query"].startswith(
                f"CREATE TABLE {adapter.quote_table(table)}\n"
                "OPTIONS(expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), "
                f"INTERVAL {90 + 3600} SECOND)"
            )
            assert query["query"].endswith(ids_sql(adapter))
            ids = [
                v
                async for batch in adapter.read_column(table, "external_user_id")
                for v in batch.to_pylist()
            ]
            assert set(ids) == {
                r["external_user_id"] for r in peer.warehouse.table("users").data.to_pylist()
            }
        finally:
            await adapter.drop_table(table)


async def test_peer_gap_cancel__a_cancel_before_the_first_response_targets_the_chosen_job(
    peer: Peer,
) -> None:
    """jobs.insert is held on the wire; the user cancels; the cancel names our job id at once,
    and is sent again once the insert has gone through (the first one found no job yet)."""
    table, tag = run()
    async with make_adapter(peer) as adapter:
        recorder = record(adapter)
        insert_on_wire = threading.Event()
        cancel_seen = threading.Event()

        def hold_insert(call: Call) -> None:
            if call.path.endswith("/cancel"):
                cancel_seen.set()
            elif "configuration" in call.body:
                insert_on_wire.set()
                assert cancel_seen.wait(10), "no cancel while the insert was in flight"

        recorder.before_send = hold_insert
        try:
            with anyio.move_on_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(
                        lambda: adapter.materialize(
                            ids_sql(adapter), table, deadline=anyio.current_time() + 60, tag=tag
                        )
                    )
                    while not insert_on_wire.is_set():  # noqa: ASYNC110
                        await anyio.sleep(0.01)
                    tg.cancel_scope.cancel()
            # The abandoned driver thread re-sends the cancel after the insert returns.
            until = time.monotonic() + 10
            while len(recorder.find("POST", "/cancel")) < 2 and time.monotonic() < until:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            insert = recorder.job_inserts()[0]
            job_id = insert.body["jobReference"]["jobId"]
            cancels = recorder.find("POST", "/cancel")
            assert [c.path.rsplit("/", 2)[-2] for c in cancels] == [job_id, job_id]
            first, second = cancels
            assert insert.answered_at is not None
            assert first.sent_at < insert.answered_at, "the first cancel precedes any response"
            assert second.sent_at >= insert.answered_at
            # No location in the settings: the dataset's was looked up before submitting.
            assert all("location=US" in c.query for c in cancels)
        finally:
            await adapter.drop_table(table)


async def test_peer_gap_job_timeout__watchdog_cancels_the_job_it_submitted_with_that_timeout(
    peer: Peer,
) -> None:
    table, tag = run()
    async with make_adapter(peer, max_runtime_s=1.0) as adapter:
        recorder = record(adapter)
        slow = f"SELECT external_user_id FROM {adapter.quote_table('users')} WHERE (SELECT ZC_PEER_SLEEP(3.0))"
        started = time.monotonic()
        try:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(slow, table, deadline=anyio.current_time() + 1.0, tag=tag)
            assert caught.value.code == errors.TIMED_OUT
            assert time.monotonic() - started < 1.0 + adapter.CANCEL_TIMEOUT_S + 1.0
            job_id = caught.value.details["query_id"]
            (insert,) = recorder.job_inserts()
            assert insert.body["jobReference"]["jobId"] == job_id
            assert 1 <= int(insert.body["configuration"]["jobTimeoutMs"]) <= 1000
            cancels = recorder.find("POST", f"/jobs/{job_id}/cancel")
            assert cancels, "the watchdog sent jobs.cancel for the job it submitted"
        finally:
            await adapter.drop_table(table)  # queued behind the emulator's synchronous job
        assert table not in await adapter.list_temp_tables()


# ------------------------------------------------------------------------------ cost guard
async def test_dry_run_estimates_bytes_without_running_anything(peer: Peer) -> None:
    async with make_adapter(peer) as adapter:
        recorder = record(adapter)
        estimate = await adapter.estimate_bytes(ids_sql(adapter))
        assert isinstance(estimate, int) and estimate >= 0  # the emulator reports 0
        (call,) = [c for c in recorder.calls if c.method == "POST"]
        assert call.body.get("dryRun") is True or call.body["configuration"]["dryRun"] is True
        with pytest.raises(ZerocopyError) as caught:
            await adapter.estimate_bytes(f"SELECT nope FROM {adapter.quote_table('users')}")
        assert caught.value.code == errors.WAREHOUSE_ERROR


# ------------------------------------------------------------------------------ reading ids
async def test_storage_read_and_rest_paging_return_the_same_ids_in_bounded_batches(
    peer: Peer,
) -> None:
    table, tag = run()
    expected = {r["external_user_id"] for r in peer.warehouse.table("users").data.to_pylist()}
    async with make_adapter(peer) as storage, make_adapter(peer, use_storage_api=False) as rest:
        await storage.materialize(
            ids_sql(storage), table, deadline=anyio.current_time() + 30, tag=tag
        )
        try:
            seen: dict[str, list[int]] = {}
            for name, adapter in (("storage", storage), ("rest", rest)):
                recorder = record(adapter)
                sizes, ids = [], []
                async for batch in adapter.read_column(table, "external_user_id", batch_rows=8):
                    sizes.append(len(batch))
                    ids.extend(batch.to_pylist())
                assert set(ids) == expected and len(ids) == len(expected), name
                assert max(sizes) <= 8 and len(sizes) >= len(expected) // 8
                seen[name] = [len(recorder.find("GET", f"/tables/{table}/data"))]
            assert seen["storage"] == [0], "ids came over the Storage Read API, not tabledata.list"
            assert seen["rest"][0] >= len(expected) // 8, "REST paging asked page by page"
            assert storage._read is not None and rest._read is None
        finally:
            await storage.drop_table(table)


async def test_incremental_read_is_one_labelled_parameterised_ordered_query(peer: Peer) -> None:
    rows = peer.warehouse.table("users_attributes_sync").data.to_pylist()
    boundary = sorted({r["UPDATED_AT"] for r in rows})[5]
    async with make_adapter(peer) as adapter:
        recorder = record(adapter)
        got = [
            r
            async for batch in adapter.read_incremental(
                "users_attributes_sync",
                Watermark(boundary),
                batch_rows=10,
                columns=["UPDATED_AT", "EXTERNAL_ID"],
            )
            for r in batch.to_pylist()
        ]
        assert len(got) == sum(1 for r in rows if r["UPDATED_AT"] >= boundary)
        (insert,) = recorder.job_inserts()
        query = insert.body["configuration"]["query"]
        assert query["query"].endswith("WHERE `UPDATED_AT` >= @watermark ORDER BY `UPDATED_AT`")
        (param,) = query["queryParameters"]
        assert param["name"] == "watermark" and param["parameterType"]["type"] == "TIMESTAMP"
        assert insert.body["configuration"]["labels"]["zerocopy"] == "sync"


# ------------------------------------------------------------------------------ errors
async def test_a_missing_dataset_or_wrong_location_is_scope_not_found(peer: Peer) -> None:
    config = ConnectionConfig(
        settings=peer.emulator.settings(),
        secrets={},
        scope=Scope(schema="nope", database=peer.emulator.project),
    )
    async with BigQueryAdapter(config) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND
    assert f"{peer.emulator.project}.nope" in caught.value.message
    async with make_adapter(peer, location="EU") as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.SCOPE_NOT_FOUND
    assert "set the source's location to US" in caught.value.message


async def test_a_failed_query_is_a_warehouse_error_with_job_id_and_message(peer: Peer) -> None:
    table, tag = run()
    async with make_adapter(peer) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.materialize(
                f"SELECT no_such_column FROM {adapter.quote_table('users')}",
                table,
                deadline=anyio.current_time() + 30,
                tag=tag,
            )
    assert caught.value.code == errors.WAREHOUSE_ERROR
    assert caught.value.details["query_id"].startswith("zerocopy_refresh_")
    assert caught.value.details["query_id"] in caught.value.message
    assert "no_such_column" in caught.value.message


# ------------------------------------------------------------------------------ service account
def _key(token_uri: str) -> str:
    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "zc-test-project",
            "private_key_id": "k1",
            "private_key": pem.decode(),
            "client_email": "zerocopy@zc-test-project.iam.gserviceaccount.com",
            "token_uri": token_uri,
        }
    )


@pytest.fixture
def token_endpoint() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """An OAuth token endpoint on loopback: grants a token unless the assertion says 'deny'."""
    grants: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            form = dict(p.split("=", 1) for p in self.rfile.read(length).decode().split("&"))
            grants.append(form)
            if self.path == "/deny":
                status, body = (
                    400,
                    {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                )
            else:
                status, body = (
                    200,
                    {"access_token": "ya29.test-token", "expires_in": 3600, "token_type": "Bearer"},
                )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", grants
    finally:
        server.shutdown()
        server.server_close()


async def test_service_account_key_signs_in_and_its_token_reaches_bigquery(
    peer: Peer, token_endpoint: tuple[str, list[dict[str, str]]]
) -> None:
    base, grants = token_endpoint
    secrets = {"service_account_json": _key(f"{base}/token")}
    BigQueryAdapter.check_credential(peer.emulator.settings(), secrets)
    config = ConnectionConfig(
        settings=peer.emulator.settings(),
        secrets=secrets,
        scope=Scope(schema=DATASET, database=peer.emulator.project),
    )
    async with BigQueryAdapter(config) as adapter:
        recorder = record(adapter)
        result = await adapter.test()
    assert {t.name for t in result.tables} == peer.warehouse.names
    assert grants and grants[0]["grant_type"].startswith(
        "urn"
    )  # JWT bearer grant, signed by the key
    assert recorder.calls and all(
        c.headers.get("authorization") == "Bearer ya29.test-token" for c in recorder.calls
    )


async def test_a_rejected_key_is_auth_failed_without_leaking_it(
    peer: Peer, token_endpoint: tuple[str, list[dict[str, str]]]
) -> None:
    base, _ = token_endpoint
    key = _key(f"{base}/deny")
    config = ConnectionConfig(
        settings=peer.emulator.settings(),
        secrets={"service_account_json": key},
        scope=Scope(schema=DATASET, database=peer.emulator.project),
    )
    async with BigQueryAdapter(config) as adapter:
        with pytest.raises(ZerocopyError) as caught:
            await adapter.test()
    assert caught.value.code == errors.AUTH_FAILED
    assert "Invalid JWT Signature" in caught.value.message
    private = json.loads(key)["private_key"].splitlines()[2]
    assert private not in json.dumps(caught.value.to_dict())


async def test_an_unreachable_storage_api_falls_back_to_rest_paging(peer: Peer) -> None:
    table, tag = run()
    closed = f"127.0.0.1:{free_port()}"
    async with make_adapter(peer, storage_api_endpoint=closed) as adapter:
        await adapter.materialize(
            ids_sql(adapter), table, deadline=anyio.current_time() + 30, tag=tag
        )
        try:
            recorder = record(adapter)
            started = time.monotonic()
            ids = [
                v
                async for b in adapter.read_column(table, "external_user_id", batch_rows=16)
                for v in b.to_pylist()
            ]
            assert time.monotonic() - started < 10, "no long retry on the dead Storage API"
            assert len(ids) == len(peer.warehouse.table("users").data)
            assert recorder.find("GET", f"/tables/{table}/data"), "read over tabledata.list"
            assert adapter._storage_failed
        finally:
            await adapter.drop_table(table)


# ------------------------------------------------------------------------------ IAM (gate)
async def test_iam_gate_answers_map_to_auth_failed_and_permission_denied_naming_the_role(
    peer: Peer,
) -> None:
    project = peer.emulator.project
    with running_gate(peer.emulator.rest_url) as gate:
        reader = gate.service_account(
            "reader", project, denied=frozenset({"bigquery.tables.create"})
        )

        def config(**secrets: str) -> ConnectionConfig:
            return ConnectionConfig(
                settings=peer.emulator.settings(api_endpoint=gate.url),
                secrets=secrets,
                scope=Scope(schema=DATASET, database=project),
            )

        table, tag = run()
        async with BigQueryAdapter(config(service_account_json=reader.key_json)) as adapter:
            assert {t.name for t in (await adapter.test()).tables} == peer.warehouse.names
            with pytest.raises(ZerocopyError) as caught:
                await adapter.materialize(
                    ids_sql(adapter), table, deadline=anyio.current_time() + 30, tag=tag
                )
        assert caught.value.code == errors.PERMISSION_DENIED
        assert (
            f"roles/bigquery.dataEditor on the dataset {project}.{DATASET}" in caught.value.message
        )
        # No key at all on a loopback endpoint: anonymous calls, which BigQuery answers 401.
        async with BigQueryAdapter(config()) as adapter:
            with pytest.raises(ZerocopyError) as caught:
                await adapter.test()
        assert caught.value.code == errors.AUTH_FAILED


# ------------------------------------------------------------------------------ API flow
async def test_api_flow_end_to_end_with_a_service_account_key(peer: Peer, tmp_path: Path) -> None:
    """credential (key) → source → test → tables → validate → segment → refresh → members."""
    from litestar.testing import AsyncTestClient

    from api.app import create_app
    from zerocopy.services import workspaces
    from zerocopy.settings import load_settings

    project = peer.emulator.project
    users = peer.warehouse.table("users").data.to_pylist()
    expected = sorted(
        u["external_user_id"] for u in users if u["country"] in ("US", "GB") and u["plan"] != "free"
    )
    sql = "SELECT external_user_id FROM users WHERE country IN ('US', 'GB') AND plan <> 'free'"
    settings = load_settings(
        {
            "ZEROCOPY_DATA_DIR": str(tmp_path / "data"),
            "ZEROCOPY_DATABASE_URL": f"sqlite:///{tmp_path / 'state.sqlite3'}",
            "ZEROCOPY_LOG_LEVEL": "warning",
        }
    )
    app = create_app(settings)
    with running_gate(peer.emulator.rest_url) as gate:
        account = gate.service_account("zerocopy-api", project)
        async with AsyncTestClient(app) as client:
            async with app.state.runtime.db.session() as session:
                _, key = await workspaces.create_workspace(session, name="Acme")
            auth = {"Authorization": f"Bearer {key}"}

            async def call(method: str, path: str, body: Any = None, status: int = 200) -> Any:
                resp = await client.request(method, path, json=body, headers=auth)
                assert resp.status_code == status, resp.text
                assert "PRIVATE KEY" not in resp.text
                return resp.json()

            cred = await call(
                "POST",
                "/v1/credentials",
                {
                    "name": "BigQuery",
                    "kind": "bigquery",
                    "settings": peer.emulator.settings(api_endpoint=gate.url),
                    "secrets": {"service_account_json": account.key_json},
                },
                201,
            )
            assert cred["secret_fields"] == ["service_account_json"]
            source = await call(
                "POST",
                "/v1/sources",
                {"name": "Marketing", "credential_id": cred["id"], "scope": f"{project}.{DATASET}"},
                201,
            )
            tested = await call("POST", f"/v1/sources/{source['id']}/test")
            assert tested["source"]["status"] == "active"
            users_table = await call("GET", f"/v1/sources/{source['id']}/tables/users")
            assert users_table["description"] == peer.warehouse.table("users").description
            check = await call(
                "POST", "/v1/segments/validate", {"source_id": source["id"], "sql": sql}
            )
            assert check["valid"] is True and check["target"] == "bigquery"
            segment = await call(
                "POST",
                "/v1/segments",
                {"name": "Paid US/GB", "source_id": source["id"], "sql": sql},
                201,
            )
            run = await call("POST", f"/v1/segments/{segment['id']}/refresh", status=202)
            with anyio.fail_after(60):
                while run["status"] in ("queued", "running"):
                    await anyio.sleep(0.05)
                    run = await call("GET", f"/v1/runs/{run['id']}")
            assert run["status"] == "succeeded", run
            assert run["query_id"].startswith(f"zerocopy_refresh_{run['id']}_")
            members = await call("GET", f"/v1/segments/{segment['id']}/members")
            assert members["total"] == len(expected)
            assert members["next_cursor"] is None and members["items"] == expected
    client_bq = peer.emulator.client()
    leftovers = [t.table_id for t in client_bq.list_tables(f"{project}.{DATASET}")]
    client_bq.close()
    assert not [t for t in leftovers if t.startswith("zc_tmp_")]
