"""Snowflake: stages, ``SYSTEM$`` functions, result scans, history and metadata table functions.

https://docs.snowflake.com/en/sql-reference/functions-table and .../functions-system
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    DialectRules,
    names,
)

RULES = DialectRules(
    name="snowflake",
    sqlglot_dialect="snowflake",
    star_modifiers=names("except replace rename"),
    string_type="VARCHAR",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names(
        """result_scan last_query_id get_ddl infer_schema validate validate_pipe_load
        external_table_files external_table_file_registration_history
        get_presigned_url build_scoped_file_url build_stage_file_url get_stage_location
        get_relative_path get_absolute_path directory
        query_history query_history_by_session query_history_by_user query_history_by_warehouse
        login_history login_history_by_user copy_history task_history warehouse_load_history
        warehouse_metering_history automatic_clustering_history stage_storage_usage_history
        policy_references tag_references tag_references_all_columns rest_event_history
        system_call extract_semantic_categories to_file try_to_file
        is_role_in_session is_database_role_in_session is_application_role_in_session
        is_granted_to_invoker_role current_available_roles getvariable
        getnextval""",
        # SNOWFLAKE.CORTEX's functions by their bare names (reachable unqualified through a
        # SEARCH_PATH naming snowflake.cortex): each sends the values to a hosted model.
        # TRANSLATE is not among them: unqualified it is the built-in character replacement.
        """complete try_complete sentiment entity_sentiment summarize extract_answer
        classify_text embed_text_768 embed_text_1024 count_tokens parse_document
        split_text_recursive_character finetune""",
    ),
    # AI_COMPLETE/AI_FILTER/AI_CLASSIFY… send rows to a model (SNOWFLAKE.CORTEX.* already is
    # refused as another schema's function); FL_* read the metadata of staged files
    forbidden_prefixes=("system$", "ai_", "fl_"),
    # The table functions a segment may need: flattening semi-structured data, splitting
    # strings and generating rows. Everything else in TABLE(...) is refused.
    table_functions=names("flatten split_to_table strtok_split_to_table generator unnest explode"),
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("account_usage snowflake snowflake_sample_data"),
)
