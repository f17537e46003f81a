"""Totals shared by every process (``scheduling_counter``), read by ``/metrics``."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from zerocopy.scheduling.models import Counter
from zerocopy.state.db import Database


async def bump(db: Database, name: str, by: int = 1) -> None:
    """Add ``by`` to counter ``name`` (created at 0 on first use)."""
    if by == 0:
        return
    for _ in range(3):
        async with db.transaction() as s:
            result = await s.execute(
                sa.update(Counter).where(Counter.name == name).values(value=Counter.value + by)
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return
        try:
            async with db.transaction() as s:
                s.add(Counter(name=name, value=by))
            return
        except IntegrityError:
            continue  # created meanwhile by another process: add to it


async def read_all(db: Database) -> dict[str, int]:
    async with db.session() as s:
        rows = await s.execute(sa.select(Counter.name, Counter.value))
        return {name: int(value) for name, value in rows.all()}
