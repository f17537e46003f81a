"""Pure Snowflake helpers: the setup script, the (account, user) identity key, key rotation."""

from __future__ import annotations

import pytest

from dialects.snowflake import normalize_account, setup_sql, snowflake_identity
from zerocopy import errors, keyrotation
from zerocopy.errors import ZerocopyError
from zerocopy.secrets.keypairs import generate_rsa_keypair

KEY = generate_rsa_keypair()


def test_setup_sql_grants_everything_zerocopy_needs_for_the_users_names() -> None:
    sql = setup_sql(
        "zerocopy_svc", "zerocopy_role", "reporting_wh", "analytics", "mkt", KEY.public_key_pem
    )
    lines = [ln for ln in sql.splitlines() if ln and not ln.startswith("--")]
    assert lines[:11] == [
        "USE ROLE SECURITYADMIN;",
        "CREATE ROLE IF NOT EXISTS ZEROCOPY_ROLE;",
        "GRANT USAGE ON WAREHOUSE REPORTING_WH TO ROLE ZEROCOPY_ROLE;",
        "GRANT USAGE ON DATABASE ANALYTICS TO ROLE ZEROCOPY_ROLE;",
        "GRANT USAGE ON SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "GRANT SELECT ON ALL TABLES IN SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "GRANT SELECT ON FUTURE TABLES IN SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "GRANT SELECT ON ALL VIEWS IN SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "GRANT SELECT ON FUTURE VIEWS IN SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "GRANT CREATE TABLE ON SCHEMA ANALYTICS.MKT TO ROLE ZEROCOPY_ROLE;",
        "CREATE USER IF NOT EXISTS ZEROCOPY_SVC",
    ]
    assert lines[11:16] == [
        "  TYPE = SERVICE",
        "  DEFAULT_ROLE = ZEROCOPY_ROLE",
        "  DEFAULT_WAREHOUSE = REPORTING_WH",
        f"  RSA_PUBLIC_KEY = '{KEY.public_key_body}';",
        "GRANT ROLE ZEROCOPY_ROLE TO USER ZEROCOPY_SVC;",
    ]
    assert f"-- ALTER USER ZEROCOPY_SVC SET RSA_PUBLIC_KEY = '{KEY.public_key_body}';" in sql
    assert "PASSWORD" not in sql.upper()
    assert "BEGIN PUBLIC KEY" not in sql


def test_setup_sql_quotes_names_that_are_not_plain_identifiers() -> None:
    sql = setup_sql('Zero "Copy"', "Role-1", "WH", "Sales DB", "public", KEY.public_key_body)
    assert 'CREATE ROLE IF NOT EXISTS "Role-1";' in sql
    assert 'GRANT CREATE TABLE ON SCHEMA "Sales DB".PUBLIC TO ROLE "Role-1";' in sql
    assert 'CREATE USER IF NOT EXISTS "Zero ""Copy"""' in sql
    assert f"RSA_PUBLIC_KEY = '{KEY.public_key_body}';" in sql


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            {"account": "myorg-acct1", "user": "zerocopy"},
            {"account": "MYORG-ACCT1", "user": "ZEROCOPY"},
        ),
        (
            {
                "account": "https://myorg-acct1.snowflakecomputing.com/",
                "user": "zc",
            },
            {"account": " myorg_acct1 ", "user": "ZC"},
        ),
        (
            {"account": "xy12345.eu-west-1", "user": "svc"},
            {"account": "XY12345.EU-WEST-1.snowflakecomputing.com", "user": "SVC"},
        ),
    ],
)
def test_identity_is_the_same_for_the_same_snowflake_user(
    a: dict[str, str], b: dict[str, str]
) -> None:
    assert snowflake_identity(a) == snowflake_identity(b)


def test_identity_differs_for_other_users_or_accounts() -> None:
    base = snowflake_identity({"account": "org-a", "user": "svc"})
    assert base == "org-a/SVC"
    assert snowflake_identity({"account": "org-b", "user": "svc"}) != base
    assert snowflake_identity({"account": "org-a", "user": "svc2"}) != base
    # Login names are case-insensitive in Snowflake: every spelling is the same user.
    assert snowflake_identity({"account": "org-a", "user": "Svc"}) == base
    assert snowflake_identity({"account": "org-a", "user": '"svc"'}) == base
    assert normalize_account("https://Org-A.snowflakecomputing.com") == "org-a"
    with pytest.raises(ZerocopyError) as caught:
        snowflake_identity({"account": "org-a"})
    assert caught.value.code == errors.INVALID_CREDENTIAL


