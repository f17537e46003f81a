"""A test peer, not product code: a tiny Databricks SQL warehouse speaking TCLIService over HTTP.

The official ``databricks-sql-connector`` talks Thrift ``TCLIService`` (binary protocol, one
HTTP POST per call) to a SQL warehouse. This server implements the calls the driver makes with
the Thrift definitions the connector itself bundles (``databricks.sql.thrift_api``) and runs
the SQL on an in-memory DuckDB after transpiling it with sqlglot (databricks -> duckdb).

What it implements (and nothing more):

* ``Authorization: Bearer <token>``: each configured token is a principal; others get HTTP 403
  ``Invalid access token`` exactly like a workspace does.
* OpenSession / CloseSession (initial catalog + schema, session conf such as
  ``STATEMENT_TIMEOUT``), ExecuteStatement (async, or sync with direct results),
  GetOperationStatus (short long-poll), GetResultSetMetadata, FetchResults (Arrow IPC batches of
  at most ``maxRows`` rows with a correct ``hasMoreRows``), CancelOperation (really interrupts the
  DuckDB query), CloseOperation, GetSchemas, GetTables, GetColumns (with table/column comments).
* Unity-Catalog-like privileges: ``GRANT``/``REVOKE`` (run by the admin principal) on catalogs,
  schemas and tables; missing ones fail with Databricks' ``[INSUFFICIENT_PERMISSIONS]`` text.
* ``STATEMENT_TIMEOUT`` (seconds, session conf or ``SET``) interrupts the query and fails it with
  ``[QUERY_EXECUTION_TIMEOUT_EXCEEDED]``.
* ``CREATE TABLE ... COMMENT '...' AS SELECT`` keeps the comment.
* A starting warehouse: for N seconds every Thrift call gets HTTP 503 with the
  ``x-thriftserver-error-message: TEMPORARILY_UNAVAILABLE`` header a waking warehouse sends.
* Test hooks outside Thrift: ``GET /_peer/status`` (running and finished statements, how they
  ended), ``POST /_peer/starting`` (``{"seconds": N}``), ``POST /_peer/sql`` (admin SQL in DuckDB's
  dialect, for loading fixtures).

Not implemented: TLS, OAuth, cloud fetch (URL_BASED_SET), LZ4, COLUMN_BASED_SET, parameters,
transactions, GetCatalogs/GetFunctions/GetTypeInfo. Run: ``python server.py --port P --token T=alice``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp
from thrift.protocol import TBinaryProtocol
from thrift.transport import TTransport

from databricks.sql.thrift_api.TCLIService import TCLIService
from databricks.sql.thrift_api.TCLIService import ttypes as t

log = logging.getLogger("databricks-peer")

PROTOCOL_VERSION = t.TProtocolVersion.SPARK_CLI_SERVICE_PROTOCOL_V7  # >= 0xA502
OK = t.TStatus(statusCode=t.TStatusCode.SUCCESS_STATUS)
READER_ROWS = 4096
ADMIN = "admin"
PRIVILEGES = ("USE CATALOG", "USE SCHEMA", "SELECT", "CREATE TABLE", "MODIFY", "ALL PRIVILEGES")


class PeerError(Exception):
    """A Databricks-shaped error: ``[ERROR_CLASS] message SQLSTATE: xxxxx``."""

    def __init__(self, error_class: str, message: str, sqlstate: str) -> None:
        super().__init__(f"[{error_class}] {message} SQLSTATE: {sqlstate}")
        self.sqlstate = sqlstate


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ----------------------------------------------------------------------------- privileges
@dataclass
class Grants:
    """Unity Catalog's model in miniature: privileges inherit from catalog to schema to table."""

    rows: set[tuple[str, str, str]] = field(default_factory=set)
    """(principal, privilege, securable) with securable ``c``, ``c.s`` or ``c.s.t`` (lower case)."""
    owners: dict[str, str] = field(default_factory=dict)

    def has(self, principal: str, privilege: str, securable: str) -> bool:
        if principal == ADMIN or self.owners.get(securable) == principal:
            return True
        parts = securable.split(".")
        scopes = [".".join(parts[:i]) for i in range(1, len(parts) + 1)]
        return any(
            (principal, p, s) in self.rows for s in scopes for p in (privilege, "ALL PRIVILEGES")
        )

    def require(self, principal: str, privilege: str, kind: str, securable: str) -> None:
        if not self.has(principal, privilege, securable):
            raise PeerError(
                "INSUFFICIENT_PERMISSIONS",
                f"Insufficient privileges: User does not have {privilege} on {kind} '{securable}'.",
                "42501",
            )

    def sees(self, principal: str, schema: str) -> bool:
        """A schema is listed to whoever holds any privilege on it or inside it (or above it)."""
        schema = schema.lower()
        catalog = schema.split(".")[0]
        return self.has(principal, "USE SCHEMA", schema) or any(
            p == principal and (s in (catalog, schema) or s.startswith(schema + "."))
            for p, _, s in self.rows
        )

    def can_read_table(self, principal: str, catalog: str, schema: str, table: str) -> bool:
        name = f"{catalog}.{schema}.{table}".lower()
        return (
            self.has(principal, "USE CATALOG", catalog.lower())
            and self.has(principal, "USE SCHEMA", f"{catalog}.{schema}".lower())
            and self.has(principal, "SELECT", name)
        )


