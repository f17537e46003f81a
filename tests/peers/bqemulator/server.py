"""Start the bqemulator peer (REST + Storage Read gRPC) and load the fixture warehouse into it.

The emulator runs from its own virtualenv (``.peers/bqemulator``, built by ``install.sh``)
through :mod:`launch` (which skips DuckDB's network-only extension loads); the tests talk to
it with the product's own ``google-cloud-bigquery`` over HTTP and gRPC on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import REPO, free_port, wait_for_port

PEER_DIR = Path(__file__).resolve().parent
PEER_PYTHON = REPO / ".peers" / "bqemulator" / "bin" / "python"
PROJECT = "zc-test-project"
"""A project id that passes BigQuery's own format rules (6-30 chars, lowercase)."""


@dataclass(frozen=True, slots=True)
class Emulator:
    rest_url: str
    grpc_endpoint: str
    project: str
    pid: int
    log: Path

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Adapter settings for this peer: loopback endpoints, hence anonymous credentials."""
        return {
            "project": self.project,
            "api_endpoint": self.rest_url,
            "storage_api_endpoint": self.grpc_endpoint,
            **extra,
        }

    def client(self) -> Any:
        """A plain ``google-cloud-bigquery`` client for test setup (not the adapter's)."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(
            project=self.project,
            credentials=AnonymousCredentials(),
            client_options=ClientOptions(api_endpoint=self.rest_url),
        )


def installed() -> bool:
    return PEER_PYTHON.exists()


@contextmanager
def running_emulator(timeout_s: float = 60.0) -> Iterator[Emulator]:
    """Start a private emulator on free loopback ports; stop it by PID afterwards."""
    rest, grpc = free_port(), free_port()
    log = Path(tempfile.mkstemp(prefix="zc-bqemulator-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(PEER_PYTHON),
                str(PEER_DIR / "launch.py"),
                "start",
                "--rest-host",
                "127.0.0.1",
                "--rest-port",
                str(rest),
                "--grpc-host",
                "127.0.0.1",
                "--grpc-port",
                str(grpc),
                "--project",
                PROJECT,
                "--log-level",
                "warning",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "ZC_PEER_PARENT_PID": str(os.getpid())},
            start_new_session=True,
        )
    try:
        until = time.monotonic() + timeout_s
        wait_for_port(rest, timeout=timeout_s)
        wait_for_port(grpc, timeout=max(1.0, until - time.monotonic()))
        yield Emulator(f"http://127.0.0.1:{rest}", f"127.0.0.1:{grpc}", PROJECT, proc.pid, log)
    except TimeoutError as exc:
        raise RuntimeError(
            f"bqemulator did not start: {exc}; log:\n{log.read_text()[-3000:]}"
        ) from exc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        log.unlink(missing_ok=True)


_BQ_TYPES = {
    "VARCHAR": "STRING",
    "BIGINT": "INT64",
    "DOUBLE": "FLOAT64",
    "BOOLEAN": "BOOL",
    "TIMESTAMP": "TIMESTAMP",
    "DATE": "DATE",
}


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def load_warehouse(client: Any, dataset: str, warehouse: Any, *, location: str = "US") -> None:
    """Create ``dataset`` with every fixture table (described, rows inserted) and view."""
    from google.cloud import bigquery

    from fixtures.render import view_sql

    ds = bigquery.Dataset(f"{client.project}.{dataset}")
    ds.location = location
    client.create_dataset(ds, exists_ok=True)
    for table in warehouse.tables:
        schema = [
            bigquery.SchemaField(c.name, _BQ_TYPES[c.type], description=c.description)
            for c in table.columns
        ]
        bq_table = bigquery.Table(f"{client.project}.{dataset}.{table.name}", schema=schema)
        bq_table.description = table.description
        client.create_table(bq_table)
        rows = [{k: _json_value(v) for k, v in row.items()} for row in table.data.to_pylist()]
        for start in range(0, len(rows), 2000):
            errors = client.insert_rows_json(bq_table, rows[start : start + 2000])
            if errors:
                raise RuntimeError(f"insert into {table.name} failed: {errors[:3]}")
    for view in warehouse.views:
        # DDL lets the emulator derive the view's schema; the description is set afterwards
        # through the tables API (the emulator ignores OPTIONS(description=...) on views).
        client.query(view_sql(view, "bigquery", dataset, client.project)).result()
        bq_view = client.get_table(f"{client.project}.{dataset}.{view.name}")
        bq_view.description = view.description
        client.update_table(bq_view, ["description"])
