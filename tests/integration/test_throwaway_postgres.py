"""``throwaway_postgres`` (the PostgreSQL of last resort for tests marked ``postgres``)."""

from __future__ import annotations

import psycopg
import pytest

from tests.support import _pg_bin, throwaway_postgres, unavailable


@pytest.mark.timeout(120)
def test_a_throwaway_cluster_starts_answers_and_skips_fsync() -> None:
    """It starts and returns (the postmaster once kept pg_ctl's output pipe open, so starting
    never returned: every postgres test timed out without a server on 5432), it answers, and
    it does not wait on the disk (fsync off: nothing in it needs to survive a crash)."""
    if not _pg_bin("initdb") or not _pg_bin("pg_ctl"):
        unavailable("initdb/pg_ctl not found")
    with throwaway_postgres() as url, psycopg.connect(url, connect_timeout=10) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SHOW fsync").fetchone() == ("off",)
