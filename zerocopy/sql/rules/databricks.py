"""Databricks SQL: file and stream readers, path tables, secrets, reflection, AI and HTTP calls.

https://docs.databricks.com/en/sql/language-manual/sql-ref-functions-builtin-alpha.html
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    DialectRules,
    names,
)

RULES = DialectRules(
    name="databricks",
    sqlglot_dialect="databricks",
    star_modifiers=names("except"),
    string_type="STRING",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names(
        """read_files read_kafka read_kinesis read_pubsub read_pulsar read_statestore
        read_state_metadata cloud_files_state http_request secret try_secret list_secrets
        java_method reflect try_reflect input_file_name input_file_block_start
        input_file_block_length table_changes
        vector_search sql_keywords is_member is_account_group_member remote_query"""
    ),
    forbidden_prefixes=("read_", "ai_", "http_", "cloud_files"),
    table_functions=names(
        """explode explode_outer posexplode posexplode_outer inline inline_outer stack
        range json_tuple unnest variant_explode variant_explode_outer"""
    ),
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("system"),
    file_formats=names("csv json parquet delta orc avro text binaryfile jdbc libsvm image xml"),
)
