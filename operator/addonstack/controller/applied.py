"""What the operator applied, persisted in the stack's own status so a restart or a new leader writes nothing.

An object is applied again only when its desired digest changed or the live object moved since our apply
(``ApplyCache.fresh`` in ``applycache.py``: same digest, same live generation, volume claim spec or
resourceVersion). That record used to live only in the process, so a restarted operator (or a newly elected
one) re-applied every child of every stack. It is now also written to ``status.applied`` as ``{"Kind/name":
"<digest>@<marker>"}`` (about 40 bytes a child) in the status patch the reconcile makes anyway, and read back
from the stack (read fresh by each pass; a drift pass from kopf's live copy) before deciding. The record is
exact, not a hint: a child edited while no operator ran has another generation or resourceVersion than the one
recorded, so it is still repaired after the restart.

Pure: no client, so the decision tests cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from addonstack.controller.applycache import ApplyCache, marker_matches
from addonstack.controller.decide import RETAINED_KINDS
from addonstack.controller.objects import ObjectKey

__all__ = [
    "ALWAYS_LISTED",
    "FIELD",
    "holds",
    "kinds_to_list",
    "record_of",
    "recorded_unchanged",
    "records_database",
    "seed",
    "status_patch",
    "unwatched_kinds",
]

FIELD = "applied"  # status.applied
# Read on every pass: the planner takes the values already issued from them (never rotate a secret).
ALWAYS_LISTED = frozenset({"Secret", "ConfigMap"})
# Children of other controllers that copy our labels (kube-controller-manager's for our Services): never recorded.
NOT_RECORDED = frozenset({"EndpointSlice"})


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


def kinds_to_list(
    kinds: tuple[tuple[str, str], ...], status: Mapping[str, Any] | None, full: bool
) -> tuple[tuple[str, str], ...]:
    """The child kinds a pass lists: all of them (``full``), or only the kinds the stack's record holds (and
    Secrets and ConfigMaps).

    A stack of a few services uses 5 or 6 of the 13 kinds; a pass that a child's event or the drift timer
    started re-reads readiness and repairs what moved, and the other LISTs would find nothing (a new stack's
    pods alone set off several event passes, and a resync of 200 converged stacks every 20 s cost more than
    their creation). The spec, the catalog and the record do not change between passes of other causes, so
    the desired kinds are the recorded ones; a desired kind outside them is read before deciding
    (``reconcile._read_unlisted``). Passes for a create, an edit or a resume list every kind: they find
    leftovers of kinds the stack no longer records (pruned there) and a stack with no record yet.

    A stack never reconciled (no status at all: a create, or a resume of one the operator never reached) owns
    nothing yet; what a deleted stack of the same name left behind is what its deletion policy retains
    (Secrets and claims; the rest went with its owner reference). Its pass lists those, plans, and then reads
    the kinds it is about to create (``reconcile._read_unlisted``): about 7 LISTs instead of 13 for a new stack.
    """
    if not status:  # never reconciled: what a stack of that name left behind (Retain), and the issued values
        return tuple(k for k in kinds if k[1] in ALWAYS_LISTED | RETAINED_KINDS)
    record = status.get(FIELD)
    if full or not isinstance(record, Mapping) or not record:
        return kinds
    recorded = {str(name).partition("/")[0] for name in record} | ALWAYS_LISTED
    return tuple(k for k in kinds if k[1] in recorded)


def records_database(status: Mapping[str, Any] | None) -> bool:
    """Whether the stack's record holds a Job (a database setup Job, or one that drops a database).

    A pass reads the database admin Secret's key names up front only then; a stack whose record holds none
    reads them once its plan shows databases (``reconcile._read_admin_keys``), so a stack without databases
    costs no read of the admin Secret on each pass.
    """
    record = (status or {}).get(FIELD)
    return isinstance(record, Mapping) and any(str(name).startswith("Job/") for name in record)


def unwatched_kinds(
    kinds: tuple[tuple[str, str], ...], status: Mapping[str, Any] | None, watched: Callable[[str], bool]
) -> tuple[tuple[str, str], ...] | None:
    """The recorded kinds no watch reports on (Ingresses, PodDisruptionBudgets, Middlewares, ...), which a
    light drift check lists (``handlers.on_timer``); None when the stack has no usable record."""
    record = (status or {}).get(FIELD)
    if not isinstance(record, Mapping) or not record:
        return None
    recorded = {str(name).partition("/")[0] for name in record}
    return tuple(k for k in kinds if k[1] in recorded and not watched(k[1]) and k[1] not in NOT_RECORDED)


def recorded_unchanged(status: Mapping[str, Any], kinds: Iterable[tuple[str, str]], live: list[dict[str, Any]]) -> bool:
    """Whether the live objects of ``kinds`` (the stack's, by label) are exactly the recorded ones, each as the
    operator left it: none missing, none edited (its marker moved), none unrecorded (something to prune).

    False sends the drift timer's light check on to a full pass, which repairs or prunes; the record's digests
    are not compared here (a new plan is the full pass's business)."""
    wanted = _recorded(status, {kind for _, kind in kinds})
    seen = {f"{o.get('kind')}/{(o.get('metadata') or {}).get('name')}": o for o in live}
    return set(seen) == set(wanted) and all(_as_recorded(v, seen[n]) for n, v in wanted.items())


def _recorded(status: Mapping[str, Any] | None, kinds: set[str]) -> dict[str, str]:
    """The record's entries (``"Kind/name"`` -> ``"<digest>@<marker>"``) of the objects of ``kinds``."""
    record = (status or {}).get(FIELD) or {}
    return {str(n): str(v) for n, v in record.items() if str(n).partition("/")[0] in kinds}


def _as_recorded(value: str, live: dict[str, Any]) -> bool:
    """Whether ``live`` is the object a record entry's marker was taken from."""
    return "@" in value and marker_matches(value.partition("@")[2], live)


def holds(status: Mapping[str, Any] | None, kind: str, live: Iterable[dict[str, Any]]) -> bool:
    """Whether ``live`` (the stack's objects of ``kind`` as the watch streams' store has them) holds every object
    of that kind the stack's record names, each exactly as recorded (``store.py``: otherwise the kind is listed).

    A recorded object that is missing, or whose marker differs, is either a change someone made or one of the
    operator's own writes whose event has not come back: only a LIST tells which. Objects the record does not
    name may be there (a pass prunes them, as it would after a LIST). A stack without a record holds nothing to
    check, so it is never read from the store."""
    record = (status or {}).get(FIELD)
    if not isinstance(record, Mapping) or not record:
        return False
    seen = {f"{kind}/{(o.get('metadata') or {}).get('name')}": o for o in live}
    return all(n in seen and _as_recorded(v, seen[n]) for n, v in _recorded(status, {kind}).items())
