"""BigQuery: federated and external queries, ML/AI table functions, change-history readers.

https://cloud.google.com/bigquery/docs/reference/standard-sql/federated_query_functions
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    DialectRules,
    names,
)

RULES = DialectRules(
    name="bigquery",
    sqlglot_dialect="bigquery",
    untranslated_functions=names("median"),
    star_modifiers=names("except replace"),
    string_type="STRING",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names(
        """external_query external_object_transform appends changes vector_search
        obj.fetch_metadata obj.make_ref obj.get_access_url
        keys.new_keyset keys.add_key_from_raw_bytes"""
    ),
    forbidden_prefixes=("ml.", "ai.", "obj.", "keys.", "external_"),
    # SAFE. and NET. are parsed into dedicated nodes; these arrive as `namespace.fn()`. AEAD.*
    # encrypts/decrypts values with the keyset it is given (KEYS.KEYSET_CHAIN, which reads a
    # Cloud KMS key, stays refused with the KEYS. prefix).
    function_namespaces=names("hll_count kll_quantiles approx_quantiles aead"),
    table_functions=names("unnest"),
    system_schemas=COMMON_SYSTEM_SCHEMAS,
    system_tables=names("__tables__ __tables_summary__ __partitions_summary__"),
    table_names_fold_inconsistently=True,
)
