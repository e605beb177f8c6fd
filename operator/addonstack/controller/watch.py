"""Readiness from watches: a change in a stack's child re-evaluates that stack within a second.

Without this the stack's status only moved when the stack itself changed or at the drift timer (60 s):
create -> Ready took a minute although every child was ready within seconds, and a deleted Deployment
stayed deleted until the next timer. kopf watches the child kinds (filtered by our stack label); each
event names its stack, and :class:`Debouncer` runs one reconcile per stack for a burst of events (a new
stack's pods, ReplicaSets and Deployments change a dozen times in a few seconds). A reconcile of a
converged stack writes nothing, so the events our own applies cause settle after one pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import kopf

from addonstack.constants import LABEL_STACK
from addonstack.controller import metrics
from addonstack.controller.echo import ChildEvents
from addonstack.controller.shards import Shard

log = logging.getLogger("addonstack.watch")

# (group, version, plural) of the children whose changes can move a stack's status or need repair.
WATCHED: tuple[tuple[str, str, str], ...] = (
    ("apps", "v1", "deployments"),
    ("apps", "v1", "statefulsets"),
    ("batch", "v1", "jobs"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "pods"),
    ("", "v1", "services"),
    ("", "v1", "secrets"),
    ("", "v1", "configmaps"),
)
DEBOUNCE = 0.5  # seconds a burst of events for one stack is gathered before it is re-evaluated

StackKey = tuple[str, str]  # (namespace, stack name)


class Debouncer:
    """One pending re-evaluation per stack; events arriving while it runs cause exactly one more."""

    def __init__(self, run: Callable[[str, str], Awaitable[None]], delay: float = DEBOUNCE) -> None:
        self.run = run
        self.delay = delay
        self.tasks: dict[StackKey, asyncio.Task[None]] = {}
        self.dirty: set[StackKey] = set()
        self.events = 0

    def schedule(self, namespace: str, stack: str) -> None:
        self.events += 1
        key = (namespace, stack)
        if key in self.tasks:
            self.dirty.add(key)
            return
        self.tasks[key] = asyncio.get_running_loop().create_task(self._loop(key))

    def cancel(self, namespace: str, stack: str) -> None:
        key = (namespace, stack)
        self.dirty.discard(key)
        task = self.tasks.pop(key, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _loop(self, key: StackKey) -> None:
        try:
            while True:
                await asyncio.sleep(self.delay)
                self.dirty.discard(key)
                try:
                    await self.run(*key)
                except Exception as exc:  # the drift timer retries; an event must not kill the loop
                    log.warning("re-evaluating %s/%s after a child changed failed: %s", *key, exc)
                if key not in self.dirty:
                    return
        finally:
            if self.tasks.get(key) is asyncio.current_task():
                del self.tasks[key]

    async def close(self) -> None:
        tasks = list(self.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.tasks.clear()


def register(
    reg: kopf.OperatorRegistry,
    debouncer_of: Callable[[Any], Debouncer],
    shard: Shard | None = None,
    events_of: Callable[[Any], ChildEvents | None] = lambda memo: None,
) -> None:
    """kopf event handlers on every watched child kind: each event that can move its stack's status
    (``echo.ChildEvents``) schedules the stack (of this shard)."""

    async def on_child(
        type: str | None, labels: kopf.Labels, namespace: str | None, body: kopf.Body, memo: Any, **_: Any
    ) -> None:
        stack = labels.get(LABEL_STACK)
        if not (stack and namespace and (shard is None or shard.owns(namespace, stack))):
            return
        events = events_of(memo)
        kind = str(body.get("kind") or "")
        if type is None:
            # The watch's initial listing (at start, or after the stream broke): every stack is already
            # reconciled by kopf's resume handler, so these would only queue a second pass of all of them
            # (one per stack, on top of the resume's, in the burst that follows every start).
            if events is not None:
                events.listed(body)
            return
        if events is not None and not events.worth_a_pass(type, body):
            metrics.WATCH_EVENTS_IGNORED.labels(kind).inc()
            return
        metrics.WATCH_EVENTS.labels(kind).inc()
        debouncer_of(memo).schedule(namespace, stack)

    for group, version, plural in WATCHED:
        kopf.on.event(group, version, plural, labels={LABEL_STACK: kopf.PRESENT}, registry=reg)(on_child)
