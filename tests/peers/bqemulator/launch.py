"""Offline launcher for the bqemulator peer (runs inside ``.peers/bqemulator``, never the product venv).

bqemulator 1.4.0 runs ``INSTALL spatial`` at start and dies when DuckDB's extension host is
unreachable, as it is here. This launcher replaces that load (and the best-effort ``avro``
load, which would only wait on the network) with no-ops, then runs the normal CLI:
``python launch.py start --rest-port P --grpc-port P2 --project test``. Consequence:
GEOGRAPHY is unsupported on the peer, which zerocopy's tests do not use.
"""

from __future__ import annotations

import sys

from bqemulator.cli import main
from bqemulator.storage.engine import DuckDBEngine


def _skip(self: DuckDBEngine) -> None:
    """Stand-in for an extension load that needs the network."""


DuckDBEngine._load_spatial = _skip  # type: ignore[method-assign]
DuckDBEngine._load_format_extensions = _skip  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main())