# ----------------------------------------------------------------------------- state
@dataclass
class Session:
    principal: str
    catalog: str
    schema: str
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class Operation:
    guid: bytes
    session: Session
    sql: str
    state: int = t.TOperationState.PENDING_STATE
    error: str | None = None
    sqlstate: str | None = None
    reader: Iterator[pa.RecordBatch] | None = None
    schema: pa.Schema | None = None
    pending: pa.RecordBatch | None = None
    exhausted: bool = False
    offset: int = 0
    cursor: Any = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    outcome: str = "running"
    """running | finished | error | cancelled | timed_out: what the status endpoint reports."""
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)


class Warehouse:
    """DuckDB plus sessions, operations, grants and the simulated start-up."""

    def __init__(self, tokens: dict[str, str], catalogs: list[str]) -> None:
        self.tokens = tokens
        self.db = duckdb.connect(":memory:")
        self.db.execute("SET TimeZone = 'UTC'")
        for catalog in catalogs:
            self.db.execute(f"ATTACH ':memory:' AS {_q(catalog)}")
            self.db.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(catalog)}.{_q('default')}")
        self.default_catalog = catalogs[0]
        self.grants = Grants()
        self.sessions: dict[bytes, Session] = {}
        self.operations: dict[bytes, Operation] = {}
        self.history: list[dict[str, Any]] = []
        self.starting_until = 0.0
        self.lock = threading.Lock()

    def warm_up(self) -> None:
        """Load what the first statements would load lazily (sqlglot dialects, pyarrow type
        inference): that first-time cost took 1 s under load and would delay a cancel test."""
        session = Session(ADMIN, self.default_catalog, "default")
        for sql in ("SET ZC_WARM_UP = 1", "SELECT 1 AS x, 'a' AS y, TIMESTAMP '2024-01-01' AS z"):
            op = Operation(uuid.uuid4().bytes, session, sql)
            self.run(op)
            schema = wire_schema(op.schema) if op.schema is not None else None
            for batch in op.reader or ():
                if schema is not None:
                    to_wire(batch, schema).serialize()
        self.history.clear()

    # -- catalog helpers ------------------------------------------------------------
    def catalogs(self) -> set[str]:
        return {
            r[0]
            for r in self.db.cursor()
            .execute("SELECT database_name FROM duckdb_databases() WHERE NOT internal")
            .fetchall()
        }

    def schema_exists(self, catalog: str, schema: str) -> bool:
        rows = (
            self.db.cursor()
            .execute(
                "SELECT 1 FROM duckdb_schemas() WHERE database_name = ? AND schema_name = ?",
                [catalog, schema],
            )
            .fetchall()
        )
        return bool(rows)

    def check_scope(self, catalog: str, schema: str | None) -> None:
        if catalog not in self.catalogs():
            raise PeerError(
                "NO_SUCH_CATALOG_EXCEPTION", f"Catalog '{catalog}' was not found.", "42704"
            )
        if schema is not None and not self.schema_exists(catalog, schema):
            raise PeerError(
                "SCHEMA_NOT_FOUND", f"The schema `{catalog}`.`{schema}` cannot be found.", "42704"
            )

    # -- statements -----------------------------------------------------------------
    def run(self, op: Operation) -> None:
        """Execute ``op`` on its own DuckDB cursor so CancelOperation can interrupt exactly it."""
        session = op.session
        timer: threading.Timer | None = None
        timeout = float(session.conf.get("STATEMENT_TIMEOUT", "0") or 0)
        timed_out = threading.Event()
        try:
            cur = self.db.cursor()
            op.cursor = cur
            cur.execute(f"USE {_q(session.catalog)}.{_q(session.schema)}")
            if op.cancelled.is_set():
                raise RuntimeError("cancelled before it started")
            if timeout > 0:

                def expire() -> None:
                    timed_out.set()
                    cur.interrupt()

                timer = threading.Timer(timeout, expire)
                timer.start()
            with self.lock:
                if not op.cancelled.is_set():
                    op.state = t.TOperationState.RUNNING_STATE
            table = self.execute(cur, session, op.sql)
            if op.cancelled.is_set():
                raise RuntimeError("cancelled")
            op.reader = (
                iter(table.to_batches(READER_ROWS)) if isinstance(table, pa.Table) else iter(table)
            )
            op.schema = table.schema
            op.state = t.TOperationState.FINISHED_STATE
            op.outcome = "finished"
        except Exception as exc:
            if op.cancelled.is_set():
                op.state = t.TOperationState.CANCELED_STATE
                op.outcome = "cancelled"
            elif timed_out.is_set():
                op.state, op.outcome, op.sqlstate = (
                    t.TOperationState.ERROR_STATE,
                    "timed_out",
                    "57KD0",
                )
                op.error = (
                    "[QUERY_EXECUTION_TIMEOUT_EXCEEDED] Query execution was cancelled due to "
                    f"exceeding the timeout (STATEMENT_TIMEOUT = {timeout:g}s). "
                    "SQLSTATE: 57KD0"
                )
            else:
                op.state, op.outcome = t.TOperationState.ERROR_STATE, "error"
                op.sqlstate = getattr(exc, "sqlstate", "42000")
                op.error = str(exc) if isinstance(exc, PeerError) else _duck_error(exc)
        finally:
            if timer is not None:
                timer.cancel()
            op.ended = time.time()
            with self.lock:
                self.history.append(_describe(op))
            op.done.set()
            log.info(
                "statement %s ended %s in %.3f s", op.guid.hex(), op.outcome, op.ended - op.started
            )

    def execute(self, cur: Any, session: Session, sql: str) -> pa.Table | pa.RecordBatchReader:
        text = sql.strip().rstrip(";").strip()
        if m := re.fullmatch(r"SET\s+(\w+)\s*=\s*(.+)", text, re.I | re.S):
            session.conf[m.group(1).upper()] = m.group(2).strip().strip("'\"")
            return pa.table(
                {"key": [m.group(1).upper()], "value": [session.conf[m.group(1).upper()]]}
            )
        if m := re.fullmatch(r"RESET\s+(\w+)", text, re.I):
            session.conf.pop(m.group(1).upper(), None)
            return pa.table({})
        if m := re.fullmatch(
            r"(GRANT|REVOKE)\s+(.+?)\s+ON\s+(CATALOG|SCHEMA|TABLE|VIEW)\s+(\S+)\s+(?:TO|FROM)\s+`?([^`]+)`?",
            text,
            re.I | re.S,
        ):
            return self.grant(session, *m.groups())
        if m := re.fullmatch(r"USE\s+(CATALOG|SCHEMA)?\s*(\S+)", text, re.I):
            return self.use(session, m.group(1), m.group(2))
        tree = sqlglot.parse_one(text, read="databricks")
        comment = self.authorize(session, tree)
        duck = tree.sql(dialect="duckdb")
        if isinstance(tree, exp.Query):
            return cur.sql(duck).to_arrow_reader(READER_ROWS)
        rows = cur.execute(duck).fetchall()
        creates_table = isinstance(tree, exp.Create) and _kind(tree) in ("TABLE", "VIEW")
        if creates_table and comment is not None:
            target = self.resolve(
                session, tree.this if isinstance(tree.this, exp.Table) else tree.this.this
            )
            cur.execute(
                f"COMMENT ON TABLE {'.'.join(map(_q, target))} IS '{comment.replace(chr(39), chr(39) * 2)}'"
            )
        if creates_table:
            target = self.resolve(
                session, tree.this if isinstance(tree.this, exp.Table) else tree.this.this
            )
            self.grants.owners[".".join(target).lower()] = session.principal
            count = rows[0][0] if rows and rows[0] and isinstance(rows[0][0], int) else 0
            return pa.table(
                {
                    "num_affected_rows": pa.array([count], pa.int64()),
                    "num_inserted_rows": pa.array([count], pa.int64()),
                }
            )
        return pa.table({})

    def resolve(self, session: Session, table: exp.Table) -> tuple[str, str, str]:
        return (table.catalog or session.catalog, table.db or session.schema, table.name)

    def authorize(self, session: Session, tree: exp.Expression) -> str | None:
        """Check Unity-Catalog-style privileges; return a CTAS comment to re-apply (DuckDB drops it)."""
        who = session.principal
        comment = None
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        target: exp.Table | None = None
        if isinstance(tree, exp.Create | exp.Drop) and _kind(tree) not in ("TABLE", "VIEW"):
            if who != ADMIN:
                raise PeerError(
                    "INSUFFICIENT_PERMISSIONS",
                    f"Insufficient privileges: User does not have CREATE {_kind(tree)}.",
                    "42501",
                )
            return None
        if isinstance(tree, exp.Create):
            target = tree.this if isinstance(tree.this, exp.Table) else tree.this.find(exp.Table)
            props = tree.args.get("properties")
            for prop in props.expressions if props else []:
                if isinstance(prop, exp.SchemaCommentProperty):
                    comment = prop.this.name
                    prop.pop()
            assert target is not None
            c, s, name = self.resolve(session, target)
            self.check_scope(c, s)
            self.grants.require(who, "USE CATALOG", "Catalog", c.lower())
            self.grants.require(who, "USE SCHEMA", "Schema", f"{c}.{s}".lower())
            if str(tree.args.get("kind", "")).upper() == "TABLE":
                self.grants.require(who, "CREATE TABLE", "Schema", f"{c}.{s}".lower())
        elif isinstance(tree, exp.Drop):
            target = tree.find(exp.Table)
            if target is not None:
                c, s, name = self.resolve(session, target)
                full = f"{c}.{s}.{name}".lower()
                if self.table_exists(c, s, name) and not self.grants.has(who, "MANAGE", full):
                    raise PeerError(
                        "INSUFFICIENT_PERMISSIONS",
                        f"Insufficient privileges: User is not an owner of Table '{full}'.",
                        "42501",
                    )
        elif not isinstance(tree, exp.Query | exp.Describe | exp.Command) and who != ADMIN:
            raise PeerError(
                "INSUFFICIENT_PERMISSIONS",
                "Insufficient privileges: only the admin may run this statement in the peer.",
                "42501",
            )
        for table in tree.find_all(exp.Table):
            if table is target or not table.name or table.name.lower() in ctes:
                continue
            c, s, name = self.resolve(session, table)
            if s.lower() == "information_schema" or c.lower() == "system":
                continue
            self.check_scope(c, s)
            if not self.table_exists(c, s, name):
                raise PeerError(
                    "TABLE_OR_VIEW_NOT_FOUND",
                    f"The table or view `{c}`.`{s}`.`{name}` cannot be found. Verify the spelling "
                    "and correctness of the schema and catalog.",
                    "42P01",
                )
            self.grants.require(who, "USE CATALOG", "Catalog", c.lower())
            self.grants.require(who, "USE SCHEMA", "Schema", f"{c}.{s}".lower())
            self.grants.require(who, "SELECT", "Table", f"{c}.{s}.{name}".lower())
        return comment

    def table_exists(self, catalog: str, schema: str, name: str) -> bool:
        return bool(
            self.db.cursor()
            .execute(
                "SELECT 1 FROM duckdb_tables() WHERE database_name=? AND schema_name=? AND table_name=? "
                "UNION ALL SELECT 1 FROM duckdb_views() WHERE database_name=? AND schema_name=? AND view_name=?",
                [catalog, schema, name] * 2,
            )
            .fetchall()
        )

    def grant(
        self, session: Session, verb: str, privs: str, kind: str, name: str, who: str
    ) -> pa.Table:
        if session.principal != ADMIN:
            raise PeerError(
                "INSUFFICIENT_PERMISSIONS",
                "Insufficient privileges: only the admin may GRANT or REVOKE.",
                "42501",
            )
        securable = name.replace("`", "").lower()
        for priv in (p.strip().upper() for p in privs.split(",")):
            if priv not in PRIVILEGES:
                raise PeerError("INVALID_PARAMETER_VALUE", f"Unknown privilege {priv}.", "22023")
            row = (who, priv, securable)
            if verb.upper() == "GRANT":
                self.grants.rows.add(row)
            else:
                self.grants.rows.discard(row)
        return pa.table({})

    def use(self, session: Session, kind: str | None, name: str) -> pa.Table:
        parts = name.replace("`", "").split(".")
        if (kind or "").upper() == "CATALOG":
            self.check_scope(parts[0], None)
            session.catalog, session.schema = parts[0], "default"
        elif len(parts) == 2:
            self.check_scope(parts[0], parts[1])
            session.catalog, session.schema = parts
        else:
            self.check_scope(session.catalog, parts[0])
            session.schema = parts[0]
        return pa.table({})

    # -- metadata (GetSchemas / GetTables / GetColumns) -----------------------------
    def metadata(self, session: Session, what: str, req: Any) -> pa.Table:
        catalog = req.catalogName or session.catalog
        schema_like = req.schemaName or "%"
        con = self.db.cursor()
        if what == "schemas":
            rows = con.execute(
                "SELECT schema_name, database_name FROM duckdb_schemas() WHERE database_name = ? "
                "AND schema_name LIKE ? AND NOT internal ORDER BY 1",
                [catalog, schema_like],
            ).fetchall()
            rows = [r for r in rows if self.grants.sees(session.principal, f"{catalog}.{r[0]}")]
            return pa.table(
                {"TABLE_SCHEM": [r[0] for r in rows], "TABLE_CATALOG": [r[1] for r in rows]},
                schema=pa.schema([("TABLE_SCHEM", pa.string()), ("TABLE_CATALOG", pa.string())]),
            )
        if self.schema_exists(catalog, schema_like):
            # An exact schema the principal may not use: fail as a query on it would.
            self.grants.require(session.principal, "USE CATALOG", "Catalog", catalog.lower())
            self.grants.require(
                session.principal, "USE SCHEMA", "Schema", f"{catalog}.{schema_like}".lower()
            )
        table_like = req.tableName or "%"
        rows = con.execute(
            "SELECT database_name, schema_name, table_name, 'TABLE', comment FROM duckdb_tables() "
            "WHERE database_name = ? AND schema_name LIKE ? AND table_name LIKE ? "
            "UNION ALL SELECT database_name, schema_name, view_name, 'VIEW', comment FROM duckdb_views() "
            "WHERE database_name = ? AND schema_name LIKE ? AND view_name LIKE ? AND NOT internal ORDER BY 2, 3",
            [catalog, schema_like, table_like] * 2,
        ).fetchall()
        visible = [
            r for r in rows if self.grants.can_read_table(session.principal, r[0], r[1], r[2])
        ]
        if what == "tables":
            types = {x.upper() for x in req.tableTypes or []}
            visible = [r for r in visible if not types or r[3] in types]
            names = [
                "TABLE_CAT",
                "TABLE_SCHEM",
                "TABLE_NAME",
                "TABLE_TYPE",
                "REMARKS",
                "TYPE_CAT",
                "TYPE_SCHEM",
                "TYPE_NAME",
                "SELF_REFERENCING_COL_NAME",
                "REF_GENERATION",
            ]
            cols = [[r[i] if i < 5 else None for r in visible] for i in range(len(names))]
            return pa.table(
                dict(zip(names, cols, strict=True)),
                schema=pa.schema([(n, pa.string()) for n in names]),
            )
        keys = {(r[0], r[1], r[2]) for r in visible}
        col_like = req.columnName or "%"
        crow = con.execute(
            "SELECT database_name, schema_name, table_name, column_name, data_type, comment, is_nullable, column_index "
            "FROM duckdb_columns() WHERE database_name = ? AND schema_name LIKE ? AND table_name LIKE ? "
            "AND column_name LIKE ? ORDER BY schema_name, table_name, column_index",
            [catalog, schema_like, table_like, col_like],
        ).fetchall()
        crow = [r for r in crow if (r[0], r[1], r[2]) in keys]
        return pa.table(
            {
                "TABLE_CAT": pa.array([r[0] for r in crow], pa.string()),
                "TABLE_SCHEM": pa.array([r[1] for r in crow], pa.string()),
                "TABLE_NAME": pa.array([r[2] for r in crow], pa.string()),
                "COLUMN_NAME": pa.array([r[3] for r in crow], pa.string()),
                "DATA_TYPE": pa.array([0 for _ in crow], pa.int32()),
                "TYPE_NAME": pa.array([_databricks_type(r[4]) for r in crow], pa.string()),
                "NULLABLE": pa.array([1 if r[6] else 0 for r in crow], pa.int32()),
                "REMARKS": pa.array([r[5] for r in crow], pa.string()),
                "ORDINAL_POSITION": pa.array([r[7] for r in crow], pa.int32()),
                "IS_NULLABLE": pa.array(["YES" if r[6] else "NO" for r in crow], pa.string()),
            }
        )


