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
    set_config current_setting inet_server_addr inet_server_port""",
    # catalog probes: whether other tables/schemas exist or what the role may do there
    """has_table_privilege has_column_privilege has_any_column_privilege
    has_database_privilege has_schema_privilege has_function_privilege
    has_sequence_privilege has_foreign_data_wrapper_privilege has_language_privilege
    has_server_privilege has_tablespace_privilege has_type_privilege has_parameter_privilege
    to_regclass to_regproc to_regprocedure to_regoper to_regoperator to_regtype
    to_regtypemod to_regnamespace to_regrole to_regcollation
    obj_description col_description shobj_description current_schemas""",
    # read other schemas or relations named in a string: whole schemas/databases as XML (data
    # included), raw pages, tuple/lock statistics, xml2's query on a named relation
    """schema_to_xmlschema schema_to_xml_and_xmlschema database_to_xmlschema
    database_to_xml_and_xmlschema table_to_xmlschema xpath_table get_raw_page
    pgstattuple pgstattuple_approx pgstatindex pgstatginindex pgstathashindex pgrowlocks
    bt_index_check bt_index_parent_check verify_heapam row_security_active""",
    # large-object I/O by descriptor (lowrite writes, loread reads any large object), the
    # session's random seed, the client's address, postgres_fdw's connection cache, and
    # pageinspect/currtid readers of another relation named in a string
    """loread lowrite setseed inet_client_addr inet_client_port
    postgres_fdw_get_connections postgres_fdw_disconnect postgres_fdw_disconnect_all
    currtid currtid2 bt_metap bt_page_stats bt_page_items bt_multi_page_stats
    brin_page_items brin_metapage_info brin_revmap_data gin_metapage_info gin_page_opaque_info
    gin_leafpage_items hash_page_items hash_page_stats hash_metapage_info hash_bitmap_info
    heap_page_items heap_page_item_attrs page_header fsm_page_contents tuple_data_split""",
    # extensions usually installed in `public`, so callable unqualified: pgsql-http's requests,
    # tablefunc/pgRouting/HypoPG/Citus functions that run SQL text or read a relation named in a
    # string, pg_trgm's session threshold, TimescaleDB's chunk and job management
    """http http_get http_post http_put http_patch http_delete http_head http_set_curlopt
    http_reset_curlopt crosstab crosstab2 crosstab3 crosstab4 connectby set_limit
    run_command_on_workers run_command_on_shards run_command_on_placements
    run_command_on_all_nodes run_command_on_colocated_placements master_run_on_worker
    create_distributed_table create_reference_table undistribute_table
    drop_chunks compress_chunk decompress_chunk recompress_chunk move_chunk reorder_chunk
    show_chunks add_job alter_job delete_job run_job add_retention_policy
    remove_retention_policy add_compression_policy remove_compression_policy
    add_continuous_aggregate_policy remove_continuous_aggregate_policy
    refresh_continuous_aggregate create_hypertable set_chunk_time_interval""",
    # pgTAP's assertions run the SQL text they are given
    """lives_ok throws_ok throws_like throws_ilike throws_matching dies_ok results_eq results_ne
    set_eq set_ne set_has set_hasnt bag_eq bag_ne bag_has bag_hasnt is_empty isnt_empty
    row_eq performs_ok performs_within runtests do_tap""",
    # index maintenance with side effects
    """brin_summarize_new_values brin_summarize_range brin_desummarize_range
    gin_clean_pending_list""",
)

# pg_ functions that only compute on their arguments: a value's type and stored size, byte
# counts to and from text
POSTGRES_ALLOWED = names("pg_typeof pg_column_size pg_size_pretty pg_size_bytes")

# Object-identifier types: a cast to one looks the name up in the catalog (a probe of other
# schemas' tables, roles, functions), like the to_reg* functions above.
POSTGRES_FORBIDDEN_TYPES = names(
    """regclass regproc regprocedure regoper regoperator regtype regnamespace regrole
    regcollation regconfig regdictionary"""
)

POSTGRES_TABLE_FUNCTIONS = COMMON_TABLE_FUNCTIONS | names(
    """generate_series explodinggenerateseries generateseries
    jsonb_array_elements jsonb_array_elements_text json_array_elements json_array_elements_text
    jsonb_each jsonb_each_text json_each json_each_text jsonb_object_keys json_object_keys
    regexp_split_to_table string_to_table jsonb_to_recordset json_to_recordset
    jsonb_path_query unnest generate_subscripts regexp_matches
    json_populate_recordset jsonb_populate_recordset json_to_record jsonb_to_record
    json_populate_record jsonb_populate_record
    json_table jsontable"""  # JSON_TABLE (PostgreSQL 17); sqlglot's node is JSONTable
)

# Functions of contrib extensions that only compute on their arguments (pg_trgm, fuzzystrmatch,
# unaccent, uuid-ossp, pgcrypto's digests, citext, intarray, hstore, ltree): usually installed
# in `public`, so called unqualified.
POSTGRES_EXTENSION_FUNCTIONS = names(
    """similarity word_similarity strict_word_similarity show_trgm show_limit levenshtein
    levenshtein_less_equal soundex difference metaphone dmetaphone dmetaphone_alt
    daitch_mokotoff unaccent uuid_generate_v1 uuid_generate_v1mc uuid_generate_v3
    uuid_generate_v4 uuid_generate_v5 uuid_nil uuid_ns_dns uuid_ns_url uuid_ns_oid uuid_ns_x500
    digest hmac crypt gen_salt gen_random_bytes citext icount sort sort_asc sort_desc uniq idx
    subarray intset akeys avals skeys svals hstore hstore_to_json hstore_to_jsonb exist
    defined nlevel subltree subpath index text2ltree ltree2text lca"""
) | names(
    # PostGIS geometry/geography functions (computations on their arguments; its management
    # functions such as AddGeometryColumn, and raster functions that may read out-db files, are
    # not here) and earthdistance's: a marketing query's "users within 10 km of a store".
    """st_distance st_distancesphere st_distance_sphere st_distancespheroid st_dwithin
    st_dfullywithin st_contains st_containsproperly st_within st_covers st_coveredby
    st_intersects st_disjoint st_touches st_overlaps st_crosses st_equals st_makepoint
    st_point st_pointz st_setsrid st_srid st_transform st_x st_y st_z st_m st_geomfromtext
    st_geogfromtext st_geographyfromtext st_geomfromgeojson st_geomfromwkb st_astext
    st_asgeojson st_asewkt st_buffer st_area st_length st_perimeter st_centroid
    st_pointonsurface st_envelope st_makeenvelope st_expand st_npoints st_numgeometries
    st_geometrytype st_isvalid st_isempty st_union st_intersection st_difference
    st_collect st_extent st_closestpoint st_azimuth st_project st_geohash st_pointfromgeohash
    st_simplify st_convexhull st_startpoint st_endpoint st_makeline st_makepolygon
    earth_distance ll_to_earth earth_box earth latitude longitude geo_distance
    cube_distance"""
)

RULES = DialectRules(
    name="postgres",
    sqlglot_dialect="postgres",
    # no STRUCT(x AS a) constructor (ROW(...) has no field names): sqlglot writes it as is
    untranslated_functions=names("struct"),
    builtin_functions="postgres",
    string_type="TEXT",
    forbidden_functions=POSTGRES_FORBIDDEN | POSTGRES_FORBIDDEN_TYPES,  # regclass('t') too
    forbidden_prefixes=(
        "pg_",
        "lo_",
        "dblink",
        "txid_",
        "binary_upgrade_",
        "postgres_fdw",
        "http_",
        "pgr_",
        "hypopg",
        "citus_",
        "master_",  # Citus: master_get_table_ddl_events, master_create_empty_shard …
    ),
    allowed_functions=POSTGRES_ALLOWED,
    function_namespaces=names("pg_catalog"),
    table_functions=POSTGRES_TABLE_FUNCTIONS,
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("pg_catalog pg_toast public_system"),
    system_table_prefixes=("pg_",),
    forbidden_types=POSTGRES_FORBIDDEN_TYPES,
    qualified_user_functions=True,
    extension_functions=POSTGRES_EXTENSION_FUNCTIONS,
    # the grammar's call-like constructs (func_expr_common_subexpr) with no pg_proc entry of
    # their name that sqlglot reads as plain calls: XMLCONCAT/XMLFOREST …, ROW(x)
    call_syntax=names(
        """row xmlconcat xmlelement xmlexists xmlforest xmlparse xmlpi xmlroot xmlserialize
        xmlattributes xmltable json_object json_array json_objectagg json_arrayagg json_scalar
        json_serialize json_query json_value json_exists json_table"""
    ),
)
