"""Service-name claims: which of several stacks in one namespace gets a service's objects (pure).

Children are named by service id (``http://searxng:8080`` works inside the namespace, and issued Secrets and
volumes keep their names across upgrades), so two stacks in one namespace that both ask for a service want the
same object names. Deciding that per object let 30 stacks created at once split searxng between them (its
volumes went to one stack, its Secret to another) and deploy it in none. The decision is therefore made once
per (namespace, service id) and recorded in one object, a ``coordination.k8s.io`` Lease named
``addonstack-claim-<service>`` whose ``holderIdentity`` is the winning stack. Writing it is atomic (create
fails when it exists, an update carries the resourceVersion it read), so exactly one stack holds a service
and only the holder writes any of that service's objects.

Who wins (:func:`choose_holder`): the current holder keeps the service while it exists and still asks for it
(an older stack that adds the service later never takes it from a running one); otherwise the oldest stack
that asks for it, by creationTimestamp then name. A holder that is deleted, or drops the service, hands it to
the next. Without a Lease (a stack from before claims existed) the stack whose label the live objects carry
is the holder, so upgrading never moves a running service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from addonstack.constants import (
    API_GROUP,
    API_VERSION,
    KIND,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_SERVICE,
    LABEL_STACK,
    MANAGED_BY,
)
from addonstack.controller.objects import WORKLOAD_KINDS, kube_time, labels_of

LEASE_API = "coordination.k8s.io/v1"
CLAIM_COMPONENT = "claim"
ANNOTATION_HOLDER_UID = f"{API_GROUP}/holder-uid"
# Seconds a stack must have existed, by the operator's clock, before a list of its namespace that shows no other
# stack lets it go without claim Leases (:func:`sole_claimant`); one of them tolerates a second of clock skew.
SOLE_AFTER = 2.0
PLATFORM_HOST_SERVICES = frozenset({"postgresql", "redis"})  # ExternalName Services named like the platform host


@dataclass(frozen=True)
class Contender:
    """A stack in the namespace, as far as claims care."""

    name: str
    uid: str
    created: str  # RFC 3339 creationTimestamp (sorts in time order)
    wants: frozenset[str]

    @property
    def age_key(self) -> tuple[str, str]:
        return (self.created, self.name)


def contender(body: Mapping[str, Any], wants: Iterable[str]) -> Contender:
    meta = body.get("metadata") or {}
    created = str(meta.get("creationTimestamp") or "")
    return Contender(str(meta.get("name")), str(meta.get("uid")), created, frozenset(wants))


def choose_holder(service: str, holder_uid: str | None, stacks: Iterable[Contender]) -> Contender | None:
    """The stack that gets ``service``: the current holder while it exists and asks for it, else the oldest asker.

    ``stacks`` are the stacks of the namespace that are not being deleted (a deleting holder keeps the service
    until it is gone, so its finalizer and the next holder never touch the same objects).
    """
    alive = list(stacks)
    current = next((s for s in alive if s.uid == holder_uid), None)
    if current is not None and service in current.wants:
        return current
    askers = [s for s in alive if service in s.wants]
    return min(askers, key=lambda s: s.age_key) if askers else None


def sole_claimant(body: Mapping[str, Any], others: Sequence[Mapping[str, Any]], read_at: float) -> bool:
    """Whether a stack may hold the services it wants without writing their claim Leases: it is the only
    AddonStack of its namespace (``others``: the rest of a list sent at ``read_at``, epoch seconds), and it was
    created at least :data:`SOLE_AFTER` seconds before that list was sent.

    One tenant per namespace is the usual layout, and there the five Lease creates of a new five-service stack
    were a sixth of what its first pass sent. Nothing is lost by skipping them: a stack that appears later
    finds no Lease, and :func:`choose_holder` gives it the service only if it is older, which it cannot be.
    creationTimestamp has whole seconds, so a stack created in the same second as this one could sort before it
    by name; the wait makes any stack missing from the list at least a second younger (with clocks within a
    second of each other), and then it writes the Leases naming this one.
    """
    if others:
        return False
    try:
        born = kube_time((body.get("metadata") or {}).get("creationTimestamp") or "").timestamp()
    except ValueError:
        return False  # no timestamp to go by: decide with Leases
    return read_at - born >= SOLE_AFTER


def claimable(desired: Mapping[Any, Mapping[str, Any]], stack: str) -> dict[str, list[Any]]:
    """Service id -> keys of the desired objects named by it (objects named after the stack need no claim)."""
    out: dict[str, list[Any]] = {}
    for key, obj in desired.items():
        meta = obj.get("metadata") or {}
        sid = (meta.get("labels") or {}).get(LABEL_SERVICE)
        if not sid or str(meta.get("name", "")).startswith(f"{stack}-"):
            continue
        out.setdefault(sid, []).append(key)
    return out


def incumbent(existing: Iterable[Mapping[str, Any]]) -> str | None:
    """The stack whose label the live objects of a service carry (the workload's label first), if any."""
    owners = []
    for obj in existing:
        name = labels_of(obj).get(LABEL_STACK)
        if name:
            owners.append((obj.get("kind") not in WORKLOAD_KINDS, name))
    named = sorted(owners)
    return named[0][1] if named else None


def lease_name(service: str) -> str:
    name = f"addonstack-claim-{service}"
    if len(name) <= 253:
        return name
    return f"addonstack-claim-{hashlib.sha256(service.encode()).hexdigest()[:16]}"


def lease_holder(lease: Mapping[str, Any] | None) -> str | None:
    """The uid of the stack a claim Lease names (None: no Lease)."""
    if lease is None:
        return None
    return ((lease.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_HOLDER_UID)


def lease_for(service: str, namespace: str, holder: Contender, resource_version: str | None) -> dict[str, Any]:
    """The claim Lease naming ``holder``; owned by it, so it goes with the stack (garbage collection)."""
    meta: dict[str, Any] = {
        "name": lease_name(service),
        "namespace": namespace,
        "labels": {
            LABEL_MANAGED_BY: MANAGED_BY,
            LABEL_COMPONENT: CLAIM_COMPONENT,
            LABEL_SERVICE: service,
            LABEL_STACK: holder.name,
        },
        "annotations": {ANNOTATION_HOLDER_UID: holder.uid},
        "ownerReferences": [
            {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "name": holder.name, "uid": holder.uid}
        ],
    }
    if resource_version is not None:
        meta["resourceVersion"] = resource_version  # an update lands only on the version that was read
    return {"apiVersion": LEASE_API, "kind": "Lease", "metadata": meta, "spec": {"holderIdentity": holder.name}}


def conflict_message(service: str, holder: str, names: Iterable[str] = ()) -> str:
    def rank(name: str) -> tuple[bool, bool, str]:  # the workload and its Service first: what a person looks for
        kind = name.split("/")[0]
        return (kind not in WORKLOAD_KINDS, kind != "Service", name)

    shown = sorted(names, key=rank)
    objects = f" ({', '.join(shown[:3])}{', ...' if len(shown) > 3 else ''})" if shown else ""
    return (
        f"{service}{objects} is claimed by AddonStack {holder!r} (the stack that asked for it first in this "
        "namespace); "
        f"{service} is not deployed here: remove it from one of the stacks or put this stack in its own namespace "
        f"(it is handed over when {holder!r} is deleted or drops it)"
    )
