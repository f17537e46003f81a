"""A small TDS 7.4 server backed by DuckDB: the local peer for Microsoft Fabric (test code).

What it speaks (what mssql-python's ODBC provider uses): PRELOGIN, TLS 1.2 carried inside TDS
packets during the handshake then over the whole stream, LOGIN7 with the FEDAUTH feature
(access token inside LOGIN7), SQL_BATCH, RPC ``sp_executesql`` / ``sp_prepexec`` /
``sp_execute`` / ``sp_unprepare`` with parameters, COLMETADATA/ROW/DONE/ERROR tokens (ints,
floats, decimals, bits, dates, DATETIME2, NVARCHAR incl. MAX as PLP), ATTENTION (interrupts
DuckDB), ``@@SPID``, ``KILL <spid>``, per-session ``#temp`` tables and SQL Server error
numbers. T-SQL is translated with sqlglot's ``fabric`` dialect to DuckDB.

Not shown (see the README's limits): the FEDAUTHINFO exchange (the driver fetching the token
itself), transactions, MARS, NBCROW, sys.extended_properties. Tokens are ``tok-<principal>``
values handed out by ``token_endpoint.py``; principals: ``zerocopy`` (read + create),
``reader`` (read only), ``admin``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import decimal
import json
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import sqlglot

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

PRELOGIN, SQL_BATCH, RPC, ATTENTION, LOGIN7, REPLY = 0x12, 0x01, 0x03, 0x06, 0x10, 0x04
TRANSACTION_MANAGER = 0x0E
COLLATION = bytes([0x09, 0x04, 0xD0, 0x00, 0x34])  # Latin1_General_CI_AS
DONE_MORE, DONE_ERROR, DONE_COUNT, DONE_ATTN = 0x1, 0x2, 0x10, 0x20

SESSIONS: dict[int, Session] = {}
SESSIONS_LOCK = threading.Lock()
NEXT_SPID = [51]
DEBUG = bool(__import__("os").environ.get("TDS_PEER_DEBUG"))
LOG: list[dict[str, Any]] = []
"""Statements run, with how they ended (``ok``/``error``/``interrupted``): the test's evidence."""


class SqlError(Exception):
    """An error with a SQL Server number, sent as an ERROR token."""

    def __init__(self, number: int, message: str, severity: int = 16) -> None:
        super().__init__(message)
        self.number, self.severity = number, severity


# ---------------------------------------------------------------- token encoding
def b_varchar(text: str) -> bytes:
    raw = text.encode("utf-16-le")
    return bytes([len(text)]) + raw


def us_varchar(text: str) -> bytes:
    return struct.pack("<H", len(text)) + text.encode("utf-16-le")


def error_token(number: int, message: str, severity: int = 16, info: bool = False) -> bytes:
    body = struct.pack("<iBB", number, 1, severity) + us_varchar(message)
    body += b_varchar("fabric-peer") + b_varchar("") + struct.pack("<i", 1)
    return bytes([0xAB if info else 0xAA]) + struct.pack("<H", len(body)) + body


CURCMD = {"select": 0xC1, "insert": 0xC3, "delete": 0xC4, "update": 0xC5, "create": 0xC6}


def done(status: int = 0, rows: int = 0, token: int = 0xFD, verb: str = "select") -> bytes:
    return bytes([token]) + struct.pack("<HHQ", status, CURCMD.get(verb, 0xC1), rows)


def envchange(kind: int, new: bytes, old: bytes) -> bytes:
    body = bytes([kind]) + new + old
    return b"\xe3" + struct.pack("<H", len(body)) + body


