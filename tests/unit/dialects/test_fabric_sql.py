"""Fabric segment SQL: the corpus cases (fabric as input and as target) with exact codes."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql
from zerocopy.sql.rules import rules_for

CASES = yaml.safe_load(
    (pathlib.Path(__file__).parents[2] / "sql_corpus" / "fabric.yaml").read_text()
)["cases"]
_CATALOG = SqlCatalog(CATALOG)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    result = check_segment_sql(
        case["sql"],
        dialect=case["dialect"],
        catalog=_CATALOG,
        scope=SCOPE,
        target=case.get("target"),
    )
    assert [issue.code for issue in result.errors] == case["expect"], result.errors
    if result.valid:
        assert result.ids_sql is not None
        assert "VARCHAR(8000)" in result.ids_sql  # ids widened in Fabric's string type


def test_corpus_has_valid_and_invalid_cases() -> None:
    kinds = {not case["expect"] for case in CASES}
    assert kinds == {True, False}


def test_fabric_rules_refuse_external_readers_and_procedures() -> None:
    rules = rules_for("fabric")
    assert rules is not None and rules.sqlglot_dialect == "fabric"
    assert {"openrowset", "openquery", "opendatasource"} <= rules.forbidden_functions
    assert {"xp_", "sp_"} <= set(rules.forbidden_prefixes)
