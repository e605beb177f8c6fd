"""Reads of a namespace's shared objects that a child's event pass may reuse (cluster.SHARED_READ_TTL).

A new stack's children change a dozen times in its first seconds and each change re-evaluates the stack;
the namespace's quotas, LimitRanges, claim Leases and the admin Secret's key names are read once for those
passes, not once per pass. What must stay exact: passes of other causes read fresh (and refresh), a claim
write goes into the kept Lease list as the server answered it (one lost to another writer forgets the list), and
a claim decision is never made on a reused list.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, cast

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from addonstack.catalog.loader import load_catalog
from addonstack.controller import claiming, claims
from addonstack.controller.claims import Contender
from addonstack.controller.cluster import SHARED_READ_TTL, Cluster
from addonstack.controller.decide import Desired, Observed, desire
from addonstack.render.stack import StackDefaults


class Reads:
    """A fetch that counts its calls and returns a new value each time."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        return self.calls


def _cluster(client: Any = None) -> Cluster:
    return Cluster(cast(AsyncClient, client))


def test_a_reused_read_is_served_within_its_age_and_a_fresh_pass_reads_and_refreshes() -> None:
    async def main() -> None:
        cluster, fetch = _cluster(), Reads()
        key = ("list", "v1", "ResourceQuota", "tenant")
        assert await cluster._reuse(key, 0.0, fetch) == 1  # a create/timer pass: always read
        assert await cluster._reuse(key, SHARED_READ_TTL, fetch) == 1  # an event pass right after: reused
        assert await cluster._reuse(key, 0.0, fetch) == 2  # the next fresh pass reads again...
        assert await cluster._reuse(key, SHARED_READ_TTL, fetch) == 2  # ...and event passes see its value
        assert await cluster._reuse(key, 1e-9, fetch) == 3  # older than the pass allows: read again
        assert fetch.calls == 3

    asyncio.run(main())


class LeaseClient:
    """Just what Cluster.write_claim, list_claims and list_stacks call: Lease lists carry a label selector."""

    def __init__(self, leases: list[dict[str, Any]], stacks: list[dict[str, Any]]) -> None:
        self.leases, self.stacks = leases, stacks
        self.lease_lists = self.stack_lists = 0
        self.writes = 0
        self.written: list[Any] = []

    async def create(self, obj: Any, field_manager: str) -> Any:
        self.writes += 1
        obj.metadata.resourceVersion = str(100 + self.writes)  # as the server answers it
        self.written.append(obj)
        self.leases.append(obj)  # what the next list shows
        return obj

    async def replace(self, obj: Any, field_manager: str) -> Any:
        return await self.create(obj, field_manager)

    def list(self, *_: Any, labels: Any = None, **__: Any) -> Any:
        if labels:
            self.lease_lists += 1
        else:
            self.stack_lists += 1
        found = list(self.leases if labels else self.stacks)

        async def gen() -> Any:
            for obj in found:
                yield obj

        return gen()


def _lease(service: str, holder: Contender) -> dict[str, Any]:
    lease = claims.lease_for(service, "tenant", holder, None)
    lease["metadata"]["resourceVersion"] = "7"
    return lease


def _stack(name: str, uid: str) -> tuple[dict[str, Any], Desired]:
    body = {
        "metadata": {"name": name, "namespace": "tenant", "uid": uid, "generation": 1,
                     "creationTimestamp": "2026-12-06T09:00:00Z"},
        "spec": {"services": ["searxng"]},
    }  # fmt: skip
    desired = desire(Observed(body, []), StackDefaults(), load_catalog())
    assert isinstance(desired, Desired)
    return body, desired


