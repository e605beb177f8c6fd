"""The reconcile decision without a cluster: observed children + spec -> applies, prunes, status, Events."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import LABEL_SERVICE
from addonstack.controller.decide import (
    APPLY_ORDER,
    ApplyCache,
    Desired,
    Observed,
    Outcome,
    decide_actions,
    decide_status,
    desire,
    name_conflicts,
)
from addonstack.controller.objects import ObjectKey
from addonstack.render.stack import StackDefaults

DEFAULTS = StackDefaults()


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def body(services: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "addonstack.dev/v1alpha1",
        "kind": "AddonStack",
        "metadata": {"name": "s1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"services": services, **spec},
    }


def served(obj: dict[str, Any], ready: bool = False) -> dict[str, Any]:
    """What the API server answers an apply with: the object plus generation/resourceVersion (and status)."""
    out = copy.deepcopy(obj)
    if obj["kind"] in ("Deployment", "StatefulSet", "Job", "Ingress", "NetworkPolicy"):
        out["metadata"]["generation"] = 1  # kinds with a spec count generations; the others only resourceVersion
    out["metadata"]["resourceVersion"] = "7"
    if obj["kind"] in ("Deployment", "StatefulSet"):
        n = int(obj["spec"].get("replicas", 1))
        out["status"] = {"observedGeneration": 1, "readyReplicas": n if ready else 0, "updatedReplicas": n}
    return out


def want(observed: Observed, cat: Catalog) -> Desired:
    desired = desire(observed, DEFAULTS, cat)
    assert isinstance(desired, Desired), desired
    return desired


def converge(b: dict[str, Any], cat: Catalog, cache: ApplyCache, ready: bool = True) -> list[dict[str, Any]]:
    """Apply everything once, recording it in ``cache``; the live children that result."""
    observed = Observed(b, [])
    desired = want(observed, cat)
    live = []
    for batch in decide_actions(desired, observed, cache).batches:
        for key, _obj, digest, _ in batch:
            result = served(desired.objects[key], ready)
            cache.record("s1", key, digest, result)
            live.append(result)
    return live


def kinds(batches: list[list[tuple[ObjectKey, Any, Any, Any]]]) -> list[str]:
    return [batch[0][0].kind for batch in batches]


def test_a_new_stack_applies_everything_in_kind_order_and_prunes_nothing(cat: Catalog) -> None:
    observed = Observed(body(["gatus", "dozzle"]), [])
    desired = want(observed, cat)
    actions = decide_actions(desired, observed, ApplyCache())
    order = kinds(actions.batches)
    assert order == sorted(order, key=APPLY_ORDER.index)
    assert len(order) == len(set(order)), "one batch per kind"
    assert {k for batch in actions.batches for k, *_ in batch} == set(desired.objects)
    assert "Deployment" in order and order.index("Secret") < order.index("Deployment")
    assert actions.prune == [] and actions.unchanged == {}
    owners = {o["metadata"]["ownerReferences"][0]["uid"] for o in desired.objects.values() if o["kind"] == "Deployment"}
    assert owners == {"uid-1"}


def test_a_converged_stack_writes_nothing(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    observed = Observed(b, live)
    actions = decide_actions(want(observed, cat), observed, cache)
    assert actions.batches == [] and actions.prune == []
    assert len(actions.unchanged) == len(live)


def test_a_deleted_child_is_applied_again_and_an_edited_one_too(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    deployment = next(o for o in live if o["kind"] == "Deployment")
    edited = copy.deepcopy(next(o for o in live if o["kind"] == "Service"))
    edited["metadata"]["resourceVersion"] = "8"  # a hand edit of an object without a generation
    rest = [o for o in live if o["kind"] not in ("Deployment", "Service")]
    observed = Observed(b, [*rest, edited])
    actions = decide_actions(want(observed, cat), observed, cache)
    redo = {key for batch in actions.batches for key, *_ in batch}
    assert redo == {ObjectKey.of(deployment), ObjectKey.of(edited)}


def test_a_removed_service_is_pruned_but_its_data_is_retained(cat: Catalog) -> None:
    cache = ApplyCache()
    live = converge(body(["gatus", "gotify"]), cat, cache)
    observed = Observed(body(["gatus"]), live)
    actions = decide_actions(want(observed, cat), observed, cache)
    pruned = {(k.kind, k.name) for k in actions.prune}
    assert ("Deployment", "gotify") in pruned or ("StatefulSet", "gotify") in pruned
    assert not any(kind in ("Secret", "PersistentVolumeClaim") for kind, _ in pruned), "Retain keeps data"
    gotify = [o for o in live if o["metadata"]["labels"].get(LABEL_SERVICE) == "gotify"]
    assert any(o["kind"] == "PersistentVolumeClaim" for o in gotify)


def test_with_deletion_policy_delete_data_of_a_removed_service_is_pruned(cat: Catalog) -> None:
    cache = ApplyCache()
    live = converge(body(["gatus", "gotify"], deletionPolicy="Delete"), cat, cache)
    observed = Observed(body(["gatus"], deletionPolicy="Delete"), live)
    pruned = {k.kind for k in decide_actions(want(observed, cat), observed, cache).prune}
    assert {"Secret", "PersistentVolumeClaim"} <= pruned


def test_objects_another_controller_owns_are_not_pruned(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "gatus-abcde",
            "namespace": "ns",
            "labels": {LABEL_SERVICE: "gatus"},
            "ownerReferences": [{"uid": "service-uid", "controller": True}],
        },
    }
    observed = Observed(b, [*live, slice_])
    assert decide_actions(want(observed, cat), observed, cache).prune == []


def test_an_invalid_spec_stalls_without_actions(cat: Catalog) -> None:
    outcome = desire(Observed(body(["gatus"], replicasTypo=3), []), DEFAULTS, cat)
    assert isinstance(outcome, Outcome)
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
    assert "replicasTypo" in stalled["message"]
    assert outcome.events and outcome.events[0][1] == "InvalidSpec"


def test_status_is_ready_only_when_workloads_are(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    for ready, expect in ((False, "False"), (True, "True")):
        live = converge(b, cat, ApplyCache(), ready=ready)
        observed = Observed(b, live)
        desired = want(observed, cat)
        outcome = decide_status(desired, observed, {ObjectKey.of(o): o for o in live}, [], [])
        cond = {c["type"]: c for c in outcome.status["conditions"]}
        assert cond["Ready"]["status"] == expect
        assert cond["Reconciling"]["status"] == ("False" if ready else "True")
        assert [e[1] for e in outcome.events] == (["Ready"] if ready else [])
    assert cache.entries == {}


def test_a_name_taken_by_another_stack_blocks_that_service_only(cat: Catalog) -> None:
    observed = Observed(body(["gatus", "dozzle"]), [])
    desired = want(observed, cat)
    key = next(k for k in desired.objects if k.kind == "Deployment" and k.name == "gatus")
    theirs = {"metadata": {"name": "gatus", "labels": {"addonstack.dev/stack": "other"}}}
    conflicts = name_conflicts("s1", desired.objects, {key: theirs})
    assert [sid for sid, _ in conflicts] == ["gatus"] and "AddonStack 'other'" in conflicts[0][1]
    actions = decide_actions(desired, observed, ApplyCache(), {"gatus"})
    services = {desired.objects[k]["metadata"]["labels"][LABEL_SERVICE] for b in actions.batches for k, *_ in b}
    assert "gatus" not in services and "dozzle" in services
    outcome = decide_status(desired, observed, {}, [], conflicts)
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "NameConflict"


def test_forget_stack_drops_only_that_stacks_entries(cat: Catalog) -> None:
    cache = ApplyCache()
    converge(body(["gatus"]), cat, cache)
    other = ObjectKey("v1", "ConfigMap", "ns", "x")
    cache.record("s2", other, "d", {"metadata": {"resourceVersion": "1"}})
    assert len(cache.entries) > 1
    cache.forget_stack("ns", "s1")
    assert list(cache.entries) == [other]
    cache.forget_stack("ns", "s2")
    assert cache.entries == {} and cache.stacks == {}
