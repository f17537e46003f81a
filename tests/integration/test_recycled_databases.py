"""``RecycledDatabases`` (behind ``migrated_postgres_url``): a reused database is as new."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import RecycledDatabases

pytestmark = [pytest.mark.postgres]


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def test_rows_go_and_a_changed_schema_is_never_handed_out_again(
    postgres_server: str, migrated_postgres_template: str
) -> None:
    databases = RecycledDatabases(postgres_server, migrated_postgres_template)
    try:
        with databases.database() as first, psycopg.connect(first, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO workspace (id, name, time_zone, created_at, updated_at) "
                "VALUES ('w1', 'a', 'UTC', now(), now())"
            )
        assert len(databases.free) == 1  # emptied, dumps as the template: kept
        with databases.database() as second:
            assert second == first
            assert _count(second, "SELECT count(*) FROM workspace") == 0
            assert _count(second, "SELECT pg_relation_size('workspace')") == 0  # a fresh heap
            with psycopg.connect(second, autocommit=True) as conn:
                conn.execute("CREATE TABLE left_behind (x int)")
        assert databases.free == []  # its schema differs from the template's: dropped
        name = first.rpartition("/")[2]
        with psycopg.connect(postgres_server) as conn:
            gone = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            assert gone.fetchone() is None
        with databases.database() as third:
            assert third != first
            assert (
                _count(third, "SELECT count(*) FROM pg_tables WHERE tablename = 'left_behind'") == 0
            )
    finally:
        databases.close()


def test_without_a_template_new_schemas_go_and_a_table_in_public_is_dropped(
    postgres_server: str,
) -> None:
    databases = RecycledDatabases(postgres_server)
    try:
        with databases.database() as first, psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE SCHEMA marketing")
            conn.execute("CREATE TABLE marketing.users (id int)")
            conn.execute("INSERT INTO marketing.users VALUES (1)")
        assert len(databases.free) == 1
        with databases.database() as second:
            assert second == first
            assert (
                _count(second, "SELECT count(*) FROM pg_namespace WHERE nspname = 'marketing'") == 0
            )
            with psycopg.connect(second, autocommit=True) as conn:
                conn.execute("CREATE TABLE public.left_behind (x int)")
        assert databases.free == []
    finally:
        databases.close()
