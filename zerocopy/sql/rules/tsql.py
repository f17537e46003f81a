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

RULES = DialectRules(
    name="tsql",
    sqlglot_dialect="tsql",
    string_type="NVARCHAR(4000)",
    forbidden_functions=COMMON_FORBIDDEN_FUNCTIONS
    | names("openrowset openquery opendatasource openxml"),
    forbidden_prefixes=("xp_", "sp_", "fn_"),
    table_functions=names("string_split openjson generate_series"),
    system_schemas=COMMON_SYSTEM_SCHEMAS | names("sys"),
)
