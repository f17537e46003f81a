"""Snowflake on ``snowflake-connector-python``: key-pair auth, async CTAS, ``SYSTEM$CANCEL_QUERY``.

Every statement runs in a session whose ``QUERY_TAG`` names zerocopy (and, for a segment
query, the segment and the run) and whose ``STATEMENT_TIMEOUT_IN_SECONDS`` is the time left
to the deadline, both set at login through ``session_parameters``
(https://docs.snowflake.com/en/developer-guide/python-connector/python-connector-api).
A segment query gets a session of its own, started with ``execute_async`` so its query id
is known before we wait; cancel is ``SELECT SYSTEM$CANCEL_QUERY('<id>')`` from the shared
session. The driver is imported lazily, so the pure helpers below (setup SQL, identity key)
cost nothing to import.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import pyarrow as pa

from dialects.base import BaseAdapter, ErrorRule
from dialects.keys import GeneratedKeySpec
from dialects.protocol import (
    ColumnInfo,
    QueryHandle,
    QueryTag,
    TableInfo,
    TableKind,
    Watermark,
)
from zerocopy import errors
from zerocopy.errors import ZerocopyError

QUERY_ID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
"""Snowflake query ids are UUID-shaped; anything else never reaches ``SYSTEM$CANCEL_QUERY``."""

_UNQUOTED_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_LOWER_UNQUOTED_RE = re.compile(r"^[a-z_][a-z0-9_$]*$")

DEFAULT_TAG = "zerocopy"
"""``QUERY_TAG`` of the shared session (catalog, reads, drops, cancels)."""

VIEW_TYPES = frozenset({"VIEW", "MATERIALIZED VIEW"})

# Snowflake error numbers (``errno`` on the driver's exceptions).
ERRNO_TIMEOUT = 630
"""000630: "Statement reached its statement or warehouse timeout of N second(s) and was canceled"."""
ERRNO_CANCELLED = 604
"""000604: "SQL execution canceled" (``SYSTEM$CANCEL_QUERY`` or an abort request)."""
ERRNO_INSUFFICIENT_PRIVILEGES = 3001
"""003001 (42501): "SQL access control error: Insufficient privileges to operate on …"."""
ERRNO_NO_WAREHOUSE = 606
"""000606: "No active warehouse selected in the current session"."""
AUTH_ERRNOS = frozenset({390100, 390101, 390102, 390144, 390186, 390190, 390318})
"""Login refused: wrong user/key (390100, 390144 JWT invalid), user locked or disabled."""
PRIVILEGE_RE = re.compile(
    r"Insufficient privileges|No active warehouse|specified in the connect string|"
    r"warehouse '[^']*' does not exist or not authorized",
    re.IGNORECASE,
)
"""A missing grant (checked with errno 003001 / 000606): the role, the warehouse or an object."""
SESSION_EXPIRED_ERRNOS = frozenset({390111, 390112, 390114})
"""Session or master token expired/gone: the shared session logs in again."""
NETWORK_ERRNOS = frozenset({250001, 250003, 251011, 251012})
"""Driver-side connection failures: could not connect, request timed out, socket errors."""


# ---------------------------------------------------------------------------- identifiers
def normalize_ident(name: str) -> str:
    """Resolve a user-typed name the way Snowflake resolves an unquoted identifier.

    An all-lower-case plain name (``analytics``) means the upper-case object
    (``ANALYTICS``); a name with upper-case letters or other characters is used exactly,
    as a quoted identifier would be.
    """
    return name.upper() if _LOWER_UNQUOTED_RE.match(name) else name


def quote_ident(name: str) -> str:
    """``"name"`` with embedded quotes doubled (exact, case-sensitive)."""
    return '"' + name.replace('"', '""') + '"'


def sql_ident(name: str) -> str:
    """A user-typed name for setup SQL: plain names unquoted upper-case, others quoted exactly."""
    resolved = normalize_ident(name)
    return (
        resolved
        if _UNQUOTED_RE.match(resolved) and resolved == resolved.upper()
        else quote_ident(resolved)
    )


def sql_string(value: str) -> str:
    """A single-quoted Snowflake string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


