"""Carry out service-name claims (the decision is ``claims.py``): read the claim Leases and the namespace's
stacks, write the Leases that change, release the ones this stack no longer needs.

A converged stack that holds all its services reads one LIST of Leases and writes nothing. Only when a
service is not yet held (a new stack, a handover) are the namespace's stacks read: what each asks for is
planned from its spec (with no credentials, so a service that needs user credentials counts only for the
stacks that reconcile themselves), remembered per (uid, generation). A stack alone in its namespace writes no
Leases at all (``claims.sole_claimant``); the first stack to share the namespace with it writes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt

from addonstack.catalog.loader import Catalog
from addonstack.constants import LABEL_SERVICE, LABEL_STACK
from addonstack.controller import claims
from addonstack.controller.cluster import Cluster, gather_all
from addonstack.controller.decide import Desired, Observed, desire
from addonstack.controller.objects import ObjectKey, labels_of
from addonstack.render.stack import StackDefaults

MEMO_LIMIT = 4096
_wants_memo: dict[tuple[str, int], frozenset[str]] = {}


class ClaimRace(Exception):
    """Another writer changed a claim Lease between our read and our write; read again."""


def wants_of(body: Mapping[str, Any], defaults: StackDefaults, cat: Catalog) -> frozenset[str]:
    """The service names another stack asks for, planned from its spec (remembered per uid and generation)."""
    meta = body.get("metadata") or {}
    key = (str(meta.get("uid")), int(meta.get("generation") or 0))
    if key in _wants_memo:
        return _wants_memo[key]
    desired = desire(Observed(dict(body), []), defaults, cat)
    if isinstance(desired, Desired):
        wants = frozenset(claims.claimable(desired.objects, str(meta.get("name"))))
    else:  # a spec that cannot be planned now: what it lists (a holder keeps its services through a typo)
        wants = frozenset(str(s) for s in (body.get("spec") or {}).get("services") or [])
    if len(_wants_memo) >= MEMO_LIMIT:
        _wants_memo.clear()
    _wants_memo[key] = wants
    return wants


async def settle(
    cluster: Cluster,
    desired: Desired,
    observed: Observed,
    existing: Mapping[ObjectKey, dict[str, Any]],
    defaults: StackDefaults,
    cat: Catalog,
    max_age: float = 0.0,
) -> dict[str, str]:
    """Claim this stack's services; service id -> holder name for those another stack holds (blocked here).

    ``max_age``: a Lease list read that long ago will do when it shows this stack holding all it wants (an
    event pass of a converged stack); anything else is decided on a fresh read."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(ClaimRace), stop=stop_after_attempt(4), reraise=True
    ):
        with attempt:
            return await _settle_once(cluster, desired, observed, existing, defaults, cat, max_age)
    raise AssertionError("unreachable")  # pragma: no cover


async def _claims(cluster: Cluster, ns: str, max_age: float) -> dict[str, dict[str, Any]]:
    return {labels_of(lease).get(LABEL_SERVICE, ""): lease for lease in await cluster.list_claims(ns, max_age)}


async def _others(cluster: Cluster, body: Mapping[str, Any], sole: tuple[str, str, str]) -> list[dict[str, Any]] | None:
    """The other AddonStacks of the stack's namespace; None when there are none and it may hold its services
    without Leases (``claims.sole_claimant``), which is kept under ``sole`` for its event passes."""
    meta = body["metadata"]
    read_at = time.time()  # before the list is sent
    others = [b for b in await cluster.list_stacks(meta["namespace"]) if b["metadata"].get("uid") != meta["uid"]]
    if claims.sole_claimant(body, others, read_at):
        cluster.keep(sole, True)
        return None
    cluster.forget(sole)
    return others


async def _settle_once(
    cluster: Cluster,
    desired: Desired,
    observed: Observed,
    existing: Mapping[ObjectKey, dict[str, Any]],
    defaults: StackDefaults,
    cat: Catalog,
    max_age: float,
) -> dict[str, str]:
    meta = observed.body["metadata"]
    ns, stack, uid = meta["namespace"], meta["name"], meta["uid"]
    wanted = claims.claimable(desired.objects, stack)
    sole = ("sole", ns, uid)  # kept: this stack was found alone in its namespace (claims.sole_claimant)
    if cluster.kept(sole, max_age) is not None:
        return {}  # an event pass of a stack found alone: its create pass decided, and read or wrote no Lease
    bodies = None
    # a new stack: alone in its namespace, it has no Lease to read
    if not observed.body.get("status") and (bodies := await _others(cluster, observed.body, sole)) is None:
        return {}
    leases = await _claims(cluster, ns, max_age)
    if max_age > 0 and any(claims.lease_holder(leases.get(sid)) != uid for sid in wanted):
        leases = await _claims(cluster, ns, 0.0)  # something to decide: not on a reused read
    for sid, held in leases.items():
        if claims.lease_holder(held) == uid and sid not in wanted:
            await cluster.release_claim(ns, held["metadata"]["name"])
    todo = [sid for sid in wanted if claims.lease_holder(leases.get(sid)) != uid]
    if not todo:
        return {}
    if bodies is None and (bodies := await _others(cluster, observed.body, sole)) is None:
        return {}
    me = claims.contender(observed.body, wanted)
    stacks = [me] + [
        claims.contender(b, () if b["metadata"].get("deletionTimestamp") else wants_of(b, defaults, cat))
        for b in bodies
    ]
    uids = {s.name: s.uid for s in stacks}
    live = observed.by_key
    blocked: dict[str, str] = {}
    writes: list[dict[str, Any]] = []
    for sid in todo:
        lease = leases.get(sid)
        current = claims.lease_holder(lease)
        if lease is None:  # no claim yet: whoever labels the live objects holds it (stacks from before claims)
            found = [live.get(k) or existing.get(k) for k in wanted[sid]]
            objs = [o for o in found if o is not None]
            current = uids.get(claims.incumbent(objs) or "")
        holder = claims.choose_holder(sid, current, stacks)
        if holder is None:
            continue
        if lease is None or claims.lease_holder(lease) != holder.uid:
            version = lease["metadata"].get("resourceVersion") if lease is not None else None
            writes.append(claims.lease_for(sid, ns, holder, version))
        if holder.uid != uid:
            blocked[sid] = holder.name
    # Each Lease is its own atomic decision, so they are written together (a new stack of five services waited
    # for five round trips in a row); when any lost a race, everything is read and decided again.
    if not all(await gather_all(*(cluster.write_claim(lease) for lease in writes))):
        raise ClaimRace(ns)
    return blocked


def adoptable(existing: Mapping[ObjectKey, dict[str, Any]], blocked: Mapping[str, str]) -> list[dict[str, Any]]:
    """Live objects of services this stack now holds that another AddonStack's label still names (a handover:
    the retained Secret and volumes of a deleted holder pass to the next, with the values they hold)."""
    return [
        obj
        for obj in existing.values()
        if labels_of(obj).get(LABEL_STACK) and labels_of(obj).get(LABEL_SERVICE) not in blocked
    ]
