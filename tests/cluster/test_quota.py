"""Plans and quotas on the real control plane: a stack that does not fit the namespace's ResourceQuota stalls
before it creates anything, says which quota and resource, and goes ahead once the quota is raised; a scaled
service gets a PodDisruptionBudget the API server accepts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.resources.policy_v1 import PodDisruptionBudget
from lightkube.types import PatchType

from addonstack.constants import LABEL_STACK
from addonstack.controller.cluster import AddonStackResource
from addonstack.render.stack import StackDefaults
from tests.cluster.operator_harness import condition, get_stack, running_operator, stack, wait_for

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    # A short resync: a stack stalled on the quota is checked again at the next one.
    with running_operator(kubeconfig, drift_interval=3.0, defaults=StackDefaults(deletion_policy="Delete")):
        yield


def _quota(namespace: str, memory: str) -> Any:
    return codecs.from_dict(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": {"name": "tenant-plan", "namespace": namespace},
            "spec": {"hard": {"requests.memory": memory, "pods": "10"}},
        }
    )


def test_a_stack_over_the_quota_stalls_before_creating_and_resumes_when_raised(
    client: Client, operator_proc: None, namespace: str
) -> None:
    client.create(_quota(namespace, "100Mi"))
    client.create(codecs.from_dict(stack("big", namespace, {"services": ["qdrant", "gatus"], "size": "large"})))

    def stalled() -> dict[str, Any] | str:
        obj = get_stack(client, "big", namespace)
        cond = condition(obj, "Stalled")
        return obj if cond.get("reason") == "QuotaExceeded" else f"Stalled {cond.get('reason')}: {cond.get('message')}"

    obj = wait_for("the stack to stall on the quota", stalled, timeout=60)
    message = condition(obj, "Stalled")["message"]
    assert message.startswith("ResourceQuota tenant-plan: requests.memory would reach"), message
    assert "the quota allows 100Mi" in message
    assert obj["status"]["resources"]["pods"] == 2 and obj["status"]["effective"]["size"] == "large"
    mine = {LABEL_STACK: "big"}
    for kind in (Deployment, StatefulSet, Secret, ConfigMap):
        assert not list(client.list(kind, namespace=namespace, labels=mine)), f"{kind.__name__} created"

    client.apply(_quota(namespace, "64Gi"), field_manager="addonstack-tests", force=True)

    def created() -> bool:
        return bool(list(client.list(Deployment, namespace=namespace, labels=mine)))

    wait_for("the stack to create its workloads after the quota was raised", created, timeout=60)


def test_a_scaled_service_gets_a_disruption_budget(client: Client, operator_proc: None, namespace: str) -> None:
    spec = {"services": ["it-tools"], "overrides": {"it-tools": {"replicas": 2}}}
    client.create(codecs.from_dict(stack("scaled", namespace, spec)))

    def budget() -> Any:
        found = list(client.list(PodDisruptionBudget, namespace=namespace, labels={LABEL_STACK: "scaled"}))
        return found[0] if found else None

    pdb = wait_for("the PodDisruptionBudget", budget, timeout=60)
    assert pdb.spec.maxUnavailable == 1
    assert pdb.spec.selector.matchLabels["app.kubernetes.io/name"] == "it-tools"
    patch = {"spec": {"overrides": {"it-tools": {"replicas": 1}}}}
    client.patch(AddonStackResource, "scaled", patch, namespace=namespace, patch_type=PatchType.MERGE)
    wait_for("the budget to go with the second replica", lambda: budget() is None, timeout=60)
