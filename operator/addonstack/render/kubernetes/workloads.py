"""A service's workload: its container (image, ports, env, resources, probes, security context), the
pod template around it, and the Deployment or StatefulSet that runs it, with its volumes, Service,
Secret and ConfigMap.

The pod template carries a hash of the stored values, so a changed value rolls the pods.
"""

from __future__ import annotations

import copy
from typing import Any

from addonstack.catalog.model import HealthCheck, Service
from addonstack.constants import ANNOTATION_CONFIG_HASH
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.images import mirror_image
from addonstack.plan.resources import sized
from addonstack.plan.spec import ServiceOverride
from addonstack.render.kubernetes import storage
from addonstack.render.kubernetes.config import container_env, env_objects, k8s_command_item, stored
from addonstack.render.kubernetes.context import K8sContext, content_hash, labels, meta, selector
from addonstack.render.kubernetes.networking import workload_service
from addonstack.render.kubernetes.security import container_security_context, pod_security_context, scratch_volumes
from addonstack.render.values import health_base_path


def _probe(hc: HealthCheck, kind: str, base_path: str = "") -> dict[str, Any]:
    """``base_path``: the prefix the app serves its health endpoint under (``HttpCheck.basePathVar``)."""
    handler: dict[str, Any]
    if hc.http is not None:
        handler = {"httpGet": {"path": base_path + hc.http.path, "port": hc.http.port, "scheme": hc.http.scheme}}
    elif hc.tcp is not None:
        handler = {"tcpSocket": {"port": hc.tcp.port}}
    else:
        handler = {"exec": {"command": list(hc.exec or [])}}
    probe = {
        **handler,
        "periodSeconds": hc.interval_seconds,
        "timeoutSeconds": hc.timeout_seconds,
        "failureThreshold": hc.retries,
    }
    if kind == "startup":
        probe["periodSeconds"] = 5
        probe["failureThreshold"] = max(1, hc.start_period_seconds // 5) + hc.retries
    return probe


def _resources(svc: Service, p: PlannedService, override: ServiceOverride | None, size: str | None) -> dict[str, Any]:
    preset = sized(svc.memory_mb, size)
    requests: dict[str, Any] = dict(preset[0])
    limits: dict[str, Any] = dict(preset[1])
    if override and override.resources:
        r = override.resources
        for src, dst in ((r.requests, requests), (r.limits, limits)):
            if src is not None:
                dst.update({k: v for k, v in src.model_dump(exclude_none=True).items()})
    if p.gpu:
        limits["nvidia.com/gpu"] = 1
    return {"requests": requests, "limits": limits}


def _image(plan: StackPlan, p: PlannedService, override: ServiceOverride | None) -> str:
    catalog_image = p.service.image_ref and p.image == mirror_image(p.service.image_ref, plan.image_registry)
    if override and override.image_tag and p.service.image and catalog_image:
        return mirror_image(f"{p.service.image}:{override.image_tag}", plan.image_registry)
    return p.image


def _replicas(svc: Service, override: ServiceOverride | None, warnings: list[str]) -> int:
    if override is None or override.replicas is None:
        return 1
    if override.replicas > 1 and not svc.scalable:
        warnings.append(f"overrides.{svc.id}.replicas: {svc.id} is not safe to scale; running 1 replica")
        return 1
    return override.replicas


def _init_containers(svc: Service, container: dict[str, Any]) -> dict[str, Any]:
    """``initCommand`` (migrations) as an initContainer: same image, environment, volumes and security."""
    if not svc.init_command:
        return {}
    keep = ("image", "imagePullPolicy", "env", "envFrom", "resources", "securityContext", "volumeMounts")
    init = {"name": f"{svc.id}-init"[:63], **{k: copy.deepcopy(container[k]) for k in keep if k in container}}
    init["command"] = [k8s_command_item(c) for c in svc.init_command]
    return {"initContainers": [init]}


def _container(plan: StackPlan, ctx: K8sContext, p: PlannedService, warnings: list[str]) -> dict[str, Any]:
    svc = p.service
    ov = ctx.overrides.get(p.id)
    container: dict[str, Any] = {
        "name": p.id,
        "image": _image(plan, p, ov),
        "imagePullPolicy": "IfNotPresent",
    }
    if svc.command:
        container["command"] = [k8s_command_item(c) for c in svc.command]
    if svc.args:
        container["args"] = [k8s_command_item(c) for c in svc.args]
    if svc.ports:
        container["ports"] = [
            {
                k: v
                for k, v in {
                    "name": port.name,
                    "containerPort": port.container,
                    "protocol": "UDP" if port.protocol == "udp" else "TCP",
                }.items()
                if v is not None
            }
            for port in svc.ports
        ]
    env = container_env(plan, ctx, p, warnings)
    if env:
        container["env"] = env
    if ov and ov.env_from:
        container["envFrom"] = [{"secretRef": {"name": src.secret_ref.name}} for src in ov.env_from]
    container["resources"] = _resources(svc, p, ov, ctx.size)
    container["securityContext"] = container_security_context(svc)
    if svc.health_check is not None:
        base = health_base_path(plan, p)
        for kind in ("readiness", "liveness", "startup"):
            container[f"{kind}Probe"] = _probe(svc.health_check, kind, base)
    mounts = [{"name": v.name, "mountPath": v.container_path} for v in svc.volumes] + scratch_volumes(svc)[1]
    if mounts:
        container["volumeMounts"] = mounts
    return container


def _stateful_set(
    ctx: K8sContext, p: PlannedService, template: dict[str, Any], replicas: int, size: str | None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceName": p.id,
        "replicas": replicas,
        "selector": {"matchLabels": selector(ctx, p.id)},
        "template": template,
        "persistentVolumeClaimRetentionPolicy": {
            "whenDeleted": "Delete" if ctx.deletion_policy == "Delete" else "Retain",
            "whenScaled": "Retain",
        },
    }
    if p.service.volumes:
        spec["volumeClaimTemplates"] = storage.claim_templates(ctx, p, size)
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(ctx, p.id, p.id), "spec": spec}


