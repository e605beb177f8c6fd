"""Who reconciles next when more stacks want a reconcile than there are slots: edits before creates.

kopf runs one worker per object, so 1,000 new stacks are 1,000 handlers waiting at once; with a plain
semaphore a tenant's edit of an existing stack would queue behind all of them (first come, first served).
:class:`PrioritySlots` bounds how many reconciles run together, like the semaphore it replaces, but hands a
freed slot to the most urgent waiter (:func:`priority`), first come first served within one priority.

The queue is bounded by the number of stacks: a reconcile waits here while holding its stack's lock, so each
stack has at most one waiter (child events for a stack coalesce in ``watch.Debouncer`` before that).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum


class Cause(IntEnum):
    """Why a stack is reconciled, most urgent first (the value is the priority)."""

    EDIT = 0  # its spec changed: a person waits for the result
    CHILD = 1  # one of its children changed (readiness, repair of a hand edit or deletion)
    CREATE = 2  # a new stack
    RESYNC = 3  # drift timer, or the resume of every stack after the operator started


def priority(cause: Cause, has_status: bool) -> int:
    """The rank of a waiting reconcile (lower first).

    kopf reports a stack that was created while the operator was down as resumed, and the first reconcile of a
    new stack can come from a child's event: a stack that has no status yet is a create, whatever the cause.
    """
    if not has_status and cause in (Cause.CHILD, Cause.RESYNC):
        return Cause.CREATE
    return int(cause)


class PrioritySlots:
    """A semaphore of ``size`` slots whose waiters are served lowest priority value first."""

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self.seq = itertools.count()

    @asynccontextmanager
    async def slot(self, rank: int) -> AsyncIterator[None]:
        await self.acquire(rank)
        try:
            yield
        finally:
            self.release()

    async def acquire(self, rank: int) -> None:
        if self.free > 0 and not self.waiters:
            self.free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self.waiters, (rank, next(self.seq), fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed to us as we were cancelled: pass it on
            else:
                self.waiters = [w for w in self.waiters if w[2] is not fut]
                heapq.heapify(self.waiters)
            raise

    def release(self) -> None:
        while self.waiters:
            _, _, fut = heapq.heappop(self.waiters)
            if not fut.done():
                fut.set_result(None)  # the slot passes straight to the waiter
                return
        self.free += 1


def resync_due(last_pass: float | None, now: float, interval: float, busy: bool) -> bool:
    """Whether the drift timer's pass over a stack is worth making now.

    The timer is there to repair drift no event announced. Every pass re-reads the kinds the stack's record
    holds and repairs what moved, so a pass of any cause that ended less than half an interval ago has just
    done the timer's work, and a pass already running or queued for the stack (``busy``: its lock is taken)
    will. Without this, stacks of a burst that wait a minute for a slot each got two or three timer passes
    queued behind their create pass. Drift is still repaired within 1.5 intervals.
    """
    if busy:
        return False
    return last_pass is None or now - last_pass >= interval / 2


# Every this many drift intervals the timer's pass over a Ready stack lists all its recorded kinds; in between it
# only checks the kinds no watch reports on (see :func:`light_drift`).
FULL_CHECK_EVERY = 10


def light_drift(ready: bool, last_full: float | None, now: float, interval: float) -> bool:
    """Whether the drift timer's pass over a stack may be a light check instead of a full pass.

    A Ready stack's watched children (Deployments, StatefulSets, Jobs, claims, Services, Secrets, ConfigMaps,
    NetworkPolicies) announce a deletion or an edit by their own watch event, whose pass repairs it within a
    second; the timer only has to look at the kinds nothing watches (Ingresses, PodDisruptionBudgets, ...). Each of
    its passes listed every recorded kind, six LISTs for five services and four reads of the namespace, and at
    400 stacks on a 60 s interval those were a third of the operator's CPU while new stacks kept arriving
    (bench/operator.py, paced phase). A full pass still runs every :data:`FULL_CHECK_EVERY` intervals, for an
    event a broken watch stream may have missed, and at every timer of a stack that is not Ready (a raised
    quota, a new Secret: what a person fixed is seen at the next timer).
    """
    return ready and last_full is not None and now - last_full < FULL_CHECK_EVERY * interval
