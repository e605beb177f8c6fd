"""Which child events are worth a pass (controller/echo.py): our own writes coming back and changes to nothing
the status reads are not; deletions, hand edits and every change of readiness or of a problem are."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from addonstack.constants import LABEL_STACK
from addonstack.controller.echo import ChildEvents, OwnWrites, Urgency
from addonstack.controller.watch import Debouncer


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


def labelled(body: dict[str, Any], name: str, stack: str = "shop") -> dict[str, Any]:
    body = copy.deepcopy(body)
    body["metadata"]["name"] = name
    body["metadata"]["labels"] = {LABEL_STACK: stack}
    return body


def test_a_workload_ready_while_another_starts_is_progress_and_the_last_one_is_now() -> None:
    events = ChildEvents(OwnWrites())
    for name in ("gatus", "gotify"):
        events.listed(labelled(deployment(50), name))
    events.listed(labelled(deployment(50), "other", stack="blog"))  # another stack's workload does not count
    assert events.assess("MODIFIED", labelled(deployment(51, ready=1, observed=1), "gatus")) is Urgency.PROGRESS
    assert events.assess("MODIFIED", labelled(deployment(52, ready=1, observed=1), "gotify")) is Urgency.NOW, (
        "the last workload of the stack is ready: the stack may be Ready"
    )
    assert events.assess("MODIFIED", labelled(deployment(53, observed=1), "gatus")) is Urgency.NOW, "a regression"
    for name in ("gatus", "gotify"):
        events.assess("DELETED", labelled(deployment(54), name))
    assert ("tenant", "shop") not in events.workloads, "a deleted stack's workloads leave nothing behind"


def test_a_problem_or_a_hand_edit_is_never_held_back_by_other_workloads_starting() -> None:
    events = ChildEvents(OwnWrites())
    for name in ("gatus", "gotify"):
        events.listed(labelled(deployment(60), name))
    refused = {"type": "ReplicaFailure", "status": "True", "message": "pods are forbidden: exceeded quota"}
    failing = labelled(deployment(61, observed=1, conditions=[refused]), "gatus")
    assert events.assess("MODIFIED", failing) is Urgency.NOW
    edited = labelled(deployment(62, ready=1, observed=2, generation=2), "gotify")
    assert events.assess("MODIFIED", edited) is Urgency.NOW, "a new generation: a hand edit to repair"
    assert events.assess("DELETED", labelled(deployment(63), "gotify")) is Urgency.NOW


def test_debouncer_runs_one_pass_at_the_earliest_due_time() -> None:
    asyncio.run(_earliest_due())


async def _earliest_due() -> None:
    runs: list[tuple[str, str, float]] = []
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def run(ns: str, stack: str) -> None:
        runs.append((ns, stack, loop.time() - t0))

    debouncer = Debouncer(run, delay=0.05)
    debouncer.schedule("tenant", "shop", delay=5.0)  # progress: may wait
    debouncer.schedule("tenant", "shop")  # then something that may not: the pass moves forward
    debouncer.schedule("tenant", "shop", delay=5.0)
    await asyncio.sleep(0.3)
    assert [(ns, s) for ns, s, _ in runs] == [("tenant", "shop")] and runs[0][2] < 1.0
    debouncer.schedule("tenant", "shop", delay=0.2)
    debouncer.cancel("tenant", "shop")  # the stack was deleted
    await asyncio.sleep(0.4)
    assert len(runs) == 1
    await debouncer.close()


def test_debouncer_events_during_a_pass_cause_exactly_one_more() -> None:
    asyncio.run(_one_more())


async def _one_more() -> None:
    runs = 0
    gate = asyncio.Event()

    async def run(ns: str, stack: str) -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            await gate.wait()

    debouncer = Debouncer(run, delay=0.01)
    debouncer.schedule("tenant", "shop")
    await asyncio.sleep(0.05)
    for _ in range(3):
        debouncer.schedule("tenant", "shop")
    gate.set()
    await asyncio.sleep(0.1)
    assert runs == 2 and not debouncer.tasks
    await debouncer.close()


def test_an_event_that_outruns_the_answer_to_our_write_is_still_ours() -> None:
    own = OwnWrites()
    events = ChildEvents(own)
    service = obj("Service", "gatus", 70)
    with own.sending("Service", "tenant", "gatus"):
        assert not events.worth_a_pass("ADDED", service), "the watch delivered our create before its answer came"
        own.wrote(service)
    edited = obj("Service", "gatus", 71)
    assert events.worth_a_pass("MODIFIED", edited), "a change after our write is someone else's"
    with own.sending("Service", "tenant", "gatus"):
        pass
    assert events.worth_a_pass("DELETED", edited), "no write in flight: a deletion is repaired"