def _kind(tree: exp.Expression) -> str:
    return str(tree.args.get("kind") or "").upper()


def _duck_error(exc: Exception) -> str:
    text = str(exc)
    if isinstance(exc, duckdb.CatalogException) and "does not exist" in text:
        return f"[TABLE_OR_VIEW_NOT_FOUND] {text} SQLSTATE: 42P01"
    if isinstance(exc, duckdb.ParserException):
        return f"[PARSE_SYNTAX_ERROR] {text} SQLSTATE: 42601"
    return f"[INTERNAL_ERROR] {text} SQLSTATE: XX000"


def _databricks_type(duck_type: str) -> str:
    upper = duck_type.upper()
    return {
        "VARCHAR": "STRING",
        "INTEGER": "INT",
        "HUGEINT": "DECIMAL(38,0)",
        "REAL": "FLOAT",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
        "TIMESTAMP": "TIMESTAMP_NTZ",
        "BLOB": "BINARY",
    }.get(upper, upper)


def _describe(op: Operation) -> dict[str, Any]:
    return {
        "id": op.guid.hex(),
        "sql": op.sql,
        "principal": op.session.principal,
        "outcome": op.outcome,
        "started": op.started,
        "ended": op.ended,
        "error": op.error,
    }


# ----------------------------------------------------------------------------- Arrow <-> Hive
_HIVE = [
    (pa.types.is_boolean, t.TTypeId.BOOLEAN_TYPE),
    (pa.types.is_int8, t.TTypeId.TINYINT_TYPE),
    (pa.types.is_int16, t.TTypeId.SMALLINT_TYPE),
    (pa.types.is_int32, t.TTypeId.INT_TYPE),
    (pa.types.is_int64, t.TTypeId.BIGINT_TYPE),
    (pa.types.is_float32, t.TTypeId.FLOAT_TYPE),
    (pa.types.is_float64, t.TTypeId.DOUBLE_TYPE),
    (pa.types.is_string, t.TTypeId.STRING_TYPE),
    (pa.types.is_binary, t.TTypeId.BINARY_TYPE),
    (pa.types.is_date32, t.TTypeId.DATE_TYPE),
    (pa.types.is_timestamp, t.TTypeId.TIMESTAMP_TYPE),
    (pa.types.is_decimal, t.TTypeId.DECIMAL_TYPE),
    (pa.types.is_null, t.TTypeId.NULL_TYPE),
]


