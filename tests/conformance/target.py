"""What a conformance target is: an adapter kind, its loaded local peer and what the peer can show.

Each ``targets/<kind>.py`` builds one :class:`ConformanceTarget` in a session fixture named
``<kind>_target`` after loading the fixture warehouse into its peer, and declares the
module constant ``CAN_SHOW`` (the same set as the target's ``can_show``): test ids are
generated from it at collection time, before any peer starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dialects.base import BaseAdapter
from dialects.protocol import ConnectionConfig
from dialects.registry import create_adapter
from fixtures import Warehouse, build

CAPABILITIES: dict[str, str] = {
    "table_descriptions": "table comments come back from test()/list_tables()",
    "column_descriptions": "column comments come back from test()/list_tables()",
    "views": "views are listed with kind 'view'",
    "server_timeout": "the peer itself stops a statement at its timeout (no watchdog)",
    "server_cancel": "cancel() stops the statement inside the peer, so nothing keeps running",
    "auth_failed": "broken['auth_failed'] provokes it (wrong password, key, token)",
    "permission_denied": "broken['permission_denied'] provokes it (e.g. no CREATE TABLE)",
    "scope_not_found": "broken['scope_not_found'] provokes it (missing schema/dataset/file)",
    "unreachable": "broken['unreachable'] provokes it (closed port, unknown host)",
}
"""Every name ``can_show`` may hold, and what it promises."""

ERROR_CODES = ("auth_failed", "permission_denied", "scope_not_found", "unreachable")
"""Codes each target should provoke for real through ``broken`` (at test(), else at a CTAS)."""


@dataclass
class ConformanceTarget:
    """An adapter kind wired to its loaded local peer."""

    kind: str
    config: ConnectionConfig
    """A working source: the fixture warehouse is loaded in ``config.scope``."""
    admin: Callable[[str], Any]
    """Runs one SQL statement on the peer with admin rights; returns rows (list of tuples)."""
    slow_sql: str
    """A SELECT in the adapter's dialect returning ``external_user_id`` that runs >= 20 s."""
    expected_tables: set[str]
    """Exactly the tables and views test() must list in the scope."""
    can_show: frozenset[str]
    """Which :data:`CAPABILITIES` this peer can demonstrate."""
    broken: dict[str, ConnectionConfig] = field(default_factory=dict)
    """Error code → a config provoking it at test() (or, for permission_denied, at a CTAS)."""
    warehouse: Warehouse = field(default_factory=build)
    """The fixture warehouse loaded into the peer (expected data comes from here)."""

    def __post_init__(self) -> None:
        unknown = set(self.can_show) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilities for {self.kind}: {sorted(unknown)}")
        claimed = {c for c in ERROR_CODES if c in self.can_show}
        if claimed != {c for c in ERROR_CODES if c in self.broken}:
            raise ValueError(
                f"{self.kind}: can_show error codes {sorted(claimed)} must match broken "
                f"{sorted(self.broken)}"
            )

    def adapter(
        self, *, max_runtime_s: float | None = None, config: ConnectionConfig | None = None
    ) -> BaseAdapter:
        """A fresh adapter for ``config`` (default: the working one); close it after use."""
        cfg = config or self.config
        if max_runtime_s is not None:
            cfg = dataclasses.replace(cfg, max_runtime_s=max_runtime_s)
        return create_adapter(self.kind, cfg)
