"""moto's S3 server (from its own venv, .peers/moto/) started once per test session."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support import REPO, free_port, unavailable, wait_for_port

MOTO_SERVER = REPO / ".peers" / "moto" / "bin" / "moto_server"
ACCESS_KEY = "AKIAZEROCOPYTEST0001"
SECRET_KEY = "moto-secret-key-for-tests-0a9b8c"


@dataclass(frozen=True)
class S3Peer:
    """Endpoint and keys of the running moto server, plus a boto3 client for test setup."""

    endpoint_url: str
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY
    region: str = "us-east-1"

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )


@pytest.fixture(scope="session")
def s3_peer() -> Iterator[S3Peer]:
    """moto_server on a free loopback port; stopped by PID at the end of the session."""
    if not MOTO_SERVER.exists():
        unavailable("moto peer not installed: run `bash tests/peers/moto/install.sh` (make peers)")
    port = free_port()
    proc = subprocess.Popen(
        [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=60)
        yield S3Peer(f"http://127.0.0.1:{port}")
    finally:
        proc.kill()
        proc.wait(timeout=10)
