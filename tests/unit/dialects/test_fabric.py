"""Fabric adapter: statements it issues, token flow against a real local HTTP endpoint."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from dialects.fabric import FabricAdapter
from dialects.protocol import ConnectionConfig, QueryHandle, QueryTag, Scope, Watermark
from dialects.registry import adapter_class
from zerocopy import errors
from zerocopy.errors import ZerocopyError

SECRET = "s3cr3t-canary-value"


class _Sts(BaseHTTPRequestHandler):
    """Entra's client-credentials endpoint: one good secret, one expired, the rest invalid."""

    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        secret = form["client_secret"][0]
        if secret == SECRET and form["scope"] == ["https://database.windows.net/.default"]:
            status, body = (
                200,
                {"access_token": "tok-" + self.path.split("/")[1], "expires_in": 3599},
            )
        elif secret == "expired":
            status, body = (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000222: "
                    "The provided client secret keys for app 'x' are expired.",
                },
            )
        else:
            status, body = (
                401,
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                },
            )
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def sts() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sts)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _adapter(secret: str = SECRET, authority: str = "http://127.0.0.1:9") -> FabricAdapter:
    settings = {
        "server": "ws.datawarehouse.fabric.microsoft.com",
        "database": "sales",
        "tenant_id": "tenant-1",
        "client_id": "app-1",
        "authority_host": authority,
    }
    return FabricAdapter(
        ConnectionConfig(
            settings=settings, secrets={"client_secret": secret}, scope=Scope("marketing")
        )
    )


def test_registered() -> None:
    assert adapter_class("fabric") is FabricAdapter


def test_connection_string_carries_no_secret() -> None:
    text = _adapter().connection_string()
    assert text.startswith("Server=tcp:ws.datawarehouse.fabric.microsoft.com,1433;")
    assert "Database={sales}" in text and "Encrypt=yes" in text
    assert SECRET not in text and "PWD" not in text


def test_credential_checks() -> None:
    base = {"server": "h", "database": "d", "tenant_id": "t", "client_id": "c"}
    FabricAdapter.check_credential(base, {"client_secret": "x"})
    with pytest.raises(ZerocopyError) as missing:
        FabricAdapter.check_credential(base, {})
    assert (
        missing.value.code == errors.INVALID_CREDENTIAL and "client_secret" in missing.value.message
    )
    with pytest.raises(ZerocopyError) as plain:
        FabricAdapter.check_credential(
            {**base, "authority_host": "http://evil.example"}, {"client_secret": "x"}
        )
    assert plain.value.code == errors.INVALID_CREDENTIAL


def test_token_fetched_for_the_tenant(sts: str) -> None:
    adapter = _adapter(authority=sts)
    assert adapter._access_token() == "tok-tenant-1"


def test_expired_secret_is_auth_failed_and_says_so(sts: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        _adapter("expired", sts)._access_token()
    assert info.value.code == errors.AUTH_FAILED
    assert info.value.message.startswith("service principal secret expired")
    assert "expired" not in json.dumps(info.value.details).replace("secret_expired", "")


def test_bad_secret_is_auth_failed_without_the_secret(sts: str) -> None:
    with pytest.raises(ZerocopyError) as info:
        _adapter("wrong-" + SECRET, sts)._access_token()
    assert info.value.code == errors.AUTH_FAILED and "client secret" in info.value.message
    assert SECRET not in str(info.value) and SECRET not in json.dumps(info.value.details)


def test_unreachable_token_endpoint() -> None:
    with pytest.raises(ZerocopyError) as info:
        _adapter()._access_token()  # port 9 (discard) on loopback: refused
    assert info.value.code == errors.UNREACHABLE and "authority_host" in info.value.message


def test_statements() -> None:
    adapter = _adapter()
    tag = QueryTag(run_id="r1", segment_id="s1")
    assert adapter.ctas_sql("zc_tmp_r1", "SELECT 1 AS x", tag) == (
        "/* zerocopy:refresh run=r1 segment=s1 */ CREATE TABLE [marketing].[zc_tmp_r1] AS SELECT 1 AS x"
    )
    assert adapter.drop_sql("zc_tmp_r1") == "DROP TABLE IF EXISTS [marketing].[zc_tmp_r1]"
    assert adapter.kill_sql(57) == "KILL 57"
    sql = adapter.incremental_sql("events", Watermark(dt.datetime(2024, 1, 1), "updated_at"), None)
    assert sql == "SELECT * FROM [marketing].[events] WHERE [updated_at] >= ? ORDER BY [updated_at]"
    assert all("?" in q for q in adapter.catalog_sql().values())


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (
            "[Microsoft][ODBC Driver 18 for SQL Server][SQL Server]Login failed for user '<token-identified principal>'. (18456)",
            errors.AUTH_FAILED,
        ),
        (
            "[SQL Server]The SELECT permission was denied on the object 'users', database 'sales', schema 'marketing'. (229)",
            errors.PERMISSION_DENIED,
        ),
        (
            '[SQL Server]The specified schema name "nope" either does not exist or you do not have permission to use it. (2760)',
            errors.SCOPE_NOT_FOUND,
        ),
        (
            "[Microsoft][ODBC Driver 18 for SQL Server]Query timeout expired (HYT00)",
            errors.TIMED_OUT,
        ),
        (
            "[Microsoft][ODBC Driver 18 for SQL Server]TCP Provider: Error code 0x2749 (08001)",
            errors.UNREACHABLE,
        ),
    ],
)
def test_error_mapping(message: str, code: str) -> None:
    assert _adapter().map_error(RuntimeError(message)).code == code


def test_error_after_kill_is_cancelled() -> None:
    from dialects.fabric import _Running

    running = _Running(spid=61)
    running.killed.set()
    err = _adapter().map_error(
        RuntimeError("Communication link failure (08S01)"), QueryHandle(native=running)
    )
    assert err.code == errors.CANCELLED and "KILL 61" in err.message