# ---------------------------------------------------------------------------- pure helpers
def public_key_body(public_key: str) -> str:
    """The base64 body of a PEM public key (what ``RSA_PUBLIC_KEY='…'`` takes)."""
    lines = [ln.strip() for ln in public_key.strip().splitlines()]
    return "".join(ln for ln in lines if ln and not ln.startswith("-----"))


def setup_sql(
    user: str, role: str, warehouse: str, database: str, schema: str, public_key: str
) -> str:
    """The script a Snowflake admin runs once so zerocopy can read the scope and write results.

    The role may use the warehouse, read every current and future table and view of the
    schema and create (transient) tables there; the user logs in only with the key pair
    zerocopy generated (``TYPE = SERVICE``: no password).
    """
    r, w, u = sql_ident(role), sql_ident(warehouse), sql_ident(user)
    db = sql_ident(database)
    sc = f"{db}.{sql_ident(schema)}"
    key = sql_string(public_key_body(public_key))
    lines = [
        "-- Run as a role that can create roles and users and grant on these objects",
        "-- (e.g. SECURITYADMIN for the role and user, the objects' owner for the grants).",
        "USE ROLE SECURITYADMIN;",
        f"CREATE ROLE IF NOT EXISTS {r};",
        f"GRANT USAGE ON WAREHOUSE {w} TO ROLE {r};",
        f"GRANT USAGE ON DATABASE {db} TO ROLE {r};",
        f"GRANT USAGE ON SCHEMA {sc} TO ROLE {r};",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA {sc} TO ROLE {r};",
        f"GRANT SELECT ON FUTURE TABLES IN SCHEMA {sc} TO ROLE {r};",
        f"GRANT SELECT ON ALL VIEWS IN SCHEMA {sc} TO ROLE {r};",
        f"GRANT SELECT ON FUTURE VIEWS IN SCHEMA {sc} TO ROLE {r};",
        "-- zerocopy writes each segment's result to a TRANSIENT table zc_tmp_<run> here, then drops it.",
        f"GRANT CREATE TABLE ON SCHEMA {sc} TO ROLE {r};",
        f"CREATE USER IF NOT EXISTS {u}",
        "  TYPE = SERVICE",
        f"  DEFAULT_ROLE = {r}",
        f"  DEFAULT_WAREHOUSE = {w}",
        f"  RSA_PUBLIC_KEY = {key};",
        f"GRANT ROLE {r} TO USER {u};",
        "-- If the user already exists, register the key instead:",
        f"-- ALTER USER {u} SET RSA_PUBLIC_KEY = {key};",
    ]
    return "\n".join(lines) + "\n"


def normalize_account(account: str) -> str:
    """``https://Org-Acct.snowflakecomputing.com`` → ``org-acct`` (URL form and ``_`` fold to ``-``)."""
    text = account.strip().lower()
    text = re.sub(r"^[a-z]+://", "", text).split("/", 1)[0]
    text = text.removesuffix(".snowflakecomputing.com")
    return text.replace("_", "-")


def snowflake_identity(settings: Mapping[str, Any]) -> str:
    """Key of the Snowflake user a credential logs in as: ``<account>/<LOGIN NAME>``.

    Two workspaces may not share one (account, user); the service layer compares these keys.
    Snowflake login names are case-insensitive, so the user is upper-cased whatever its form.
    """
    account = str(settings.get("account") or "").strip()
    user = str(settings.get("user") or "").strip()
    if not account or not user:
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            "a snowflake credential needs both 'account' and 'user'",
            details={"field": "account" if not account else "user"},
        )
    login_name = user.strip('"').upper()  # LOGIN_NAME ignores case and quotes
    return f"{normalize_account(account)}/{login_name}"


def load_private_key(pem: str) -> Any:
    """Parse the stored PKCS#8 PEM private key; the error never echoes the key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            "the snowflake private_key is not an unencrypted PKCS#8 PEM private key; "
            "generate a new key pair in zerocopy and register its public key",
            details={"field": "private_key", "warehouse": "snowflake"},
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ZerocopyError(
            errors.INVALID_CREDENTIAL,
            "the snowflake private_key must be an RSA key (Snowflake key-pair auth uses RSA)",
            details={"field": "private_key", "warehouse": "snowflake"},
        )
    return key


def statement_timeout_s(seconds_left: float) -> int:
    """``STATEMENT_TIMEOUT_IN_SECONDS`` for the time left: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(seconds_left))