def test_a_converged_holder_reuses_the_lease_list_and_a_contender_decides_on_a_fresh_one() -> None:
    mine_body, mine_desired = _stack("mine", "uid-mine")
    other_body, other_desired = _stack("other", "uid-other")
    mine = Contender("mine", "uid-mine", "2026-12-06T09:00:00Z", frozenset({"searxng"}))

    async def settle(cluster: Cluster, body: dict[str, Any], desired: Desired) -> dict[str, str]:
        observed = Observed(body, [])
        return await claiming.settle(cluster, desired, observed, {}, StackDefaults(), load_catalog(), SHARED_READ_TTL)

    async def main() -> None:
        client = LeaseClient([_lease("searxng", mine)], [mine_body, other_body])
        cluster = _cluster(client)
        await cluster.list_claims("tenant")  # the create pass read them
        assert await settle(cluster, mine_body, mine_desired) == {}
        assert (client.lease_lists, client.writes) == (1, 0), "the holder's event pass reused the Lease list"

        # Another stack's event pass finds the reused list naming someone else: it reads again before deciding.
        assert await settle(cluster, other_body, other_desired) == {"searxng": "mine"}
        assert client.lease_lists == 2, "a claim was decided on a reused Lease list"

        # A claim written goes into the kept list as the server answered it: the next event pass reuses the list
        # (a new stack's readiness pass listed again the Leases its create pass had just written).
        other = Contender("other", "uid-other", "2026-12-06T10:00:00Z", frozenset({"searxng"}))
        new = claims.lease_for("redis", "tenant", other, None)
        assert await cluster.write_claim(new)
        kept = await cluster.list_claims("tenant", SHARED_READ_TTL)
        assert client.lease_lists == 2
        by_name = {lease["metadata"]["name"]: lease["metadata"] for lease in kept}
        assert by_name[new["metadata"]["name"]]["resourceVersion"] == "101"
        assert by_name[new["metadata"]["name"]]["labels"] == new["metadata"]["labels"]
        assert len(kept) == 2  # the Lease it had read, and the new one

        # A claim lost to another writer forgets the list it was decided on.
        async def conflict(obj: Any, field_manager: str) -> Any:
            raise ApiError(status=Status(code=409, reason="Conflict", message="the object has been modified"))

        client.replace = conflict  # type: ignore[method-assign]
        assert not await cluster.write_claim(_lease("searxng", mine))
        assert ("claims", "tenant") not in cluster._recent
        await cluster.list_claims("tenant", SHARED_READ_TTL)
        assert client.lease_lists == 3

    asyncio.run(main())


def test_a_stack_alone_in_its_namespace_writes_no_lease_and_the_next_stack_writes_it_naming_the_first() -> None:
    mine_body, mine_desired = _stack("mine", "uid-mine")  # created a day ago: old enough (claims.SOLE_AFTER)
    other_body, other_desired = _stack("other", "uid-other")
    other_body["metadata"]["creationTimestamp"] = "2026-12-06T10:00:00Z"

    async def settle(cluster: Cluster, body: dict[str, Any], desired: Desired, max_age: float = 0.0) -> Any:
        return await claiming.settle(cluster, desired, Observed(body, []), {}, StackDefaults(), load_catalog(), max_age)

    async def main() -> None:
        client = LeaseClient([], [mine_body])
        cluster = _cluster(client)
        assert await settle(cluster, mine_body, mine_desired) == {}  # the create pass
        assert (client.writes, client.lease_lists, client.stack_lists) == (0, 0, 1), "alone: no Lease read or written"
        mine_body["status"] = {"summary": "its create pass wrote a status"}
        assert await settle(cluster, mine_body, mine_desired, SHARED_READ_TTL) == {}  # its event passes
        assert (client.writes, client.lease_lists, client.stack_lists) == (0, 0, 1), "an event pass read again"

        client.stacks.append(other_body)  # a second stack asks for searxng: it writes the Lease, naming the first
        assert await settle(cluster, other_body, other_desired) == {"searxng": "mine"}
        assert client.writes == 1 and client.written[0].spec.holderIdentity == "mine"
        assert await settle(cluster, mine_body, mine_desired) == {}  # the first one's next fresh pass: held
        assert client.writes == 1

        # Too young to go without Leases (a stack created in the same second could sort first): it writes them.
        young_body, young_desired = _stack("young", "uid-young")
        young_body["metadata"]["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        young = LeaseClient([], [young_body])
        assert await settle(_cluster(young), young_body, young_desired) == {}
        assert young.writes == 1 and young.written[0].spec.holderIdentity == "young"

    asyncio.run(main())


def test_a_drift_pass_reuses_up_to_its_own_age_and_such_reads_survive_pruning() -> None:
    from addonstack.controller import cluster as cluster_module

    async def main() -> None:
        cluster, fetch = _cluster(), Reads()
        now = asyncio.get_running_loop().time()
        drift = cluster_module.DRIFT_REUSE * 60.0  # the timer's reuse at a 60 s interval: 90 s
        key = ("list", "v1", "ResourceQuota", "tenant")
        cluster._recent[key] = (now - 70.0, 0)  # the last timer pass of the namespace's stack, 70 s ago
        assert await cluster._reuse(key, SHARED_READ_TTL, fetch) == 1  # an event pass: too old, read
        cluster._recent[key] = (now - 70.0, 0)
        assert await cluster._reuse(key, drift, fetch) == 0  # the drift pass: within 1.5 intervals, reused
        # When the cache is full, entries are dropped only when older than any caller reuses.
        for i in range(cluster_module.RECENT_LIMIT):
            cluster._recent[("list", "v1", "LimitRange", f"ns-{i}")] = (now - 80.0, i)
        await cluster._reuse(("claims", "other"), 0.0, fetch)
        assert ("list", "v1", "LimitRange", "ns-7") in cluster._recent  # 80 s old, and drift passes reuse 90

    asyncio.run(main())
