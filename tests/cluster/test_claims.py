"""Service-name claims on the dev cluster: 30 stacks created at once in one namespace, each asking for
searxng and meilisearch, give every object of each service to one stack, and deleting it hands them on. A stack
alone in its namespace writes no claim Lease; the next stack that asks for its services writes them for it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Secret, Service

from addonstack.controller.claims import SOLE_AFTER
from addonstack.controller.cluster import AddonStackResource
from tests.cluster.operator_harness import condition, get_stack, running_operator, stack, wait_for, wait_ready
from tests.cluster.recording import recorded_pass

pytestmark = pytest.mark.cluster
SERVICES = ("searxng", "meilisearch")
KINDS = (Deployment, StatefulSet, Service, Secret, ConfigMap, PersistentVolumeClaim)
N = 30


def owners(client: Client, namespace: str) -> dict[str, set[str]]:
    """Service id -> the stacks whose label that service's objects carry."""
    out: dict[str, set[str]] = {sid: set() for sid in SERVICES}
    for kind in KINDS:
        for obj in client.list(kind, namespace=namespace, labels={"addonstack.dev/service": list(SERVICES)}):
            if kind is PersistentVolumeClaim and re.search(r"-\d+$", obj.metadata.name or ""):
                continue  # made by the StatefulSet controller from its template; kept, and reused by name
            labels = obj.metadata.labels or {}
            out[labels["addonstack.dev/service"]].add(labels.get("addonstack.dev/stack", "?"))
    return out


def settled(client: Client, namespace: str, names: list[str], winner: str) -> dict[str, Any] | str:
    """All stacks but ``winner`` stalled naming it, and every service object labelled ``winner``."""
    for name in names:
        if name == winner:
            continue
        st = condition(get_stack(client, name, namespace), "Stalled")
        if st.get("reason") != "NameConflict" or f"'{winner}'" not in st.get("message", ""):
            return f"{name}: Stalled={st}"
    got = owners(client, namespace)
    return {"owners": got} if all(v == {winner} for v in got.values()) else f"owners {got}"


def test_thirty_stacks_at_once_give_each_service_to_the_oldest_and_deleting_it_hands_over(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    names = [f"tenant-{i:02d}" for i in range(N)]
    with running_operator(kubeconfig, drift_interval=30.0):
        for name in names:
            client.create(codecs.from_dict(stack(name, namespace, {"services": list(SERVICES)})))
        bodies = [get_stack(client, n, namespace) for n in names]
        order = sorted(bodies, key=lambda b: (b["metadata"]["creationTimestamp"], b["metadata"]["name"]))
        winner, runner_up = order[0]["metadata"]["name"], order[1]["metadata"]["name"]
        wait_ready(client, winner, namespace, timeout=240)
        wait_for("the 29 others to stall naming the winner", lambda: settled(client, namespace, names, winner), 240)
        for sid in SERVICES:
            lease = client.get(Lease, f"addonstack-claim-{sid}", namespace=namespace)
            assert lease.spec.holderIdentity == winner
        message = condition(get_stack(client, runner_up, namespace), "Stalled")["message"]
        assert "searxng" in message and "own namespace" in message

        issued = client.get(Secret, "searxng-env", namespace=namespace).data

        client.delete(AddonStackResource, winner, namespace=namespace)
        rest = [n for n in names if n != winner]
        wait_ready(client, runner_up, namespace, timeout=240)
        wait_for("the services to pass to the next oldest", lambda: settled(client, namespace, rest, runner_up), 240)
        # Retain: the deleted holder's Secret was adopted with the values it held (searxng's key did not rotate)
        secret = client.get(Secret, "searxng-env", namespace=namespace)
        assert secret.metadata.labels["addonstack.dev/stack"] == runner_up and secret.data == issued


def test_a_stack_alone_writes_no_lease_and_the_next_one_writes_it_naming_the_first(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    # No operator runs: each pass is made here, so what it wrote is exactly that pass's.
    claims = {"app.kubernetes.io/component": "claim"}
    client.create(codecs.from_dict(stack("first", namespace, {"services": ["it-tools"]})))
    time.sleep(SOLE_AFTER + 0.5)  # younger, it would write the Lease (a same-second stack could sort first)
    outcome, first = recorded_pass(kubeconfig, get_stack(client, "first", namespace), full=True)
    assert not [w for w in first.seen_writes if w.startswith("claim")], first.seen_writes
    assert "apply Deployment/it-tools" in first.seen_writes
    assert list(client.list(Lease, namespace=namespace, labels=claims)) == []

    client.create(codecs.from_dict(stack("second", namespace, {"services": ["it-tools", "gatus"]})))
    outcome, second = recorded_pass(kubeconfig, get_stack(client, "second", namespace), full=True)
    assert second.seen_writes.count("claim addonstack-claim-it-tools") == 1
    assert "apply Deployment/gatus" in second.seen_writes and "apply Deployment/it-tools" not in second.seen_writes
    stalled = condition({"status": outcome.status}, "Stalled")
    assert stalled["reason"] == "NameConflict" and "'first'" in stalled["message"], stalled
    # sharing the namespace, it claims all it asks for: the service the first one holds, in that one's name
    holders = {lease.metadata.name: lease.spec.holderIdentity for lease in client.list(Lease, namespace=namespace)}
    assert holders == {"addonstack-claim-it-tools": "first", "addonstack-claim-gatus": "second"}
