"""The watch streams' store of children (controller/store.py) and the check that lets an event pass read it
(applied.holds, reconcile._from_store): what is kept, what a listing replaces, and when a kind is listed instead."""

from __future__ import annotations

from typing import Any

from addonstack.constants import LABEL_STACK
from addonstack.controller import metrics
from addonstack.controller.applied import holds
from addonstack.controller.reconcile import _from_store
from addonstack.controller.store import ALL, ChildStore


def _obj(kind: str, name: str, rv: str, ns: str = "n", stack: str = "s", gen: int | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": ns, "labels": {LABEL_STACK: stack}, "resourceVersion": rv}
    meta["managedFields"] = [{"manager": "addonstack"}]
    if gen is not None:
        meta["generation"] = gen
    return {"apiVersion": "v1", "kind": kind, "metadata": meta}


def _list(store: ChildStore, kind: str, scope: str, bodies: list[dict[str, Any]]) -> None:
    """A stream's whole listing, as childwatch.KindWatch._list hands it to the store."""
    store.listing(kind, scope)
    for body in bodies:
        store.stage(scope, body)
    store.listed(kind, scope)


def _names(objs: list[dict[str, Any]] | None) -> list[str]:
    assert objs is not None
    return sorted(o["metadata"]["name"] for o in objs)


def test_nothing_is_read_from_a_kind_before_its_stream_listed_it_and_a_listing_replaces_the_kind() -> None:
    store = ChildStore()
    assert store.children("Secret", "n", "s") is None  # not listed yet: the API server answers
    _list(
        store, "Secret", "n", [_obj("Secret", "a", "1"), _obj("Secret", "b", "2"), _obj("Secret", "x", "3", stack="t")]
    )
    assert _names(store.children("Secret", "n", "s")) == ["a", "b"]  # by the stack's label
    assert store.children("Secret", "other", "s") is None  # a namespace no stream of this scope listed
    assert store.children("ConfigMap", "n", "s") is None

    store.event("ADDED", _obj("Secret", "c", "4"))
    store.event("MODIFIED", _obj("Secret", "a", "5"))
    store.event("DELETED", _obj("Secret", "b", "6"))
    kept = store.children("Secret", "n", "s")
    assert _names(kept) == ["a", "c"]
    assert kept is not None and {o["metadata"]["resourceVersion"] for o in kept} == {"5", "4"}
    assert all("managedFields" not in o["metadata"] for o in kept)  # kept without them
    kept[0]["metadata"]["name"] = "changed"  # a copy: a pass may change what it read
    assert _names(store.children("Secret", "n", "s")) == ["a", "c"]
    assert store.counts["Secret"] == 3

    store.listing("Secret", "n")  # after a 410: until listed again, the kind may miss objects
    assert store.children("Secret", "n", "s") is None
    store.stage("n", _obj("Secret", "c", "7"))  # the listing's pages arrive, encoded as they come
    assert store.children("Secret", "n", "s") is None and store.counts["Secret"] == 3
    store.listed("Secret", "n")  # "a" went while the stream was broken
    assert _names(store.children("Secret", "n", "s")) == ["c"]
    assert store.counts["Secret"] == 1
    assert metrics.REGISTRY.get_sample_value("addonstack_store_objects", {"kind": "Secret"}) == 1


def test_of_managed_fields_only_who_owns_a_workloads_replicas_is_kept() -> None:
    """decide.others_own_replicas reads them: a Deployment scaled by an autoscaler keeps its replicas."""
    from addonstack.controller.decide import others_own_replicas

    scaled = _obj("Deployment", "web", "3", gen=2)
    scaled["metadata"]["managedFields"] = [
        {"manager": "addonstack-operator", "fieldsV1": {"f:spec": {"f:template": {}, "f:replicas": {}}}},
        {"manager": "horizontal-pod-autoscaler", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        {"manager": "kube-controller-manager", "fieldsV1": {"f:status": {"f:replicas": {}}}},
    ]
    store = ChildStore()
    _list(store, "Deployment", "n", [scaled, _obj("Deployment", "plain", "4", gen=1)])
    by_name = {o["metadata"]["name"]: o for o in store.children("Deployment", "n", "s") or []}
    assert others_own_replicas(by_name["web"]) and others_own_replicas(scaled)
    assert [m["manager"] for m in by_name["web"]["metadata"]["managedFields"]] == [
        "addonstack-operator",
        "horizontal-pod-autoscaler",
    ]
    assert "managedFields" not in by_name["plain"]["metadata"]


def test_a_cluster_wide_listing_serves_every_namespace_and_pods_are_not_kept() -> None:
    store = ChildStore()
    _list(store, "Service", ALL, [_obj("Service", "web", "1", ns="n1"), _obj("Service", "web", "2", ns="n2")])
    assert _names(store.children("Service", "n1", "s")) == ["web"]
    assert store.children("Service", "n3", "s") == []  # listed cluster-wide: none there
    _list(store, "Service", ALL, [_obj("Service", "web", "3", ns="n2")])
    assert store.children("Service", "n1", "s") == []
    _list(store, "Pod", ALL, [_obj("Pod", "p", "1")])
    store.event("ADDED", _obj("Pod", "q", "2"))
    assert store.children("Pod", "n", "s") is None and not any(k == "Pod" for k, _ in store.objects)


def test_the_store_is_read_only_where_it_holds_every_recorded_object_as_recorded() -> None:
    status = {"applied": {"Secret/a": "d1@r5", "Deployment/web": "d2@g2", "ConfigMap/c": "d3@r9"}}
    assert holds(status, "Secret", [_obj("Secret", "a", "5"), _obj("Secret", "stray", "6")])  # extras are pruned
    assert not holds(status, "Secret", [_obj("Secret", "a", "4")])  # our write's event not back, or an edit
    assert not holds(status, "Secret", [])  # gone, or not arrived yet
    assert holds(status, "Deployment", [_obj("Deployment", "web", "77", gen=2)])  # its status moved only
    assert not holds(status, "Deployment", [_obj("Deployment", "web", "78", gen=3)])
    assert holds(status, "Job", [])  # nothing recorded of the kind
    assert not holds({}, "Secret", [_obj("Secret", "a", "5")])  # no record: nothing to check against

    store = ChildStore()
    _list(store, "Secret", "n", [_obj("Secret", "a", "5")])
    _list(store, "ConfigMap", "n", [_obj("ConfigMap", "c", "8")])  # behind the record
    before = metrics.REGISTRY.get_sample_value("addonstack_store_reads_total", {"source": "store"}) or 0.0
    kinds = (
        ("v1", "Secret"),
        ("v1", "ConfigMap"),
        ("apps/v1", "Deployment"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
    )
    kept, missing = _from_store(store, status, "n", "s", kinds)
    assert _names(kept) == ["a"]
    assert missing == kinds[1:]
    assert metrics.REGISTRY.get_sample_value("addonstack_store_reads_total", {"source": "store"}) == before + 1
    assert _from_store(None, status, "n", "s", kinds) == ([], kinds)  # no store (kopf holds the streams)
