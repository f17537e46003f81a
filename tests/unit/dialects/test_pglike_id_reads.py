"""Id reads of the Postgres-like adapters keep the driver's Python rows small and short-lived.

The driver boundary is a recording DB-API connection (as in ``test_pglike.py``); the real
driver and server are exercised by ``tests/integration/test_redshift_adapter.py`` and the
conformance suite.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from dialects.protocol import ConnectionConfig, Scope
from dialects.redshift import RedshiftAdapter


class Row(list):  # type: ignore[type-arg]
    """A driver row (redshift-connector rows are lists) that a weak reference can watch."""


class Driver:
    """A DB-API connection answering ``FETCH FORWARD n`` from ``total`` text ids, recording
    how many rows of earlier fetches are still alive whenever a new fetch starts."""

    def __init__(self, total: int) -> None:
        self.left = [f"u{i:09d}" for i in range(total)]
        self.fetches: list[int] = []
        self.alive_at_fetch: list[int] = []
        self._refs: list[weakref.ref[Row]] = []
        self._last = ""

    def cursor(self) -> Driver:
        return self

    def execute(self, sql: str, params: Any = None) -> None:
        self._last = sql
        if sql.startswith("FETCH FORWARD"):
            self.alive_at_fetch.append(sum(r() is not None for r in self._refs))

    @property
    def description(self) -> list[tuple[str, int]]:
        return [("external_user_id", 25)]

    def fetchall(self) -> tuple[Row, ...]:
        if not self._last.startswith("FETCH FORWARD"):
            return ()
        n = int(self._last.split()[2])
        self.fetches.append(n)
        out, self.left = self.left[:n], self.left[n:]
        rows = tuple(Row([v]) for v in out)
        self._refs.extend(weakref.ref(r) for r in rows)
        return rows

    def close(self) -> None:
        pass


class _Adapter(RedshiftAdapter):
    def __init__(self, conn: Driver, **settings: Any) -> None:
        base = {"host": "db.example.com", "database": "analytics", "user": "zerocopy"}
        super().__init__(ConnectionConfig({**base, **settings}, {"password": "pw"}, Scope("mart")))
        self.conn = conn

    @contextmanager
    def _session(self) -> Iterator[Any]:
        yield self.conn


def test_no_fetch_starts_while_rows_of_an_earlier_fetch_are_alive() -> None:
    driver = Driver(25_000)
    adapter = _Adapter(driver)
    batches = list(adapter._read_column("t", "external_user_id", 50_000, ordered=True))
    assert driver.fetches == [10_000, 10_000, 10_000, 10_000]  # the last one comes back empty
    assert driver.alive_at_fetch == [0, 0, 0, 0]
    ids = pa.concat_arrays(batches)
    assert ids.type == pa.string()
    assert ids.to_pylist() == [f"u{i:09d}" for i in range(25_000)]


def test_id_fetches_are_bounded_by_batch_rows_the_class_cap_and_max_fetch_rows() -> None:
    driver = Driver(10)
    list(_Adapter(driver)._read_column("t", "id", 4))
    assert driver.fetches == [4, 4, 4, 4]

    class Small(_Adapter):
        ID_FETCH_ROWS = 3

    driver = Driver(10)
    list(Small(driver)._read_column("t", "id", 50_000))
    assert driver.fetches == [3] * 5

    driver = Driver(10)
    list(_Adapter(driver, max_fetch_rows=2)._read_column("t", "id", 50_000))
    assert driver.fetches == [2] * 6
