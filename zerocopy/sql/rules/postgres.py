"""PostgreSQL: server file access, large objects, dblink, sleeps, backend control, SQL-in-strings.

https://www.postgresql.org/docs/current/functions-admin.html
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    COMMON_TABLE_FUNCTIONS,
    DialectRules,
    names,
)

# Functions that execute a query passed as a string (would bypass every check) or change state.
POSTGRES_FORBIDDEN = COMMON_FORBIDDEN_FUNCTIONS | names(
    """lo_import lo_export lo_open lo_create lo_unlink lo_get lo_put lo_from_bytea
    dblink dblink_exec dblink_connect dblink_open dblink_send_query
    query_to_xml query_to_xml_and_xmlschema query_to_xmlschema cursor_to_xml cursor_to_xmlschema
    table_to_xml table_to_xml_and_xmlschema schema_to_xml database_to_xml
    ts_stat ts_rewrite nextval setval currval lastval txid_current
    set_config current_setting inet_server_addr inet_server_port"""
)

POSTGRES_ALLOWED = names("pg_typeof")

POSTGRES_TABLE_FUNCTIONS = COMMON_TABLE_FUNCTIONS | names(
    """generate_series explodinggenerateseries generateseries
    jsonb_array_elements jsonb_array_elements_text json_array_elements json_array_elements_text
    jsonb_each jsonb_each_text json_each json_each_text jsonb_object_keys json_object_keys
    regexp_split_to_table string_to_table jsonb_to_recordset json_to_recordset
    jsonb_path_query unnest"""
)

RULES = DialectRules(
    name="postgres",
    sqlglot_dialect="postgres",
    string_type="TEXT",
    forbidden_functions=POSTGRES_FORBIDDEN,
    forbidden_prefixes=("pg_", "lo_", "dblink", "txid_", "binary_upgrade_"),
    allowed_functions=POSTGRES_ALLOWED,
    function_namespaces=names("pg_catalog"),
    table_functions=POSTGRES_TABLE_FUNCTIONS,
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("pg_catalog pg_toast public_system"),
    system_table_prefixes=("pg_",),
)
