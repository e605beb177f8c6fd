"""The operator on the real control plane: converge, add, remove, heal drift, reject bad specs."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Secret, Service
from lightkube.resources.networking_v1 import NetworkPolicy

from addonstack.controller.cluster import AddonStackResource
from tests.cluster.operator_harness import (
    admin_secret,
    condition,
    get_stack,
    running_operator,
    stack,
    stack_gone,
    wait_for,
    wait_ready,
)

pytestmark = pytest.mark.cluster
LABEL = "addonstack.dev/stack"


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig):
        yield


def _children(client: Client, ns: str, name: str) -> dict[tuple[str, str], Any]:
    out: dict[tuple[str, str], Any] = {}
    for res in (Deployment, StatefulSet, Service, Secret, ConfigMap, Job, NetworkPolicy):
        for obj in client.list(res, namespace=ns, labels={LABEL: name}):
            out[(obj.kind, obj.metadata.name)] = obj
    return out


def _secret_values(client: Client, ns: str, name: str) -> dict[str, dict[str, str]]:
    return {
        s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}
        for s in client.list(Secret, namespace=ns, labels={LABEL: name})
    }


def test_stack_converges_grows_shrinks_and_heals(
    client: Client, operator_proc: None, namespace: str, kubeconfig: Path
) -> None:
    ns = namespace
    admin_secret(client, ns)
    client.create(codecs.from_dict(stack("demo", ns, {"services": ["n8n", "qdrant", "meilisearch"]})))
    obj = wait_ready(client, "demo", ns, timeout=180)
    st = obj["status"]
    assert st["summary"] == "3/3"
    assert {s["id"] for s in st["services"]} == {"n8n", "qdrant", "meilisearch"}
    assert condition(obj, "Stalled")["status"] == "False"

    kids = _children(client, ns, "demo")
    uid = obj["metadata"]["uid"]
    for sid in ("n8n", "qdrant", "meilisearch"):
        assert ("Service", sid) in kids
        assert ("Secret", f"{sid}-env") in kids
    assert ("Deployment", "n8n") in kids
    workloads = [o for (k, _), o in kids.items() if k in ("Deployment", "StatefulSet")]
    assert len(workloads) == 3
    for o in workloads:
        assert [r.uid for r in o.metadata.ownerReferences] == [uid]
        assert o.metadata.labels["app.kubernetes.io/managed-by"] == "addonstack"
    jobs = [o for (k, _), o in kids.items() if k == "Job"]
    assert jobs and all((j.status.succeeded or 0) >= 1 for j in jobs), "n8n's database Job completed"

    # kubectl get addonstacks shows it, with the printer columns.
    kubectl = _kubectl(kubeconfig)
    if kubectl:
        shown = subprocess.run(
            [*kubectl, "get", "addonstacks", "-n", ns], capture_output=True, text=True, check=True
        ).stdout
        assert "demo" in shown and "True" in shown and "3/3" in shown

    # Add a service: only its objects appear; every Secret value is byte-identical.
    before = _secret_values(client, ns, "demo")
    before_keys = set(kids)
    client.patch(
        AddonStackResource,
        "demo",
        {"spec": {"services": ["n8n", "qdrant", "meilisearch", "gotify"]}},
        namespace=ns,
        patch_type=_merge(),
    )
    wait_ready(client, "demo", ns, timeout=180)
    after = _secret_values(client, ns, "demo")
    for name, values in before.items():
        assert after[name] == values, f"{name} changed"
    new_keys = set(_children(client, ns, "demo")) - before_keys
    assert new_keys and all("gotify" in n for _, n in new_keys), new_keys
    # The edit ran from the generation in status (controller/kopfstate.py): kopf wrote no copy of the spec.
    annotations = client.get(AddonStackResource, "demo", namespace=ns).metadata.annotations or {}
    assert not [k for k in annotations if k.endswith("last-handled-configuration")], annotations

    # Remove one: its objects are pruned (its Secret is kept: deletionPolicy Retain), the rest untouched.
    client.patch(
        AddonStackResource,
        "demo",
        {"spec": {"services": ["n8n", "qdrant", "gotify"]}},
        namespace=ns,
        patch_type=_merge(),
    )
    wait_ready(client, "demo", ns, timeout=120)
    wait_for(
        "meilisearch objects to be pruned",
        lambda: not any(n == "meilisearch" and k != "Secret" for (k, n) in _children(client, ns, "demo")),
    )
    assert ("Secret", "meilisearch-env") in _children(client, ns, "demo")
    assert _secret_values(client, ns, "demo")["n8n-env"] == before["n8n-env"]

    # Drift: a child deleted by hand comes back within the drift period.
    client.delete(Service, "qdrant", namespace=ns)
    client.delete(Deployment, "gotify", namespace=ns)
    wait_for(
        "deleted children to be recreated",
        lambda: (
            ("Service", "qdrant") in _children(client, ns, "demo")
            and ("Deployment", "gotify") in _children(client, ns, "demo")
        ),
        timeout=60,
    )
    # Drift: an image edited by hand is put back.
    dep = client.get(Deployment, "gotify", namespace=ns)
    image = dep.spec.template.spec.containers[0].image
    client.patch(
        Deployment,
        "gotify",
        {"spec": {"template": {"spec": {"containers": [{"name": "gotify", "image": "example.invalid/hijacked:1"}]}}}},
        namespace=ns,
        patch_type=_strategic(),
    )
    wait_for(
        "the image to be restored",
        lambda: client.get(Deployment, "gotify", namespace=ns).spec.template.spec.containers[0].image == image,
        timeout=60,
    )


def _merge() -> Any:
    from lightkube.types import PatchType

    return PatchType.MERGE


def _strategic() -> Any:
    from lightkube.types import PatchType

    return PatchType.STRATEGIC


def _kubectl(kubeconfig: Path) -> list[str] | None:
    import shutil

    tools = Path.home() / ".cache" / "addonstack" / "tools"
    found = sorted(tools.glob("*/kubectl"))
    path = str(found[-1]) if found else shutil.which("kubectl")
    if path is None:
        return None
    return [path, "--kubeconfig", str(kubeconfig)] if path else None


@pytest.mark.parametrize(
    ("spec", "expect"),
    [
        ({"services": ["definitely-not-a-service"]}, "Unsupported value"),
        ({"services": ["n8n"], "colour": "red"}, "unknown field"),
        (
            {"services": ["n8n"], "database": {"host": "db", "port": 70000, "adminSecretRef": {"name": "a"}}},
            "70000",
        ),
        ({"services": ["n8n", "n8n"]}, "Duplicate value"),
        ({"services": ["n8n"], "ingress": {"tlsSecretName": "tls"}}, "needs ingress.host"),
        ({"services": ["n8n"], "ingress": {"clusterIssuer": "le"}}, "need ingress.host"),
        ({"services": ["n8n"], "ingress": {"host": "a.example", "clusterIssuer": "le", "issuer": "ca"}}, "not both"),
        ({"services": ["n8n"], "overrides": {"n8n": {"env": {"1-BAD": "x"}}}}, "keys must match"),
    ],
)
def test_api_server_rejects_bad_specs(
    client: Client, namespace: str, kubeconfig: Path, spec: dict[str, Any], expect: str
) -> None:
    import json

    kubectl = _kubectl(kubeconfig)
    assert kubectl, "kubectl is needed for this test (tools/k8s/tools.sh installs it)"
    body = json.dumps(stack("bad", namespace, spec))
    res = subprocess.run(
        [*kubectl, "create", "--validate=strict", "-f", "-"], input=body, capture_output=True, text=True
    )
    assert res.returncode != 0, res.stdout
    assert expect in res.stderr, res.stderr


def test_invalid_state_is_stalled_not_crashing(client: Client, operator_proc: None, namespace: str) -> None:
    # Valid for the schema, impossible for the plan: a credentials override for a variable that does not exist
    # is caught by the planner and reported as Stalled with the reason.
    client.create(
        codecs.from_dict(
            stack("creds", namespace, {"services": ["n8n"], "credentialsSecretRef": {"name": "missing-secret"}})
        )
    )
    obj = wait_for("a status", lambda: get_stack(client, "creds", namespace).get("status") or None, timeout=60)
    warnings = obj.get("warnings", [])
    assert any("missing-secret" in w for w in warnings), warnings


def test_delete_with_retain_keeps_secrets(client: Client, operator_proc: None, namespace: str) -> None:
    client.create(codecs.from_dict(stack("keep", namespace, {"services": ["gotify"]})))
    wait_ready(client, "keep", namespace)
    client.delete(AddonStackResource, "keep", namespace=namespace)
    wait_for("the stack to be gone", lambda: stack_gone(client, "keep", namespace), timeout=60)
    assert client.get(Secret, "gotify-env", namespace=namespace) is not None
