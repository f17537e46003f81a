"""Microsoft Fabric warehouse: the T-SQL rules under the Fabric sqlglot dialect."""

from dataclasses import replace

from zerocopy.sql.rules.tsql import RULES as TSQL_RULES

RULES = replace(TSQL_RULES, name="fabric", sqlglot_dialect="fabric", string_type="VARCHAR(8000)")
