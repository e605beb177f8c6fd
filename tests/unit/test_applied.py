"""The record of what was applied, persisted in status.applied: a restart re-applies nothing unchanged."""

from __future__ import annotations

import copy
from typing import Any

from addonstack.catalog.loader import Catalog
from addonstack.controller.applied import FIELD, kinds_to_list, record_of, seed, status_patch
from addonstack.controller.applycache import ApplyCache
from addonstack.controller.cluster import CHILD_KINDS
from addonstack.controller.decide import Observed, decide_actions
from addonstack.controller.objects import ObjectKey
from tests.unit.test_decide import body, cat, converge, want

__all__ = ["cat"]  # the catalog fixture, shared with test_decide


def restarted(cat: Catalog, live: list[dict[str, object]], record: dict[str, str]) -> tuple[ApplyCache, Observed]:
    """A new process: an empty cache, seeded from the stack's status only."""
    b = body(["gatus", "it-tools"])
    b["status"] = {FIELD: record}
    observed = Observed(b, live)
    cache = ApplyCache()
    seed(cache, "s1", observed.prev, want(observed, cat).objects)
    return cache, observed


def test_a_restarted_operator_applies_nothing_over_an_unchanged_stack(cat: Catalog) -> None:
    first = ApplyCache()
    live = converge(body(["gatus", "it-tools"]), cat, first)
    record = record_of(first, [ObjectKey.of(o) for o in live])
    assert len(record) == len(live) and all("@" in v for v in record.values())
    cache, observed = restarted(cat, live, record)
    actions = decide_actions(want(observed, cat), observed, cache)
    assert actions.batches == [] and len(actions.unchanged) == len(live)
    without = decide_actions(want(observed, cat), observed, ApplyCache())
    assert sum(len(b) for b in without.batches) == len(live), "without the record everything is applied again"


def test_a_child_edited_while_no_operator_ran_is_still_repaired(cat: Catalog) -> None:
    first = ApplyCache()
    live = converge(body(["gatus", "it-tools"]), cat, first)
    record = record_of(first, [ObjectKey.of(o) for o in live])
    edited = [copy.deepcopy(o) for o in live]
    dep = next(o for o in edited if o["kind"] == "Deployment")
    dep["metadata"]["generation"] = 2  # `kubectl edit` while the operator was down
    cache, observed = restarted(cat, edited, record)
    redo = {k for batch in decide_actions(want(observed, cat), observed, cache).batches for k, *_ in batch}
    assert redo == {ObjectKey.of(dep)}


def test_a_record_of_another_version_of_the_spec_applies_what_changed(cat: Catalog) -> None:
    first = ApplyCache()
    live = converge(body(["gatus", "it-tools"]), cat, first)
    record = {k: ("0" * 20) + "@" + v.split("@")[1] if k.startswith("Deployment/gatus") else v
              for k, v in record_of(first, [ObjectKey.of(o) for o in live]).items()}  # fmt: skip
    cache, observed = restarted(cat, live, record)
    redo = [
        (k.kind, k.name) for batch in decide_actions(want(observed, cat), observed, cache).batches for k, *_ in batch
    ]
    assert redo == [("Deployment", "gatus")]


def test_the_status_patch_removes_what_the_new_status_no_longer_has() -> None:
    prev = {"summary": "1/1", FIELD: {"Secret/a": "x@r1", "Secret/b": "y@r2"}, "warnings": ["w"]}
    new = {"summary": "1/1", FIELD: {"Secret/a": "x@r3"}}
    assert status_patch(prev, new) == {"warnings": None, FIELD: {"Secret/a": "x@r3", "Secret/b": None}}
    assert status_patch(new, new) == {}


def test_an_event_pass_lists_only_the_recorded_kinds_and_every_other_pass_lists_all() -> None:
    status = {"applied": {"Deployment/gatus": "d@1", "Service/gatus": "d@2", "NetworkPolicy/gatus-allow": "d@3"}}
    narrowed = kinds_to_list(CHILD_KINDS, status, full=False)
    assert {kind for _, kind in narrowed} == {"Secret", "ConfigMap", "Deployment", "Service", "NetworkPolicy"}
    assert narrowed == tuple(k for k in CHILD_KINDS if k in narrowed), "the order of CHILD_KINDS is kept"
    assert kinds_to_list(CHILD_KINDS, status, full=True) == CHILD_KINDS
    # A status but no record (a stack an older operator made, or one stalled before it wrote anything): every
    # kind, even for an event pass.
    stalled = {"conditions": [{"type": "Stalled", "status": "True"}]}
    assert kinds_to_list(CHILD_KINDS, stalled, full=False) == CHILD_KINDS
    # Never reconciled (a create): what a deleted stack of that name may have left (Secrets, claims) and the
    # ConfigMaps of issued values; the kinds it is about to create are read once it has planned them.
    for new in (None, {}):
        for full in (True, False):
            assert {k for _, k in kinds_to_list(CHILD_KINDS, new, full)} == {
                "Secret",
                "ConfigMap",
                "PersistentVolumeClaim",
            }


def _claim(rv: int, storage: str = "1Gi", volume: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": storage}}}
    if volume:
        spec["volumeName"] = volume
    meta = {"name": "gotify-data", "namespace": "t", "resourceVersion": str(rv)}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}


def test_a_volume_claim_bound_by_the_binder_is_not_applied_again_and_a_resized_one_is() -> None:
    cache = ApplyCache()
    key = ObjectKey.of(_claim(1))
    cache.record("s1", key, "d1", _claim(1))
    bound = _claim(2, volume="pvc-1234")
    bound["metadata"]["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
    bound["status"] = {"phase": "Bound"}
    assert cache.fresh(key, "d1", bound), "the binder's writes are not an edit to repair"
    assert not cache.fresh(key, "d1", _claim(3, storage="5Gi", volume="pvc-1234")), "resized by hand"
    assert not cache.fresh(key, "d2", bound), "our own spec changed"


def test_a_volume_claim_recorded_by_resource_version_stays_fresh_until_it_moves() -> None:
    cache = ApplyCache()
    key = ObjectKey.of(_claim(7))
    cache.entries[key] = ("d1", "r7")  # recorded by an operator before claims had their own marker
    assert cache.fresh(key, "d1", _claim(7)), "an upgrade of the operator writes nothing"
    assert not cache.fresh(key, "d1", _claim(8)), "moved since: applied once more, then recorded the new way"
