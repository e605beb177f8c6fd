"""Drift and conflicts: what a person changes by hand in a stack's children, and what another manager owns.

The operator's drift timer (2 s here) re-applies the stack with server-side apply under its field manager.
A hand edit of a field the operator sets (image, an env var, a generated Secret key, replicas the stack
declares) is put back; replicas of a service whose stack does not declare them belong to whoever scales it
(an HPA, ``kubectl scale``) and are left alone, while the operator keeps correcting the rest of that object.
test_operator.py covers deleted children and an edited image; this adds the rest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Secret
from lightkube.resources.discovery_v1 import EndpointSlice
from lightkube.types import PatchType

from tests.cluster.operator_harness import admin_secret, running_operator, stack, wait_for, wait_ready
from tests.cluster.reliability_helpers import decode
from tests.figures import record

pytestmark = pytest.mark.cluster

DRIFT = 2.0  # seconds between drift reconciles


@pytest.fixture(scope="module")
def operator(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig, drift_interval=DRIFT):
        yield


def _container(client: Client, name: str, ns: str) -> Any:
    return client.get(Deployment, name, namespace=ns).spec.template.spec.containers[0]


def _env(client: Client, name: str, ns: str) -> dict[str, Any]:
    return {e.name: e for e in _container(client, name, ns).env or []}


def _patch_container(client: Client, name: str, ns: str, container: dict[str, Any], manager: str) -> None:
    client.patch(
        Deployment,
        name,
        {"spec": {"template": {"spec": {"containers": [{"name": name, **container}]}}}},
        namespace=ns,
        patch_type=PatchType.STRATEGIC,
        field_manager=manager,
    )


def test_hand_edits_are_put_back(client: Client, operator: None, namespace: str) -> None:
    ns = namespace
    admin_secret(client, ns)
    spec = {"services": ["gotify", "it-tools"], "overrides": {"it-tools": {"replicas": 2}}}
    client.create(codecs.from_dict(stack("drift", ns, spec)))
    wait_ready(client, "drift", ns, timeout=120)
    image = _container(client, "gotify", ns).image
    tz = _env(client, "gotify", ns)["TZ"].valueFrom.configMapKeyRef
    password = decode(client.get(Secret, "gotify-env", namespace=ns))["GOTIFY_DEFAULTUSER_PASS"]
    slices = _slices(client, ns, "gotify")
    assert slices, "kube-controller-manager made an EndpointSlice for the gotify Service"

    # Everything at once, as `kubectl edit`, `kubectl set env`, `kubectl scale` would.
    t0 = time.monotonic()
    _patch_container(client, "gotify", ns, {"image": "example.invalid/hijacked:1"}, "kubectl-edit")
    _patch_container(client, "gotify", ns, {"env": [{"name": "TZ", "value": "Europe/Paris", "valueFrom": None}]},
                     "kubectl-set")  # fmt: skip
    client.patch(Deployment.Scale, "it-tools", {"spec": {"replicas": 5}}, namespace=ns, field_manager="kubectl-scale")
    client.patch(Secret, "gotify-env", {"data": {"GOTIFY_DEFAULTUSER_PASS": None}}, namespace=ns,
                 patch_type=PatchType.MERGE, field_manager="kubectl-edit")  # fmt: skip

    def probe() -> list[str] | str:
        left = []
        if _container(client, "gotify", ns).image != image:
            left.append("image")
        env = _env(client, "gotify", ns)["TZ"]
        if env.value is not None or env.valueFrom is None or env.valueFrom.configMapKeyRef != tz:
            left.append("env TZ")
        if client.get(Deployment, "it-tools", namespace=ns).spec.replicas != 2:
            left.append("replicas (declared in the stack)")
        if "GOTIFY_DEFAULTUSER_PASS" not in decode(client.get(Secret, "gotify-env", namespace=ns)):
            left.append("deleted Secret key")
        return f"still drifted: {', '.join(left)}" if left else ["all put back"]

    wait_for("hand edits to be put back", probe, timeout=10 * DRIFT + 20)
    took = time.monotonic() - t0
    wait_ready(client, "drift", ns, timeout=60)
    # A deleted generated key has to be issued again: nothing else holds its value. It comes back as a new one.
    again = decode(client.get(Secret, "gotify-env", namespace=ns))["GOTIFY_DEFAULTUSER_PASS"]
    assert again and len(again) == len(password)
    # The EndpointSlices kube-controller-manager made for our Service carry our labels; they are not pruned.
    time.sleep(2 * DRIFT)
    assert slices <= _slices(client, ns, "gotify"), "the operator deleted kube-controller-manager's EndpointSlices"
    record(f"hand edits (image, env, declared replicas, deleted Secret key) put back in {took:.1f}s "
          f"(drift interval {DRIFT:.0f}s)")  # fmt: skip


@pytest.mark.parametrize("how", ["scale-subresource", "server-side-apply"])
def test_replicas_owned_by_another_manager_are_left_alone(
    client: Client, operator: None, namespace: str, kubeconfig: Path, how: str
) -> None:
    """Replicas the stack does not declare belong to whoever scales the workload; the rest is still ours."""
    ns = namespace
    client.create(codecs.from_dict(stack("scaled", ns, {"services": ["it-tools"]})))
    wait_ready(client, "scaled", ns, timeout=120)
    image = _container(client, "it-tools", ns).image
    if how == "scale-subresource":  # kubectl scale, or the HPA controller writing /scale
        client.patch(Deployment.Scale, "it-tools", {"spec": {"replicas": 3}}, namespace=ns,
                     field_manager="horizontal-pod-autoscaler")  # fmt: skip
    else:  # another controller server-side applying only the field it owns
        body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "it-tools", "namespace": ns},
                "spec": {"replicas": 3}}  # fmt: skip
        subprocess.run(
            [*_kubectl(kubeconfig), "apply", "--server-side", "--force-conflicts", "--field-manager=autoscaler",
             "-f", "-"],
            input=json.dumps(body), capture_output=True, text=True, check=True,
        )  # fmt: skip
    # Then a hand edit the operator must still correct on the same object: once it is put back, a drift
    # reconcile has run after the scale.
    _patch_container(client, "it-tools", ns, {"image": "example.invalid/hijacked:1"}, "kubectl-edit")
    wait_for("the image to be put back", lambda: _container(client, "it-tools", ns).image == image,
             timeout=10 * DRIFT + 20)  # fmt: skip
    time.sleep(2 * DRIFT)  # two more drift periods
    dep = client.get(Deployment, "it-tools", namespace=ns)
    assert dep.spec.replicas == 3, "the operator took replicas back from another manager"
    owners = {m.manager for m in dep.metadata.managedFields or [] if "f:replicas" in _spec_fields(m)}
    assert "addonstack-operator" not in owners, owners
    obj = wait_ready(client, "scaled", ns, timeout=60)
    assert next(s for s in obj["status"]["services"] if s["id"] == "it-tools")["replicas"] == 3


def _spec_fields(entry: Any) -> dict[str, Any]:
    fields = entry.fieldsV1 if isinstance(entry.fieldsV1, dict) else {}
    spec: dict[str, Any] = fields.get("f:spec") or {}
    return spec


def _slices(client: Client, ns: str, service: str) -> set[str]:
    return {
        s.metadata.uid for s in client.list(EndpointSlice, namespace=ns, labels={"kubernetes.io/service-name": service})
    }


def _kubectl(kubeconfig: Path) -> list[str]:
    found = sorted((Path.home() / ".cache" / "addonstack" / "tools").glob("*/kubectl"))
    path = str(found[-1]) if found else shutil.which("kubectl")
    assert path, "kubectl is needed (tools/k8s/tools.sh installs it)"
    return [path, "--kubeconfig", str(kubeconfig)]