def _wire_type(dtype: pa.DataType) -> pa.DataType:
    """The Arrow type Databricks would send for what DuckDB produced."""
    if pa.types.is_large_string(dtype) or pa.types.is_string_view(dtype):
        return pa.string()
    if pa.types.is_large_binary(dtype) or pa.types.is_binary_view(dtype):
        return pa.binary()
    if pa.types.is_unsigned_integer(dtype):
        return pa.int64()
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("us", tz=dtype.tz)
    if pa.types.is_decimal(dtype):
        return pa.decimal128(min(dtype.precision, 38), dtype.scale)
    if any(test(dtype) for test, _ in _HIVE):
        return dtype
    return pa.string()


def wire_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, _wire_type(f.type)) for f in schema])


def to_wire(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for col, f in zip(batch.columns, schema, strict=True):
        if col.type == f.type:
            cols.append(col)
        elif pa.types.is_string(f.type) and not (
            pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type)
        ):
            cols.append(
                pa.array([None if v is None else str(v) for v in col.to_pylist()], pa.string())
            )
        else:
            cols.append(col.cast(f.type))
    return pa.RecordBatch.from_arrays(cols, schema=schema)


def hive_schema(schema: pa.Schema) -> t.TTableSchema:
    cols = []
    for i, f in enumerate(schema):
        type_id = next(code for test, code in _HIVE if test(f.type))
        qualifiers = None
        if pa.types.is_decimal(f.type):
            qualifiers = t.TTypeQualifiers(
                qualifiers={
                    "precision": t.TTypeQualifierValue(i32Value=f.type.precision),
                    "scale": t.TTypeQualifierValue(i32Value=f.type.scale),
                }
            )
        entry = t.TTypeEntry(
            primitiveEntry=t.TPrimitiveTypeEntry(type=type_id, typeQualifiers=qualifiers)
        )
        cols.append(
            t.TColumnDesc(columnName=f.name, typeDesc=t.TTypeDesc(types=[entry]), position=i + 1)
        )
    return t.TTableSchema(columns=cols)


