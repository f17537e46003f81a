"""`SqlCatalog`: a source's tables prepared once for fast, repeated SQL checks."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect, NormalizationStrategy
from sqlglot.schema import MappingSchema


class _ScopeSchema(MappingSchema):
    """sqlglot's ``MappingSchema`` with bounded lookup caches.

    It memoizes table lookups keyed by the table expression itself (compared by structure);
    each key keeps its node, hence through parent links the whole checked query, alive for as
    long as the source's catalog stays cached (the API keeps it until the next source test),
    so every distinct query typed in an editor would stay in memory. Past `MAX_CACHED` entries
    a cache starts over: the answers are the same (pure memoization), the memory is bounded.
    """

    MAX_CACHED = 64

    def find(
        self, table: exp.Table, raise_on_missing: bool = True, ensure_data_types: bool = False
    ) -> Any:
        cache = getattr(self, "_find_cache", None)
        if isinstance(cache, dict) and len(cache) > self.MAX_CACHED:
            cache.clear()
        return super().find(
            table, raise_on_missing=raise_on_missing, ensure_data_types=ensure_data_types
        )

    def column_names(
        self,
        table: exp.Table | str,
        only_visible: bool = False,
        dialect: Any = None,
        normalize: bool | None = None,
    ) -> list[str]:
        """``MappingSchema.column_names``, answered directly for a one-level schema.

        sqlglot's resolvers ask it for every table source while qualifying, and the check's
        validation asks again: each call hashes the table node (by structure) and the dialect
        for its two caches and walks a trie. For this schema (one level ``{table: {column:
        type}}``, names already folded, ``normalize=False``, no visibility rules) the answer
        is the columns of the table named by the node's last part, or ``[]``; anything else
        takes sqlglot's path.
        """
        if (
            type(table) is exp.Table
            and dialect is None
            and not normalize
            and not self.normalize
            and not self.visible
            and self._one_level()
        ):
            name = table.args.get("this")
            if type(name) is exp.Identifier:
                columns = self.mapping.get(name.this)
                return list(columns) if isinstance(columns, dict) else []
        return super().column_names(
            table, only_visible=only_visible, dialect=dialect, normalize=normalize
        )

    def _one_level(self) -> bool:
        """Whether tables are looked up by their name alone (memoized: the mapping is fixed)."""
        found = getattr(self, "_is_one_level", None)
        if found is None:
            found = self._is_one_level = bool(self.mapping) and self.supported_table_args == (
                "this",
            )
        return found

    def _normalize_table(
        self, table: exp.Table | str, dialect: Any = None, normalize: bool | None = None
    ) -> exp.Table:
        cache = getattr(self, "_normalized_table_cache", None)
        if isinstance(cache, dict) and len(cache) > self.MAX_CACHED:
            cache.clear()
        return super()._normalize_table(table, dialect=dialect, normalize=normalize)


@dataclass(frozen=True, slots=True)
class CatalogTable:
    """One table as the catalog spells it, with its normalized column names."""

    schema: str
    name: str
    columns: frozenset[str]
    spellings: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    """normalized column -> the column as stored, for columns whose stored name is not their
    normalized one (``EXTERNAL_ID`` read as PostgreSQL's ``external_id``): the emitted SQL
    names them as stored (`zerocopy.sql.spelling`); any other column is stored as normalized."""
    lower: bool = True
    """Whether the table's name and every column are stored in lower case (a target folding
    unquoted names to lower case finds them as they are)."""

    @property
    def display(self) -> str:
        """``[database.]schema.table`` as written in the catalog (`CheckResult.tables`)."""
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class DialectView:
    """The catalog normalized for one sqlglot dialect: table lookups and per-scope schemas."""

    dialect: Dialect
    tables: dict[tuple[str, str], CatalogTable]
    """(normalized schema, normalized table) -> table."""

    databases: dict[str, frozenset[str]]
    """normalized schema -> normalized databases it was declared under (3-level catalogs)."""

    mapping: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    """normalized schema -> table -> column -> type."""

    by_scope: dict[tuple[str, bool], MappingSchema] = field(default_factory=dict)

    quoted: dict[str, str] = field(default_factory=dict)
    """For a dialect folding unquoted names to lower case (PostgreSQL): a table or
    column name as stored -> its normalized name, when the two differ (``"EXTERNAL_ID"``,
    exactly as stored, means the column PostgreSQL's unquoted ``external_id`` matches)."""

    respelled: frozenset[str] = frozenset()
    """The normalized names of ``quoted`` (a quoted name spelled like one of them, but not as
    stored, names nothing the warehouse has: ``"external_id"`` for ``EXTERNAL_ID``)."""
    """(normalized scope schema, annotate) -> a one-level MappingSchema of its tables (lazy)."""

    def scope_schema(self, schema: str, *, annotate: bool = True) -> MappingSchema:
        """The scope's tables only: the checker refuses every other table before it matters
        what sqlglot would resolve them to, and unqualified names need no lookup rules.

        ``annotate=False`` gives a schema whose dialect does not type-annotate every scope
        while qualifying columns (BigQuery does, for UNNEST sources; it costs more than the
        qualification itself and the check needs no types).
        """
        key = (schema, annotate or not self.dialect.ANNOTATE_ALL_SCOPES)
        found = self.by_scope.get(key)
        if found is None:
            dialect = self.dialect
            if not key[1]:
                dialect = copy.copy(dialect)
                dialect.ANNOTATE_ALL_SCOPES = False  # type: ignore[misc]
            tables: dict[str, object] = dict(self.mapping.get(schema, {}))
            found = _ScopeSchema(tables, dialect=dialect, normalize=False)
            self.by_scope[key] = found
        return found


class SqlCatalog:
    """A source's catalog ``{schema: {table: {column: type}}}``, cached per dialect.

    Building sqlglot's ``MappingSchema`` for 200 tables takes milliseconds, so a source keeps
    one ``SqlCatalog`` and every check against it reuses the normalized lookups. Schema keys
    may be ``"schema"`` or ``"database.schema"``; a 3-level mapping
    ``{database: {schema: {table: {column: type}}}}`` is accepted too.
    """

    def __init__(self, tables: Mapping[str, Any]) -> None:
        self._flat: dict[str, dict[str, dict[str, str]]] = {}
        self._databases: dict[str, set[str]] = {}
        self._written: dict[str, str] = {}
        for key, value in (tables or {}).items():
            if not isinstance(value, Mapping):
                continue
            if _is_three_level(value):
                for schema, schema_tables in value.items():
                    self._add(str(schema), str(key), schema_tables)
            else:
                database, _, schema = str(key).rpartition(".")
                self._add(schema, database or None, value)
        self._views: dict[str, DialectView] = {}
        chars: set[str] = set()
        for schema, schema_tables in self._flat.items():
            chars.update(schema, *self._databases.get(schema, ()))
            for table, columns in schema_tables.items():
                chars.update(table, *columns)
        self.name_chars: str = "".join(sorted(chars))
        """Every character of the catalog's names (schemas, databases, tables, columns)."""

    def _add(self, schema: str, database: str | None, tables: Any) -> None:
        """Merge one schema's tables, keeping only well-formed column mappings."""
        if not isinstance(tables, Mapping):
            return
        target = self._flat.setdefault(schema, {})
        for table, columns in tables.items():
            if isinstance(columns, Mapping):
                target[str(table)] = {str(c): str(t) for c, t in columns.items()}
        if database:
            self._databases.setdefault(schema, set()).add(database)
        # how results name the schema: as the catalog wrote it, database included
        self._written.setdefault(schema, f"{database}.{schema}" if database else schema)

    @classmethod
    def of(cls, catalog: SqlCatalog | Mapping[str, Any]) -> SqlCatalog:
        """Return ``catalog`` itself when prebuilt, else build one from the mapping."""
        return catalog if isinstance(catalog, SqlCatalog) else cls(catalog)

    def view(self, dialect: Dialect) -> DialectView:
        """The catalog normalized for ``dialect`` (built on first use, then cached)."""
        key = type(dialect).__name__
        view = self._views.get(key)
        if view is None:
            view = self._build(dialect)
            self._views[key] = view
        return view

    def _build(self, dialect: Dialect) -> DialectView:
        """Normalize names the way the dialect folds unquoted identifiers."""
        mapping: dict[str, dict[str, dict[str, str]]] = {}
        tables: dict[tuple[str, str], CatalogTable] = {}
        databases: dict[str, frozenset[str]] = {}
        types: dict[str, str] = {}  # distinct type strings are few: parse each once
        quoted: dict[str, str] = {}
        keeps_quoted_case = dialect.normalization_strategy in _QUOTED_KEEPS_CASE
        for schema, schema_tables in self._flat.items():
            norm_schema = _normalize(schema, dialect)
            target = mapping.setdefault(norm_schema, {})
            for table, columns in schema_tables.items():
                norm_table = _normalize(table, dialect)
                norm_columns: dict[str, str] = {}
                spellings: dict[str, str] = {}
                for column, type_ in columns.items():
                    key = _normalize(column, dialect)
                    if key in norm_columns and spellings.get(key, key) == key:
                        continue  # `external_id` and `"EXTERNAL_ID"`: unquoted means the first
                    norm_columns[key] = _type(type_, dialect, types)
                    if key != column:
                        spellings[key] = column
                        if keeps_quoted_case and _single_case(column):
                            quoted[column] = key
                    else:
                        spellings.pop(key, None)
                if keeps_quoted_case and norm_table != table and _single_case(table):
                    quoted[table] = norm_table
                target[norm_table] = norm_columns
                names = (table, *columns)
                tables[(norm_schema, norm_table)] = CatalogTable(
                    self._written.get(schema, schema),
                    table,
                    frozenset(norm_columns),
                    spellings,
                    all(n == n.lower() for n in names),
                )
            if schema in self._databases:
                databases[norm_schema] = frozenset(
                    _normalize(db, dialect) for db in self._databases[schema]
                )
        # MappingSchemas (normalize=False: names are folded above) are built per scope on use
        return DialectView(
            dialect,
            tables,
            databases,
            mapping,
            quoted=quoted,
            respelled=frozenset(quoted.values()),
        )

    def __len__(self) -> int:
        return sum(len(tables) for tables in self._flat.values())


def _is_three_level(value: Mapping[str, Any]) -> bool:
    """True for ``{schema: {table: {column: type}}}`` below a database key."""
    for tables in value.values():
        if not isinstance(tables, Mapping):
            return False
        for columns in tables.values():
            return isinstance(columns, Mapping)
        return False
    return False


def _type(text: str, dialect: Dialect, seen: dict[str, str]) -> str:
    """The column type if sqlglot can read it, else UNKNOWN: the optimizer parses types when
    it annotates (BigQuery), and an exotic warehouse type must not break the check."""
    known = seen.get(text)
    if known is None:
        try:
            exp.DataType.build(text, dialect=dialect)
            known = text
        except Exception:
            known = "UNKNOWN"
        seen[text] = known
    return known


# Strategies under which a catalog's single-case name in the other case was created quoted
# and must be written as stored: PostgreSQL's ``EXTERNAL_ID``. Not Snowflake's lower case:
# catalogs are commonly written in lower case for Snowflake's ordinary (upper-case stored)
# names, so there ``users`` stays the unquoted name (``"USERS"`` matches it, ``"users"`` not).
_QUOTED_KEEPS_CASE = (NormalizationStrategy.LOWERCASE,)


def _single_case(name: str) -> bool:
    """Whether a name is all lower or all upper case (`_normalize` folds it)."""
    return name == name.lower() or name == name.upper()


def _normalize(name: str, dialect: Dialect) -> str:
    """The name a query identifier must normalize to in order to mean this catalog entry.

    Warehouses report names as stored. A mixed-case name (``firstName``) can only have been
    created quoted, so it keeps its case (a query must quote it where the dialect is case
    sensitive); a single-case name is folded like an unquoted identifier, so ``users`` in a
    Snowflake catalog (many tools lower-case names) still matches an unquoted ``users``.
    """
    mixed = name != name.lower() and name != name.upper()
    return dialect.normalize_identifier(exp.Identifier(this=name, quoted=mixed)).name
