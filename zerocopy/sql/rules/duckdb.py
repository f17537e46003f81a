"""DuckDB (the embedded default): file readers, replacement scans, extensions and pragmas.

https://duckdb.org/docs/stable/data/overview and https://duckdb.org/docs/stable/sql/functions/utility
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    COMMON_TABLE_FUNCTIONS,
    DialectRules,
    names,
)

RULES = DialectRules(
    name="duckdb",
    sqlglot_dialect="duckdb",
    star_modifiers=names("except replace rename"),
    builtin_functions="duckdb",
    string_type="VARCHAR",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names(
        """glob query query_table sniff_csv which_secret checkpoint force_checkpoint
        load_extension install_extension enable_profiling disable_profiling shell
        json_execute_serialized_sql sql_auto_complete getvariable setvariable
        read_csv read_csv_auto read_parquet parquet_scan read_json read_json_auto read_ndjson
        read_ndjson_auto read_json_objects read_ndjson_objects read_text read_blob read_xlsx
        iceberg_scan delta_scan sqlite_scan postgres_scan mysql_scan postgres_query mysql_query
        postgres_execute mysql_execute excel_scan ducklake_snapshots arrow_scan
        txid_current nextval currval setval setseed file_exists
        load_aws_credentials write_log prompt enable_logging disable_logging
        truncate_duckdb_logs
        st_read st_read_meta st_readosm st_readshp st_drivers st_read_auto""",
        # DuckDB 1.4+/2.0: sleeping, changing the parser for every later query, scanning the
        # host process's Python objects, the server's and client's addresses, another
        # database's block size (whether it is attached)
        """sleep_ms add_grammar_extension remove_grammar_extension pandas_scan
        python_arrow_scan inet_client_addr inet_client_port inet_server_addr inet_server_port
        get_block_size""",
        # DuckDB 2.0: keys of a named index of any table (catalog/schema/table in a struct),
        # registering resource types, mapping rows through the host's Python functions
        "index_key register_external_resource_type python_map_function",
        # SQL text bound or plans executed: the plan of `SELECT * FROM finance.secrets` names
        # its columns and types (json_serialize_plan, get_substrait); from_substrait runs one
        """json_serialize_plan get_substrait get_substrait_json from_substrait
        from_substrait_json sqlsmith fuzzyduck reduce_sql_statement""",
        # PostgreSQL-compatible catalog macros: view and constraint sources, comments and
        # privileges of objects in other schemas (pg_get_viewdef, col_description …)
        """has_table_privilege has_column_privilege has_any_column_privilege
        has_database_privilege has_schema_privilege has_function_privilege
        has_sequence_privilege has_foreign_data_wrapper_privilege has_language_privilege
        has_server_privilege has_tablespace_privilege has_type_privilege
        obj_description col_description shobj_description current_schemas in_search_path""",
    ),
    forbidden_prefixes=(
        "read_",
        "pg_",  # pg_get_viewdef, pg_get_constraintdef, pg_table_is_visible … (pg_typeof allowed)
        "duckdb_",
        "pragma_",
        "parquet_",
        "sqlite_",
        "postgres_",
        "mysql_",
        "iceberg_",
        "delta_",
        "ducklake_",
        "arrow_",
        "test_",
        "http_",  # http_client extension: http_get/http_post
        "odbc_",  # odbc_scanner: odbc_scan/odbc_query against another database
        "bigquery_",  # bigquery extension: bigquery_scan/bigquery_query/bigquery_execute
    ),
    allowed_functions=names("pg_typeof pg_size_pretty"),
    table_functions=COMMON_TABLE_FUNCTIONS
    | names(
        "range generate_series explodinggenerateseries generateseries unnest json_each json_tree"
    ),
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("pg_catalog main_system system temp"),
    # built-in views in main: duckdb_tables, pg_class, sqlite_master, pragma_database_list
    system_table_prefixes=("duckdb_", "pg_", "sqlite_", "pragma_"),
    path_tables=True,
    qualified_user_functions=True,
)
