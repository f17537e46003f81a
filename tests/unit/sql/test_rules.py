"""The per-dialect rules modules: registered, well-formed, and used for what they declare."""

from __future__ import annotations

import pytest
from sqlglot.dialects.dialect import Dialect

from zerocopy.sql.rules import MODULES, WAREHOUSE_DIALECTS, DialectRules, rules_for


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_registered_dialect_loads(name: str) -> None:
    rules = rules_for(name)
    assert isinstance(rules, DialectRules)
    Dialect.get_or_raise(rules.sqlglot_dialect)  # a dialect sqlglot knows
    for group in (
        rules.forbidden_functions,
        rules.allowed_functions,
        rules.table_functions,
        rules.system_schemas,
        rules.file_formats,
        rules.function_namespaces,
    ):
        assert all(item == item.lower() for item in group)
    assert all(p == p.lower() for p in rules.forbidden_prefixes + rules.system_table_prefixes)
    # an allowed table function must not be forbidden at the same time
    assert (
        not {
            f
            for f in rules.table_functions
            if f in rules.forbidden_functions or f.startswith(rules.forbidden_prefixes)
        }
        - rules.allowed_functions
    )


def test_warehouse_dialects_have_rules_and_names_are_case_insensitive() -> None:
    assert set(WAREHOUSE_DIALECTS) <= set(MODULES)
    assert rules_for("SnowFlake") is rules_for("snowflake")
    assert rules_for("mysql") is None