class Column:
    """One result column: its TDS type and how to encode a value."""

    def __init__(self, name: str, duck_type: str, values: list[Any]) -> None:
        self.name, t = name, duck_type.upper()
        if t in ("BOOLEAN",):
            self.kind, self.info = "bit", b"\x68\x01"
        elif t in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"):
            self.kind, self.info = "int", b"\x26\x08"
        elif t in ("DOUBLE", "FLOAT", "REAL"):
            self.kind, self.info = "float", b"\x6d\x08"
        elif t.startswith("DECIMAL"):
            p, s = (int(x) for x in re.findall(r"\d+", t)[:2]) if "(" in t else (18, 3)
            self.kind, self.scale, self.info = "dec", s, bytes([0x6A, 17, p, s])
        elif t == "DATE":
            self.kind, self.info = "date", b"\x28"
        elif t.startswith("TIMESTAMP"):
            self.kind, self.info = "dt2", b"\x2a\x06"
        else:
            wide = any(v is not None and len(str(v)) > 4000 for v in values)
            self.kind = "plp" if wide else "nvarchar"
            self.info = b"\xe7" + (b"\xff\xff" if wide else struct.pack("<H", 8000)) + COLLATION

    def meta(self) -> bytes:
        return struct.pack("<IH", 0, 0x0001) + self.info + b_varchar(self.name)

    def encode(self, v: Any) -> bytes:
        k = self.kind
        if k == "plp":
            if v is None:
                return b"\xff" * 8
            raw = str(v).encode("utf-16-le")
            return (
                struct.pack("<QI", len(raw), len(raw)) + raw + b"\0\0\0\0"
                if raw
                else (struct.pack("<Q", 0) + b"\0\0\0\0")
            )
        if v is None:
            return b"\xff\xff" if k == "nvarchar" else b"\x00"
        if k == "bit":
            return b"\x01" + bytes([1 if v else 0])
        if k == "int":
            return b"\x08" + struct.pack("<q", int(v))
        if k == "float":
            return b"\x08" + struct.pack("<d", float(v))
        if k == "dec":
            n = int(decimal.Decimal(v).scaleb(self.scale).to_integral_value())
            return bytes([17, 1 if n >= 0 else 0]) + abs(n).to_bytes(16, "little")
        if k == "date":
            return b"\x03" + _days(v).to_bytes(3, "little")
        if k == "dt2":
            if v.tzinfo is not None:
                v = v.astimezone(dt.UTC).replace(tzinfo=None)
            micros = (v.hour * 3600 + v.minute * 60 + v.second) * 10**6 + v.microsecond
            return b"\x08" + micros.to_bytes(5, "little") + _days(v.date()).to_bytes(3, "little")
        raw = str(v).encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw


def _days(d: dt.date) -> int:
    return (d - dt.date(1, 1, 1)).days


