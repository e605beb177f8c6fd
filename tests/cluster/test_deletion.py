"""Deleting a stack: what each deletion policy keeps, and the way out when the operator is gone for good.

- Retain (the default): the stack goes at once; its workloads, Services and ConfigMaps are garbage-collected
  through their ownerReferences; its Secrets (issued passwords) and PersistentVolumeClaims stay, and no
  database-drop Job ever exists (the database stays).
- Delete: the operator's finalizer holds the stack until a drop Job for the stack's databases has completed,
  then the operator deletes the Secrets and claims and releases the stack; nothing of it is left.
- Operator gone for good: every stack carries the operator's finalizer (kopf's drift timer needs one), so
  deletion waits for an operator. The documented escape,
  ``kubectl patch addonstack NAME --type=merge -p '{"metadata":{"finalizers":null}}'``, releases it, and
  kube-controller-manager garbage-collects the children through their ownerReferences. No drop Job runs:
  the database (and, with Retain, the Secrets and claims) must be cleaned up by hand.

A watch records every Job that appears in the namespace, so a drop Job that ran and was deleted again is seen.
test_operator.py checks that Retain keeps a Secret; this covers the rest.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Secret, Service

from addonstack.constants import LABEL_STACK
from addonstack.controller.cluster import AddonStackResource
from tests.cluster.operator_harness import (
    admin_secret,
    get_stack,
    running_operator,
    stack,
    stack_gone,
    wait_for,
    wait_ready,
)
from tests.cluster.reliability_helpers import FINALIZER, Seen
from tests.figures import record

pytestmark = pytest.mark.cluster

SERVICES = ["n8n", "gotify"]  # n8n: a PostgreSQL database (setup Job) and a volume; gotify: a volume


def _kinds(client: Client, ns: str, name: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for res in (Deployment, StatefulSet, Service, ConfigMap, Secret, PersistentVolumeClaim, Job):
        names = {o.metadata.name for o in client.list(res, namespace=ns, labels={LABEL_STACK: name})}
        if names:
            out[res.__name__] = names
    return out


def _drop_jobs(seen: Seen) -> list[Any]:
    return [j for name, j in seen.objects.items() if "db-drop" in name]


def test_retain_keeps_secrets_claims_and_database(client: Client, kubeconfig: Path, namespace: str) -> None:
    ns = namespace
    admin_secret(client, ns)
    with running_operator(kubeconfig), Seen(str(kubeconfig), Job, ns) as jobs:
        client.create(codecs.from_dict(stack("keep", ns, {"services": SERVICES, "deletionPolicy": "Retain"})))
        wait_ready(client, "keep", ns, timeout=150)
        before = _kinds(client, ns, "keep")
        secrets = {s.metadata.name: s.data for s in client.list(Secret, namespace=ns, labels={LABEL_STACK: "keep"})}
        t0 = time.monotonic()
        client.delete(AddonStackResource, "keep", namespace=ns)
        wait_for("the stack to be gone", lambda: stack_gone(client, "keep", ns), timeout=150)
        took = time.monotonic() - t0
        wait_for("owned children to be garbage-collected",
                 lambda: not ({"Deployment", "StatefulSet", "Service", "ConfigMap"} & set(_kinds(client, ns, "keep"))),
                 timeout=60)  # fmt: skip
        time.sleep(2)  # a drop Job, if the operator wrongly made one, would appear now
    after = _kinds(client, ns, "keep")
    assert before["PersistentVolumeClaim"] and after.get("PersistentVolumeClaim") == before["PersistentVolumeClaim"]
    assert after.get("Secret") == before["Secret"]
    for s in client.list(Secret, namespace=ns, labels={LABEL_STACK: "keep"}):
        assert s.data == secrets[s.metadata.name], f"{s.metadata.name} changed"
    assert not _drop_jobs(jobs), "Retain must keep the database: no drop Job"
    assert any("db-setup" in n for n in jobs.objects), "the stack had a database (setup Job seen)"
    record(f"deletionPolicy Retain: stack gone {took:.1f}s after delete; kept {len(after['Secret'])} Secrets, "
          f"{len(after['PersistentVolumeClaim'])} claims, no drop Job")  # fmt: skip


def test_delete_drops_database_and_removes_everything(client: Client, kubeconfig: Path, namespace: str) -> None:
    ns = namespace
    admin_secret(client, ns)
    with running_operator(kubeconfig), Seen(str(kubeconfig), Job, ns) as jobs:
        client.create(codecs.from_dict(stack("wipe", ns, {"services": SERVICES, "deletionPolicy": "Delete"})))
        obj = wait_ready(client, "wipe", ns, timeout=150)
        assert FINALIZER in obj["metadata"]["finalizers"]
        assert _kinds(client, ns, "wipe")["PersistentVolumeClaim"]
        t0 = time.monotonic()
        client.delete(AddonStackResource, "wipe", namespace=ns)
        wait_for("the stack to be finalized and gone", lambda: stack_gone(client, "wipe", ns), timeout=120)
        took = time.monotonic() - t0
        wait_for("every child to be gone", lambda: not _kinds(client, ns, "wipe") or None, timeout=90)
    drops = _drop_jobs(jobs)
    assert len(drops) == 1, list(jobs.objects)
    script = json.dumps(drops[0].spec.template.spec.to_dict())
    assert "n8n" in script, "the drop Job drops n8n's database"
    record(f"deletionPolicy Delete: drop Job {drops[0].metadata.name} ran, stack gone {took:.1f}s after delete")


@pytest.mark.parametrize("policy", ["Retain", "Delete"])
def test_finalizer_escape_when_the_operator_isstack_gone(
    client: Client, kubeconfig: Path, namespace: str, policy: str
) -> None:
    ns = namespace
    admin_secret(client, ns)
    with running_operator(kubeconfig):
        client.create(codecs.from_dict(stack("orphan", ns, {"services": SERVICES, "deletionPolicy": policy})))
        wait_ready(client, "orphan", ns, timeout=150)
    # The operator is gone for good. The stack carries its finalizer, so deletion waits.
    assert FINALIZER in get_stack(client, "orphan", ns)["metadata"]["finalizers"]
    before = _kinds(client, ns, "orphan")
    client.delete(AddonStackResource, "orphan", namespace=ns)
    time.sleep(3)
    stuck = get_stack(client, "orphan", ns)
    assert stuck["metadata"].get("deletionTimestamp"), "deletion is pending on the finalizer"

    # The documented escape, with kubectl exactly as written in the docs.
    kubectl = _kubectl(kubeconfig)
    res = subprocess.run(
        [*kubectl, "-n", ns, "patch", "addonstack", "orphan", "--type=merge",
         "-p", '{"metadata":{"finalizers":null}}'],
        capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    wait_for("the stack to be gone", lambda: stack_gone(client, "orphan", ns), timeout=30)
    kept = {"Secret", "PersistentVolumeClaim"} if policy == "Retain" else set()

    def collected() -> dict[str, set[str]] | str:
        left = _kinds(client, ns, "orphan")
        extra = {k: v for k, v in left.items() if k not in kept}
        return f"left: {extra}" if extra else left or {"nothing": set()}

    left = wait_for("the children to be garbage-collected via ownerReferences", collected, timeout=90)
    for kind in kept:
        assert left.get(kind) == before[kind], (kind, left.get(kind), before[kind])


def _kubectl(kubeconfig: Path) -> list[str]:
    found = sorted((Path.home() / ".cache" / "addonstack" / "tools").glob("*/kubectl"))
    path = str(found[-1]) if found else shutil.which("kubectl")
    assert path, "kubectl is needed (tools/k8s/tools.sh installs it)"
    return [path, "--kubeconfig", str(kubeconfig)]
