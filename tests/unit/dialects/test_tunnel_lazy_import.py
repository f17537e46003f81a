"""The SSH client library is imported when a tunnel opens, not with the PostgreSQL adapters.

``asyncssh`` takes about 0.36 s to import; every process that syncs from or refreshes on
PostgreSQL or Redshift paid it at its first adapter, tunnel or not.
"""

from __future__ import annotations

import subprocess
import sys


def test_postgres_adapters_and_the_sync_engine_do_not_import_asyncssh() -> None:
    code = (
        "import sys\n"
        "import dialects.postgres, dialects.redshift, dialects.tunnel\n"
        "import zerocopy.connections, zerocopy.sync.engine, zerocopy.destinations.builtin\n"
        "print('asyncssh' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