# ----------------------------------------------------------------------------- Thrift handler
def _handle() -> t.THandleIdentifier:
    return t.THandleIdentifier(guid=uuid.uuid4().bytes, secret=uuid.uuid4().bytes)


def _error(message: str, sqlstate: str = "42000") -> t.TStatus:
    return t.TStatus(
        statusCode=t.TStatusCode.ERROR_STATUS,
        errorMessage=message,
        displayMessage=message,
        sqlState=sqlstate,
    )


class Handler:
    """One method per TCLIService call the connector makes; ``principal`` is set per request."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.wh = warehouse
        self.local = threading.local()

    # -- sessions -------------------------------------------------------------------
    def OpenSession(self, req: t.TOpenSessionReq) -> t.TOpenSessionResp:
        ns = req.initialNamespace
        catalog = (ns.catalogName if ns else None) or self.wh.default_catalog
        schema = (ns.schemaName if ns else None) or "default"
        try:
            self.wh.check_scope(catalog, schema)
        except PeerError as exc:
            return t.TOpenSessionResp(
                status=_error(str(exc), exc.sqlstate), serverProtocolVersion=PROTOCOL_VERSION
            )
        conf = {k.upper(): v for k, v in (req.configuration or {}).items()}
        handle = _handle()
        self.wh.sessions[handle.guid] = Session(self.local.principal, catalog, schema, conf)
        return t.TOpenSessionResp(
            status=OK,
            serverProtocolVersion=PROTOCOL_VERSION,
            sessionHandle=t.TSessionHandle(sessionId=handle),
            initialNamespace=t.TNamespace(catalogName=catalog, schemaName=schema),
            canUseMultipleCatalogs=True,
            configuration={},
        )

    def CloseSession(self, req: t.TCloseSessionReq) -> t.TCloseSessionResp:
        self.wh.sessions.pop(req.sessionHandle.sessionId.guid, None)
        return t.TCloseSessionResp(status=OK)

    def _session(self, handle: t.TSessionHandle) -> Session:
        session = self.wh.sessions.get(handle.sessionId.guid)
        if session is None or session.principal != self.local.principal:
            raise KeyError("invalid session handle")
        return session

    # -- statements -----------------------------------------------------------------
    def ExecuteStatement(self, req: t.TExecuteStatementReq) -> t.TExecuteStatementResp:
        try:
            session = self._session(req.sessionHandle)
        except KeyError:
            return t.TExecuteStatementResp(status=_error("Invalid SessionHandle", "HY000"))
        op = Operation(_handle().guid, session, req.statement)
        self.wh.operations[op.guid] = op
        log.info("statement %s by %s: %s", op.guid.hex(), session.principal, req.statement[:200])
        threading.Thread(target=self.wh.run, args=(op,), daemon=True).start()
        handle = self._op_handle(op)
        if req.getDirectResults is None:
            return t.TExecuteStatementResp(status=OK, operationHandle=handle)
        # Sync execution: answer with direct results if the statement ends quickly.
        op.done.wait(0.5)
        return t.TExecuteStatementResp(
            status=OK,
            operationHandle=handle,
            directResults=self._direct(op, req.getDirectResults.maxRows),
        )

    def _op_handle(self, op: Operation) -> t.TOperationHandle:
        return t.TOperationHandle(
            operationId=t.THandleIdentifier(guid=op.guid, secret=b"\0" * 16),
            operationType=t.TOperationType.EXECUTE_STATEMENT,
            hasResultSet=True,
        )

    def _direct(self, op: Operation, max_rows: int | None) -> t.TSparkDirectResults:
        status = self._status(op)
        if op.state != t.TOperationState.FINISHED_STATE:
            return t.TSparkDirectResults(operationStatus=status)
        metadata = self._metadata(op)
        fetched = self._fetch(op, max_rows or 10_000)
        return t.TSparkDirectResults(
            operationStatus=status, resultSetMetadata=metadata, resultSet=fetched
        )

    def _status(self, op: Operation) -> t.TGetOperationStatusResp:
        return t.TGetOperationStatusResp(
            status=OK,
            operationState=op.state,
            errorMessage=op.error,
            displayMessage=op.error,
            sqlState=op.sqlstate,
            operationStarted=int(op.started * 1000),
            operationCompleted=int(op.ended * 1000) if op.ended else None,
            hasResultSet=True,
        )

    def _op(self, handle: t.TOperationHandle) -> Operation:
        return self.wh.operations[handle.operationId.guid]

    def GetOperationStatus(self, req: t.TGetOperationStatusReq) -> t.TGetOperationStatusResp:
        op = self.wh.operations.get(req.operationHandle.operationId.guid)
        if op is None:
            return t.TGetOperationStatusResp(status=_error("Invalid OperationHandle", "HY000"))
        # A short long-poll: the driver's synchronous loop polls without sleeping.
        op.done.wait(0.1)
        return self._status(op)

    def GetResultSetMetadata(self, req: t.TGetResultSetMetadataReq) -> t.TGetResultSetMetadataResp:
        op = self._op(req.operationHandle)
        if op.state != t.TOperationState.FINISHED_STATE:
            return t.TGetResultSetMetadataResp(
                status=_error(op.error or "Operation was cancelled", op.sqlstate or "HY008")
            )
        return self._metadata(op)

    def _metadata(self, op: Operation) -> t.TGetResultSetMetadataResp:
        assert op.schema is not None
        schema = wire_schema(op.schema)
        return t.TGetResultSetMetadataResp(
            status=OK,
            schema=hive_schema(schema),
            resultFormat=t.TSparkRowSetType.ARROW_BASED_SET,
            lz4Compressed=False,
            arrowSchema=schema.serialize().to_pybytes(),
            isStagingOperation=False,
        )

    def FetchResults(self, req: t.TFetchResultsReq) -> t.TFetchResultsResp:
        op = self._op(req.operationHandle)
        if op.state != t.TOperationState.FINISHED_STATE:
            return t.TFetchResultsResp(
                status=_error(op.error or "Operation is not finished", op.sqlstate or "HY000")
            )
        try:
            fetched = self._fetch(op, req.maxRows or 10_000)
        except Exception as exc:  # an interrupt or error while streaming
            return t.TFetchResultsResp(status=_error(_duck_error(exc)))
        return t.TFetchResultsResp(
            status=OK,
            hasMoreRows=fetched.hasMoreRows,
            results=fetched.results,
            resultSetMetadata=self._metadata(op),
        )

    def _fetch(self, op: Operation, max_rows: int) -> t.TFetchResultsResp:
        """Take at most ``max_rows`` rows off the operation's reader; look ahead for hasMoreRows."""
        assert op.schema is not None and op.reader is not None
        schema = wire_schema(op.schema)
        batches, n = [], 0
        while n < max_rows:
            if op.pending is None:
                op.pending = next(op.reader, None)
                if op.pending is None:
                    op.exhausted = True
                    break
            take = min(max_rows - n, op.pending.num_rows)
            batches.append(op.pending.slice(0, take))
            op.pending = op.pending.slice(take) if take < op.pending.num_rows else None
            n += take
        if op.pending is None and not op.exhausted:
            op.pending = next(op.reader, None)
            op.exhausted = op.pending is None
        arrow = [
            t.TSparkArrowBatch(
                batch=to_wire(b, schema).serialize().to_pybytes(), rowCount=b.num_rows
            )
            for b in batches
            if b.num_rows
        ]
        results = t.TRowSet(startRowOffset=op.offset, rows=[], arrowBatches=arrow)
        op.offset += n
        return t.TFetchResultsResp(status=OK, hasMoreRows=op.pending is not None, results=results)

    def CancelOperation(self, req: t.TCancelOperationReq) -> t.TCancelOperationResp:
        op = self.wh.operations.get(req.operationHandle.operationId.guid)
        if op is None:
            return t.TCancelOperationResp(status=_error("Invalid OperationHandle", "HY000"))
        self._interrupt(op)
        return t.TCancelOperationResp(status=OK)

    def _interrupt(self, op: Operation) -> None:
        with self.wh.lock:
            if op.done.is_set() or op.state not in (
                t.TOperationState.PENDING_STATE,
                t.TOperationState.RUNNING_STATE,
            ):
                return
            op.cancelled.set()
            op.state = t.TOperationState.CANCELED_STATE
        log.info("cancel %s: interrupting DuckDB", op.guid.hex())

        def keep_interrupting() -> None:
            # An interrupt that lands between two DuckDB calls is lost: repeat until it stops.
            until = time.time() + 5
            while not op.done.is_set() and time.time() < until:
                if op.cursor is not None:
                    op.cursor.interrupt()
                op.done.wait(0.05)

        threading.Thread(target=keep_interrupting, daemon=True).start()

    def CloseOperation(self, req: t.TCloseOperationReq) -> t.TCloseOperationResp:
        op = self.wh.operations.pop(req.operationHandle.operationId.guid, None)
        if op is not None:
            self._interrupt(op)
        return t.TCloseOperationResp(status=OK)

    # -- metadata -------------------------------------------------------------------
    def _metadata_op(self, what: str, req: Any, resp_cls: Any) -> Any:
        try:
            session = self._session(req.sessionHandle)
            table = self.wh.metadata(session, what, req)
        except KeyError:
            return resp_cls(status=_error("Invalid SessionHandle", "HY000"))
        except PeerError as exc:
            return resp_cls(status=_error(str(exc), exc.sqlstate))
        op = Operation(
            _handle().guid,
            session,
            f"<{what}>",
            state=t.TOperationState.FINISHED_STATE,
            outcome="finished",
        )
        op.reader, op.schema = iter(table.to_batches(READER_ROWS)), table.schema
        op.done.set()
        self.wh.operations[op.guid] = op
        max_rows = req.getDirectResults.maxRows if req.getDirectResults else 10_000
        return resp_cls(
            status=OK, operationHandle=self._op_handle(op), directResults=self._direct(op, max_rows)
        )

    def GetSchemas(self, req: t.TGetSchemasReq) -> t.TGetSchemasResp:
        return self._metadata_op("schemas", req, t.TGetSchemasResp)

    def GetTables(self, req: t.TGetTablesReq) -> t.TGetTablesResp:
        return self._metadata_op("tables", req, t.TGetTablesResp)

    def GetColumns(self, req: t.TGetColumnsReq) -> t.TGetColumnsResp:
        return self._metadata_op("columns", req, t.TGetColumnsResp)


