"""Amazon Redshift: the PostgreSQL rules plus Redshift's system tables and federated readers.

https://docs.aws.amazon.com/redshift/latest/dg/cm_chap_system-tables.html
"""

from zerocopy.sql.rules.base import DialectRules, names
from zerocopy.sql.rules.postgres import (
    POSTGRES_ALLOWED,
    POSTGRES_FORBIDDEN,
    POSTGRES_FORBIDDEN_TYPES,
)

RULES = DialectRules(
    name="redshift",
    sqlglot_dialect="redshift",
    star_modifiers=names("except"),
    # Redshift has no ARRAY_AGG (LISTAGG builds text; SUPER arrays come from ARRAY(...)) and
    # no STRUCT(x AS a) constructor: sqlglot writes them as is, functions Redshift does not know
    untranslated_functions=names("arrayagg arrayuniqueagg struct"),
    # A bare VARCHAR is VARCHAR(256) in Redshift: ids longer than that would fail the CTAS.
    string_type="VARCHAR(65535)",
    forbidden_functions=POSTGRES_FORBIDDEN
    | POSTGRES_FORBIDDEN_TYPES
    | names("has_table_privilege has_assumerole_privilege slice_num"),
    forbidden_prefixes=(
        "pg_",
        "lo_",
        "dblink",
        "txid_",
        "postgres_fdw",
        "http_",
        "pgr_",
        "hypopg",
        "citus_",
        "master_",
        "stl_",
        "stv_",
        "svv_",
        "svl_",
        "sys_",
    ),
    allowed_functions=POSTGRES_ALLOWED,
    function_namespaces=names("pg_catalog"),
    # Redshift has no set-returning functions in FROM besides UNNEST-like navigation of SUPER.
    table_functions=names("unnest"),
    system_schemas=names("information_schema pg_catalog pg_internal sys"),
    # STCS_/STLL_: the concurrency-scaling and internal copies of the STL tables
    system_table_prefixes=(
        "pg_",
        "stl_",
        "stv_",
        "svv_",
        "svl_",
        "svcs_",
        "stcs_",
        "stll_",
        "sys_",
    ),
    forbidden_types=POSTGRES_FORBIDDEN_TYPES,
)
