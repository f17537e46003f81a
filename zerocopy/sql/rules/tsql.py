"""T-SQL (SQL Server) as an input dialect; the Fabric rules build on it.

Only the structural rules apply so far (read-only, scope, columns); the Fabric helper adds
the deny-list of OPENROWSET, OPENQUERY, xp_ procedures etc. here.
"""

from zerocopy.sql.rules.base import (
    COMMON_FORBIDDEN_FUNCTIONS,
    COMMON_SYSTEM_SCHEMAS,
    DialectRules,
    names,
)

# Metadata and security functions that look up objects by name or id: whether a table of
# another schema exists and its columns (OBJECT_ID('finance.secrets'), COL_LENGTH), the source
# of views and procedures (OBJECT_DEFINITION), roles and files; the equivalents of
# PostgreSQL's to_regclass/obj_description. learn.microsoft.com/sql/t-sql/functions/
# metadata-functions-transact-sql and .../security-functions-transact-sql
TSQL_CATALOG_PROBES = names(
    """object_id object_name object_schema_name object_definition objectproperty
    objectpropertyex col_length col_name columnproperty index_col indexkey_property
    indexproperty schema_id schema_name type_id type_name typeproperty db_id db_name
    original_db_name file_id file_idex file_name filegroup_id filegroup_name
    filegroupproperty fileproperty filepropertyex fulltextcatalogproperty
    fulltextserviceproperty stats_date assemblyproperty applock_mode applock_test
    database_principal_id has_dbaccess is_rolemember loginproperty sessionproperty suser_id
    user_id"""
)

# Session, server and key state (the values Fabric refuses too): SESSION_CONTEXT and
# CONTEXT_INFO carry what other code stored in the session, the rest name the server, the
# login's roles and permissions, or decrypt with the server's keys.
TSQL_SESSION_PROBES = names(
    """session_context context_info has_perms_by_name is_member is_srvrolemember
    original_login permissions connectionproperty serverproperty databasepropertyex
    certproperty pwdencrypt pwdcompare certencoded certprivatekey decryptbykey encryptbykey
    decryptbykeyautocert decryptbykeyautoasymkey decryptbycert decryptbyasymkey
    signbycert signbyasymkey"""
)

RULES = DialectRules(
    name="tsql",
    sqlglot_dialect="tsql",
    # no MEDIAN aggregate, and no arrays (ARRAY_AGG) or structs (STRUCT(x AS a)) in T-SQL/Fabric
    untranslated_functions=names("median arrayagg arrayuniqueagg struct"),
    string_type="NVARCHAR(4000)",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names("openrowset openquery opendatasource openxml")
    | TSQL_CATALOG_PROBES
    | TSQL_SESSION_PROBES,
    forbidden_prefixes=("xp_", "sp_", "fn_"),
    table_functions=names("string_split openjson generate_series"),
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("sys"),
)