def _deployment(ctx: K8sContext, p: PlannedService, template: dict[str, Any], replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(ctx, p.id, p.id),
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(ctx, p.id)},
            "strategy": {"type": "Recreate"} if p.service.volumes else {"type": "RollingUpdate"},
            "template": template,
        },
    }


def workload(plan: StackPlan, ctx: K8sContext, p: PlannedService, warnings: list[str]) -> list[dict[str, Any]]:
    """Every object one service needs, in apply order."""
    svc = p.service
    ov = ctx.overrides.get(p.id)
    container = _container(plan, ctx, p, warnings)
    size = ov.storage_size if ov and ov.storage_size else None
    secret, config = stored(plan, p)
    pod_spec: dict[str, Any] = {
        **_init_containers(svc, container),
        "containers": [container],
        "nodeSelector": {"kubernetes.io/arch": ctx.platform.split("/", 1)[1]},
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(svc),
        "enableServiceLinks": False,
    }
    scratch = scratch_volumes(svc)[0]
    pod_annotations = {ANNOTATION_CONFIG_HASH: content_hash([secret, config])}
    template = {"metadata": {"labels": labels(ctx, p.id), "annotations": pod_annotations}, "spec": pod_spec}
    replicas = _replicas(svc, ov, warnings)
    objs: list[dict[str, Any]] = []
    if svc.workload == "StatefulSet":
        if scratch:
            pod_spec["volumes"] = scratch
        objs.append(_stateful_set(ctx, p, template, replicas, size))
    else:
        if svc.volumes or scratch:
            pod_spec["volumes"] = storage.pod_volumes(p) + scratch
            objs += storage.claims(ctx, p, size)
        objs.append(_deployment(ctx, p, template, replicas))
    if svc.ports:
        objs.append(workload_service(ctx, p))
    objs += env_objects(ctx, p, secret, config)
    return objs
