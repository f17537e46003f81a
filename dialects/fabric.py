"""Microsoft Fabric Warehouse through ``mssql-python`` (TDS 7.4, Microsoft's ODBC provider).

Settings: ``server`` (the warehouse's SQL connection string host, ``host`` or ``host,port``),
``database`` (the warehouse), ``tenant_id`` and ``client_id`` (the service principal), optional
``authority_host`` (Entra token endpoint base, default ``https://login.microsoftonline.com``;
the tests point it at a local token endpoint). Secret: ``client_secret``. Scope: the schema
(``warehouse.schema`` also accepted). Fabric accepts Entra logins only, so the adapter fetches
an access token with the client-credentials grant and hands it to the driver
(``SQL_COPT_SS_ACCESS_TOKEN``); an expired secret is recognised from the token endpoint's
``AADSTS7000222`` and reported as ``auth_failed`` "service principal secret expired".

Fabric has no server-side statement timeout: the deadline is the driver's query timeout (it
sends a TDS ATTENTION) plus the base watchdog. The driver has no ``cursor.cancel()``, so a
user cancel runs ``KILL <session id>`` on a second connection; the session id (``@@SPID``) is
recorded in the handle before the CTAS is sent (two-phase cancel). Ids stream back as Arrow
batches of bounded size (``cursor.arrow_batch``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import re
import struct
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import mssql_python
import pyarrow as pa
from sqlglot import exp

from dialects.base import BaseAdapter, ErrorRule
from dialects.protocol import (
    ColumnInfo,
    ConnectionConfig,
    QueryHandle,
    QueryTag,
    TableInfo,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

SQL_COPT_SS_ACCESS_TOKEN = 1256
"""ODBC connection attribute carrying an Entra access token (set before connecting)."""

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
TOKEN_SCOPE = "https://database.windows.net/.default"
"""Fabric's SQL endpoint accepts tokens for the Azure SQL resource."""


# The STS error codes that mean the secret itself is the problem.
_EXPIRED = re.compile(r"AADSTS7000222", re.IGNORECASE)
_BAD_SECRET = re.compile(r"AADSTS7000215|AADSTS700016|AADSTS90002|invalid_client", re.IGNORECASE)


