"""Readiness from watches: a change in a stack's child re-evaluates that stack within a second.

Without this the stack's status only moved when the stack itself changed or at the drift timer (60 s):
create -> Ready took a minute although every child was ready within seconds, and a deleted Deployment
stayed deleted until the next timer. kopf watches the child kinds (filtered by our stack label); each
event names its stack, and :class:`Debouncer` runs one reconcile per stack for a burst of events (a new
stack's pods, ReplicaSets and Deployments change a dozen times in a few seconds). A reconcile of a
converged stack writes nothing, so the events our own applies cause settle after one pass. A workload that
becomes ready while another of its stack is still starting only moves the stack's count of ready services
(``echo.Urgency.PROGRESS``): its pass waits :data:`PROGRESS_DELAY`, so a stack whose workloads come up one by
one gets one pass when the last is ready instead of one per workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import kopf

from addonstack.constants import LABEL_STACK
from addonstack.controller import metrics
from addonstack.controller.echo import ChildEvents, Urgency
from addonstack.controller.shards import Shard

log = logging.getLogger("addonstack.watch")

# (group, version, plural, kind) of the children whose changes can move a stack's status or need repair.
WATCHED: tuple[tuple[str, str, str, str], ...] = (
    ("apps", "v1", "deployments", "Deployment"),
    ("apps", "v1", "statefulsets", "StatefulSet"),
    ("batch", "v1", "jobs", "Job"),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim"),
    ("", "v1", "pods", "Pod"),
    ("", "v1", "services", "Service"),
    ("", "v1", "secrets", "Secret"),
    ("", "v1", "configmaps", "ConfigMap"),
    # Our own applies of a new stack's policies come back (dropped as such); a policy deleted or loosened by hand
    # is repaired on its event, not at the next timer, and the light drift check has nothing left to list for
    # most stacks (docs/performance.md, tenth session).
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy"),
)
_WATCHED_KINDS = frozenset(kind for _, _, _, kind in WATCHED)


def watched(kind: str) -> bool:
    """Whether changes to children of ``kind`` reach the operator as events."""
    return kind in _WATCHED_KINDS


DEBOUNCE = 0.5  # seconds a burst of events for one stack is gathered before it is re-evaluated
# seconds a pass waits after a workload became ready while another of its stack is still on its way
# (echo.Urgency.PROGRESS): the count of ready services is all it would move
PROGRESS_DELAY = 10.0

StackKey = tuple[str, str]  # (namespace, stack name)


class Debouncer:
    """One pending re-evaluation per stack, due at the earliest time any of its events asked for; events
    arriving while it runs cause exactly one more."""

    def __init__(self, run: Callable[[str, str], Awaitable[None]], delay: float = DEBOUNCE) -> None:
        self.run = run
        self.delay = delay
        self.tasks: dict[StackKey, asyncio.Task[None]] = {}
        self.due: dict[StackKey, float] = {}  # pending passes: when each is due (loop time)
        self.wake: dict[StackKey, asyncio.Event] = {}
        self.events = 0

    def schedule(self, namespace: str, stack: str, delay: float | None = None) -> None:
        self.events += 1
        key = (namespace, stack)
        loop = asyncio.get_running_loop()
        due = loop.time() + (self.delay if delay is None else delay)
        if key in self.due:
            if due < self.due[key]:
                self.due[key] = due
                if key in self.wake:
                    self.wake[key].set()
            return
        self.due[key] = due  # with a pass running, the loop makes one more after it
        if key not in self.tasks:
            self.tasks[key] = loop.create_task(self._loop(key))

    def cancel(self, namespace: str, stack: str) -> None:
        key = (namespace, stack)
        self.due.pop(key, None)
        task = self.tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _wait(self, key: StackKey) -> None:
        """Until the pass is due; an earlier due time wakes it."""
        loop = asyncio.get_running_loop()
        while key in self.due and (left := self.due[key] - loop.time()) > 0:
            wake = self.wake[key] = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), left)
        self.wake.pop(key, None)

    async def _loop(self, key: StackKey) -> None:
        try:
            while key in self.due:
                await self._wait(key)
                if self.due.pop(key, None) is None:
                    return
                try:
                    await self.run(*key)
                except Exception as exc:  # the drift timer retries; an event must not kill the loop
                    log.warning("re-evaluating %s/%s after a child changed failed: %s", *key, exc)
        finally:
            if self.tasks.get(key) is asyncio.current_task():
                del self.tasks[key]
                self.wake.pop(key, None)

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()
        self.due.clear()


def on_child_event(
    type_: str | None,
    body: Mapping[str, Any],
    debouncer: Debouncer,
    events: ChildEvents | None,
    shard: Shard | None = None,
) -> None:
    """One event of a child (``type_`` None: an object of the watch's listing): each that can move its stack's
    status (``echo.ChildEvents``) schedules the stack (of this shard)."""
    meta = body.get("metadata") or {}
    stack, namespace = (meta.get("labels") or {}).get(LABEL_STACK), meta.get("namespace")
    if not (stack and namespace and (shard is None or shard.owns(namespace, stack))):
        return
    kind = str(body.get("kind") or "")
    if type_ is None:
        # The watch's initial listing (at start, or after the stream broke): every stack is already
        # reconciled by kopf's resume handler, so these would only queue a second pass of all of them
        # (one per stack, on top of the resume's, in the burst that follows every start).
        if events is not None:
            events.listed(body)
        return
    urgency = events.assess(type_, body) if events is not None else Urgency.NOW
    if urgency is None:
        metrics.child(metrics.WATCH_EVENTS_IGNORED, kind).inc()
        return
    metrics.child(metrics.WATCH_EVENTS, kind).inc()
    debouncer.schedule(namespace, stack, PROGRESS_DELAY if urgency is Urgency.PROGRESS else None)


def register(
    reg: kopf.OperatorRegistry,
    debouncer_of: Callable[[Any], Debouncer],
    shard: Shard | None = None,
    events_of: Callable[[Any], ChildEvents | None] = lambda memo: None,
) -> None:
    """kopf event handlers on every watched child kind, for an operator with kopf peering (a standalone one
    follows them in ``childwatch.py``)."""

    async def on_child(type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
        on_child_event(type, body, debouncer_of(memo), events_of(memo), shard)

    for group, version, plural, _kind in WATCHED:
        kopf.on.event(group, version, plural, labels={LABEL_STACK: kopf.PRESENT}, registry=reg)(on_child)
