"""Registry mirror and pull secrets for every pod the stack renders, in one pass over the finished objects.

A pass at the end rather than a field set by each builder: every pod template (Deployments, StatefulSets,
Jobs, CronJobs, bare Pods), whichever module made it, gets the mirror and the pull secrets, and a builder
added later cannot forget them. Rewriting is idempotent (``plan.images.mirror_image``), so images the plan
already mirrored stay as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from addonstack.plan.images import mirror_image


def pod_specs(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The pod spec(s) inside a workload object (none for other kinds)."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind == "Pod":
        yield spec
    elif kind == "CronJob":
        tmpl = ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}
        if "spec" in tmpl:
            yield tmpl["spec"]
    elif kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        tmpl = spec.get("template") or {}
        if "spec" in tmpl:
            yield tmpl["spec"]


def apply_registry(objs: list[dict[str, Any]], registry: str | None, pull_secrets: tuple[str, ...]) -> None:
    """Rewrite every container image through ``registry`` and give every pod ``pull_secrets`` (in place)."""
    if not registry and not pull_secrets:
        return
    for obj in objs:
        for pod in pod_specs(obj):
            for key in ("initContainers", "containers"):
                for c in pod.get(key) or []:
                    c["image"] = mirror_image(c["image"], registry)
            if pull_secrets:
                pod["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