# ------------------------------------------------------------------------------ rotation
def _rotation() -> keyrotation.Rotation:
    return keyrotation.initial("zerocopy_svc", "key-1", KEY.public_key_body, KEY.fingerprint)


def test_rotation_without_downtime_walks_set_test_promote_unset() -> None:
    new = generate_rsa_keypair()
    r0 = _rotation()
    assert keyrotation.first_statement(r0) == (
        f"ALTER USER ZEROCOPY_SVC SET RSA_PUBLIC_KEY = '{KEY.public_key_body}';"
    )
    assert r0.statements() == [] and r0.login_key_id == "key-1"

    r1 = keyrotation.start(r0, "key-2", new.public_key_body, new.fingerprint)
    assert r1.phase == "pending"
    assert r1.statements() == [
        f"ALTER USER ZEROCOPY_SVC SET RSA_PUBLIC_KEY_2 = '{new.public_key_body}';"
    ]
    assert r1.login_key_id == "key-1", "the unproven key is never used for refreshes"
    assert keyrotation.keys_to_keep(r1) == {"key-1", "key-2"}

    failed = keyrotation.record_test(r1, ok=False, error="JWT token is invalid.")
    assert failed.phase == "pending" and failed.login_key_id == "key-1"
    assert failed.last_error == "JWT token is invalid."

    r2 = keyrotation.record_test(failed, ok=True)
    assert r2.phase == "retiring" and r2.login_key_id == "key-2"
    assert r2.current.slot == "RSA_PUBLIC_KEY_2" and r2.last_error is None
    assert r2.statements() == ["ALTER USER ZEROCOPY_SVC UNSET RSA_PUBLIC_KEY;"]
    assert keyrotation.keys_to_keep(r2) == {"key-1", "key-2"}

    r3 = keyrotation.finish(r2)
    assert r3.phase == "idle" and r3.statements() == []
    assert keyrotation.keys_to_keep(r3) == {"key-2"}

    # The next rotation goes back to the freed first slot.
    third = generate_rsa_keypair()
    r4 = keyrotation.start(r3, "key-3", third.public_key_body, third.fingerprint)
    assert r4.statements() == [
        f"ALTER USER ZEROCOPY_SVC SET RSA_PUBLIC_KEY = '{third.public_key_body}';"
    ]
    r5 = keyrotation.record_test(r4, ok=True)
    assert r5.statements() == ["ALTER USER ZEROCOPY_SVC UNSET RSA_PUBLIC_KEY_2;"]


def test_rotation_abort_and_illegal_steps() -> None:
    new = generate_rsa_keypair()
    r0 = _rotation()
    with pytest.raises(ZerocopyError) as caught:
        keyrotation.record_test(r0, ok=True)
    assert caught.value.code == errors.CONFLICT
    with pytest.raises(ZerocopyError):
        keyrotation.finish(r0)
    r1 = keyrotation.start(r0, "key-2", new.public_key_body, new.fingerprint)
    with pytest.raises(ZerocopyError):
        keyrotation.start(r1, "key-3", new.public_key_body, new.fingerprint)
    aborted, statements = keyrotation.abort(r1)
    assert aborted == r0
    assert statements == ["ALTER USER ZEROCOPY_SVC UNSET RSA_PUBLIC_KEY_2;"]


def test_statements_never_carry_anything_but_base64() -> None:
    bad = keyrotation.Key("k", "abc'; DROP USER x; --", "SHA256:x", "RSA_PUBLIC_KEY")
    with pytest.raises(ZerocopyError):
        keyrotation.set_key_sql("svc", bad)
    assert (
        keyrotation.unset_key_sql('we"ird', "RSA_PUBLIC_KEY")
        == 'ALTER USER "we""ird" UNSET RSA_PUBLIC_KEY;'
    )
