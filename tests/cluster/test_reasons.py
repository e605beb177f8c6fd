"""Truthful conditions on the real control plane: a stack that cannot work says why, within seconds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment

from addonstack.render.stack import StackDefaults
from tests.cluster.operator_harness import condition, get_stack, running_operator, stack, wait_for

pytestmark = pytest.mark.cluster
NO_DATABASE = StackDefaults(deletion_policy="Retain")  # an operator started without --database-host


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig, drift_interval=600.0, defaults=NO_DATABASE):
        yield


def stalled(client: Client, name: str, ns: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | str:
        obj = get_stack(client, name, ns)
        cond = condition(obj, "Stalled")
        if cond.get("status") == "True" and cond.get("reason") == reason:
            return obj
        return f"Stalled={cond.get('status')} {cond.get('reason')}: {cond.get('message')}"

    return wait_for(f"stack {ns}/{name} to stall with {reason}", probe, timeout=60)


def test_missing_database_stalls_and_creates_nothing(client: Client, operator_proc: None, namespace: str) -> None:
    client.create(codecs.from_dict(stack("nodb", namespace, {"services": ["n8n"]})))
    obj = stalled(client, "nodb", namespace, "DatabaseNotConfigured")
    assert "n8n needs PostgreSQL" in condition(obj, "Stalled")["message"]
    assert condition(obj, "Ready")["status"] == "False"
    assert not list(client.list(Deployment, namespace=namespace)), "nothing is created for a stack that cannot work"


def test_namespace_quota_stalls_with_quota_exceeded(client: Client, operator_proc: None, namespace: str) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "no-pods", "namespace": namespace},
        # count/pods: a quota name the operator's check before creating does not read, so this exercises the
        # API server's refusal (FailedCreate on the ReplicaSet); test_quota.py covers the check itself.
        "spec": {"hard": {"count/pods": "0"}},
    }
    client.create(codecs.from_dict(quota))
    client.create(codecs.from_dict(stack("quota", namespace, {"services": ["gatus"]})))
    obj = stalled(client, "quota", namespace, "QuotaExceeded")
    assert "exceeded quota" in condition(obj, "Stalled")["message"]
    gatus = next(s for s in obj["status"]["services"] if s["id"] == "gatus")
    assert gatus["reason"] == "QuotaExceeded" and gatus["phase"] == "Failed"
