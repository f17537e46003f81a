"""The hand-off bookkeeping between a refresh job's final transaction and its worker.

What a final transaction handed over counts only once that transaction committed
(``settle``); a rolled-back one is forgotten (``reset``); the next job's pre-claimed run goes
to that job's task, once; a worker learns whether a job was handed (not to be finished again).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from zerocopy.runner_procrastinate import REFRESH_TASK, SYNC_TASK, JobHandOff, LaneHandOffs

pytestmark = pytest.mark.anyio


class _Conn:
    def __init__(self, row: Any) -> None:
        self.row = row
        self.calls: list[dict[str, Any]] = []

    async def execute(self, statement: Any, params: dict[str, Any]) -> Any:
        self.calls.append(params)
        return SimpleNamespace(first=lambda: self.row)


class _Session:
    def __init__(self, row: Any) -> None:
        self.conn = _Conn(row)

    async def connection(self) -> _Conn:
        return self.conn


def _row(
    job_id: int | None, task: str = REFRESH_TASK, args: Any = None, handed: bool = True
) -> tuple[Any, ...]:
    if job_id is None:
        return (handed, *([None] * 11))
    return (
        handed,
        job_id,
        "doing",
        task,
        0,
        "source:s:0",
        f"run:{job_id}",
        args if args is not None else {"run_id": f"r{job_id}", "source_id": "s", "lane": 0},
        None,
        "zerocopy",
        0,
        7,
    )


async def test_a_committed_hand_off_is_recorded_with_its_successor_and_claim() -> None:
    offs = LaneHandOffs()
    handoff = offs.offer(SimpleNamespace(id=1, worker_id=7))
    assert handoff is not None and handoff.claimed is None
    session = _Session(_row(2))
    args = await handoff.in_final(session)
    assert args == {"run_id": "r2", "source_id": "s", "lane": 0}
    assert session.conn.calls == [{"job_id": 1, "worker_id": 7, "queues": ["zerocopy"]}]
    handoff.preclaimed("claimed r2")
    assert offs.take(1) == (False, None)  # nothing before the commit
    handoff.settle()
    handed, successor = offs.take(1)
    assert handed and successor is not None and successor["id"] == 2
    assert successor["args"]["run_id"] == "r2"
    assert offs.take(1) == (False, None)  # taken once
    assert offs.is_claimed(2)
    nxt = offs.offer(SimpleNamespace(id=2, worker_id=7))
    assert nxt is not None and nxt.claimed == "claimed r2"
    assert not offs.is_claimed(2)  # given to its task, once


async def test_a_rolled_back_hand_off_is_forgotten() -> None:
    offs = LaneHandOffs()
    handoff = offs.offer(SimpleNamespace(id=1, worker_id=7))
    assert handoff is not None
    await handoff.in_final(_Session(_row(2)))
    handoff.preclaimed("claimed r2")
    handoff.reset()  # the transaction rolled back; the next final one hands nothing
    handoff.settle()
    assert offs.take(1) == (False, None)
    assert not offs.is_claimed(2)


async def test_nothing_next_and_other_tasks() -> None:
    offs = LaneHandOffs()
    # Finished, nothing to take: handed, no successor.
    first = offs.offer(SimpleNamespace(id=1, worker_id=7))
    assert first is not None
    assert await first.in_final(_Session(_row(None))) is None
    first.settle()
    assert offs.take(1) == (True, None)
    # A sync job came next: handed to the worker, but nothing to pre-claim.
    second = offs.offer(SimpleNamespace(id=3, worker_id=7))
    assert second is not None
    assert await second.in_final(_Session(_row(4, SYNC_TASK, {"sync_run_id": "x"}))) is None
    second.settle()
    handed, successor = offs.take(3)
    assert handed and successor is not None and successor["task_name"] == SYNC_TASK
    # The function could not hand over (it never fails the transaction): finish as usual.
    third = offs.offer(SimpleNamespace(id=5, worker_id=7))
    assert third is not None
    assert await third.in_final(_Session(_row(None, handed=False))) is None
    third.settle()
    assert offs.take(5) == (False, None)


async def test_jobs_without_id_or_worker_are_not_handed_and_stopping_is_the_workers() -> None:
    offs = LaneHandOffs()
    assert offs.offer(SimpleNamespace(id=None, worker_id=7)) is None
    assert offs.offer(SimpleNamespace(id=1, worker_id=None)) is None
    handoff = JobHandOff(offs, 1, 7)
    assert not handoff.stopping()
    offs.stopping = lambda: True
    assert handoff.stopping()
