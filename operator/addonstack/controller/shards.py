"""Shards: N operator replicas each serve a fixed share of the AddonStacks, chosen by the API server.

Every stack belongs to one of ``BUCKETS`` buckets, a hash of ``namespace/name`` that never changes, written as
the label ``addonstack.dev/shard-bucket`` (by the shard that owns the bucket, the first time it sees the stack
without it). Shard ``I`` of ``N`` owns the buckets that jump consistent hashing (Lamping and Veach, 2014) maps
to ``I``; its kopf watch of AddonStacks carries the server-side selector ``shard-bucket in (...)``, so a replica
receives, reads and remembers only its share. Changing N moves only the buckets that jump hashing moves (about
1/N of them when a shard is added, all to the new shard) and no stack is written for it: the bucket label stays,
only the selectors change.

Handover without double reconciles: each process holds a Lease (``addonstack-shard-<identity>``) that says
which shard of how many it is and since when (``acquireTime``), renewed every ``RENEW`` seconds. A replica does
not reconcile a stack while an older live Lease of another shard configuration also covers that stack's bucket
(e.g. the replicas of the old count during a rolling update to a new count); the drift timer reconciles it once
the older one has stopped renewing. Replicas of one shard use kopf peering (``<peering>-<index>``) for failover.

The pure half (bucket, jump hash, selectors, the blocked set) is tested without a cluster.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from addonstack.constants import LABEL_SHARD_BUCKET, LABEL_SHARD_COUNT, LABEL_SHARD_INDEX
from addonstack.controller.objects import kube_time

log = logging.getLogger("addonstack.shards")

BUCKETS = 256  # the most shards there can be; also the granularity of a move
LEASE_SECONDS = 30
RENEW = 10.0


def bucket_of(namespace: str, name: str) -> int:
    """The stack's fixed bucket: the same on every replica, for ever."""
    return int(hashlib.sha256(f"{namespace}/{name}".encode()).hexdigest()[:8], 16) % BUCKETS