# ---------------------------------------------------------------- parameter decoding
def read_typed_value(buf: bytes, i: int) -> tuple[Any, int]:
    """Decode TYPE_INFO + value of an RPC parameter; returns (value, next offset)."""
    t = buf[i]
    i += 1
    if t in (0x26, 0x68, 0x6D, 0x6F):  # INTN BITN FLTN DATETIMN
        i += 1
        n = buf[i]
        i += 1
        raw = buf[i : i + n]
        i += n
        if n == 0:
            return None, i
        if t == 0x26:
            return int.from_bytes(raw, "little", signed=True), i
        if t == 0x68:
            return bool(raw[0]), i
        if t == 0x6D:
            return struct.unpack("<d" if n == 8 else "<f", raw)[0], i
        days, ticks = struct.unpack("<iI", raw)
        return dt.datetime(1900, 1, 1) + dt.timedelta(days=days, seconds=ticks / 300), i
    if t in (0xE7, 0xA7, 0xEF, 0xAF, 0xA5):  # (N)VARCHAR (N)CHAR VARBINARY
        maxlen = struct.unpack_from("<H", buf, i)[0]
        i += 2 + (5 if t != 0xA5 else 0)
        if maxlen == 0xFFFF:  # PLP
            total = struct.unpack_from("<Q", buf, i)[0]
            i += 8
            if total == 0xFFFFFFFFFFFFFFFF:
                return None, i
            raw = b""
            while True:
                n = struct.unpack_from("<I", buf, i)[0]
                i += 4
                if n == 0:
                    break
                raw += buf[i : i + n]
                i += n
        else:
            n = struct.unpack_from("<H", buf, i)[0]
            i += 2
            if n == 0xFFFF:
                return None, i
            raw = buf[i : i + n]
            i += n
        if t == 0xA5:
            return raw, i
        return raw.decode("utf-16-le" if t in (0xE7, 0xEF) else "latin-1"), i
    if t in (0x2A, 0x28, 0x29, 0x2B):  # DATETIME2N DATEN TIMEN DATETIMEOFFSETN
        scale = buf[i] if t != 0x28 else 0
        i += 1 if t != 0x28 else 0
        n = buf[i]
        i += 1
        raw = buf[i : i + n]
        i += n
        if n == 0:
            return None, i
        if t == 0x28:
            return dt.date(1, 1, 1) + dt.timedelta(days=int.from_bytes(raw, "little")), i
        tlen = n - 3 - (2 if t == 0x2B else 0)
        ticks = int.from_bytes(raw[:tlen], "little")
        days = int.from_bytes(raw[tlen : tlen + 3], "little")
        base = dt.datetime(1, 1, 1) + dt.timedelta(days=days)
        return base + dt.timedelta(microseconds=ticks * 10**6 // 10**scale), i
    if t in (0x6A, 0x6C):  # DECIMALN NUMERICN
        scale = buf[i + 2]
        i += 3
        n = buf[i]
        i += 1
        if n == 0:
            return None, i
        raw = buf[i : i + n]
        i += n
        value = decimal.Decimal(int.from_bytes(raw[1:], "little")).scaleb(-scale)
        return value if raw[0] else -value, i
    raise SqlError(8016, f"peer: unsupported parameter type 0x{t:02x}")


# ---------------------------------------------------------------- translation
def translate(sql: str, session: Session) -> str:
    """T-SQL (Fabric) → DuckDB, with the peer's own handling of #temp, @@SPID and KILL."""
    sql = sql.strip().rstrip(";")
    sql = re.sub(r"(?i)@@SPID", str(session.spid), sql)
    sql = re.sub(r"(?i)@@VERSION", "'Microsoft Fabric peer (TDS 7.4 on DuckDB)'", sql)
    sql = re.sub(r"#(\w+)", r"zc_session_temp_\1", sql)  # unqualified: DuckDB looks in temp first
    out = sqlglot.transpile(sql, read="fabric", write="duckdb")[0]
    # A #table is a TEMP table of this session's own DuckDB connection, invisible to others.
    out = re.sub(r"(?i)^CREATE TABLE (zc_session_temp_)", r"CREATE TEMP TABLE \1", out)
    out = re.sub(r"(?i)\bBIT\b", "BOOLEAN", out)
    return re.sub(r"[@$]P(\d+)", r"$\1", out)


class Session:
    """One client connection: its DuckDB cursor, prepared statements and state."""

    def __init__(self, server: Server, sock: socket.socket) -> None:
        self.server, self.sock = server, sock
        with SESSIONS_LOCK:
            self.spid = NEXT_SPID[0]
            NEXT_SPID[0] += 1
        self.db = server.db.cursor()
        self.principal = ""
        self.killed = False
        self.tls: ssl.SSLObject | None = None
        self.bio_in, self.bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.buffer = b""
        self.prepared: dict[int, tuple[str, list[str]]] = {}

    # -------------------------------------------------- transport
    def _recv_raw(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("client closed")
        return data

    def _fill(self, n: int) -> None:
        while len(self.buffer) < n:
            if self.tls is None:
                self.buffer += self._recv_raw()
                continue
            try:
                self.buffer += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self.bio_in.write(self._recv_raw())

    def read_packet(self) -> tuple[int, int, bytes]:
        self._fill(8)
        ptype, status, length = struct.unpack(">BBH", self.buffer[:4])
        self._fill(length)
        payload, self.buffer = self.buffer[8:length], self.buffer[length:]
        return ptype, status, payload

    def read_message(self) -> tuple[int, bytes]:
        ptype, status, payload = self.read_packet()
        while not status & 0x01:
            _, status, more = self.read_packet()
            payload += more
        if DEBUG:
            print(
                f"spid {self.spid} got type {ptype:#x} len {len(payload)}",
                file=sys.stderr,
                flush=True,
            )
        return ptype, payload

    def _send_raw(self, data: bytes) -> None:
        if self.tls is None:
            self.sock.sendall(data)
            return
        self.tls.write(data)
        self.sock.sendall(self.bio_out.read())

    def send(self, ptype: int, payload: bytes, size: int = 4096) -> None:
        chunks = [payload[i : i + size - 8] for i in range(0, len(payload), size - 8)] or [b""]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            header = struct.pack(
                ">BBHHBB", ptype, 1 if last else 0, len(chunk) + 8, self.spid, n + 1, 0
            )
            self._send_raw(header + chunk)

    def has_input(self) -> bool:
        return bool(self.buffer) or bool(select.select([self.sock], [], [], 0.02)[0])

    # -------------------------------------------------- login
    def prelogin(self) -> None:
        ptype, _ = self.read_message()
        if ptype != PRELOGIN:
            raise ConnectionError("expected PRELOGIN")
        options = [
            (0, bytes([16, 0, 0x10, 0x00, 0, 0])),  # version 16.0.4096
            (1, b"\x01"),  # ENCRYPT_ON: the whole stream is TLS after the handshake
            (2, b"\x00"),
            (3, b""),
            (4, b"\x00"),
            (6, b"\x01"),  # FEDAUTHREQUIRED
        ]
        head_len = 5 * len(options) + 1
        head, body = b"", b""
        for token, data in options:
            head += struct.pack(">BHH", token, head_len + len(body), len(data))
            body += data
        self.send(REPLY, head + b"\xff" + body)
        # TLS handshake records travel inside PRELOGIN packets until the handshake is done.
        tls = self.server.ssl_context.wrap_bio(self.bio_in, self.bio_out, server_side=True)
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                out = self.bio_out.read()
                if out:
                    self.send(PRELOGIN, out)
                _, data = self.read_message()
                self.bio_in.write(data)
        out = self.bio_out.read()
        if out:
            self.send(PRELOGIN, out)
        self.tls = tls

    def login(self) -> None:
        ptype, p = self.read_message()
        if ptype != LOGIN7:
            raise ConnectionError("expected LOGIN7")
        ib_db, cch_db = struct.unpack_from("<HH", p, 68)
        database = p[ib_db : ib_db + 2 * cch_db].decode("utf-16-le")
        token = ""
        if p[27] & 0x10:  # fExtension: FeatureExt
            ib_ext, _ = struct.unpack_from("<HH", p, 56)
            i = struct.unpack_from("<I", p, ib_ext)[0]
            while i < len(p) and p[i] != 0xFF:
                fid, flen = p[i], struct.unpack_from("<I", p, i + 1)[0]
                data = p[i + 5 : i + 5 + flen]
                if fid == 0x02 and (data[0] >> 1) == 0x01:  # FEDAUTH, SECURITYTOKEN
                    n = struct.unpack_from("<I", data, 1)[0]
                    token = data[5 : 5 + n].decode("utf-16-le")
                i += 5 + flen
        principal = self.server.tokens.get(token)
        if principal is None:
            self.send(
                REPLY,
                error_token(18456, "Login failed for user '<token-identified principal>'.", 14)
                + done(DONE_ERROR),
            )
            raise ConnectionError("login failed")
        if database.lower() != self.server.database.lower():
            msg = f'Cannot open database "{database}" requested by the login. The login failed.'
            self.send(REPLY, error_token(4060, msg, 11) + done(DONE_ERROR))
            raise ConnectionError("bad database")
        self.principal = principal
        prog = b_varchar("Microsoft SQL Server")
        ack_body = b"\x01" + bytes([0x74, 0x00, 0x00, 0x04]) + prog + bytes([16, 0, 0x10, 0x00])
        out = b"\xad" + struct.pack("<H", len(ack_body)) + ack_body
        out += envchange(1, b_varchar(database), b_varchar("master"))
        out += envchange(7, bytes([5]) + COLLATION, b"\x00")
        out += envchange(4, b_varchar("4096"), b_varchar("4096"))
        out += b"\xae" + b"\x02" + struct.pack("<I", 0) + b"\xff"  # FEATUREEXTACK: FEDAUTH
        out += done()
        self.send(REPLY, out)

    # -------------------------------------------------- requests
    def serve(self) -> None:
        try:
            self.prelogin()
            self.login()
            with SESSIONS_LOCK:
                SESSIONS[self.spid] = self
            while not self.killed:
                ptype, payload = self.read_message()
                if ptype == ATTENTION:
                    self.send(REPLY, done(DONE_ATTN))
                elif ptype == SQL_BATCH:
                    sql = payload[struct.unpack_from("<I", payload)[0] :].decode("utf-16-le")
                    self.respond(lambda q=sql: [self.run(q, [])])
                elif ptype == TRANSACTION_MANAGER:
                    # Autocommit only: begin/commit/rollback requests are acknowledged.
                    self.send(REPLY, done())
                elif ptype == RPC:
                    self.respond(lambda p=payload: self.rpc(p))
        except (ConnectionError, OSError, ssl.SSLError) as exc:
            print(f"session {self.spid} ended: {exc!r}", file=sys.stderr, flush=True)
        finally:
            with SESSIONS_LOCK:
                SESSIONS.pop(self.spid, None)
            for name in ("db", "sock"):
                with contextlib.suppress(Exception):
                    getattr(self, name).close()

    def respond(self, work: Any) -> None:
        """Run ``work`` in a thread while watching for ATTENTION; send its tokens."""
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["out"] = work()
            except BaseException as exc:
                box["exc"] = exc

        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        attention = False
        while thread.is_alive():
            if not attention and self.has_input():
                ptype, _ = self.read_message()
                if ptype == ATTENTION:
                    attention = True
                    self.db.interrupt()
            thread.join(0.02)
            if self.killed:
                return
        if attention:
            self.send(REPLY, done(DONE_ATTN))
            return
        if "exc" in box:
            exc = box["exc"]
            number, sev = (exc.number, exc.severity) if isinstance(exc, SqlError) else (50000, 16)
            self.send(REPLY, error_token(number, str(exc), sev) + done(DONE_ERROR))
            return
        self.send(REPLY, b"".join(box["out"]))

    def rpc(self, p: bytes) -> list[bytes]:
        i = struct.unpack_from("<I", p)[0]
        if p[i : i + 2] == b"\xff\xff":
            proc = struct.unpack_from("<H", p, i + 2)[0]
            i += 4
        else:
            n = struct.unpack_from("<H", p, i)[0]
            name = p[i + 2 : i + 2 + 2 * n].decode("utf-16-le").lower()
            proc = {"sp_executesql": 10, "sp_prepare": 11, "sp_execute": 12, "sp_prepexec": 13}.get(
                name, -1
            )
            i += 2 + 2 * n
        i += 2  # option flags
        params: list[Any] = []
        while i < len(p):
            n = p[i]
            i += 1 + 2 * n + 1  # name, status flags
            value, i = read_typed_value(p, i)
            params.append(value)
        if proc == 10:  # sp_executesql @stmt, @params, values...
            return [self.run(params[0], params[2:]), _return_status(), done(0, 0, 0xFE)]
        if proc == 13:  # sp_prepexec @handle OUTPUT, @params, @stmt, values...
            handle = len(self.prepared) + 1
            self.prepared[handle] = (params[2], [])
            result = self.run(params[2], params[3:])
            return [result, _return_status(), _return_int(handle), done(0, 0, 0xFE)]
        if proc == 11:  # sp_prepare @handle OUTPUT, @params, @stmt: executed later
            handle = len(self.prepared) + 1
            self.prepared[handle] = (params[2], [])
            return [_return_status(), _return_int(handle), done(0, 0, 0xFE)]
        if proc == 12:  # sp_execute @handle, values...
            result = self.run(self.prepared[int(params[0])][0], params[1:])
            return [result, _return_status(), done(0, 0, 0xFE)]
        if proc == 15:  # sp_unprepare
            self.prepared.pop(int(params[0]), None)
            return [_return_status(), done(0, 0, 0xFE)]
        raise SqlError(2812, f"Could not find stored procedure (id {proc}).")

    def run(self, sql: str, params: list[Any]) -> bytes:
        """One statement: KILL and catalog checks here, the rest in DuckDB."""
        entry = {"spid": self.spid, "sql": sql, "state": "running", "started": time.time()}
        LOG.append(entry)
        try:
            out = self._run(sql, params)
            entry["state"] = "ok"
            return out
        except duckdb.InterruptException:
            entry["state"] = "interrupted"
            raise
        except SqlError:
            entry["state"] = "error"
            raise
        except duckdb.Error as exc:
            entry["state"] = "error"
            raise _sql_error(str(exc), sql) from None
        finally:
            entry["ended"] = time.time()

    def _run(self, sql: str, params: list[Any]) -> bytes:
        kill = re.fullmatch(r"\s*KILL\s+(\d+)\s*;?\s*", sql, re.IGNORECASE)
        if kill:
            return self.kill(int(kill.group(1)))
        grant = re.fullmatch(
            r"(?is)\s*(GRANT|REVOKE)\s+.+?\s+(?:TO|FROM)\s+\[?(\w+)\]?\s*;?\s*", sql
        )
        if grant and self.principal == "admin":
            # Coarse Fabric workspace roles: a REVOKE takes every right away, a GRANT gives back.
            change = (
                self.server.revoked.add
                if grant.group(1).upper() == "REVOKE"
                else self.server.revoked.discard
            )
            change(grant.group(2))
            return done(0, 0)
        self.server.authorize(self.principal, sql)
        peer = re.fullmatch(r"\s*SELECT\s+peer_log\(\)\s*", sql, re.IGNORECASE)
        if peer:
            rel_rows = [(json.dumps(LOG[-200:], default=str),)]
            cols = [Column("log", "VARCHAR", [rel_rows[0][0]])]
            return _result(cols, rel_rows)
        duck_sql = translate(sql, self)
        self.db.execute(duck_sql, params or None)
        if self.db.description is None:
            return done(DONE_COUNT, 0)
        rows = self.db.fetchall()
        names = [d[0] for d in self.db.description]
        types = [str(d[1]) for d in self.db.description]
        dml = re.match(r"(?is)\s*(?:/\*.*?\*/\s*)?(insert|update|delete|create|drop)\b", sql)
        if dml:
            count = rows[0][0] if rows and names == ["Count"] else 0
            return done(DONE_COUNT, int(count or 0), verb=dml.group(1).lower())
        cols = [
            Column(n, t, [r[k] for r in rows])
            for k, (n, t) in enumerate(zip(names, types, strict=True))
        ]
        return _result(cols, rows)

    def kill(self, spid: int) -> bytes:
        if self.principal not in ("admin", "zerocopy", "reader"):
            raise SqlError(6102, "User does not have permission to use the KILL statement.")
        with SESSIONS_LOCK:
            target = SESSIONS.get(spid)
        if target is None:
            raise SqlError(6106, f"Process ID {spid} is not an active process ID.")
        target.killed = True
        target.db.interrupt()
        with contextlib.suppress(OSError):
            target.sock.shutdown(socket.SHUT_RDWR)  # SQL Server drops a killed session
        return done(0, 0)


def _result(cols: list[Column], rows: list[tuple[Any, ...]]) -> bytes:
    out = [b"\x81" + struct.pack("<H", len(cols)) + b"".join(c.meta() for c in cols)]
    for row in rows:
        out.append(b"\xd1" + b"".join(c.encode(v) for c, v in zip(cols, row, strict=True)))
    out.append(done(DONE_COUNT, len(rows)))
    return b"".join(out)


def _return_status() -> bytes:
    return b"\x79" + struct.pack("<i", 0)


def _return_int(value: int) -> bytes:
    body = struct.pack("<H", 0) + b_varchar("@handle") + b"\x01" + struct.pack("<IH", 0, 1)
    return b"\xac" + body + b"\x26\x04" + b"\x04" + struct.pack("<i", value)


def _sql_error(message: str, sql: str) -> SqlError:
    """DuckDB's message → the SQL Server error a Fabric client would see."""
    m = re.search(r"Table with name (\S+) does not exist", message)
    if m:
        return SqlError(208, f"Invalid object name '{m.group(1)}'.")
    m = re.search(r'Schema with name "?([^"\s]+)"? does not exist', message)
    if m:
        return SqlError(
            2760,
            f'The specified schema name "{m.group(1)}" either does not exist or you do not have permission to use it.',
        )
    return SqlError(50000, message.splitlines()[0])


class Server:
    """Listens, hands each connection to a :class:`Session` thread."""

    def __init__(
        self, db_path: str, database: str, tokens: dict[str, str], cert: str, key: str
    ) -> None:
        self.db = duckdb.connect(db_path)
        self.database, self.tokens = database, tokens
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # the ODBC driver hangs on TLS 1.3
        ctx.load_cert_chain(cert, key)
        self.ssl_context = ctx
        self.revoked: set[str] = set()

    def authorize(self, principal: str, sql: str) -> None:
        """Fabric roles, coarsely: ``reader`` may only read; writes need ``zerocopy``/``admin``."""
        write = re.match(
            r"(?is)\s*(?:/\*.*?\*/\s*)?(create|insert|update|delete|drop|alter)\b", sql
        )
        if principal in self.revoked:
            raise SqlError(
                229,
                "The SELECT permission was denied on the object 'TABLES', "
                "database 'zc_warehouse', schema 'INFORMATION_SCHEMA'.",
                14,
            )
        if write and principal == "reader" and "#" not in sql:
            raise SqlError(262, "CREATE TABLE permission denied in database.", 14)

    def serve_forever(self, port: int) -> None:
        listener = socket.create_server(("127.0.0.1", port))
        while True:
            sock, _ = listener.accept()
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=Session(self, sock).serve, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", default=":memory:")
    parser.add_argument("--database", default="zc_warehouse")
    parser.add_argument("--token", action="append", default=[], help="TOKEN=principal")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--fixture", action="append", default=[], help="schema to load")
    parser.add_argument("--sts-port", type=int, default=0, help="token endpoint port")
    parser.add_argument("--tenant", default="peer-tenant")
    parser.add_argument(
        "--client", action="append", default=[], help="CLIENT_ID=SECRET=principal[=expired]"
    )
    args = parser.parse_args()
    tokens = dict(t.split("=", 1) for t in args.token)
    clients = {}
    for spec in args.client:
        client_id, secret, principal, *rest = spec.split("=")
        clients[client_id] = (secret, principal, bool(rest))
        tokens[f"tok-{principal}"] = principal
    if args.sts_port:
        from tests.peers.tds import token_endpoint

        token_endpoint.start(args.sts_port, args.tenant, clients)
    server = Server(args.db, args.database, tokens, args.cert, args.key)
    server.db.execute("CREATE OR REPLACE MACRO sysutcdatetime() AS now()::TIMESTAMP")
    if args.fixture:
        from fixtures import build, load_duckdb

        for schema in args.fixture:
            load_duckdb(server.db, schema, build())
    server.serve_forever(args.port)


if __name__ == "__main__":
    main()
