"""Persistent volumes of a service: claim templates for StatefulSets, standalone claims (named like the
Compose volume) for Deployments. Size comes from the stack's override or the catalog's ``sizeGi``.
"""

from __future__ import annotations

from typing import Any

from addonstack.plan.build import PlannedService
from addonstack.render.compose import volume_key
from addonstack.render.kubernetes.context import K8sContext, labels, meta


def pvc_spec(size: str) -> dict[str, Any]:
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}


def claim_templates(ctx: K8sContext, p: PlannedService, size: str | None) -> list[dict[str, Any]]:
    """A StatefulSet's volumeClaimTemplates, one per catalog volume."""
    return [
        {
            "metadata": {"name": v.name, "labels": labels(ctx, p.id)},
            "spec": pvc_spec(size or f"{v.size_gi}Gi"),
        }
        for v in p.service.volumes
    ]


def pod_volumes(p: PlannedService) -> list[dict[str, Any]]:
    """A Deployment's pod volumes, each backed by the claim ``claims`` creates."""
    return [
        {"name": v.name, "persistentVolumeClaim": {"claimName": volume_key(p.id, v.name)}} for v in p.service.volumes
    ]


def claims(ctx: K8sContext, p: PlannedService, size: str | None) -> list[dict[str, Any]]:
    """The PersistentVolumeClaims a Deployment's pod mounts."""
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": meta(ctx, volume_key(p.id, v.name), p.id),
            "spec": pvc_spec(size or f"{v.size_gi}Gi"),
        }
        for v in p.service.volumes
    ]