# ----------------------------------------------------------------------------- HTTP
def make_http_handler(warehouse: Warehouse, handler: Handler) -> type[BaseHTTPRequestHandler]:
    processor = TCLIService.Processor(handler)

    class Http(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the driver pools connections
        disable_nagle_algorithm = True  # headers and body go out as separate writes

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def _send(
            self,
            code: int,
            body: bytes,
            headers: dict[str, str] | None = None,
            ctype: str = "application/x-thrift",
        ) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path.startswith("/_peer/status"):
                with warehouse.lock:
                    finished = list(warehouse.history)
                running = [
                    _describe(op)
                    for op in list(warehouse.operations.values())
                    if not op.done.is_set()
                ]
                body = json.dumps(
                    {
                        "running": running,
                        "finished": finished,
                        "starting": warehouse.starting_until > time.time(),
                    }
                )
                self._send(200, body.encode(), ctype="application/json")
            else:
                self._send(404, b"not found", ctype="text/plain")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.path.startswith("/_peer/"):
                return self._control(body)
            auth = self.headers.get("Authorization", "")
            principal = (
                warehouse.tokens.get(auth.removeprefix("Bearer ").strip())
                if auth.startswith("Bearer ")
                else None
            )
            if principal is None:
                # What a workspace answers to a wrong personal access token.
                return self._send(
                    403,
                    b"Invalid access token.",
                    {"x-databricks-reason-phrase": "Invalid access token."},
                    "text/plain",
                )
            if time.time() < warehouse.starting_until:
                return self._send(
                    503,
                    b"TEMPORARILY_UNAVAILABLE",
                    {
                        "x-thriftserver-error-message": "TEMPORARILY_UNAVAILABLE: The SQL warehouse is starting. Please retry.",
                        "Retry-After": "1",
                    },
                    "text/plain",
                )
            handler.local.principal = principal
            itrans, otrans = TTransport.TMemoryBuffer(body), TTransport.TMemoryBuffer()
            processor.process(
                TBinaryProtocol.TBinaryProtocol(itrans), TBinaryProtocol.TBinaryProtocol(otrans)
            )
            self._send(200, otrans.getvalue())

        def _control(self, body: bytes) -> None:
            args = json.loads(body or b"{}")
            if self.path.startswith("/_peer/starting"):
                warehouse.starting_until = time.time() + float(args.get("seconds", 0))
                return self._send(200, b"{}", ctype="application/json")
            if self.path.startswith("/_peer/sql"):
                try:
                    cur = warehouse.db.cursor()
                    for statement in args.get("statements", []):
                        cur.execute(statement)
                    for grant in args.get("grants", []):
                        warehouse.grants.rows.add(tuple(grant))
                except Exception as exc:
                    return self._send(400, str(exc).encode(), ctype="text/plain")
                return self._send(200, b"{}", ctype="application/json")
            self._send(404, b"not found", ctype="text/plain")

    return Http


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        help="TOKEN=principal (repeatable); principal 'admin' may do anything",
    )
    parser.add_argument(
        "--catalog", action="append", default=[], help="catalog to create (repeatable)"
    )
    parser.add_argument(
        "--starting-seconds", type=float, default=0.0, help="answer 503 'starting' for this long"
    )
    parser.add_argument(
        "--fixture",
        action="append",
        default=[],
        help="CATALOG.SCHEMA to load the fixture warehouse into (fixtures.build(), repeatable)",
    )
    parser.add_argument("--fixture-users", type=int, default=None)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s databricks-peer %(message)s", stream=sys.stderr
    )
    tokens = dict(item.split("=", 1) for item in args.token)
    warehouse = Warehouse(tokens, args.catalog or ["main"])
    if args.fixture:
        # The product's warehouse-neutral fixture data (same generator, same rows as the tests').
        from fixtures import build, load_duckdb

        data = build(args.fixture_users) if args.fixture_users else build()
        for scope in args.fixture:
            catalog, schema = scope.split(".")
            load_duckdb(warehouse.db, schema, data, database=catalog)
    warehouse.warm_up()
    warehouse.starting_until = time.time() + args.starting_seconds
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_http_handler(warehouse, Handler(warehouse))
    )
    server.daemon_threads = True
    log.info("listening on 127.0.0.1:%d", args.port)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.1)


if __name__ == "__main__":
    main()
