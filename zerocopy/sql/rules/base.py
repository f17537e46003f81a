"""What a dialect's rules module declares: deny-lists, allow-lists and output choices.

A dialect is data, not code in the checker: adding a warehouse is one new module in this
package exporting ``RULES`` plus one line in ``zerocopy.sql.rules.MODULES``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Table-valued constructs every dialect may use; sqlglot parses them into dedicated nodes
# (``UNNEST``, ``VALUES``), so they are allowed by node type and need no name here.
COMMON_TABLE_FUNCTIONS: frozenset[str] = frozenset({"unnest"})

# Functions that are harmful in any warehouse that has them: reading files/URLs, sleeping,
# reading secrets or session state of other queries.
COMMON_FORBIDDEN_FUNCTIONS: frozenset[str] = frozenset(
    {
        "sleep",
        "pg_sleep",
        "getenv",
        "current_setting",
        "set_config",
        "load_file",
        "read_file",
    }
)

# Schemas that are system catalogs everywhere (compared lower-case).
COMMON_SYSTEM_SCHEMAS: frozenset[str] = frozenset({"information_schema"})


@dataclass(frozen=True)
class DialectRules:
    """Rules for one input/target dialect (names compared lower-case)."""

    name: str
    """zerocopy's name for the dialect (``snowflake``, ``bigquery`` …)."""

    sqlglot_dialect: str
    """The sqlglot dialect used to parse and generate."""

    string_type: str
    """The SQL type ids are cast to in ``ids_sql`` (wide enough for any id)."""

    forbidden_functions: frozenset[str] = frozenset()
    """Scalar or table functions refused anywhere in the query."""

    forbidden_prefixes: tuple[str, ...] = ()
    """Function-name prefixes refused anywhere (``system$``, ``pg_`` …)."""

    allowed_functions: frozenset[str] = frozenset()
    """Exceptions to ``forbidden_prefixes`` (harmless functions such as ``pg_typeof``)."""

    function_namespaces: frozenset[str] = frozenset()
    """Built-in function namespaces (``HLL_COUNT.MERGE``): not user schemas, so allowed."""

    table_functions: frozenset[str] = field(default_factory=frozenset)
    """Allow-list of functions usable as a table (``FROM f(...)``); all others are refused."""

    system_schemas: frozenset[str] = COMMON_SYSTEM_SCHEMAS
    """Schemas that are system catalogs; named explicitly in the ``out_of_scope`` message."""

    system_table_prefixes: tuple[str, ...] = ()
    """Unqualified table names that the warehouse resolves to a system catalog (``pg_…``)."""

    system_tables: frozenset[str] = frozenset()
    """Metadata tables inside any schema, the scope's too (BigQuery ``dataset.__TABLES__``)."""

    table_names_fold_inconsistently: bool = False
    """sqlglot folds unqualified table names but keeps qualified ones as written (BigQuery's
    heuristic): table references are then matched case-insensitively against the catalog."""

    path_tables: bool = False
    """Whether a quoted table name that looks like a path/URL is read as a file (DuckDB)."""

    file_formats: frozenset[str] = frozenset()
    """Qualifiers that turn ``fmt.`path``` into a file read (Databricks, Spark)."""

    scope_parts: int = 2
    """How many parts a scope may have: 1 (schema) or 2 (database/project/catalog + schema)."""

    star_modifiers: frozenset[str] = frozenset()
    """The star modifiers the dialect has, of ``except`` (Snowflake/DuckDB ``EXCLUDE``),
    ``replace`` and ``rename``: a query with another one is refused for this target, since
    sqlglot writes them everywhere as is (PostgreSQL ``SELECT * EXCEPT (…)`` is a syntax error,
    and a dropped modifier would change the columns)."""

    untranslated_functions: frozenset[str] = frozenset()
    """Functions (sqlglot expression keys, e.g. ``median``) the dialect does not have and that
    sqlglot writes for it as is: a query using one is refused for this target as unsupported
    (BigQuery has no ``MEDIAN`` aggregate, only the ``PERCENTILE_CONT … OVER ()`` window)."""

    builtin_functions: str = ""
    """The file (``zerocopy/sql/rules/functions/<name>.txt``) listing every built-in function of
    the warehouse, when one can be read from a local engine: a query translated from another
    dialect that calls any other function is refused for this target (sqlglot passes
    functions it does not know through as they are, which only fail in the warehouse)."""

    qualified_user_functions: bool = False
    """Whether a function that is neither built in (``builtin_functions``) nor one of
    ``extension_functions`` must be qualified with the source's schema: an unqualified name
    resolves through the session's search path, to a function of any schema (``public``, where
    extensions and other teams' functions live), which may read other schemas or write."""

    extension_functions: frozenset[str] = frozenset()
    """Functions of widely installed, harmless extensions callable unqualified (pg_trgm's
    ``similarity``, fuzzystrmatch's ``levenshtein``, ``unaccent`` …)."""

    call_syntax: frozenset[str] = frozenset()
    """Keywords of the dialect's grammar written like a call that sqlglot reads as a function
    of that name (PostgreSQL ``XMLFOREST(…)``, ``ROW(x)``): unquoted, they are the construct and
    never a function found through the search path, so ``qualified_user_functions`` does not
    apply to them (a quoted ``"xmlforest"(…)`` still does)."""

    forbidden_types: frozenset[str] = frozenset()
    """Types a value may not be cast to (PostgreSQL ``'finance.secrets'::regclass`` looks up a
    catalog object and fails when it does not exist, like ``to_regclass``)."""


def names(*groups: str) -> frozenset[str]:
    """A lower-cased set from whitespace-separated name lists (keeps the tables readable)."""
    return frozenset(name.lower() for group in groups for name in group.split())