class SnowflakeAdapter(BaseAdapter):
    """Snowflake through the official connector, with key-pair (JWT) auth only."""

    KIND = "snowflake"
    # No collation is binary UTF-8 comparison (a column with DEFAULT_DDL_COLLATION is not:
    # the engine's order check then falls back to sorting in memory).
    ID_ORDER = "{col}"
    SQLGLOT_DIALECT = "snowflake"

    SUPPORTS_SERVER_TIMEOUT = True
    """``STATEMENT_TIMEOUT_IN_SECONDS`` of the session = time left to the deadline."""

    SUPPORTS_SERVER_CANCEL = True
    """``SYSTEM$CANCEL_QUERY`` on the query id captured from ``execute_async``."""

    CANCEL_GRACE_S = 1.0
    """Our poll loop notices the cancel (its own flag, or the query's ABORTED state) within
    one poll interval, so a statement that does not come back within 1 s is abandoned."""

    POLL_S: ClassVar[tuple[float, ...]] = (0.05, 0.1, 0.2, 0.3, 0.5)
    """Waits between ``get_query_status`` calls while a segment query runs (then the last)."""

    REQUIRED_SETTINGS = frozenset({"account", "user", "role", "warehouse"})
    SECRET_FIELDS = frozenset({"private_key"})

    DEFAULT_LOGIN_TIMEOUT_S: ClassVar[float] = 30.0
    """Give up connecting (unreachable) after this long; setting ``login_timeout`` overrides."""

    ERROR_RULES: ClassVar[tuple[ErrorRule, ...]] = (
        (
            r"JWT token is invalid|Incorrect username or password|authentication failed|"
            r"user .* (?:is )?(?:temporarily )?(?:locked|disabled)|"
            r"Failed to authenticate|public key .* not registered",
            errors.AUTH_FAILED,
            "snowflake refused the login: check the account and user, and that the public "
            "key shown by zerocopy is registered with ALTER USER … SET RSA_PUBLIC_KEY ({msg})",
        ),
        (
            r"Could not connect to Snowflake backend|Failed to connect to DB|"
            r"Connection refused|Max retries exceeded|Name or service not known|"
            r"Read timed out|Connect(?:ion)? ?time(?:d ?)?out|RemoteDisconnected",
            errors.UNREACHABLE,
            "cannot reach snowflake: check the account identifier and the network path ({msg})",
        ),
        (
            r"Statement reached its statement or warehouse timeout",
            errors.TIMED_OUT,
            "snowflake stopped the query at the source's max runtime; simplify the query or "
            "raise the max runtime ({msg})",
        ),
        (
            r"SQL execution (?:was )?cancel+ed",
            errors.CANCELLED,
            "the query was cancelled in snowflake ({msg})",
        ),
        (
            r"(?:Database|Schema) '[^']*' does not exist or not authorized|"
            r"Schema with name \S+ does not exist|because schema \S+ does not exist|"
            r"No catalog \+ schema named",
            errors.SCOPE_NOT_FOUND,
            "the scope {scope} does not exist or role {role} cannot use it: check the "
            "source's scope, then GRANT USAGE ON DATABASE {database} TO ROLE {role}; "
            "GRANT USAGE ON SCHEMA {scope} TO ROLE {role} ({msg})",
        ),
    )
    """Driver message → code (the errno table in :meth:`map_error` is checked first).

    The scope rule also matches the local peer's (fakesnow on DuckDB) catalog messages
    ("Schema with name X does not exist", "No catalog + schema named"), which differ from
    Snowflake's "Schema 'DB.S' does not exist or not authorized."
    """

    @classmethod
    def check_credential(cls, settings: dict[str, Any], secrets: dict[str, str]) -> None:
        """The base checks, plus: key-pair only (no password), and a private key that parses."""
        super().check_credential(settings, secrets)
        if "password" in settings or "password" in secrets:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "snowflake password auth is not offered: zerocopy logs in with a key pair; "
                "register the public key it shows with ALTER USER … SET RSA_PUBLIC_KEY",
                details={"field": "password"},
            )
        if secrets.get("private_key"):
            load_private_key(secrets["private_key"])

    @classmethod
    def generated_key(cls, settings: dict[str, Any]) -> GeneratedKeySpec | None:
        """Key-pair auth only: an RSA pair, two public-key slots per user (rotation)."""
        return GeneratedKeySpec(
            secret="private_key",
            algorithm="rsa",
            installed_by="ALTER USER … SET RSA_PUBLIC_KEY",
            two_slot_rotation=True,
        )

    @classmethod
    def login_identity(cls, settings: dict[str, Any]) -> str | None:
        """``<account>/<LOGIN NAME>``: one Snowflake user belongs to one workspace."""
        return snowflake_identity(settings)

    @classmethod
    def setup_script(
        cls, settings: dict[str, Any], *, public_key: str, database: str, schema: str
    ) -> str | None:
        """:func:`setup_sql` for the credential's user, role and warehouse."""
        return setup_sql(
            str(settings["user"]),
            str(settings["role"]),
            str(settings["warehouse"]),
            database,
            schema,
            public_key,
        )

    def __init__(self, config: Any) -> None:
        super().__init__(config)
        self._conn: Any = None
        self._conn_lock = threading.Lock()

    # ------------------------------------------------------------------ names
    @property
    def database(self) -> str:
        """The scope's database (Snowflake always needs one)."""
        name = self.config.scope.database or self.config.settings.get("database")
        if not name:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "a snowflake scope is 'database.schema'; the database is missing",
                details={"field": "scope", "warehouse": self.KIND},
            )
        return normalize_ident(str(name))

    @property
    def schema(self) -> str:
        return normalize_ident(self.config.scope.schema)

    @property
    def role(self) -> str:
        return str(self.config.settings.get("role") or "")

    def scope_sql(self) -> str:
        return f"{quote_ident(self.database)}.{quote_ident(self.schema)}"

    def quote_table(self, table: str) -> str:
        """``"DB"."SCHEMA"."table"``: the scope resolved like unquoted names, the table exact."""
        return f"{self.scope_sql()}.{quote_ident(table)}"

    def ctas_sql(self, table: str, select_sql: str, tag: QueryTag) -> str:
        """TRANSIENT: no fail-safe storage for a table that lives minutes."""
        return f"CREATE TRANSIENT TABLE {self.quote_table(table)} AS {select_sql}"

    # ------------------------------------------------------------------ connections
    def connect_kwargs(self, session_parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``snowflake.connector.connect`` (the private key parsed)."""
        settings = self.config.settings
        pem = self.config.secrets.get("private_key")
        if not pem:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "snowflake credential needs secret 'private_key' (key-pair auth only)",
                details={"field": "private_key", "warehouse": self.KIND},
            )
        params: dict[str, Any] = dict(settings.get("session_parameters") or {})
        params.update(session_parameters)
        kwargs: dict[str, Any] = {
            "account": settings["account"],
            "user": settings["user"],
            "role": settings.get("role"),
            "warehouse": settings.get("warehouse"),
            "authenticator": "SNOWFLAKE_JWT",
            "private_key": load_private_key(pem),
            "application": "zerocopy",
            "login_timeout": float(settings.get("login_timeout") or self.DEFAULT_LOGIN_TIMEOUT_S),
            # Bounds every request the driver retries (and its client-side timebomb).
            "network_timeout": math.ceil(self.config.max_runtime_s) + 60,
            "client_session_keep_alive": False,
            "session_parameters": params,
        }
        for name in ("host", "port", "protocol"):
            if settings.get(name):
                kwargs[name] = settings[name]
        return {k: v for k, v in kwargs.items() if v is not None}

    def _open(self, session_parameters: Mapping[str, Any]) -> Any:
        import snowflake.connector

        return snowflake.connector.connect(**self.connect_kwargs(session_parameters))

    def _shared(self) -> Any:
        """The adapter's shared session (catalog, reads, drops, cancels); the driver is thread-safe."""
        with self._conn_lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = self._open(
                    {
                        "QUERY_TAG": DEFAULT_TAG,
                        "STATEMENT_TIMEOUT_IN_SECONDS": statement_timeout_s(
                            self.config.max_runtime_s
                        ),
                    }
                )
            return self._conn

    def _close(self) -> None:
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    # ------------------------------------------------------------------ error mapping
    def _context(self) -> dict[str, str]:
        try:
            database, scope = self.database, f"{self.database}.{self.schema}"
        except ZerocopyError:
            database, scope = "<database>", f"<database>.{self.schema}"
        return {
            "database": database,
            "scope": scope,
            "role": self.role or "<role>",
            "warehouse": str(self.config.settings.get("warehouse") or "<warehouse>"),
        }

    def map_error(self, exc: BaseException, handle: QueryHandle | None = None) -> ZerocopyError:
        """errno first (timeout, cancel, privileges, login), then the message table."""
        if isinstance(exc, ZerocopyError):
            return exc
        msg = (getattr(exc, "raw_msg", None) or str(exc)).strip() or type(exc).__name__
        errno = getattr(exc, "errno", None)
        details: dict[str, Any] = {"warehouse": self.KIND}
        query_id = getattr(exc, "sfqid", None) or (handle.query_id if handle else None)
        if query_id:
            details["query_id"] = query_id
        if errno:
            details["errno"] = errno
        ctx = self._context()
        if errno in (ERRNO_INSUFFICIENT_PRIVILEGES, ERRNO_NO_WAREHOUSE) or PRIVILEGE_RE.search(msg):
            grant = self._missing_grant(msg, creating=handle is not None)
            return ZerocopyError(
                errors.PERMISSION_DENIED,
                f"role {ctx['role']} lacks a privilege: {grant} ({msg})",
                details={**details, "grant": grant},
            )
        if errno == ERRNO_TIMEOUT:
            code, template = errors.TIMED_OUT, self.ERROR_RULES[2][2]
        elif errno == ERRNO_CANCELLED:
            code, template = errors.CANCELLED, self.ERROR_RULES[3][2]
        elif errno in AUTH_ERRNOS:
            code, template = errors.AUTH_FAILED, self.ERROR_RULES[0][2]
        else:
            for pattern, rule_code, rule_template in self.ERROR_RULES:
                if re.search(pattern, msg, re.IGNORECASE | re.DOTALL):
                    code, template = rule_code, rule_template
                    break
            else:
                if errno in NETWORK_ERRNOS or (
                    isinstance(exc, OSError) and not isinstance(exc, PermissionError)
                ):
                    code, template = errors.UNREACHABLE, self.ERROR_RULES[1][2]
                else:
                    suffix = f" (query id {query_id})" if query_id else ""
                    return ZerocopyError(
                        errors.WAREHOUSE_ERROR, f"snowflake said: {msg}{suffix}", details=details
                    )
        return ZerocopyError(code, template.format(msg=msg, **ctx), details=details)

    def _missing_grant(self, msg: str, *, creating: bool) -> str:
        """The GRANT statement that most likely fixes an 'Insufficient privileges' error."""
        ctx = self._context()
        role, scope = sql_ident(ctx["role"]), ctx["scope"]
        lowered = msg.lower()
        if "specified in the connect string" in lowered:
            user = sql_ident(str(self.config.settings.get("user") or "<user>"))
            return f"GRANT ROLE {role} TO USER {user}"
        if "warehouse" in lowered:
            return f"GRANT USAGE ON WAREHOUSE {sql_ident(ctx['warehouse'])} TO ROLE {role}"
        if "on database" in lowered:
            return f"GRANT USAGE ON DATABASE {ctx['database']} TO ROLE {role}"
        if "on schema" in lowered and creating:
            return f"GRANT CREATE TABLE ON SCHEMA {scope} TO ROLE {role}"
        if "on schema" in lowered:
            return f"GRANT USAGE ON SCHEMA {scope} TO ROLE {role}"
        if "on view" in lowered:
            return f"GRANT SELECT ON ALL VIEWS IN SCHEMA {scope} TO ROLE {role}"
        if creating and "on table" not in lowered:
            return f"GRANT CREATE TABLE ON SCHEMA {scope} TO ROLE {role}"
        return f"GRANT SELECT ON ALL TABLES IN SCHEMA {scope} TO ROLE {role}"

    def _scope_missing(self, msg: str) -> ZerocopyError:
        ctx = self._context()
        return ZerocopyError(
            errors.SCOPE_NOT_FOUND,
            self.ERROR_RULES[4][2].format(msg=msg, **ctx),
            details={"warehouse": self.KIND, "scope": ctx["scope"]},
        )

    # ------------------------------------------------------------------ catalog
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        for attempt in (1, 2):
            cur = self._shared().cursor()
            try:
                cur.execute(sql, params or None)
                return list(cur.fetchall())
            except Exception as exc:
                if attempt == 2 or getattr(exc, "errno", None) not in SESSION_EXPIRED_ERRNOS:
                    raise
                # A long-idle shared session outlives its tokens: log in again, once.
                self._close()
            finally:
                cur.close()
        raise AssertionError("unreachable")

    def _check_scope(self) -> None:
        """Raise ``scope_not_found`` unless the role sees the scope's schema."""
        info = f"{quote_ident(self.database)}.INFORMATION_SCHEMA"
        try:
            found = self._rows(
                f"SELECT SCHEMA_NAME FROM {info}.SCHEMATA WHERE SCHEMA_NAME = %s", (self.schema,)
            )
        except Exception as exc:
            raise self.map_error(exc) from exc
        if not found:
            raise self._scope_missing(f"schema {self.schema} not in {self.database}")

    def _list_tables(self) -> list[TableInfo]:
        self._check_scope()
        info = f"{quote_ident(self.database)}.INFORMATION_SCHEMA"
        kinds: dict[str, TableKind] = {}
        comments: dict[str, str | None] = {}
        for name, table_type, comment in self._rows(
            f"SELECT TABLE_NAME, TABLE_TYPE, COMMENT FROM {info}.TABLES WHERE TABLE_SCHEMA = %s",
            (self.schema,),
        ):
            kinds[name] = "view" if table_type in VIEW_TYPES else "table"
            comments[name] = comment
        # Views are in TABLES on Snowflake, but VIEWS is read too: it is the one that lists
        # them everywhere (the local peer leaves views out of TABLES).
        for name, comment in self._rows(
            f"SELECT TABLE_NAME, COMMENT FROM {info}.VIEWS WHERE TABLE_SCHEMA = %s",
            (self.schema,),
        ):
            kinds[name] = "view"
            comments[name] = comments.get(name) or comment
        columns: dict[str, list[ColumnInfo]] = {name: [] for name in kinds}
        for table, column, data_type, comment, nullable in self._rows(
            f"SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COMMENT, IS_NULLABLE "
            f"FROM {info}.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
            (self.schema,),
        ):
            if table in columns:
                columns[table].append(
                    ColumnInfo(
                        name=column,
                        data_type=str(data_type),
                        description=comment or None,
                        nullable=str(nullable).upper() != "NO",
                    )
                )
        return [
            TableInfo(
                name=name,
                kind=kinds[name],
                columns=tuple(columns[name]),
                description=comments[name] or None,
                schema=self.schema,
            )
            for name in sorted(kinds)
        ]

    def _server_version(self) -> str | None:
        rows = self._rows("SELECT CURRENT_VERSION()")
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ segment query
    def _execute_ctas(
        self, sql: str, handle: QueryHandle, timeout_s: float, tag: QueryTag
    ) -> int | None:
        stop = threading.Event()
        handle.native = stop
        conn = self._open(
            {
                "QUERY_TAG": tag.as_text(),
                "STATEMENT_TIMEOUT_IN_SECONDS": statement_timeout_s(timeout_s),
            }
        )
        try:
            cur = conn.cursor()
            try:
                cur.execute(f"USE SCHEMA {self.scope_sql()}")
            except Exception as exc:
                if self.map_error(exc).code in (errors.WAREHOUSE_ERROR, errors.SCOPE_NOT_FOUND):
                    # USE SCHEMA fails only when the scope is missing or not granted.
                    raise self._scope_missing(str(exc)) from exc
                raise
            cur.execute_async(sql)
            handle.query_id = cur.sfqid
            handle.session_id = str(getattr(conn, "session_id", "") or "") or None
            self._wait(conn, handle.query_id, stop)
            return None
        finally:
            conn.close()

    def _wait(self, conn: Any, query_id: str, stop: threading.Event) -> None:
        """Poll the query until it ends; its failure (timeout 000630, cancel 000604) raises."""
        for attempt in range(1_000_000_000):
            status = conn.get_query_status_throw_if_error(query_id)
            if not conn.is_still_running(status):
                return
            if stop.wait(self.POLL_S[min(attempt, len(self.POLL_S) - 1)]):
                raise ZerocopyError(
                    errors.CANCELLED,
                    "the segment query was cancelled",
                    details={"warehouse": self.KIND, "query_id": query_id},
                )

    def cancel_sql(self, query_id: str) -> str:
        """``SELECT SYSTEM$CANCEL_QUERY('<id>')`` for a validated query id."""
        if not QUERY_ID_RE.match(query_id):
            raise ValueError(f"not a snowflake query id: {query_id!r}")
        return f"SELECT SYSTEM$CANCEL_QUERY('{query_id}')"

    def _cancel(self, handle: QueryHandle) -> None:
        if isinstance(handle.native, threading.Event):
            handle.native.set()  # our poll loop stops waiting at once
        if not handle.query_id:
            return  # not started in snowflake yet: nothing runs there
        self._rows(self.cancel_sql(handle.query_id))

    # ------------------------------------------------------------------ reads
    def _resolve_column(self, table: str, column: str) -> str:
        """The table's real column name: exact, else the one case-insensitive match."""
        cur = self._shared().cursor()
        try:
            cur.execute(f"SELECT * FROM {self.quote_table(table)} LIMIT 0")
            names = [d[0] for d in cur.description]
        finally:
            cur.close()
        if column in names:
            return column
        folded = [n for n in names if n.lower() == column.lower()]
        return folded[0] if len(folded) == 1 else column

    def _arrow_batches(
        self, sql: str, params: tuple[Any, ...], batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Result chunks as the driver downloads them, re-cut to at most ``batch_rows``."""
        cur = self._shared().cursor()
        try:
            cur.execute(sql, params or None)
            for chunk in cur.fetch_arrow_batches():
                for batch in chunk.to_batches(max_chunksize=batch_rows):
                    if batch.num_rows:
                        yield batch
        finally:
            cur.close()

    def _read_column(
        self, table: str, column: str, batch_rows: int, ordered: bool = False
    ) -> Iterator[pa.Array]:
        col = quote_ident(self._resolve_column(table, column))
        sql = f"SELECT {col} FROM {self.quote_table(table)}{self.id_order_by(col, ordered)}"
        for batch in self._arrow_batches(sql, (), batch_rows):
            array = batch.column(0)
            # NUMBER ids arrive as the narrowest integer type per chunk; keep one type.
            if pa.types.is_integer(array.type) and array.type != pa.int64():
                array = array.cast(pa.int64())
            yield array

    def _read_incremental(
        self, table: str, watermark: Watermark, batch_rows: int, columns: list[str] | None
    ) -> Iterator[pa.RecordBatch]:
        select = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        column = quote_ident(watermark.column)
        sql = f"SELECT {select} FROM {self.quote_table(table)}"
        params: tuple[Any, ...] = ()
        if watermark.nulls_only:
            sql += f" WHERE {column} IS NULL"
        elif watermark.value is not None:
            sql += f" WHERE {column} >= %s"
            params = (watermark.value,)
        sql += f" ORDER BY {column}"
        yield from self._arrow_batches(sql, params, batch_rows)

    def _drop_table(self, table: str) -> None:
        try:
            self._rows(self.drop_sql(table))
        except Exception as exc:
            if self.map_error(exc).code != errors.SCOPE_NOT_FOUND:
                raise
            # No such schema, so no such table: the drop is done (and stays idempotent).

    def _list_temp_tables(self, prefix: str) -> list[str]:
        info = f"{quote_ident(self.database)}.INFORMATION_SCHEMA"
        rows = self._rows(
            f"SELECT TABLE_NAME FROM {info}.TABLES WHERE TABLE_SCHEMA = %s", (self.schema,)
        )
        return sorted(r[0] for r in rows if str(r[0]).lower().startswith(prefix.lower()))
