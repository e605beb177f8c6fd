"""Registry mirror and pull secrets on the real control plane: the pods the cluster creates for a stack
(Deployment, StatefulSet and database Job pods alike) pull every image through the mirror with the
stack's pull Secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.core_v1 import Pod

from addonstack.constants import LABEL_STACK
from tests.cluster.operator_harness import admin_secret, get_stack, running_operator, stack, wait_for

pytestmark = pytest.mark.cluster
MIRROR = "mirror.example.com:5000/cache"
SERVICES = ["qdrant", "gatus", "n8n"]  # a StatefulSet, a Deployment, and a database (setup Job) for n8n


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig, drift_interval=600.0):
        yield


def test_every_pod_of_a_mirrored_stack_pulls_from_the_mirror(
    client: Client, operator_proc: None, namespace: str
) -> None:
    admin_secret(client, namespace)
    spec = {"services": SERVICES, "imageRegistry": MIRROR, "imagePullSecrets": [{"name": "mirror-pull"}]}
    client.create(codecs.from_dict(stack("mirrored", namespace, spec)))

    def pods() -> list[dict[str, Any]] | str:
        found = [p.to_dict() for p in client.list(Pod, namespace=namespace, labels={LABEL_STACK: "mirrored"})]
        owners = {o["kind"] for p in found for o in p["metadata"].get("ownerReferences") or []}
        services = {p["metadata"]["labels"].get("addonstack.dev/service") for p in found}
        if {"ReplicaSet", "StatefulSet", "Job"} <= owners and {"qdrant", "gatus"} <= services:
            return found
        return f"pods so far: owners {sorted(owners)}, services {sorted(s for s in services if s)}"

    found = wait_for("pods of every workload kind", pods, timeout=120)
    images = [c["image"] for p in found for c in [*p["spec"].get("initContainers", []), *p["spec"]["containers"]]]
    assert images and all(i.startswith(f"{MIRROR}/") for i in images), images
    assert all(p["spec"].get("imagePullSecrets") == [{"name": "mirror-pull"}] for p in found)

    # The pods can show up before the pass that applied their owners has written the stack's status.
    def effective() -> dict[str, Any] | None:
        seen: dict[str, Any] | None = (get_stack(client, "mirrored", namespace).get("status") or {}).get("effective")
        return seen if seen and "imageRegistry" in seen else None

    assert wait_for("status.effective.imageRegistry", effective, timeout=60)["imageRegistry"] == MIRROR
