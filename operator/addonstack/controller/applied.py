"""What the operator applied, persisted in the stack's own status so a restart or a new leader writes nothing.

An object is applied again only when its desired digest changed or the live object moved since our apply
(``ApplyCache.fresh``: same digest, same live generation or resourceVersion). That record used to live only
in the process, so a restarted operator (or a newly elected one) re-applied every child of every stack. It is
now also written to ``status.applied`` as ``{"Kind/name": "<digest>@<marker>"}`` (about 40 bytes a child) in
the status patch the reconcile makes anyway, and read back from the stack (which every reconcile GETs
fresh) before deciding. The record is exact, not a hint: a child edited while no operator ran has another
generation or resourceVersion than the one recorded, so it is still repaired after the restart.

Pure: no client, so the decision tests cover it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from addonstack.controller.decide import ApplyCache
from addonstack.controller.objects import ObjectKey

__all__ = ["FIELD", "record_of", "seed", "status_patch"]

FIELD = "applied"  # status.applied


def _name(key: ObjectKey) -> str:
    return f"{key.kind}/{key.name}"


def seed(cache: ApplyCache, stack: str, status: Mapping[str, Any] | None, keys: Iterable[ObjectKey]) -> None:
    """Fill ``cache`` for ``keys`` from the stack's persisted record; entries the process already has win."""
    record = (status or {}).get(FIELD) or {}
    if not isinstance(record, Mapping):
        return
    for key in keys:
        if key in cache.entries:
            continue
        value = record.get(_name(key))
        if isinstance(value, str) and "@" in value:
            digest, _, marker = value.partition("@")
            cache.entries[key] = (digest, marker)
            cache.stacks.setdefault((key.namespace, stack), set()).add(key)


def record_of(cache: ApplyCache, keys: Iterable[ObjectKey]) -> dict[str, str]:
    """The record to persist: one entry per object of the stack the cache knows."""
    out: dict[str, str] = {}
    for key in keys:
        if (entry := cache.entries.get(key)) is not None:
            out[_name(key)] = f"{entry[0]}@{entry[1]}"
    return dict(sorted(out.items()))


def status_patch(prev: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from ``prev`` to ``new``: maps merge, so a key gone from a map is set to None.

    Without the nested nulls, entries of ``status.applied`` (and keys of ``status.effective``) that the new
    status no longer has would stay on the object for ever.
    """
    patch: dict[str, Any] = {key: None for key in prev.keys() - new.keys()}
    for key, value in new.items():
        old = prev.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            if sub := status_patch(old, value):
                patch[key] = sub
        elif value != old:
            patch[key] = value
    return patch
