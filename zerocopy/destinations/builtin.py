"""The built-in profile store: the embedded default destination, in the state database.

Semantics (the same as the HTTP destination's receiver is expected to apply):

* a profile is found by its external id, alias (label + name), braze id, e-mail or phone;
  e-mail and phone match the **most recently updated** profile with that value;
* an external id, alias, e-mail or phone that matches nothing creates a profile; a braze id
  never creates one (row error ``unknown_braze_id``);
* attributes merge key by key, a ``null`` value removes the key;
* events and purchases are appended to the profile; user deletes remove the profile with
  its aliases, events and purchases;
* catalog items and accounts are upserted by id (fields merged, ``null`` removes) and
  removed when ``DELETED`` is true.

Every batch is applied, and the sync's watermark written, in **one transaction**
(``COMMITS_WATERMARK``): a failed, cancelled or killed run leaves both as they were.
Profile ids are derived from the identifier that created the profile (UUID v5), so a
re-run from the same watermark rebuilds exactly the same store.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from zerocopy.destinations.protocol import DeliveryBatch, DeliveryResult, RowRejection
from zerocopy.state.db import Database
from zerocopy.state.models import UTCDateTime, utcnow
from zerocopy.state.sync_models import (
    StoreAccount,
    StoreAlias,
    StoreCatalogItem,
    StoreEvent,
    StoreProfile,
    StorePurchase,
    Sync,
)
from zerocopy.sync import types as t
from zerocopy.sync.types import DataType, Identifier, ValidRow
from zerocopy.sync.validate import gc_paused, parse_timestamp_us
from zerocopy.sync.watermark import from_micros

PROFILE_NAMESPACE = uuid.UUID("6f1c2a8e-2d4b-4c1e-9a57-0c6f3b1d9e21")
_NAMESPACE_BYTES = PROFILE_NAMESPACE.bytes
IN_CHUNK = 500
"""Values per ``IN (...)`` lookup (SQLite's default variable limit is 999 on old builds)."""

_PROFILE_COLS = ("id", "external_id", "braze_id", "email", "phone", "attributes", "updated_at")


def profile_id(workspace_id: str, ident: Identifier) -> str:
    """Deterministic id of the profile a given identifier creates."""
    key = f"{workspace_id}|{ident.kind}|{ident.value}|{ident.label or ''}"
    # uuid.uuid5 spelled out (SHA-1 of namespace + name, version 5, RFC 4122 variant): the
    # same ids, without the UUID object per row.
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def merge_fields(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Top-level merge; a ``None`` value removes the key."""
    merged = dict(current)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


class BuiltinStore:
    """Destination writing into the ``store_*`` tables of the state database."""

    KIND: ClassVar[str] = "builtin"
    COMMITS_WATERMARK: ClassVar[bool] = True

    ANALYZE_FIRST_AFTER_ROWS: ClassVar[int] = 5_000
    """PostgreSQL: refresh the profile tables' statistics after this many new rows, then after
    twice as many each time. Without it the planner keeps the estimate of an empty table while
    a first sync fills it, and identifier lookups fall back to scanning the whole workspace."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._new_rows = 0
        self._analyze_after = self.ANALYZE_FIRST_AFTER_ROWS

    async def aclose(self) -> None:
        """Nothing to release: the state database belongs to the caller."""

    async def deliver(self, batch: DeliveryBatch) -> DeliveryResult:
        """Apply ``batch`` and store ``batch.watermark`` on the sync, in one transaction."""
        async with self.db.transaction() as s:
            if batch.data_type.is_user_type:
                rejections, created = await _apply_users(s, batch)
                self._new_rows += created
            elif batch.data_type is DataType.CATALOG_ITEMS:
                rejections = await _apply_keyed(s, batch, StoreCatalogItem)
            else:
                rejections = await _apply_keyed(s, batch, StoreAccount)
            await s.execute(
                sa.update(Sync)
                .where(Sync.id == batch.sync_id)
                .values(watermark=batch.watermark.to_json())
            )
        if self.db.is_postgres and self._new_rows >= self._analyze_after:
            async with self.db.engine.connect() as conn:
                await conn.execute(sa.text("ANALYZE store_profile, store_alias"))
                await conn.commit()
            self._new_rows, self._analyze_after = 0, self._analyze_after * 2
        return DeliveryResult(
            accepted=True, delivered=len(batch.rows) - len(rejections), rejections=rejections
        )


# ------------------------------------------------------------------ user types
class _Profiles:
    """The profiles a batch touches, loaded up front, resolved and changed in memory."""

    def __init__(self, workspace_id: str) -> None:
        self.ws = workspace_id
        self.by_id: dict[str, dict[str, Any]] = {}
        self.by_external: dict[str, str] = {}
        self.by_braze: dict[str, str] = {}
        self.by_alias: dict[tuple[str, str], str] = {}
        self.by_email: dict[str, str] = {}
        self.by_phone: dict[str, str] = {}
        self.new: set[str] = set()
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        self.new_aliases: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.by_id[row["id"]] = row
        if row["external_id"]:
            self.by_external[row["external_id"]] = row["id"]
        self.by_braze[row["braze_id"]] = row["id"]
        for key, index in (("email", self.by_email), ("phone", self.by_phone)):
            value = row[key]
            if value is None:
                continue
            # Most recently updated wins (ties: smallest id, so the choice is deterministic).
            other = self.by_id.get(index.get(value, ""))
            if other is None or (row["updated_at"], other["id"]) > (
                other["updated_at"],
                row["id"],
            ):
                index[value] = row["id"]

    def find(self, ident: Identifier) -> str | None:
        if ident.kind == "external_id":
            return self.by_external.get(ident.value)
        if ident.kind == "alias":
            return self.by_alias.get((ident.label or "", ident.value))
        if ident.kind == "braze_id":
            return self.by_braze.get(ident.value)
        if ident.kind == "email":
            return self.by_email.get(ident.value)
        return self.by_phone.get(ident.value)

    def create(self, ident: Identifier, when: datetime) -> dict[str, Any]:
        pid = profile_id(self.ws, ident)
        row: dict[str, Any] = {
            "id": pid,
            "external_id": ident.value if ident.kind == "external_id" else None,
            "braze_id": pid.replace("-", ""),
            "email": ident.value if ident.kind == "email" else None,
            "phone": ident.value if ident.kind == "phone" else None,
            "attributes": {},
            "updated_at": when,
        }
        self.new.add(pid)
        self.add(row)
        if ident.kind == "alias":
            key = (ident.label or "", ident.value)
            self.by_alias[key] = pid
            self.new_aliases.append(
                {
                    "workspace_id": self.ws,
                    "alias_label": key[0],
                    "alias_name": key[1],
                    "profile_id": pid,
                }
            )
        return row

    def touch(self, pid: str, when: datetime) -> None:
        row = self.by_id[pid]
        if when > row["updated_at"]:
            row["updated_at"] = when
            for key, index in (("email", self.by_email), ("phone", self.by_phone)):
                if row[key] is not None:
                    index[row[key]] = pid
        if pid not in self.new:
            self.dirty.add(pid)

    def delete(self, pid: str) -> None:
        row = self.by_id.pop(pid)
        for index in (self.by_external, self.by_braze, self.by_email, self.by_phone):
            for key in [k for k, v in index.items() if v == pid]:
                del index[key]
        for alias in [k for k, v in self.by_alias.items() if v == pid]:
            del self.by_alias[alias]
        self.new_aliases = [a for a in self.new_aliases if a["profile_id"] != pid]
        self.dirty.discard(pid)
        if pid in self.new:
            self.new.discard(pid)
        else:
            self.deleted.add(pid)
        del row


def _table(model: type[Any]) -> sa.Table:
    """The Core table of a mapped class (typed, for executemany inserts)."""
    table: sa.Table = model.__table__
    return table


def _dumps(value: Any) -> str:
    """JSON text of a column value: orjson, or the standard library for what orjson refuses."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # e.g. Decimal or an int past 64 bits: same result as SQLAlchemy's JSON
        return json.dumps(value)


def _sqlite_datetime(value: datetime | None) -> str | None:
    """What ``UTCDateTime`` stores on SQLite: naive UTC text, always with microseconds."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"
    )


def _sqlite_params(
    conn: AsyncConnection, table: sa.Table, columns: list[str], rows: list[dict[str, Any]]
) -> list[tuple[Any, ...]]:
    """Bind values as SQLAlchemy would store them on SQLite (same text for datetimes)."""
    dialect = conn.dialect
    procs: list[Callable[[Any], Any] | None] = []
    for c in columns:
        typ = table.c[c].type
        if isinstance(typ, sa.JSON):
            procs.append(lambda v: None if v is None else _dumps(v))
        elif isinstance(typ, UTCDateTime):
            procs.append(_sqlite_datetime)
        else:
            procs.append(typ.dialect_impl(dialect).bind_processor(dialect))
    pairs = list(zip(columns, procs, strict=True))
    with gc_paused():
        return [tuple(row[c] if p is None else p(row[c]) for c, p in pairs) for row in rows]


async def _raw(s: AsyncSession) -> tuple[AsyncConnection, Any]:
    """The session's connection and its driver connection (same transaction)."""
    conn = await s.connection()
    raw = await conn.get_raw_connection()
    return conn, raw.driver_connection


async def _copy_rows(
    driver: Any, table: str, columns: list[str], json_cols: set[str], rows: list[dict[str, Any]]
) -> None:
    """PostgreSQL ``COPY ... FROM STDIN`` of ``rows`` into ``table``."""
    names = ", ".join(f'"{c}"' for c in columns)
    async with driver.cursor() as cur, cur.copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
        for row in rows:
            await copy.write_row(
                [
                    (None if row[c] is None else _dumps(row[c])) if c in json_cols else row[c]
                    for c in columns
                ]
            )


async def _bulk_insert(s: AsyncSession, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in the session's transaction: COPY on PostgreSQL, executemany elsewhere.

    Both go straight to the driver connection: SQLAlchemy's per-row parameter processing cost
    more than the database's own work.
    """
    if not rows:
        return
    columns = list(rows[0])
    conn, driver = await _raw(s)
    if conn.dialect.name == "postgresql":
        json_cols = {c for c in columns if isinstance(table.c[c].type, sa.JSON)}
        await _copy_rows(driver, table.name, columns, json_cols, rows)
        return
    if conn.dialect.name != "sqlite":
        await s.execute(table.insert(), rows)
        return
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    await driver.executemany(
        f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})',
        _sqlite_params(conn, table, columns, rows),
    )


_UPDATE_COLS = ["id", "attributes", "phone", "updated_at"]


async def _update_profiles(s: AsyncSession, dirty: list[dict[str, Any]]) -> None:
    """Write the changed profiles' attributes, phone and ``updated_at``.

    PostgreSQL: COPY into a transaction-local staging table, then one ``UPDATE ... FROM``;
    SQLite: one ``executemany`` on the driver connection.
    """
    table = _table(StoreProfile)
    conn, driver = await _raw(s)
    if conn.dialect.name == "postgresql":
        async with driver.cursor() as cur:
            await cur.execute(
                "CREATE TEMP TABLE zc_stage_profile (id text PRIMARY KEY, attributes jsonb, "
                "phone text, updated_at timestamptz) ON COMMIT DROP"
            )
        await _copy_rows(driver, "zc_stage_profile", _UPDATE_COLS, {"attributes"}, dirty)
        async with driver.cursor() as cur:
            await cur.execute(
                "UPDATE store_profile AS p SET attributes = st.attributes, phone = st.phone, "
                "updated_at = st.updated_at FROM zc_stage_profile AS st WHERE p.id = st.id"
            )
            await cur.execute("DROP TABLE zc_stage_profile")
        return
    if conn.dialect.name != "sqlite":
        await s.execute(
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(
                attributes=sa.bindparam("attributes"),
                phone=sa.bindparam("phone"),
                updated_at=sa.bindparam("updated_at"),
            ),
            [{"b_id": p["id"], **{c: p[c] for c in _UPDATE_COLS[1:]}} for p in dirty],
        )
        return
    params = _sqlite_params(conn, table, _UPDATE_COLS, dirty)
    await driver.executemany(
        "UPDATE store_profile SET attributes = ?, phone = ?, updated_at = ? WHERE id = ?",
        [(*rest, pid) for pid, *rest in params],
    )


def _chunks(values: list[Any]) -> list[list[Any]]:
    return [values[i : i + IN_CHUNK] for i in range(0, len(values), IN_CHUNK)]


async def _select_profiles(
    s: AsyncSession, ws: str, kind: str, values: list[str]
) -> list[dict[str, Any]]:
    """Profiles of ``ws`` whose ``kind`` column is one of ``values``, on the driver connection."""
    conn, driver = await _raw(s)
    select = ", ".join(_PROFILE_COLS)
    out: list[dict[str, Any]] = []
    if conn.dialect.name == "postgresql":
        async with driver.cursor() as cur:
            await cur.execute(
                f"SELECT {select} FROM store_profile WHERE workspace_id = %s AND {kind} = ANY(%s)",
                (ws, values),
            )
            for rec in await cur.fetchall():
                row = dict(zip(_PROFILE_COLS, rec, strict=True))
                row["updated_at"] = row["updated_at"].astimezone(UTC)
                out.append(row)
        return out
    if conn.dialect.name != "sqlite":
        cols = [getattr(StoreProfile, c) for c in _PROFILE_COLS]
        column = getattr(StoreProfile, kind)
        for chunk in _chunks(values):
            result = await s.execute(
                sa.select(*cols).where(StoreProfile.workspace_id == ws, column.in_(chunk))
            )
            out.extend(dict(hit) for hit in result.mappings())
        return out
    for chunk in _chunks(values):
        marks = ", ".join("?" for _ in chunk)
        cursor = await driver.execute(
            f"SELECT {select} FROM store_profile WHERE workspace_id = ? AND {kind} IN ({marks})",
            (ws, *chunk),
        )
        for rec in await cursor.fetchall():
            row = dict(zip(_PROFILE_COLS, rec, strict=True))
            row["attributes"] = _loads(row["attributes"])
            # Stored by SQLAlchemy's SQLite DATETIME as naive UTC text.
            row["updated_at"] = datetime.fromisoformat(row["updated_at"]).replace(tzinfo=UTC)
            out.append(row)
        await cursor.close()
    return out


def _loads(text: str | None) -> Any:
    """JSON column text → value (orjson; the standard library for NaN and friends)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


async def _load_profiles(s: AsyncSession, ws: str, rows: list[ValidRow]) -> _Profiles:
    profiles = _Profiles(ws)
    wanted: dict[str, set[str]] = {"external_id": set(), "braze_id": set(), "email": set()}
    wanted["phone"] = set()
    aliases: set[tuple[str, str]] = set()
    for row in rows:
        ident = row.identifier
        assert ident is not None
        if ident.kind == "alias":
            aliases.add((ident.label or "", ident.value))
        else:
            wanted[ident.kind].add(ident.value)
    cols = [getattr(StoreProfile, c) for c in _PROFILE_COLS]
    found: dict[str, dict[str, Any]] = {}
    for kind, values in wanted.items():
        if values:
            for hit in await _select_profiles(s, ws, kind, sorted(values)):
                found[hit["id"]] = hit
    alias_rows: list[Any] = []
    for chunk in _chunks(sorted(aliases)):
        labels = sorted({a[0] for a in chunk})
        names = sorted({a[1] for a in chunk})
        result = await s.execute(
            sa.select(StoreAlias.alias_label, StoreAlias.alias_name, *cols)
            .join(StoreProfile, StoreProfile.id == StoreAlias.profile_id)
            .where(
                StoreAlias.workspace_id == ws,
                StoreAlias.alias_label.in_(labels),
                StoreAlias.alias_name.in_(names),
            )
        )
        for mapping in result.mappings():
            found[mapping["id"]] = {c: mapping[c] for c in _PROFILE_COLS}
            alias_rows.append(mapping)
    for rec in found.values():
        rec["attributes"] = dict(rec["attributes"] or {})
        profiles.add(rec)
    for mapping in alias_rows:
        profiles.by_alias[(mapping["alias_label"], mapping["alias_name"])] = mapping["id"]
    return profiles


def _plan_users(
    batch: DeliveryBatch, profiles: _Profiles
) -> tuple[list[RowRejection], list[dict[str, Any]], list[dict[str, Any]]]:
    """Apply the rows to the loaded profiles in memory; the rejections, events and purchases."""
    ws = batch.workspace_id
    rejections: list[RowRejection] = []
    events: list[dict[str, Any]] = []
    purchases: list[dict[str, Any]] = []
    now = utcnow()
    for index, row in enumerate(batch.rows):
        ident = row.identifier
        assert ident is not None
        when = row.updated_at or now
        pid = profiles.find(ident)
        if batch.data_type is DataType.USER_DELETES:
            if pid is not None:
                profiles.delete(pid)
            continue
        if pid is None:
            if ident.kind == "braze_id":
                rejections.append(
                    RowRejection(
                        index,
                        t.UNKNOWN_BRAZE_ID,
                        f"no profile has braze id {ident.value!r}; a braze id only updates an "
                        "existing profile (use EXTERNAL_ID, an alias, EMAIL or PHONE to create one)",
                    )
                )
                continue
            pid = profiles.create(ident, when)["id"]
        profile = profiles.by_id[pid]
        if row.phone and profile["phone"] != row.phone:
            profile["phone"] = row.phone
            profiles.by_phone[row.phone] = pid
        profiles.touch(pid, when)
        if batch.data_type is DataType.USER_ATTRIBUTES:
            profile["attributes"] = merge_fields(profile["attributes"], row.payload)
        elif batch.data_type is DataType.CUSTOM_EVENTS:
            events.append(
                {
                    "workspace_id": ws,
                    "profile_id": pid,
                    "name": row.payload["name"],
                    "time": _time(row.payload["time"]),
                    "properties": row.payload.get("properties") or {},
                    "row_hash": row.row_hash,
                }
            )
        else:
            purchases.append(
                {
                    "workspace_id": ws,
                    "profile_id": pid,
                    "product_id": row.payload["product_id"],
                    "currency": row.payload["currency"],
                    "price": float(row.payload["price"]),
                    "quantity": int(row.payload.get("quantity", 1)),
                    "time": _time(row.payload["time"]),
                    "properties": row.payload.get("properties") or {},
                    "row_hash": row.row_hash,
                }
            )
    return rejections, events, purchases


async def _apply_users(s: AsyncSession, batch: DeliveryBatch) -> tuple[list[RowRejection], int]:
    """Apply user rows; the rejections and the number of profiles created."""
    ws = batch.workspace_id
    profiles = await _load_profiles(s, ws, batch.rows)
    with gc_paused():  # tens of thousands of small dicts, no cycles: skip the GC scans
        rejections, events, purchases = _plan_users(batch, profiles)
    # Write: deletes, new profiles, changed profiles, aliases, events, purchases.
    for chunk in _chunks(sorted(profiles.deleted)):
        for model in (StoreEvent, StorePurchase, StoreAlias):
            await s.execute(sa.delete(model).where(model.profile_id.in_(chunk)))
        await s.execute(sa.delete(StoreProfile).where(StoreProfile.id.in_(chunk)))
    new_rows = [{**profiles.by_id[pid], "workspace_id": ws} for pid in sorted(profiles.new)]
    if new_rows:
        await _bulk_insert(s, _table(StoreProfile), new_rows)
    dirty = [profiles.by_id[pid] for pid in sorted(profiles.dirty)]
    if dirty:
        await _update_profiles(s, dirty)
    if profiles.new_aliases:
        await _bulk_insert(s, _table(StoreAlias), profiles.new_aliases)
    if events:
        await _bulk_insert(s, _table(StoreEvent), events)
    if purchases:
        await _bulk_insert(s, _table(StorePurchase), purchases)
    return rejections, len(new_rows)


def _time(text: str) -> datetime:
    micros = parse_timestamp_us(text)
    assert micros is not None  # validated
    return from_micros(micros)


# ------------------------------------------------------------------ catalog items, accounts
async def _apply_keyed(
    s: AsyncSession, batch: DeliveryBatch, model: type[StoreCatalogItem] | type[StoreAccount]
) -> list[RowRejection]:
    ws = batch.workspace_id
    is_catalog = model is StoreCatalogItem
    key_col = StoreCatalogItem.item_id if is_catalog else StoreAccount.account_id
    scope = [model.workspace_id == ws]
    if is_catalog:
        scope.append(StoreCatalogItem.catalog == (batch.catalog or "default"))
    ids = sorted({r.item_id for r in batch.rows if r.item_id})
    current: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(ids):
        result = await s.execute(sa.select(model).where(*scope, key_col.in_(chunk)))
        for obj in result.scalars():
            key = str(getattr(obj, "item_id", None) or getattr(obj, "account_id", ""))
            current[key] = {
                "fields": dict(getattr(obj, "fields", None) or {}),
                "name": getattr(obj, "name", None),
                "updated_at": getattr(obj, "updated_at", None),
                "exists": True,
            }
    state = dict(current)
    for row in batch.rows:
        assert row.item_id is not None
        if row.deleted:
            state.pop(row.item_id, None)
            continue
        prev = state.get(row.item_id) or {"fields": {}, "name": None, "exists": False}
        state[row.item_id] = {
            "fields": merge_fields(prev["fields"], row.payload),
            "name": row.name or prev.get("name"),
            "updated_at": row.updated_at or utcnow(),
            "exists": prev.get("exists", False),
        }
    removed = [k for k in current if k not in state]
    for chunk in _chunks(removed):
        await s.execute(sa.delete(model).where(*scope, key_col.in_(chunk)))
    touched = {r.item_id for r in batch.rows if not r.deleted and r.item_id is not None}
    inserts, updates = [], []
    for key in sorted(touched & set(state)):
        rec = state[key]
        values: dict[str, Any] = {"fields": rec["fields"], "updated_at": rec["updated_at"]}
        if not is_catalog:
            values["name"] = rec["name"] or ""
        if key in current:
            updates.append((key, values))
        else:
            ident: dict[str, Any] = {"workspace_id": ws}
            if is_catalog:
                ident |= {"catalog": batch.catalog or "default", "item_id": key}
            else:
                ident |= {"account_id": key}
            inserts.append(ident | values)
    if inserts:
        await s.execute(_table(model).insert(), inserts)
    for key, values in updates:
        await s.execute(sa.update(model).where(*scope, key_col == key).values(**values))
    return []
