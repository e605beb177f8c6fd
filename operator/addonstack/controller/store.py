"""What the children's watch streams last said of each object, so a child's event pass reads without a LIST.

A child's event (``watch.py``) starts a pass of its stack, and that pass listed the stack's recorded kinds again:
five or six LISTs per pass, for objects whose every change the operator had just received on its watch streams.
In a burst of new stacks those LISTs were about a fifth of the requests the operator added to a raw client's
(docs/performance.md). The streams (``childwatch.py``) now also keep each object here, as client-go's informers
keep their store: the LIST that starts a stream fills a kind, each event replaces or removes one object, and a
LIST after a 410 replaces the kind whole.

What an event pass reads from here is checked against the stack's own record of what the operator applied
(``applied.holds``): a kind whose recorded objects are not all here, each exactly as recorded, is listed from
the API server instead. A stream that lags behind the operator's own writes (their events not back yet), or an
object deleted or edited by someone else whose event has not come, thus never leads a pass to decide from a
partial view; in particular the Secrets whose values were issued are always the recorded ones, so a pass never
issues new values because a Secret had not reached the store yet. What a recorded object's status says (a
Deployment's ready replicas) may be older than the API server's, never older than the event that started the
pass; a later event starts another pass.

Only passes that a child's event started read here. The create, edit and resume passes (which look for
leftovers and name conflicts outside the stack's label) and the drift timer's passes (which exist to catch what
the streams might have missed) read the API server. Pods are not kept: they are the most numerous children, and
a pass reads them only while a workload is not settled. Objects are kept without ``managedFields``, but for
the entries that say who owns a workload's replicas.
Objects are kept as compact JSON (msgspec), decoded when a pass reads them. Pure: no client; the streams feed it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from addonstack.constants import LABEL_STACK
from addonstack.controller import metrics

__all__ = ["ALL", "STORED_KINDS", "ChildStore"]

ALL = ""  # the scope of a cluster-wide stream
# The watched kinds whose objects are kept (watch.WATCHED but Pods).
STORED_KINDS = frozenset(
    {"Deployment", "StatefulSet", "Job", "PersistentVolumeClaim", "Service", "Secret", "ConfigMap", "NetworkPolicy"}
)
Slot = tuple[str, str]  # (kind, namespace)
# An object as kept: its stack label, and the object as compact JSON. As dicts the objects of a one-service stack
# took about 41 KiB (8 objects; 1,000 such stacks: 40 MiB, a quarter of the operator's RSS at that size); as
# JSON about 8.5 KiB, decoded only by the event passes that read them.
Kept = tuple[str, bytes]
_ENCODE = msgspec.json.Encoder().encode
_DECODE = msgspec.json.Decoder(dict[str, Any]).decode


def _ident(body: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = body.get("metadata") or {}
    return str(body.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _slim(body: Mapping[str, Any]) -> Kept:
    """The object as kept: of its ``managedFields`` (the largest part of most objects) only the entries that own
    ``spec.replicas``, reduced to that field: ``decide.others_own_replicas`` reads them (a workload scaled by
    someone else keeps its replicas)."""
    kept = dict(body)
    meta = dict(kept.get("metadata") or {})
    managed = meta.pop("managedFields", None) or []
    replicas = [
        {"manager": m.get("manager"), "fieldsV1": {"f:spec": {"f:replicas": {}}}}
        for m in managed
        if "f:replicas" in ((m.get("fieldsV1") or {}).get("f:spec") or {})
    ]
    if replicas:
        meta["managedFields"] = replicas
    kept["metadata"] = meta
    return str((meta.get("labels") or {}).get(LABEL_STACK) or ""), _ENCODE(kept)


class ChildStore:
    """The stacks' children of :data:`STORED_KINDS` by kind and namespace, with which streams have listed."""

    def __init__(self) -> None:
        self.objects: dict[Slot, dict[str, Kept]] = {}
        self.synced: set[tuple[str, str]] = set()  # (kind, scope): listed, and followed since
        self.counts: dict[str, int] = dict.fromkeys(STORED_KINDS, 0)  # objects kept, by kind
        # listings under way, by (kind, scope): their objects, encoded as they arrive (a restart's listing of
        # every Deployment of 1,000 stacks is not held as dicts until its last page)
        self.staged: dict[tuple[str, str], dict[Slot, dict[str, Kept]]] = {}

    def listing(self, kind: str, scope: str) -> None:
        """A stream of ``kind`` over ``scope`` (a namespace, or :data:`ALL`) starts listing: until
        :meth:`listed`, what is kept of it may miss objects, and reads of it go to the API server."""
        self.synced.discard((kind, scope))
        if kind in STORED_KINDS:
            self.staged[(kind, scope)] = {}

    def stage(self, scope: str, body: Mapping[str, Any]) -> None:
        """One object of a listing under way (:meth:`listing`)."""
        kind, namespace, name = _ident(body)
        if (staged := self.staged.get((kind, scope))) is not None:
            staged.setdefault((kind, namespace), {})[name] = _slim(body)

    def listed(self, kind: str, scope: str) -> None:
        """The stream's listing is complete (its objects given to :meth:`stage`): it replaces what was kept of the
        kind over the scope (deletions missed while the stream was broken go with it)."""
        if kind not in STORED_KINDS:
            return
        for slot in [s for s in self.objects if s[0] == kind and scope in (ALL, s[1])]:
            self.counts[kind] -= len(self.objects.pop(slot))
        for slot, objs in self.staged.pop((kind, scope)).items():
            self.objects[slot] = objs
            self.counts[kind] += len(objs)
        self.synced.add((kind, scope))
        metrics.child(metrics.STORE_OBJECTS, kind).set(self.counts[kind])

    def event(self, type_: str, body: Mapping[str, Any]) -> None:
        """One event of the stream: the object as it now is, or gone."""
        kind, namespace, name = _ident(body)
        if kind not in STORED_KINDS:
            return
        if type_ == "DELETED":
            objs = self.objects.get((kind, namespace)) or {}
            if objs.pop(name, None) is not None:
                self.counts[kind] -= 1
                if not objs:
                    del self.objects[(kind, namespace)]
        else:
            self._put(body)
        metrics.child(metrics.STORE_OBJECTS, kind).set(self.counts[kind])

    def _put(self, body: Mapping[str, Any]) -> None:
        kind, namespace, name = _ident(body)
        objs = self.objects.setdefault((kind, namespace), {})
        self.counts[kind] += name not in objs
        objs[name] = _slim(body)

    def children(self, kind: str, namespace: str, stack: str) -> list[dict[str, Any]] | None:
        """The stack's objects of ``kind`` (decoded afresh: a pass may change what it read), or None when no
        stream has listed the kind over the namespace (a read for the API server)."""
        if kind not in STORED_KINDS or not ({(kind, ALL), (kind, namespace)} & self.synced):
            return None
        objs = self.objects.get((kind, namespace)) or {}
        return [_DECODE(encoded) for label, encoded in objs.values() if label == stack]
