"""Periodic steps that shutdown never interrupts half-way."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from zerocopy.logging import get_logger

log = get_logger("zerocopy.scheduling.steps")

STEP_BUDGET_S = 30.0
"""How long shutdown may wait for a step already under way."""


async def run_step(
    name: str, step: Callable[[], Awaitable[Any]], *, budget_s: float = STEP_BUDGET_S
) -> None:
    """Run one step of a periodic loop to completion, logging (not raising) its failures.

    Shutdown cancels the sleep between steps, never a step in the middle of a state-database
    transaction: cancelling an aiosqlite operation makes SQLAlchemy terminate the connection
    through a shielded close task that then never finishes, and the event loop's shutdown
    waits on it forever. ``budget_s`` bounds how long a step may hold shutdown up.
    """
    with anyio.CancelScope(shield=True):
        with anyio.move_on_after(budget_s) as budget:
            try:
                await step()
            except Exception:
                log.exception("periodic_step.failed", step=name)
        if budget.cancelled_caught:
            log.warning("periodic_step.over_budget", step=name, budget_s=budget_s)
