"""Which copy of a stack a pass may start from instead of reading the stack again.

Every pass decides from the stack as it is now: its spec, and the status the last pass wrote (the record of what
was applied, the conditions an Event is emitted on the change of). kopf's body of an event may be older than a
status this process has just written, so a pass used to GET the stack first. That GET is the largest read of a
pass (the stack carries its ``status.applied`` record), and in a burst of new stacks there were two and a half
of them per stack (docs/performance.md). Each function here returns a copy that can stand in for it, or None
(read the stack):

- :func:`timer_body`: the drift timer's pass, from kopf's live body when its status is of the current generation;
- :func:`created_body`: a new stack's first pass, from the body of its create event, when this process has not
  written its status (nothing but kopf's finalizer was written to it);
- :func:`written_body`: any other pass, from kopf's live body when it carries the resourceVersion that this
  process's last status patch gave the stack. The same resourceVersion is the same object: the stack exactly as
  that write left it, our status in it. A change by anyone else since (a spec edit, a label, a status written
  by a backup) gives another version and the pass reads the stack; so does a write whose event kopf has not
  delivered yet.

kopf replaces its live body's content with each event of the stack it processes (it keeps one per stack for the
timer), so every function returns a deep copy. Pure: no client.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

__all__ = ["created_body", "timer_body", "written_body"]


def timer_body(live: Mapping[str, Any]) -> dict[str, Any] | None:
    """A copy of kopf's live body of the stack for the drift timer's pass, when it can stand in for a fresh GET:
    its status is of its current generation. None: read the stack.

    kopf replaces a timer's body with each event of the stack it processes, so this is the stack as of its last
    event; the pass runs only when no pass of this process ended in the last half interval
    (``fairness.resync_due``, checked again once the lock and slot are held), so the last status this process
    wrote came back on the watch long before. A spec edit still on its way makes this pass one of the old
    generation, which finds nothing to do on a converged stack, and its own ``on_update`` pass follows. The
    GET it saves is the largest read of a converged stack's pass, and the timer's passes are most of a large
    operator's steady load.
    """
    body = copy.deepcopy(dict(live))
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if meta.get("deletionTimestamp") or status.get("observedGeneration") != meta.get("generation"):
        return None
    return body


def created_body(event: Mapping[str, Any], written: bool) -> dict[str, Any] | None:
    """A copy of the create event's body for a new stack's first pass: it has no status yet and this process has
    written none (``written``). A status there, or one this process wrote (a child's event pass came first), or
    a deletion under way: read the stack."""
    meta = event.get("metadata") or {}
    if written or event.get("status") or meta.get("deletionTimestamp"):
        return None
    return copy.deepcopy(dict(event))


def written_body(live: Mapping[str, Any] | None, written: str | None) -> dict[str, Any] | None:
    """A copy of kopf's live body when it is the stack as this process's last status patch left it (``written``:
    the resourceVersion that patch returned) and its status is of its current generation (:func:`timer_body`)."""
    if live is None or not written or (live.get("metadata") or {}).get("resourceVersion") != written:
        return None
    return timer_body(live)
