"""Readiness and repair from watches: with the drift timer out of the way (10 minutes), a child's change
still reaches the stack's status and a deleted child comes back."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event
from lightkube.resources.networking_v1 import NetworkPolicy

from addonstack.controller import metrics
from addonstack.controller.watch import DEBOUNCE
from tests.cluster.operator_harness import get_stack, running_operator, stack, wait_for, wait_ready

pytestmark = pytest.mark.cluster
TIMER = 600.0  # no timer pass after the first one (5 s after a stack is seen) happens during these tests


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig, drift_interval=TIMER):
        yield


def test_deleted_and_edited_children_are_repaired_on_the_event(
    client: Client, operator_proc: None, namespace: str
) -> None:
    ns = namespace
    client.create(codecs.from_dict(stack("w", ns, {"services": ["gatus", "it-tools"]})))
    wait_ready(client, "w", ns, timeout=60)
    reconciled_ready = get_stack(client, "w", ns)["status"]["conditions"]
    assert any(c["type"] == "Ready" and c["status"] == "True" for c in reconciled_ready)
    # Passes start from a copy of the stack instead of a GET only when it is current (controller/bodies.py): a
    # stale one would compute the transitions again, and record them twice.
    wait_for("the Ready event", lambda: "Ready" in _reasons(client, ns, "w"), timeout=30)
    time.sleep(2 * DEBOUNCE)  # the event passes of the last workloads' readiness
    assert sorted(_reasons(client, ns, "w")) == ["Created", "Ready"]

    _delete_and_see_it_back(client, Deployment, "it-tools", ns)
    wait_ready(client, "w", ns, timeout=60)
    reasons = wait_for(
        "a Repaired event on the stack",
        lambda: (found := set(_reasons(client, ns, "w"))) and "Repaired" in found and found,
        timeout=30,
    )
    assert {"Created", "Ready"} <= reasons

    # A hand edit of the pod template is taken back (the Deployment's generation moved).
    image = client.get(Deployment, "gatus", namespace=ns).spec.template.spec.containers[0].image
    client.patch(
        Deployment,
        "gatus",
        {"spec": {"template": {"spec": {"containers": [{"name": "gatus", "image": "busybox:1"}]}}}},
        namespace=ns,
    )
    wait_for(
        "the edited Deployment to get its image back",
        lambda: client.get(Deployment, "gatus", namespace=ns).spec.template.spec.containers[0].image == image,
        timeout=60,
    )

    # A NetworkPolicy deleted by hand is put back on its event too (the drift timer is 600 s away).
    _delete_and_see_it_back(client, NetworkPolicy, "gatus-allow", ns)

    sample = metrics.REGISTRY.get_sample_value
    assert (sample("addonstack_objects_applied_total", {"kind": "Deployment"}) or 0) >= 3  # 2 created, 1 restored
    assert (sample("addonstack_watch_events_total", {"kind": "Deployment"}) or 0) > 0
    assert (sample("addonstack_apply_cache_hits_total") or 0) > 0
    assert (sample("addonstack_reconciles_total", {"result": "ready"}) or 0) > 0


def _delete_and_see_it_back(client: Client, kind: Any, name: str, ns: str) -> None:
    """Delete a child by hand and wait for the operator to create it again (a new uid)."""
    old = client.get(kind, name, namespace=ns)
    client.delete(kind, name, namespace=ns)
    wait_for(
        f"the deleted {kind.__name__} to be created again",
        lambda: client.get(kind, name, namespace=ns).metadata.uid != old.metadata.uid,
        timeout=60,
    )


def _reasons(client: Client, ns: str, stack_name: str) -> list[str]:
    """The reasons of the Events on a stack, one per Event."""
    return [str(e.reason) for e in client.list(Event, namespace=ns, fields={"involvedObject.name": stack_name})]
