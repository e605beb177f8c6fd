"""The drift timer's pass over a converged stack, decided without a cluster: which body it may use instead of a
fresh GET, when it reads the database admin Secret, and when pods are worth a LIST (tests/cluster/
test_pass_reads.py runs the same passes on the API server)."""

from __future__ import annotations

from typing import Any

from addonstack.controller.applied import records_database
from addonstack.controller.bodies import timer_body as _timer_body
from addonstack.controller.status import workload_settled


def _stack(generation: int, observed: int | None, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s", "namespace": "ns", "generation": generation}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-07T00:00:00Z"
    status = {"observedGeneration": observed, "applied": {"Deployment/gatus": "d@1"}} if observed else {}
    return {"metadata": meta, "spec": {"services": ["gatus"]}, "status": status}


def test_the_timer_uses_kopfs_body_only_when_its_status_is_of_the_current_generation() -> None:
    live = _stack(3, 3)
    body = _timer_body(live)
    assert body == live
    assert body is not None and body["status"] is not live["status"]  # a copy: kopf replaces its body as events come
    body["status"]["applied"].clear()
    assert live["status"]["applied"]
    assert _timer_body(_stack(4, 3)) is None  # a spec edit not yet handled: read the stack
    assert _timer_body(_stack(1, None)) is None  # never reconciled
    assert _timer_body(_stack(3, 3, deleting=True)) is None


def test_the_admin_secret_is_read_up_front_only_for_a_stack_that_recorded_a_job() -> None:
    assert not records_database(None)
    assert not records_database({"applied": {"Deployment/gatus": "d@1", "Secret/gatus-env": "e@2"}})
    assert records_database({"applied": {"Job/s-db-setup": "j@1", "Deployment/n8n": "d@1"}})
    assert not records_database({"applied": "not a record"})


def _deployment(replicas: int, ready: int, updated: int, generation: int = 2, observed: int = 2) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": updated},
    }


def test_a_workload_is_settled_when_every_replica_is_ready_on_its_current_template() -> None:
    assert workload_settled(_deployment(2, 2, 2))
    assert workload_settled(_deployment(0, 0, 0))  # scaled to 0: its pods say nothing
    assert not workload_settled(_deployment(2, 1, 2))
    assert not workload_settled(_deployment(2, 2, 1))  # a rollout in progress
    assert not workload_settled(_deployment(1, 1, 1, generation=3, observed=2))  # a change not yet seen


def test_only_a_ready_stack_reuses_the_namespaces_reads_at_the_timer() -> None:
    from addonstack.controller.handlers import _ready

    def with_ready(status: str) -> dict[str, Any]:
        return {"status": {"conditions": [{"type": "Ready", "status": status}, {"type": "Stalled", "status": "False"}]}}

    assert _ready(with_ready("True"))
    assert not _ready(with_ready("False"))  # stalled on a quota: the next timer must see the raised one
    assert not _ready({"metadata": {}})


def test_the_timer_checks_a_ready_stack_lightly_between_full_passes() -> None:
    from addonstack.controller.fairness import FULL_CHECK_EVERY, light_drift

    interval = 60.0
    assert light_drift(True, 1000.0, 1000.0 + interval, interval)
    assert not light_drift(False, 1000.0, 1000.0 + interval, interval), "not Ready: a full pass at every timer"
    assert not light_drift(True, None, 1000.0, interval), "no full pass in this process yet (after a start)"
    assert not light_drift(True, 1000.0, 1000.0 + FULL_CHECK_EVERY * interval, interval), "the periodic full pass"


def test_the_light_check_lists_the_recorded_kinds_no_watch_reports_on() -> None:
    from addonstack.controller.applied import unwatched_kinds
    from addonstack.controller.cluster import CHILD_KINDS
    from addonstack.controller.watch import watched

    assert watched("Deployment") and watched("PersistentVolumeClaim") and watched("ConfigMap")
    assert watched("NetworkPolicy") and not watched("Ingress") and not watched("PodDisruptionBudget")
    record = {"Deployment/gatus": "d@g2", "NetworkPolicy/gatus": "n@g1", "Ingress/gatus": "i@g1", "Secret/x": "s@r5",
              "PodDisruptionBudget/gatus": "p@g1"}  # fmt: skip
    kinds = unwatched_kinds(CHILD_KINDS, {"applied": record}, watched)
    assert kinds is not None and {k for _, k in kinds} == {"Ingress", "PodDisruptionBudget"}
    assert unwatched_kinds(CHILD_KINDS, {"applied": {"Deployment/gatus": "d@g2"}}, watched) == ()
    assert unwatched_kinds(CHILD_KINDS, {}, watched) is None  # no record: a full pass


def _policy(name: str, generation: int) -> dict[str, Any]:
    return {"kind": "NetworkPolicy", "metadata": {"name": name, "generation": generation, "resourceVersion": "9"}}


def test_the_light_check_is_clean_only_when_the_recorded_objects_are_there_as_left() -> None:
    from addonstack.controller.applied import recorded_unchanged

    kinds = (("networking.k8s.io/v1", "NetworkPolicy"),)
    status = {"applied": {"NetworkPolicy/a": "d1@g1", "NetworkPolicy/b": "d2@g3", "Deployment/a": "d3@g7"}}
    assert recorded_unchanged(status, kinds, [_policy("a", 1), _policy("b", 3)])
    assert not recorded_unchanged(status, kinds, [_policy("a", 1)]), "one deleted"
    assert not recorded_unchanged(status, kinds, [_policy("a", 2), _policy("b", 3)]), "one edited"
    assert not recorded_unchanged(status, kinds, [_policy("a", 1), _policy("b", 3), _policy("c", 1)]), "unrecorded"
    assert recorded_unchanged({"applied": {}}, (), [])


def test_only_a_stack_at_the_operators_revision_without_user_secrets_is_checked_lightly() -> None:
    from addonstack.catalog.loader import load_catalog
    from addonstack.controller.handlers import _steady
    from addonstack.plan.revision import catalog_revision

    current = catalog_revision(load_catalog())

    def body(spec: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        return {"spec": {"services": ["gatus"], **spec}, "status": {"catalogRevision": current, **status}}

    assert _steady(body({}, {}))
    assert not _steady(body({}, {"catalogRevision": "0.0.1-000000000000"}))  # its upgrade is the timer's to start
    assert not _steady(body({}, {"availableRevision": current}))  # waits for approval or a maintenance window
    assert not _steady(body({}, {"upgrade": {"phase": "Rolling"}}))
    assert not _steady(body({"credentialsSecretRef": {"name": "creds"}}, {}))
