"""Start the HTTP batch receiver once per test session (its own process, stopped by PID)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port, wait_for_port

SERVER = Path(__file__).with_name("server.py")
KEY = "peer-bearer-key-5f1c9e"


@dataclass
class HttpPeer:
    """Handle on the running receiver: URLs, key and the control endpoints."""

    base: str
    key: str = KEY

    @property
    def url(self) -> str:
        return f"{self.base}/batches"

    def reset(self) -> None:
        httpx.post(f"{self.base}/_reset", json={}).raise_for_status()

    def script(self, *steps: dict[str, Any]) -> None:
        httpx.post(f"{self.base}/_script", json=list(steps)).raise_for_status()

    def reject(self, field: str, prefix: str, code: str = "bad_row") -> None:
        httpx.post(
            f"{self.base}/_reject", json={"field": field, "prefix": prefix, "code": code}
        ).raise_for_status()

    def state(self) -> dict[str, Any]:
        resp = httpx.get(f"{self.base}/_state")
        resp.raise_for_status()
        return resp.json()


@pytest.fixture(scope="session")
def http_peer_server() -> Iterator[HttpPeer]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", str(port), "--key", KEY],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, timeout=20)
        yield HttpPeer(f"http://127.0.0.1:{port}")
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture
def http_peer(http_peer_server: HttpPeer) -> HttpPeer:
    """The receiver, emptied for this test."""
    http_peer_server.reset()
    return http_peer_server
