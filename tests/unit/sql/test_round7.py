"""Red-team round 7 (issue #4): messages and positions of the refusals added this round."""

from __future__ import annotations

from tests.unit.sql.catalog import CATALOG, SCOPE
from zerocopy.sql import SqlCatalog, check_segment_sql

_CATALOG = SqlCatalog(CATALOG)


def test_quoted_qualified_function_names_its_schema_and_position() -> None:
    sql = "SELECT external_user_id,\n  `proj.finance.leak`(email) AS x FROM users"
    result = check_segment_sql(sql, dialect="bigquery", catalog=_CATALOG, scope=SCOPE)
    [issue] = result.errors
    assert issue.code == "forbidden_function"
    assert "proj.finance.leak" in issue.message and "proj.finance" in issue.message
    assert (issue.line, issue.column) == (2, 3)


def test_quoted_qualified_function_of_the_scope_is_kept_as_written() -> None:
    sql = "SELECT external_user_id, `marketing.normalize`(email) AS x FROM users"
    result = check_segment_sql(sql, dialect="bigquery", catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.errors
    assert "`marketing.normalize`(email)" in (result.sql or "")


def test_snowflake_sequence_read_is_one_forbidden_function_naming_the_sequence() -> None:
    sql = "SELECT external_user_id, marketing.user_seq.NEXTVAL AS n FROM users"
    result = check_segment_sql(sql, dialect="snowflake", catalog=_CATALOG, scope=SCOPE)
    assert [issue.code for issue in result.errors] == ["forbidden_function"]
    assert "marketing.user_seq.NEXTVAL" in result.errors[0].message
    assert (result.errors[0].line, result.errors[0].column) == (1, 26)


def test_snowflake_nextval_column_of_a_cte_is_a_column() -> None:
    sql = (
        "WITH s AS (SELECT external_user_id, 1 AS nextval FROM users) "
        "SELECT s.external_user_id, s.nextval FROM s"
    )
    result = check_segment_sql(sql, dialect="snowflake", catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.errors


def test_bigquery_aead_namespace_is_builtin_but_keys_keyset_chain_is_refused() -> None:
    """AEAD.* computes on the values and keyset it is given; KEYS.KEYSET_CHAIN reads Cloud KMS."""
    pure = "SELECT external_user_id, AEAD.DECRYPT_STRING(FROM_BASE64(plan), FROM_BASE64(email), '') AS e FROM users"
    result = check_segment_sql(pure, dialect="bigquery", catalog=_CATALOG, scope=SCOPE)
    assert result.valid, result.errors
    kms = (
        "SELECT external_user_id, AEAD.DECRYPT_STRING(KEYS.KEYSET_CHAIN('gcp-kms://k', b'w'), "
        "FROM_BASE64(email), '') AS e FROM users"
    )
    result = check_segment_sql(kms, dialect="bigquery", catalog=_CATALOG, scope=SCOPE)
    assert [issue.code for issue in result.errors] == ["forbidden_function"]
    assert "KEYSET_CHAIN" in result.errors[0].message
