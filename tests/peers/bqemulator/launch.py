"""Offline launcher for the bqemulator peer (runs inside ``.peers/bqemulator``, never the product venv).

bqemulator 1.4.0 runs ``INSTALL spatial`` at start and dies when DuckDB's extension host is
unreachable, as it is here. This launcher replaces that load (and the best-effort ``avro``
load, which would only wait on the network) with no-ops, then runs the normal CLI:
``python launch.py start --rest-port P --grpc-port P2 --project test``. Consequence:
GEOGRAPHY is unsupported on the peer, which zerocopy's tests do not use.

It also registers one peer-only SQL function, ``ZC_PEER_SLEEP(seconds) -> TRUE`` (like
PostgreSQL's ``pg_sleep``), so the tests' "slow query" takes a known time instead of burning
the shared CPU. Note the emulator runs each query synchronously in its event loop: while a
slow query runs, every other request (including ``jobs.cancel``) waits for it.
"""

from __future__ import annotations

import os
import sys
import threading
import time

from bqemulator.cli import main
from bqemulator.storage.engine import DuckDBEngine


def _skip(self: DuckDBEngine) -> None:
    """Stand-in for an extension load that needs the network."""


_register_builtin_udfs = DuckDBEngine._register_builtin_udfs


def _sleep(seconds: float) -> bool:
    time.sleep(seconds)
    return True


def _register_udfs(self: DuckDBEngine) -> None:
    """The emulator's own functions plus the peer-only ``ZC_PEER_SLEEP``."""
    _register_builtin_udfs(self)
    self.connection.create_function(
        "zc_peer_sleep", _sleep, ["DOUBLE"], "BOOLEAN", side_effects=True
    )


DuckDBEngine._register_builtin_udfs = _register_udfs  # type: ignore[method-assign]
DuckDBEngine._load_spatial = _skip  # type: ignore[method-assign]
DuckDBEngine._load_format_extensions = _skip  # type: ignore[method-assign]


def _exit_with_parent() -> None:
    """Stop when the test process that started us is gone (killed runs leave no orphans)."""
    parent = int(os.environ.get("ZC_PEER_PARENT_PID", "0"))
    if not parent:
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    _exit_with_parent()
    sys.exit(main())
