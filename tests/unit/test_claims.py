"""Service-name claims without a cluster: which stack of a namespace gets a service, and what the others say."""

from __future__ import annotations

from typing import Any

from addonstack.catalog.loader import load_catalog
from addonstack.controller import claims
from addonstack.controller.claims import Contender, choose_holder
from addonstack.controller.decide import Desired, Observed, desire, name_conflicts
from addonstack.render.stack import StackDefaults


def stack(name: str, created: str, *wants: str) -> Contender:
    return Contender(name, f"uid-{name}", created, frozenset(wants))


def test_the_oldest_asker_wins_by_creation_time_then_name() -> None:
    thirty = [stack(f"s{i:02d}", "2026-12-05T20:00:00Z", "searxng", "meilisearch") for i in range(30, 0, -1)]
    older = stack("zz", "2026-12-05T19:59:59Z", "searxng")
    for service in ("searxng", "meilisearch"):
        winners = {choose_holder(service, None, [*thirty[i:], *thirty[:i], older]) for i in range(30)}
        assert len(winners) == 1, "every stack computes the same winner whatever order it sees the others in"
    assert choose_holder("searxng", None, [*thirty, older]) == older
    assert choose_holder("meilisearch", None, [*thirty, older]) == stack(
        "s01", "2026-12-05T20:00:00Z", "searxng", "meilisearch"
    )


def test_the_holder_keeps_the_service_until_it_is_gone_or_drops_it() -> None:
    old = stack("old", "2026-01-01T00:00:00Z", "qdrant")
    young = stack("young", "2026-06-01T00:00:00Z", "qdrant")
    younger = stack("younger", "2026-07-01T00:00:00Z", "qdrant")
    # an older stack that adds the service later does not take it from the running holder
    assert choose_holder("qdrant", young.uid, [old, young, younger]) == young
    # deleted holder: the next oldest asker
    assert choose_holder("qdrant", young.uid, [old, younger]) == old
    # holder dropped the service: handed on
    dropped = stack("young", "2026-06-01T00:00:00Z")
    assert choose_holder("qdrant", young.uid, [dropped, younger]) == younger
    assert choose_holder("qdrant", young.uid, [dropped]) is None


def test_claimable_services_leave_out_objects_named_after_the_stack() -> None:
    cat = load_catalog()
    body = {
        "metadata": {"name": "t1", "namespace": "ns", "uid": "u1", "generation": 1},
        "spec": {"services": ["searxng", "meilisearch"]},
    }
    desired = desire(Observed(body, []), StackDefaults(), cat)
    assert isinstance(desired, Desired)
    got = claims.claimable(desired.objects, "t1")
    assert set(got) == {"searxng", "meilisearch"}
    names = {k.name for keys in got.values() for k in keys}
    assert {"searxng", "searxng-env", "searxng-cache", "meilisearch", "searxng-allow"} <= names
    assert not any(n.startswith("t1-") for n in names)


def test_a_blocked_service_names_its_holder_and_held_services_adopt_objects_of_the_last_holder() -> None:
    cat = load_catalog()
    body: dict[str, Any] = {
        "metadata": {"name": "b", "namespace": "ns", "uid": "ub", "generation": 1},
        "spec": {"services": ["searxng", "meilisearch"]},
    }
    desired = desire(Observed(body, []), StackDefaults(), cat)
    assert isinstance(desired, Desired)
    existing = {}
    for key, obj in desired.objects.items():
        if obj["metadata"]["name"] in ("meilisearch-env", "searxng-env"):
            existing[key] = {
                **obj,
                "metadata": {**obj["metadata"], "labels": {**obj["metadata"]["labels"], "addonstack.dev/stack": "a"}},
            }
    found = name_conflicts("b", desired.objects, existing, {"searxng": "a"})
    assert [sid for sid, _ in found] == ["searxng"]
    assert "AddonStack 'a'" in found[0][1] and "searxng" in found[0][1]
    # without claims read, another stack's label is a conflict (the behaviour before claims)
    assert {sid for sid, _ in name_conflicts("b", desired.objects, existing)} == {"searxng", "meilisearch"}


def test_without_a_lease_the_stack_whose_label_the_objects_carry_keeps_them() -> None:
    objs = [
        {"kind": "Secret", "metadata": {"labels": {"addonstack.dev/stack": "b"}}},
        {"kind": "Deployment", "metadata": {"labels": {"addonstack.dev/stack": "a"}}},
    ]
    assert claims.incumbent(objs) == "a"
    assert claims.incumbent([]) is None


def test_the_claim_lease_is_owned_by_its_holder_and_guarded_by_its_version() -> None:
    holder = stack("a", "2026-01-01T00:00:00Z", "searxng")
    lease = claims.lease_for("searxng", "ns", holder, "42")
    assert lease["metadata"]["name"] == "addonstack-claim-searxng"
    assert lease["metadata"]["resourceVersion"] == "42"
    assert lease["metadata"]["ownerReferences"][0]["uid"] == "uid-a"
    assert claims.lease_holder(lease) == "uid-a" and lease["spec"]["holderIdentity"] == "a"
    assert "resourceVersion" not in claims.lease_for("searxng", "ns", holder, None)["metadata"]
    assert len(claims.lease_name("x" * 300)) <= 253


def test_a_stack_alone_in_its_namespace_holds_its_services_without_leases_once_it_is_two_seconds_old() -> None:
    from datetime import datetime

    body = {"metadata": {"name": "solo", "uid": "uid-solo", "creationTimestamp": "2026-12-05T20:00:00Z"}}
    born = datetime.fromisoformat("2026-12-05T20:00:00+00:00").timestamp()
    assert claims.sole_claimant(body, [], born + claims.SOLE_AFTER)
    # a stack created in the same second could sort before it by name: too young to go without Leases
    assert not claims.sole_claimant(body, [], born + claims.SOLE_AFTER - 0.5)
    assert not claims.sole_claimant(body, [{"metadata": {"name": "other"}}], born + 60)  # not alone
    assert not claims.sole_claimant({"metadata": {"name": "solo"}}, [], born + 60)  # no timestamp: Leases
    # the guarantee it rests on: a stack missing from that list is younger, so it gives the service to this one
    later = stack("a-later-one", "2026-12-05T20:00:01Z", "searxng")
    assert choose_holder("searxng", None, [stack("solo", "2026-12-05T20:00:00Z", "searxng"), later]).name == "solo"
