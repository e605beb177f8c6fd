"""Which child events are worth a pass (controller/echo.py): our own writes coming back and changes to nothing
the status reads are not; deletions, hand edits and every change of readiness or of a problem are."""

from __future__ import annotations

import copy
from typing import Any

from addonstack.controller.echo import ChildEvents, OwnWrites


def obj(kind: str, name: str, rv: int, **fields: Any) -> dict[str, Any]:
    meta = {"name": name, "namespace": "tenant", "resourceVersion": str(rv)}
    if kind in ("Deployment", "StatefulSet", "Job"):
        meta["generation"] = fields.pop("generation", 1)
    return {"kind": kind, "metadata": meta, **fields}


def deployment(rv: int, ready: int = 0, observed: int = 0, generation: int = 1, **status: Any) -> dict[str, Any]:
    st = {"observedGeneration": observed, "readyReplicas": ready, "updatedReplicas": ready, **status}
    return obj("Deployment", "gatus", rv, generation=generation, spec={"replicas": 1}, status=st)


def test_a_new_deployment_counts_once_it_is_ready_not_for_our_create_or_its_progress() -> None:
    own = OwnWrites()
    events = ChildEvents(own)
    created = deployment(10)
    own.wrote(created)  # the apply's answer
    assert not events.worth_a_pass("ADDED", created), "our own create came back"
    progress = deployment(11, observed=1, conditions=[{"type": "Progressing", "status": "True"}])
    assert not events.worth_a_pass("MODIFIED", progress), "rolled out, 0/1 ready as before: nothing to compute"
    assert events.worth_a_pass("MODIFIED", deployment(12, ready=1, observed=1)), "ready: the stack may be Ready"
    assert not events.worth_a_pass("MODIFIED", deployment(13, ready=1, observed=1)), "no change in readiness"


def test_a_hand_edit_a_problem_and_a_deletion_count_and_our_own_delete_does_not() -> None:
    own = OwnWrites()
    events = ChildEvents(own)
    events.listed(deployment(20, ready=1, observed=1))
    assert events.worth_a_pass("MODIFIED", deployment(21, ready=1, observed=1, generation=2)), "spec edited by hand"
    refused = {"type": "ReplicaFailure", "status": "True", "message": "pods are forbidden: exceeded quota"}
    failing = deployment(22, observed=2, generation=2, conditions=[refused])
    assert events.worth_a_pass("MODIFIED", failing), "a quota refusal is a reason to show"
    assert events.worth_a_pass("DELETED", failing), "deleted outside the operator: repair"
    own.deleted("Deployment", "tenant", "gatus")
    assert not events.worth_a_pass("DELETED", deployment(23)), "we pruned it ourselves"


def test_objects_only_we_write_count_unless_the_event_is_our_write() -> None:
    own = OwnWrites()
    events = ChildEvents(own)
    secret = obj("Secret", "gatus-env", 30, data={"K": "dg=="})
    own.wrote(secret)
    assert not events.worth_a_pass("ADDED", secret)
    edited = copy.deepcopy(secret)
    edited["metadata"]["resourceVersion"] = "31"
    assert events.worth_a_pass("MODIFIED", edited), "a hand edit of a Secret is repaired"
    own.wrote(obj("ConfigMap", "c", 40))
    assert events.worth_a_pass("MODIFIED", obj("ConfigMap", "c", 39)), "an older event still counts"
    assert not events.worth_a_pass("MODIFIED", obj("ConfigMap", "c", 40)), "...and ours is still known after it"


def test_pods_count_only_with_a_problem_a_person_must_see() -> None:
    events = ChildEvents(OwnWrites())
    pending = obj("Pod", "gatus-1", 50, status={"phase": "Pending"})
    running = obj("Pod", "gatus-1", 51, status={"phase": "Running", "containerStatuses": [
        {"name": "gatus", "ready": True, "state": {"running": {}}}]})  # fmt: skip
    assert not events.worth_a_pass("ADDED", pending)
    assert not events.worth_a_pass("MODIFIED", running), "readiness reaches the stack through the Deployment"
    crash = obj("Pod", "gatus-1", 52, status={"containerStatuses": [{"name": "gatus", "state": {
        "waiting": {"reason": "CrashLoopBackOff"}}, "lastState": {"terminated": {"exitCode": 1}}}]})  # fmt: skip
    assert events.worth_a_pass("MODIFIED", crash)
    assert not events.worth_a_pass("MODIFIED", crash), "the same problem again"
    assert events.worth_a_pass("MODIFIED", running), "the problem went away"
    assert not events.worth_a_pass("DELETED", running), "a pod that goes is its workload's business"