@dataclass(slots=True)
class _Running:
    """What :meth:`FabricAdapter._cancel` needs, recorded before the CTAS is sent."""

    spid: int | None = None
    killed: threading.Event = field(default_factory=threading.Event)


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class FabricAdapter(BaseAdapter):
    """A Microsoft Fabric Warehouse (or its SQL analytics endpoint) via a service principal."""

    KIND = "fabric"
    # The default warehouse collation Latin1_General_100_BIN2_UTF8 sorts by code point (=
    # UTF-8 byte order); a case-insensitive warehouse fails the engine's check: sorted in memory.
    ID_ORDER = "{col}"
    SQLGLOT_DIALECT = "fabric"
    SUPPORTS_SERVER_TIMEOUT = False
    SUPPORTS_SERVER_CANCEL = True
    REQUIRED_SETTINGS = frozenset({"server", "database", "tenant_id", "client_id"})
    SECRET_FIELDS = frozenset({"client_secret"})
    SECRET_EXPIRES = True  # Entra client secrets have a fixed end date (at most 2 years)

    LOGIN_TIMEOUT_S: ClassVar[int] = 15
    """Give up connecting (unreachable) after this long; setting ``login_timeout`` overrides."""
    TOKEN_TIMEOUT_S: ClassVar[float] = 15.0
    ID_BATCH_CAP: ClassVar[int] = 100_000

    ERROR_RULES: ClassVar[tuple[ErrorRule, ...]] = (
        (
            r"\b18456\b|Login failed|\b18452\b|token.*(?:expired|invalid)|\b(?:33155|33156)\b",
            errors.AUTH_FAILED,
            "Fabric rejected the service principal's login; check client_id and tenant_id, "
            "that the secret is current, and that the principal is allowed to use Fabric "
            "APIs in the tenant settings: {msg}",
        ),
        (
            r"permission (?:was )?denied|"
            r"does not have permission",
            errors.PERMISSION_DENIED,
            "the service principal lacks a permission; give it at least the Viewer role (read) "
            "and Contributor (CTAS into the scope) on the workspace, or GRANT SELECT, CREATE "
            "TABLE and ALTER ON SCHEMA to it: {msg}",
        ),
        (
            r"\b2760\b|specified schema name .* either does not exist|"
            r"Cannot open database|\b4060\b",
            errors.SCOPE_NOT_FOUND,
            "the warehouse or schema does not exist or the service principal cannot see it; "
            "check the credential's database and the source's scope: {msg}",
        ),
        (
            r"HYT00|Query timeout expired",
            errors.TIMED_OUT,
            "the statement ran past the source's max runtime and the driver stopped it; "
            "simplify the query or raise the max runtime: {msg}",
        ),
        (
            r"TCP Provider|Login timeout expired|server was not found|network-related|"
            r"Connection refused|No such host|Name or service not known|\b08001\b|"
            r"SSL Provider|certificate verify failed",
            errors.UNREACHABLE,
            "cannot reach the Fabric SQL endpoint; check the server (the warehouse's SQL "
            "connection string) and that the network allows TCP 1433 to it: {msg}",
        ),
    )

    def __init__(self, config: ConnectionConfig) -> None:
        super().__init__(config)
        self._token: _Token | None = None
        self._token_lock = threading.Lock()

    # ------------------------------------------------------------------ credentials
    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """Also require the client secret and an https authority (http only on loopback)."""
        super().check_credential(settings, secrets)
        if not secrets.get("client_secret"):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "fabric credential needs secret 'client_secret' (the service principal's "
                "client secret from Entra ID → App registrations → Certificates & secrets)",
                details={"field": "client_secret"},
            )
        _authority(settings)

    @classmethod
    def login_identity(cls, settings: dict[str, Any]) -> str | None:
        tenant, client = settings.get("tenant_id"), settings.get("client_id")
        return f"fabric:{tenant}:{client}" if tenant and client else None

    def connection_string(self) -> str:
        """ODBC connection string (no secret: the token goes in ``attrs_before``)."""
        settings = self.config.settings
        host, _, port = str(settings["server"]).partition(",")
        port = port or str(settings.get("port") or 1433)
        return (
            f"Server=tcp:{host},{port};Database={{{settings['database']}}};"
            "Encrypt=yes;TrustServerCertificate=no"
        )

    # ------------------------------------------------------------------ token
    def token_request(self) -> tuple[str, bytes]:
        """URL and form body of the client-credentials grant (the body holds the secret)."""
        settings = self.config.settings
        tenant = urllib.parse.quote(str(settings["tenant_id"]), safe="")
        url = f"{_authority(settings)}/{tenant}/oauth2/v2.0/token"
        body = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": settings["client_id"],
                "client_secret": self.config.secrets.get("client_secret", ""),
                "scope": TOKEN_SCOPE,
            }
        ).encode()
        return url, body

    def _access_token(self) -> str:
        """A cached token, renewed 5 minutes before it expires."""
        with self._token_lock:
            if self._token is not None and self._token.expires_at - 300 > time.time():
                return self._token.value
            url, body = self.token_request()
            request = urllib.request.Request(url, data=body, method="POST")
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
            try:
                with urllib.request.urlopen(request, timeout=self.TOKEN_TIMEOUT_S) as resp:
                    payload = json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError as exc:
                raise self._token_error(exc) from None
            except (urllib.error.URLError, OSError) as exc:
                raise ZerocopyError(
                    errors.UNREACHABLE,
                    f"cannot reach the Entra token endpoint {_authority(self.config.settings)}; "
                    f"check authority_host and outbound HTTPS: {getattr(exc, 'reason', exc)}",
                    details={"warehouse": self.KIND},
                ) from None
            value = payload.get("access_token")
            if not value:
                raise ZerocopyError(
                    errors.AUTH_FAILED,
                    "the Entra token endpoint answered without an access token; check tenant_id",
                    details={"warehouse": self.KIND},
                )
            expires_in = float(payload.get("expires_in") or 3600)
            self._token = _Token(value=str(value), expires_at=time.time() + expires_in)
            return self._token.value

    def _token_error(self, exc: urllib.error.HTTPError) -> ZerocopyError:
        """Map the token endpoint's refusal; its text never contains the secret."""
        try:
            payload = json.loads(exc.read() or b"{}")
        except ValueError:
            payload = {}
        desc = str(payload.get("error_description") or payload.get("error") or exc.reason)
        desc = desc.splitlines()[0][:300]
        details = {"warehouse": self.KIND, "http_status": exc.code}
        if _EXPIRED.search(desc):
            return ZerocopyError(
                errors.AUTH_FAILED,
                "service principal secret expired: create a new client secret for the app "
                "registration in Entra ID and update the credential (and its expiry date). "
                f"Entra said: {desc}",
                details={**details, "reason": "secret_expired"},
            )
        if _BAD_SECRET.search(desc) or exc.code in (400, 401):
            return ZerocopyError(
                errors.AUTH_FAILED,
                "Entra ID rejected the service principal: check tenant_id, client_id and the "
                f"client secret, then update the credential. Entra said: {desc}",
                details=details,
            )
        return ZerocopyError(
            errors.UNREACHABLE,
            f"the Entra token endpoint failed (HTTP {exc.code}); retry later: {desc}",
            details=details,
        )

    @contextlib.contextmanager
    def _connect(self, timeout_s: float = 0) -> Iterator[Any]:
        raw = self._access_token().encode("utf-16-le")
        attrs: dict[int, int | str | bytes] = {
            SQL_COPT_SS_ACCESS_TOKEN: struct.pack("<I", len(raw)) + raw
        }
        conn = mssql_python.connect(
            self.connection_string(),
            attrs_before=attrs,
            autocommit=True,
            timeout=max(
                1, int(float(self.config.settings.get("login_timeout") or self.LOGIN_TIMEOUT_S))
            ),
        )
        try:
            if timeout_s:
                conn.timeout = _whole_seconds(timeout_s)
            yield conn
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    # ------------------------------------------------------------------ SQL rendering
    def _ident(self, name: str) -> str:
        return exp.to_identifier(name, quoted=True).sql(dialect=self.SQLGLOT_DIALECT)

    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """CTAS with the run in a leading comment (Fabric's query insights show the text)."""
        comment = tag.as_text().replace("*/", "")
        return f"/* {comment} */ CREATE TABLE {self.quote_table(table)} AS {select_sql}"

    def kill_sql(self, spid: int) -> str:
        return f"KILL {int(spid)}"

    def catalog_sql(self) -> dict[str, str]:
        """The metadata queries, all parameterised on the schema name."""
        return {
            "schema": "SELECT 1 FROM INFORMATION_SCHEMA.SCHEMATA WHERE SCHEMA_NAME = ?",
            "tables": "SELECT TABLE_NAME, TABLE_TYPE FROM INFORMATION_SCHEMA.TABLES "
            "WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME",
            "columns": "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, IS_NULLABLE "
            "FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA = ? "
            "ORDER BY TABLE_NAME, ORDINAL_POSITION",
            # Fabric keeps MS_Description where the warehouse has it; absent → no descriptions.
            "descriptions": "SELECT o.name, c.name, CAST(p.value AS NVARCHAR(4000)) "
            "FROM sys.extended_properties p JOIN sys.objects o ON o.object_id = p.major_id "
            "JOIN sys.schemas s ON s.schema_id = o.schema_id "
            "LEFT JOIN sys.columns c ON c.object_id = p.major_id AND c.column_id = p.minor_id "
            "WHERE p.name = 'MS_Description' AND s.name = ?",
        }

    def incremental_sql(self, table: str, watermark: Watermark, columns: list[str] | None) -> str:
        select = ", ".join(self._ident(c) for c in columns) if columns else "*"
        col = self._ident(watermark.column)
        sql = f"SELECT {select} FROM {self.quote_table(table)}"
        if watermark.nulls_only:
            sql += f" WHERE {col} IS NULL"
        elif watermark.value is not None:
            # Inclusive: ties with the last delivered value come back; the caller drops the
            # rows it already delivered (DESIGN.md, sync).
            sql += f" WHERE {col} >= ?"
        return sql + f" ORDER BY {col}"

    # ------------------------------------------------------------------ blocking hooks
    def _server_version(self) -> str | None:
        with self._connect() as conn:
            row = conn.cursor().execute("SELECT @@VERSION").fetchone()
            return str(row[0]).splitlines()[0] if row else None

    def _list_tables(self) -> list[TableInfo]:
        schema = self.config.scope.schema
        queries = self.catalog_sql()
        with self._connect(self.config.max_runtime_s) as conn:
            cur = conn.cursor()
            if cur.execute(queries["schema"], schema).fetchone() is None:
                raise ZerocopyError(
                    errors.SCOPE_NOT_FOUND,
                    f"schema {schema!r} does not exist in warehouse "
                    f"{self.config.settings['database']!r} or the service principal cannot see "
                    "it; check the source's scope and the principal's workspace role",
                    details={"warehouse": self.KIND, "scope": str(self.config.scope)},
                )
            tables = cur.execute(queries["tables"], schema).fetchall()
            columns = cur.execute(queries["columns"], schema).fetchall()
            descriptions: dict[tuple[str, str | None], str] = {}
            with contextlib.suppress(mssql_python.Error):
                for obj, col, text in cur.execute(queries["descriptions"], schema).fetchall():
                    descriptions[(obj, col)] = text
        by_table: dict[str, list[Any]] = {}
        for row in columns:
            by_table.setdefault(row[0], []).append(row)
        return [
            TableInfo(
                name=name,
                kind="view" if "VIEW" in str(kind).upper() else "table",
                description=descriptions.get((name, None)),
                schema=schema,
                columns=tuple(
                    ColumnInfo(
                        name=c[1],
                        data_type=str(c[2]),
                        description=descriptions.get((name, c[1])),
                        nullable=str(c[3]).upper() != "NO",
                    )
                    for c in by_table.get(name, [])
                ),
            )
            for name, kind in tables
        ]

    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        running = _Running()
        handle.native = running
        with self._connect(timeout_s) as conn:
            cur = conn.cursor()
            row = cur.execute("SELECT @@SPID").fetchone()
            running.spid = int(row[0])
            handle.session_id = handle.query_id = str(running.spid)
            if running.killed.is_set():
                raise ZerocopyError(errors.CANCELLED, "cancelled before it was submitted")
            try:
                cur.execute(sql)
            except mssql_python.Error as exc:
                if running.killed.is_set():
                    raise ZerocopyError(
                        errors.CANCELLED,
                        f"the statement was stopped with KILL {running.spid}",
                        details={"warehouse": self.KIND, "session_id": running.spid},
                    ) from exc
                raise
            return cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None

    def _cancel(self, handle: QueryHandle) -> None:
        running = handle.native
        if not isinstance(running, _Running):
            return
        running.killed.set()
        if running.spid is None:
            return  # not sent yet: the statement's thread sees the flag
        with self._connect() as conn:
            conn.cursor().execute(self.kill_sql(running.spid))

    def _stream(self, sql: str, batch_rows: int, *params: Any) -> Iterator[pa.RecordBatch]:
        batch_rows = max(1, min(batch_rows, self.ID_BATCH_CAP))
        with self._connect(self.config.max_runtime_s) as conn:
            cur = conn.cursor()
            cur.execute(sql, *params)
            while True:
                batch = cur.arrow_batch(batch_rows)
                if batch.num_rows == 0:
                    return
                yield batch

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        col = self._ident(column)
        sql = f"SELECT {col} FROM {self.quote_table(table)}{self.id_order_by(col, ordered)}"
        for batch in self._stream(sql, batch_rows):
            yield batch.column(0)

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        sql = self.incremental_sql(table, watermark, columns)
        params = (
            ()
            if watermark.value is None or watermark.nulls_only
            else (_naive_utc(watermark.value),)
        )
        yield from self._stream(sql, batch_rows, *params)

    def _drop_table(self, table: str) -> None:
        with self._connect(self.config.max_runtime_s) as conn:
            conn.cursor().execute(self.drop_sql(table))  # IF EXISTS: safe to repeat

    def _list_temp_tables(self, prefix: str) -> list[str]:
        sql = (
            "SELECT TABLE_NAME FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_SCHEMA = ? "
            "AND LEFT(TABLE_NAME, ?) = ?"  # no LIKE: '_' would be a wildcard
        )
        with self._connect(self.config.max_runtime_s) as conn:
            rows = conn.cursor().execute(sql, self.config.scope.schema, len(prefix), prefix)
            return [r[0] for r in rows.fetchall()]

    # ------------------------------------------------------------------ errors
    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """A KILLed session surfaces as a broken connection: that is our cancel, not a failure."""
        if isinstance(exc, ZerocopyError):
            return exc
        running = handle.native if handle is not None else None
        if isinstance(running, _Running) and running.killed.is_set():
            return ZerocopyError(
                errors.CANCELLED,
                f"the statement was stopped with KILL {running.spid}",
                details={"warehouse": self.KIND, "session_id": running.spid},
            )
        return super().map_error(exc, handle)


def _authority(settings: Any) -> str:
    """The token endpoint base; plain http only on loopback (the local test endpoint)."""
    value = str(settings.get("authority_host") or DEFAULT_AUTHORITY).rstrip("/")
    parsed = urllib.parse.urlparse(value)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme not in ("https", "http") or (parsed.scheme == "http" and not loopback):
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            "authority_host must be an https URL (plain http only on loopback)",
            details={"field": "authority_host"},
        )
    return value


def _whole_seconds(seconds: float) -> int:
    """The driver's query timeout takes whole seconds; 0 means none, so at least 1."""
    return max(1, math.ceil(seconds))


def _naive_utc(value: dt.datetime) -> dt.datetime:
    """DATETIME2 has no zone: send aware values as naive UTC."""
    if value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value
