"""Which copy of a stack a pass may start from instead of a GET (controller/bodies.py), decided without a cluster.

The rule that must stay exact: a pass never starts from a body older than a status this process wrote, so status
transitions and Events are computed once. The same passes run against the API server in every cluster test.
"""

from __future__ import annotations

from typing import Any

from addonstack.controller.bodies import created_body, timer_body, written_body


def _stack(rv: str, generation: int = 1, observed: int | None = 1, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "s", "namespace": "ns", "generation": generation, "resourceVersion": rv}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-08T00:00:00Z"
    status = {"observedGeneration": observed, "applied": {"Deployment/gatus": "d@1"}} if observed else {}
    return {"metadata": meta, "spec": {"services": ["gatus"]}, "status": status}


def test_a_new_stack_starts_from_its_create_event_until_this_process_wrote_its_status() -> None:
    event = _stack("10", observed=None)
    body = created_body(event, written=False)
    assert body == event and body is not event and body["metadata"] is not event["metadata"]  # a deep copy
    assert created_body(event, written=True) is None  # a child's event pass came first and wrote a status
    assert created_body(_stack("11"), written=False) is None  # a status from elsewhere (another process)
    assert created_body(_stack("12", observed=None, deleting=True), written=False) is None


def test_a_later_pass_starts_from_kopfs_body_only_when_it_is_the_stack_as_our_last_status_patch_left_it() -> None:
    live = _stack("20")
    body = written_body(live, "20")
    assert body == live
    assert body is not None and body["status"] is not live["status"]  # a copy: kopf replaces its body as events come
    assert written_body(live, "21") is None  # our write's event has not reached kopf yet
    assert written_body(_stack("22", generation=2), "21") is None  # edited since (a spec change): read it
    assert written_body(live, None) is None and written_body(live, "") is None  # never written by this process
    assert written_body(None, "20") is None  # kopf has not shown us the stack
    assert written_body(_stack("23", generation=2, observed=1), "23") is None  # a newer generation to handle
    assert written_body(_stack("24", deleting=True), "24") is None


def test_the_timer_body_is_the_same_rule_without_the_version() -> None:
    assert timer_body(_stack("30")) == _stack("30")
    assert timer_body(_stack("31", generation=2)) is None
