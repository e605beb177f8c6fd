"""The drift timer's pass over a converged stack, decided without a cluster: which body it may use instead of a
fresh GET, when it reads the database admin Secret, and when pods are worth a LIST (tests/cluster/
test_pass_reads.py runs the same passes on the API server)."""

from __future__ import annotations

from typing import Any

from addonstack.controller.applied import records_database
from addonstack.controller.handlers import _timer_body
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
