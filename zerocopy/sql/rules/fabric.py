"""Microsoft Fabric Warehouse: T-SQL under sqlglot's ``fabric`` dialect, with its own deny-list.

Refused: external readers (OPENROWSET, OPENQUERY, OPENDATASOURCE, OPENXML), every system and
extended procedure or function by prefix (``sp_``, ``xp_``, ``fn_``), and functions that read
session or server state (SESSION_CONTEXT, CONTEXT_INFO, HAS_PERMS_BY_NAME …). Statements
(EXEC, BULK INSERT, KILL, WAITFOR) are not SELECTs and fail the read-only rule already.
https://learn.microsoft.com/fabric/data-warehouse/tsql-surface-area
"""

from dataclasses import replace

from zerocopy.sql.rules.base import names
from zerocopy.sql.rules.tsql import RULES as TSQL_RULES

FABRIC_FORBIDDEN = TSQL_RULES.forbidden_functions | names(
    "openrowset openquery opendatasource openxml",
    "session_context context_info has_perms_by_name is_member is_srvrolemember",
    "suser_sname suser_name suser_sid user_name original_login permissions",
    "connectionproperty serverproperty databasepropertyex",
    "pwdencrypt pwdcompare certencoded certprivatekey decryptbykey encryptbykey",
)

RULES = replace(
    TSQL_RULES,
    name="fabric",
    sqlglot_dialect="fabric",
    # Fabric has no NVARCHAR storage in tables; VARCHAR(8000) is its widest non-MAX string.
    string_type="VARCHAR(8000)",
    forbidden_functions=FABRIC_FORBIDDEN,
    forbidden_prefixes=("xp_", "sp_", "fn_", "dm_"),
)