def jump(key: int, buckets: int) -> int:
    """Jump consistent hash: adding a shard moves only the keys that go to the new one."""
    b, j = -1, 0
    key &= 2**64 - 1
    while j < buckets:
        b = j
        key = (key * 2862933555777941757 + 1) & (2**64 - 1)
        j = int((b + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return b


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    def __post_init__(self) -> None:
        if not 1 <= self.count <= BUCKETS or not 0 <= self.index < self.count:
            raise ValueError(
                f"--shard-index {self.index} --shard-count {self.count}: the count must be 1 to {BUCKETS} "
                "and the index 0 to count - 1"
            )

    def buckets(self) -> frozenset[int]:
        return frozenset(b for b in range(BUCKETS) if jump(b, self.count) == self.index)

    def owns(self, namespace: str, name: str) -> bool:
        return jump(bucket_of(namespace, name), self.count) == self.index

    def selector(self) -> str:
        """The server-side label selector of this shard's AddonStacks."""
        return f"{LABEL_SHARD_BUCKET} in ({','.join(str(b) for b in sorted(self.buckets()))})"


@dataclass(frozen=True)
class Holder:
    """One live Lease: a process serving ``shard`` since ``since``."""

    name: str
    shard: Shard
    since: datetime


def blocked_buckets(me: Holder, others: Iterable[Holder]) -> frozenset[int]:
    """My buckets that an older holder of another shard configuration still serves."""
    mine = me.shard.buckets()
    out: set[int] = set()
    for other in others:
        if other.name == me.name or other.shard == me.shard:
            continue  # the same shard: kopf peering keeps one of them active
        if (other.since, other.name) < (me.since, me.name):
            out |= mine & other.shard.buckets()
    return frozenset(out)


def holder_of(lease: Mapping[str, Any], now: datetime) -> Holder | None:
    """The live holder a Lease describes, or None when it expired or is not a shard Lease."""
    meta, spec = lease.get("metadata") or {}, lease.get("spec") or {}
    labels = meta.get("labels") or {}
    try:
        shard = Shard(int(labels[LABEL_SHARD_INDEX]), int(labels[LABEL_SHARD_COUNT]))
        renewed = kube_time(spec["renewTime"])
        since = kube_time(spec["acquireTime"])
    except (KeyError, ValueError, TypeError):
        return None
    if renewed + timedelta(seconds=int(spec.get("leaseDurationSeconds") or LEASE_SECONDS)) < now:
        return None
    return Holder(str(meta.get("name")), shard, since)


def identity() -> str:
    """This process in a Lease name: the pod name in a cluster, host and pid elsewhere."""
    raw = os.environ.get("POD_ID") or f"{socket.gethostname()}-{os.getpid()}"
    return "".join(c if c.isalnum() or c in "-." else "-" for c in raw.lower())[:200].strip("-.")


@dataclass
class Handover:
    """The Lease of this process and the buckets it must leave alone for now (see the module docstring)."""

    shard: Shard
    namespace: str
    name: str = field(default_factory=lambda: f"addonstack-shard-{identity()}")
    blocked: frozenset[int] = frozenset(range(BUCKETS))  # nothing until the other Leases have been read
    since: datetime = field(default_factory=lambda: datetime.now(UTC))

    def may_serve(self, namespace: str, name: str) -> bool:
        return bucket_of(namespace, name) not in self.blocked

    def lease(self, now: datetime) -> dict[str, Any]:
        stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {LABEL_SHARD_INDEX: str(self.shard.index), LABEL_SHARD_COUNT: str(self.shard.count)},
            },
            "spec": {
                "holderIdentity": identity(),
                "leaseDurationSeconds": LEASE_SECONDS,
                "acquireTime": self.since.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "renewTime": stamp,
            },
        }

    def update(self, leases: Iterable[Mapping[str, Any]], now: datetime) -> None:
        holders = [h for lease in leases if (h := holder_of(lease, now)) is not None]
        blocked = blocked_buckets(Holder(self.name, self.shard, self.since), holders)
        if blocked != self.blocked:
            log.info("shard %s/%s: %d bucket(s) wait for an older shard configuration to stop",
                     self.shard.index, self.shard.count, len(blocked))  # fmt: skip
        self.blocked = blocked

    async def run(self, cluster: Any) -> None:
        """Renew the Lease and re-read the others every RENEW seconds until cancelled."""
        while True:
            now = datetime.now(UTC)
            try:
                await cluster.apply(self.lease(now))
                self.update(await cluster.list_leases(self.namespace, LABEL_SHARD_COUNT), now)
            except Exception as exc:  # the API server is away: keep the last view, retry soon
                log.warning("shard lease not renewed: %s", exc)
            await asyncio.sleep(RENEW)

    async def label_new_stacks(self, cluster: Any, namespace: str) -> None:
        """Give each new stack of this shard its bucket label, so this shard's selector finds it."""
        async for stack in cluster.stacks_without(LABEL_SHARD_BUCKET, namespace):
            meta = stack.get("metadata") or {}
            ns, name = meta.get("namespace") or "", meta.get("name") or ""
            if not self.shard.owns(ns, name) or meta.get("deletionTimestamp"):
                continue
            try:
                await cluster.label_stack(ns, name, {LABEL_SHARD_BUCKET: str(bucket_of(ns, name))})
            except Exception as exc:  # the next event or the next start labels it
                log.warning("%s/%s: shard bucket label not set: %s", ns, name, exc)

    async def release(self, cluster: Any) -> None:
        """Delete the Lease at a clean stop, so a successor need not wait for it to expire."""
        try:
            await cluster.delete("coordination.k8s.io/v1", "Lease", self.namespace, self.name)
        except Exception as exc:
            log.warning("shard lease not released: %s", exc)
