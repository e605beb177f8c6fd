"""What the operator last applied per child, and what marks the live object as unchanged since.

An object is applied again only when its desired digest changed or someone else changed the live object since
our apply. The marker says which: a workload's generation (its status moves all the time, its generation only
when its spec does), a PersistentVolumeClaim's spec and labels (the volume binder rewrites the rest), else the
resourceVersion. The record persists in the stack's status (``applied.py``). Pure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from addonstack.controller.objects import ObjectKey

__all__ = ["ApplyCache", "digest", "marker_matches"]


@dataclass
class ApplyCache:
    """What this process last applied per object, and the live generation it produced, grouped by stack.

    Entries of a stack are dropped when the stack goes (:meth:`forget_stack`), so a deleted stack leaves
    nothing behind in memory.
    """

    entries: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)
    stacks: dict[tuple[str, str], set[ObjectKey]] = field(default_factory=dict)

    def fresh(self, key: ObjectKey, digest: str, live: dict[str, Any] | None) -> bool:
        entry = self.entries.get(key)
        if live is None or entry is None or entry[0] != digest:
            return False
        return marker_matches(entry[1], live)

    def record(self, stack: str, key: ObjectKey, digest: str, live: dict[str, Any]) -> None:
        self.entries[key] = (digest, _marker(live))
        self.stacks.setdefault((key.namespace, stack), set()).add(key)

    def forget(self, key: ObjectKey) -> None:
        self.entries.pop(key, None)

    def forget_stack(self, namespace: str, stack: str) -> None:
        for key in self.stacks.pop((namespace, stack), set()):
            self.entries.pop(key, None)


def marker_matches(marker: str, live: dict[str, Any]) -> bool:
    """Whether the live object is the one a record's ``marker`` was taken from (nobody else changed it since)."""
    # a volume claim recorded by resourceVersion (before claims had a marker of their own) while that holds
    return marker == _marker(live) or marker == _version_marker(live)


def _marker(obj: dict[str, Any]) -> str:
    """What moves when someone else changes the object: its generation, or for a PersistentVolumeClaim (which has
    none) its spec and labels, or else its resourceVersion.

    A claim's resourceVersion also moves when the volume binder binds it (``spec.volumeName``, annotations,
    status): by resourceVersion every new claim looked edited by hand at the pass after its creation, was
    applied again and reported as repaired (one write and one false Event per claim)."""
    meta = obj.get("metadata") or {}
    gen = meta.get("generation")
    if gen is not None:
        return f"g{gen}"
    if obj.get("kind") == "PersistentVolumeClaim":
        spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "volumeName"}
        mine = json.dumps([spec, meta.get("labels") or {}, bool(meta.get("deletionTimestamp"))], sort_keys=True)
        return "s" + hashlib.sha256(mine.encode()).hexdigest()[:12]
    return _version_marker(obj)


def _version_marker(obj: dict[str, Any]) -> str:
    return f"r{(obj.get('metadata') or {}).get('resourceVersion')}"


def digest(obj: dict[str, Any]) -> str:
    # 80 bits: enough to tell two versions of one object apart, short enough to persist per child in status.
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]
