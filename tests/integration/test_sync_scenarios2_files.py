"""File-storage syncs on moto's S3 through the API, into the built-in store (issue 8).

CSV quoting (commas and newlines inside quoted cells), a ``DELETED`` column in CSV, a JSON-lines
file with one invalid line skipped whole and reported as ``file_invalid``, a re-uploaded file
with a new ETag processed again (and an unchanged one not), and keys with spaces and Unicode.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.integration.test_sync_spec_harness import Spec, spec_fixture  # noqa: F401
from tests.peers.moto.fixtures import S3Peer, s3_peer

__all__ = ["s3_peer"]

pytestmark = [pytest.mark.anyio, pytest.mark.peer("moto")]

STATES = [
    pytest.param(("duckdb", "sqlite"), id="sqlite"),
    pytest.param(("duckdb", "postgres"), id="pgstate", marks=pytest.mark.postgres),
]


class Files:
    """One bucket, its credential, and file syncs created through the API."""

    def __init__(self, spec: Spec, peer: S3Peer) -> None:
        self.spec = spec
        self.peer = peer
        self.bucket = f"zc-{uuid.uuid4().hex[:12]}"
        self.s3 = peer.client()
        self.s3.create_bucket(Bucket=self.bucket)
        self._cred: str | None = None

    def put(self, key: str, body: str) -> str:
        out = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        return str(out["ETag"])

    async def credential(self) -> str:
        if self._cred is None:
            resp = await self.spec.post(
                "/v1/credentials",
                json={
                    "name": f"s3-{uuid.uuid4().hex[:6]}",
                    "kind": "s3",
                    "settings": {
                        "endpoint_url": self.peer.endpoint_url,
                        "region": self.peer.region,
                    },
                    "secrets": {
                        "access_key_id": self.peer.access_key_id,
                        "secret_access_key": self.peer.secret_access_key,
                    },
                },
            )
            assert resp.status_code == 201, resp.text
            self._cred = str(resp.json()["id"])
        return self._cred

    async def ready(self, data_type: str, prefix: str, **body: Any) -> str:
        resp = await self.spec.post(
            "/v1/syncs",
            json={
                "name": f"files-{uuid.uuid4().hex[:6]}",
                "data_type": data_type,
                "credential_id": await self.credential(),
                "source_settings": {"bucket": self.bucket, "prefix": prefix},
                **body,
            },
        )
        assert resp.status_code == 201, resp.text
        sync_id = str(resp.json()["id"])
        resp = await self.spec.post(f"/v1/syncs/{sync_id}/test")
        assert resp.status_code == 200, resp.text
        resp = await self.spec.post(f"/v1/syncs/{sync_id}/activate")
        assert resp.status_code == 200, resp.text
        return sync_id


@pytest.fixture
def files(spec: Spec, s3_peer: S3Peer) -> Files:
    return Files(spec, s3_peer)


async def attrs(spec: Spec, external_id: str) -> dict[str, Any] | None:
    prof = await spec.profile(external_id=external_id)
    return None if prof is None else prof["attributes"]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_csv_quoted_commas_and_newlines(spec: Spec, files: Files) -> None:
    payload = json.dumps({"note": "a, b\nand c", "quote": 'say "hi"'})
    quoted = '"' + payload.replace('"', '""') + '"'
    files.put(
        "csv/people.csv",
        "EXTERNAL_ID,PAYLOAD\r\n"
        f'"doe, jane",{quoted}\r\n'
        'plain,"{""plan"": ""gold""}"\n'
        '"multi\nline","{}"\n',
    )
    run = await spec.run(await files.ready("user_attributes", "csv/"))
    assert (run["status"], run["rows_read"], run["rows_delivered"]) == ("success", 3, 3), run
    assert await attrs(spec, "doe, jane") == {"note": "a, b\nand c", "quote": 'say "hi"'}
    assert await attrs(spec, "plain") == {"plan": "gold"}
    assert await attrs(spec, "multi\nline") == {}


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_csv_deleted_column_for_catalog_items(spec: Spec, files: Files) -> None:
    files.put(
        "cat/1.csv",
        'id,payload,deleted\nmug,"{""title"": ""Mug""}",false\n'
        'cap,"{""title"": ""Cap""}",\npen,"{""title"": ""Pen""}",0\n',
    )
    sync_id = await files.ready("catalog_items", "cat/", catalog_name="shop")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    files.put("cat/2.csv", "id,payload,deleted\nmug,,true\ncap,,TRUE\npen,{},maybe\n")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        2,
        1,
    ), run
    assert await spec.codes(run["id"]) == ["invalid_field"]
    resp = await spec.get("/v1/catalogs/shop/items")
    assert [i["id"] for i in resp.json()] == ["pen"]


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_jsonl_with_an_invalid_line_is_skipped_whole(spec: Spec, files: Files) -> None:
    files.put(
        "j/bad.jsonl",
        '{"external_id": "b1", "payload": {"x": 1}}\n'
        "{not json}\n"
        '{"external_id": "b2", "payload": {"x": 2}}\n',
    )
    files.put("j/good.jsonl", '{"external_id": "g1", "payload": {"x": 3}}\n')
    sync_id = await files.ready("user_attributes", "j/")
    run = await spec.run(sync_id)
    assert run["status"] == "partial_success", run
    assert run["rows_delivered"] == 1, run
    errors = await spec.rows(run["id"])
    assert [e["code"] for e in errors] == ["file_invalid"]
    assert "bad.jsonl" in json.dumps(errors[0])
    assert await attrs(spec, "g1") == {"x": 3}
    assert await attrs(spec, "b1") is None and await attrs(spec, "b2") is None
    # Not retried unchanged; fixed and re-uploaded (new ETag): processed then.
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"]) == ("success", 0), run
    files.put("j/bad.jsonl", '{"external_id": "b1", "payload": {"x": 1}}\n')
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert await attrs(spec, "b1") == {"x": 1}


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_reuploaded_file_with_a_new_etag_is_processed_again(spec: Spec, files: Files) -> None:
    first = files.put("r/a.jsonl", '{"external_id": "r1", "payload": {"v": 1, "keep": 1}}\n')
    sync_id = await files.ready("user_attributes", "r/")
    assert (await spec.run(sync_id))["rows_delivered"] == 1
    # The same bytes again: same ETag, nothing to do.
    assert (
        files.put("r/a.jsonl", '{"external_id": "r1", "payload": {"v": 1, "keep": 1}}\n') == first
    )
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"]) == ("success", 0), run
    second = files.put("r/a.jsonl", '{"external_id": "r1", "payload": {"v": 2}}\n')
    assert second != first
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert await attrs(spec, "r1") == {"v": 2, "keep": 1}
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"]) == ("success", 0), run


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_keys_with_spaces_and_unicode(spec: Spec, files: Files) -> None:
    files.put("u/my export 2026.jsonl", '{"external_id": "s1", "payload": {"k": "space"}}\n')
    files.put("u/données-été/日本 ü.csv", 'external_id,payload\ns2,"{""k"": ""unicode""}"\n')
    files.put("u/a+b=c&d.jsonl", '{"external_id": "s3", "payload": {"k": "symbols"}}\n')
    sync_id = await files.ready("user_attributes", "u/")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 3), run
    assert await attrs(spec, "s1") == {"k": "space"}
    assert await attrs(spec, "s2") == {"k": "unicode"}
    assert await attrs(spec, "s3") == {"k": "symbols"}
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"]) == ("success", 0), run


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_spreadsheet_exports_bom_crlf_and_empty_files(spec: Spec, files: Files) -> None:
    # Excel writes a UTF-8 byte order mark and CRLF; a header cell may carry blanks.
    files.put("x/excel.csv", '\ufeffExternal_Id , Payload\r\nx1,"{""a"": 1}"\r\n')
    files.put("x/crlf.jsonl", '\ufeff{"external_id": "x2", "payload": {"a": 2}}\r\n\r\n')
    files.put("x/empty.jsonl", "")
    files.put("x/header-only.csv", "external_id,payload\r\n")
    run = await spec.run(await files.ready("user_attributes", "x/"))
    assert (run["status"], run["rows_read"], run["rows_delivered"]) == ("success", 2, 2), run
    assert await attrs(spec, "x1") == {"a": 1}
    assert await attrs(spec, "x2") == {"a": 2}


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_jsonl_accounts_with_json_booleans_for_deleted(spec: Spec, files: Files) -> None:
    files.put(
        "acc/1.jsonl",
        '{"id": "a1", "name": "Acme", "payload": {"plan": "pro", "extra": 1}}\n'
        '{"id": "a2", "name": "Beta", "payload": {"plan": "free"}, "deleted": false}\n'
        '{"id": "a3", "name": "Gone", "payload": {"plan": "free"}}\n'
        '{"id": "a3", "deleted": true}\n'
        '{"id": "a4", "payload": {"plan": "free"}}\n',
    )
    sync_id = await files.ready("accounts", "acc/", settings={"account_fields": ["plan"]})
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        4,
        1,
    ), run
    assert await spec.codes(run["id"]) == ["missing_field"]
    logs = await spec.rows(run["id"], errors_only=False)
    assert [r["code"] for r in logs if r["code"] == "unknown_field"] == ["unknown_field"]
    accounts = {a["id"]: a for a in (await spec.get("/v1/accounts")).json()}
    assert {k: (v["name"], v["fields"]) for k, v in accounts.items()} == {
        "a1": ("Acme", {"plan": "pro"}),
        "a2": ("Beta", {"plan": "free"}),
    }
    # A later file without a PAYLOAD key on any line: its delete applies; the row that is
    # not a delete is refused on its own.
    files.put("acc/2.jsonl", '{"id": "a1", "deleted": "TRUE"}\n{"id": "a3", "name": "Back"}\n')
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"], run["rows_errored"]) == (
        "partial_success",
        1,
        1,
    ), run
    assert await spec.codes(run["id"]) == ["missing_field"]
    files.put("acc/3.csv", "id,deleted\na2,yes\n")
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_delivered"]) == ("success", 1), run
    assert (await spec.get("/v1/accounts")).json() == []


@pytest.mark.parametrize("spec", STATES, indirect=True)
async def test_row_limit_across_files_resumes_without_duplicates(spec: Spec, files: Files) -> None:
    files.put(
        "l/a.jsonl",
        "".join(f'{{"external_id": "l{i}", "payload": {{"n": {i}}}}}\n' for i in range(3)),
    )
    files.put(
        "l/b.csv", "external_id,payload\n" + "".join(f'm{i},"{{""n"": {i}}}"\n' for i in range(2))
    )
    sync_id = await files.ready("user_attributes", "l/", row_limit=2)
    statuses = []
    delivered = 0
    for _ in range(6):
        run = await spec.run(sync_id)
        statuses.append(run["status"])
        delivered += run["rows_delivered"]
        assert run["rows_delivered"] <= 2, run
        if run["status"] != "limit_exceeded":
            break
    assert statuses[0] == "limit_exceeded" and statuses[-1] == "success", statuses
    assert delivered == 5, statuses
    for i in range(3):
        assert await attrs(spec, f"l{i}") == {"n": i}
    for i in range(2):
        assert await attrs(spec, f"m{i}") == {"n": i}
    run = await spec.run(sync_id)
    assert (run["status"], run["rows_read"]) == ("success", 0), run
