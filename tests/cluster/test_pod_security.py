"""Every deployable entry's workloads against the real API server's Pod Security admission.

Each Deployment, StatefulSet and Job the Kubernetes renderer makes for the whole catalog is applied with
server-side dry-run into two namespaces labelled ``pod-security.kubernetes.io/warn``: ``restricted`` and
``baseline``. Admission answers with a ``Warning`` header naming each violated rule. A workload of an entry
not declared below ``restricted`` must draw no restricted warning; no workload may draw a baseline warning
(only entries declared ``privileged`` may). The restricted-clean share is recorded among the figures.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import LABEL_SERVICE
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.reasons import SkipReason
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.cluster.operator_harness import get_stack, running_operator, stack, wait_for
from tests.figures import record

pytestmark = pytest.mark.cluster
WORKLOADS = {"Deployment": "apis/apps/v1", "StatefulSet": "apis/apps/v1", "Job": "apis/batch/v1"}
WARN = "pod-security.kubernetes.io/warn"


def _workloads(cat: Catalog, ids: list[str], namespace: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The stack's workloads and the ids skipped only for a conflict (rendered in a stack of their own)."""
    spec = AddonStackSpec.model_validate({
        "services": ids,
        "prebuiltImages": {i: f"registry.example.com/t/{i}:1.0.0" for i in ids if not cat.services[i].image},
        "gpu": True,
        "allowExperimental": True,
        "database": {"host": "postgres.platform.example", "adminSecretRef": {"name": "pg-admin"}},
        "redis": {"host": "redis.platform.example"},
    })  # fmt: skip
    planned = plan_stack(cat, spec, name, namespace, StackDefaults(), make_rng(1))
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    conflicts = [s.service_id for s in plan.skipped if s.reason == SkipReason.CONFLICT]
    return [o for o in objs if o["kind"] in WORKLOADS], conflicts


@pytest.fixture(scope="module")
def namespaces(admin_client: Client) -> Iterator[dict[str, str]]:
    made = {}
    for level in ("restricted", "baseline"):
        name = f"t-psa-{level}-{uuid.uuid4().hex[:6]}"
        labels = {WARN: level, "addonstack.dev/test": "true"}
        admin_client.create(Namespace(metadata=ObjectMeta(name=name, labels=labels)))
        made[level] = name
    yield made
    for name in made.values():
        admin_client.delete(Namespace, name)


def _warnings(client: Client, obj: dict[str, Any], namespace: str) -> list[str]:
    """Pod Security warnings of a server-side dry-run apply of ``obj`` into ``namespace``."""
    body = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    http = client._client._client  # lightkube's httpx client (base URL and credentials of the kubeconfig)
    path = f"/{WORKLOADS[obj['kind']]}/namespaces/{namespace}/{obj['kind'].lower()}s/{obj['metadata']['name']}"
    resp = http.patch(
        path,
        params={"dryRun": "All", "fieldManager": "addonstack-tests", "force": "true", "fieldValidation": "Strict"},
        content=json.dumps(body),
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    assert resp.status_code in (200, 201), f"{obj['kind']}/{obj['metadata']['name']}: {resp.text[:500]}"
    return [w for w in resp.headers.get_list("warning") if "PodSecurity" in w]


def test_workloads_meet_the_pod_security_level_their_entry_declares(
    admin_client: Client, namespaces: dict[str, str]
) -> None:
    cat = load_catalog()
    ids = sorted(s.id for s in cat.addons() if not s.docker_socket)
    workloads, rest = _workloads(cat, ids, namespaces["restricted"], "everything")
    while rest:
        more, rest = _workloads(cat, rest, namespaces["restricted"], f"rest{len(rest)}")
        workloads += more
    problems: list[str] = []
    clean = baseline_clean = 0
    for obj in workloads:
        sid = obj["metadata"]["labels"].get(LABEL_SERVICE, "")
        level = cat.services[sid].pod_security_level if sid in cat.services else "restricted"
        where = f"{obj['kind']}/{obj['metadata']['name']} ({sid}, level {level})"
        restricted = _warnings(admin_client, obj, namespaces["restricted"])
        baseline = _warnings(admin_client, obj, namespaces["baseline"])
        clean += not restricted
        baseline_clean += not baseline
        if restricted and level == "restricted":
            problems.append(f"{where}: {'; '.join(restricted)}")
        if baseline and level != "privileged":
            problems.append(f"{where}: {'; '.join(baseline)}")
    n = len(workloads)
    record(f"pod security: {clean} of {n} workloads restricted-clean ({100 * clean // max(n, 1)}%), "
           f"{baseline_clean} of {n} baseline-clean")  # fmt: skip
    assert n > 100, f"only {n} workloads rendered"
    assert not problems, "\n".join(problems)


def test_operator_skips_what_the_namespace_enforce_label_refuses(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    from lightkube import codecs

    client.patch(Namespace, namespace, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}})
    with running_operator(kubeconfig):
        client.create(codecs.from_dict(stack("psa", namespace, {"services": ["pihole", "gatus"]})))

        def skipped() -> list[dict[str, Any]] | str:
            status = get_stack(client, "psa", namespace).get("status") or {}
            found = [s for s in status.get("skipped") or [] if s.get("serviceId") == "pihole"]
            return found or f"status={status}"

        found = wait_for("pihole to be skipped for the namespace's Pod Security level", skipped, timeout=90)
    assert found[0]["reason"] == "pod_security", found
    assert "pod-security.kubernetes.io/enforce=restricted" in found[0]["details"], found
