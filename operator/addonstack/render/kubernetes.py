"""Kubernetes target: the manifests of one AddonStack, as plain dicts ready for server-side apply.

Pure: no client, no cluster. The operator adds ownerReferences and applies; ``addonstack render
--target k8s`` prints the same objects offline. Every child carries its own ``app.kubernetes.io/*``
labels (never copies of the CR's), services are reachable by their catalog id (``http://qdrant:6333``),
and platform hosts (``postgresql``, ``redis``) resolve to the platform's servers through Services.
"""

from __future__ import annotations

import copy
import hashlib
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from addonstack.catalog.model import HealthCheck, Service
from addonstack.constants import (
    ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER,
    ANNOTATION_CERT_MANAGER_ISSUER,
    ANNOTATION_CONFIG_HASH,
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_SERVICE,
    LABEL_STACK,
    MANAGED_BY,
    POSTGRES_CLIENT_IMAGE,
    POSTGRES_HOST,
    POSTGRES_PORT,
    TRAEFIK_API_VERSION,
)
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.databases import drop_script, setup_script
from addonstack.plan.public import Route
from addonstack.plan.secrets import Lit, PlatformRef, Ref, expand, flatten
from addonstack.plan.spec import PeerSelector, ServiceOverride
from addonstack.render.compose import volume_key
from addonstack.render.skills import openclaw_config_patch, skill_files

REDIS_HOST = "redis"
REDIS_PORT = 6379


@dataclass(frozen=True)
class IngressSettings:
    enabled: bool = False
    class_name: str | None = None
    host: str | None = None
    tls_secret_name: str | None = None
    path_prefix: str = ""
    per_service_hosts: bool = False
    cluster_issuer: str | None = None
    issuer: str | None = None

    @property
    def tls(self) -> bool:
        return bool(self.tls_secret_name or self.cluster_issuer or self.issuer)


@dataclass(frozen=True)
class K8sContext:
    """Everything besides the plan that shapes the manifests (effective values, defaults applied)."""

    stack: str
    namespace: str
    platform: str = "linux/amd64"
    deletion_policy: str = "Retain"
    ingress: IngressSettings = field(default_factory=IngressSettings)
    database_host: str | None = None
    database_port: int = POSTGRES_PORT
    database_admin_secret: str | None = None
    redis_host: str | None = None
    redis_port: int = REDIS_PORT
    redis_password: tuple[str, str] | None = None  # (secret name, key)
    network_policy: bool = True
    ingress_peer: PeerSelector | None = None
    gateway_peer: PeerSelector | None = None
    overrides: dict[str, ServiceOverride] = field(default_factory=dict)


# ---- names and labels ---------------------------------------------------------------------------


def labels(ctx: K8sContext, service_id: str, component: str = "addon") -> dict[str, str]:
    return {
        LABEL_NAME: service_id,
        LABEL_INSTANCE: ctx.stack,
        LABEL_COMPONENT: component,
        LABEL_PART_OF: "addonstack",
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_STACK: ctx.stack,
        LABEL_SERVICE: service_id,
    }


def selector(ctx: K8sContext, service_id: str) -> dict[str, str]:
    return {LABEL_NAME: service_id, LABEL_INSTANCE: ctx.stack}


def secret_name(service_id: str) -> str:
    return f"{service_id}-env"


def config_name(service_id: str) -> str:
    return f"{service_id}-config"


def _meta(ctx: K8sContext, name: str, service_id: str, component: str = "addon") -> dict[str, Any]:
    return {"name": name, "namespace": ctx.namespace, "labels": labels(ctx, service_id, component)}


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# ---- env ----------------------------------------------------------------------------------------


def _k8s_escape(text: str) -> str:
    return text.replace("$(", "$$(")


def _platform_env(ctx: K8sContext, key: str) -> dict[str, Any] | None:
    """How a platform key reaches a container, or None when the stack does not provide it."""
    name = f"ADDONSTACK_PLATFORM_{key}"
    fixed = {
        "POSTGRES_HOST": POSTGRES_HOST,
        "POSTGRES_PORT": str(POSTGRES_PORT),
        "REDIS_HOST": REDIS_HOST,
        "REDIS_PORT": str(REDIS_PORT),
    }
    if key in fixed:
        return {"name": name, "value": fixed[key]}
    if key == "REDIS_PASSWORD" and ctx.redis_password:
        sname, skey = ctx.redis_password
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": sname, "key": skey}}}
    return None


def _container_env(plan: StackPlan, ctx: K8sContext, p: PlannedService, warnings: list[str]) -> list[Any]:
    """Explicit env entries (not envFrom), so helper-only variables never reach the container and
    values built from platform keys can use ``$(VAR)`` expansion of entries defined before them."""
    head: list[dict[str, Any]] = []
    body: list[dict[str, Any]] = []
    defined: set[str] = set()
    for var in p.service.env:
        if not var.in_container or var.key not in p.values.values:
            continue
        segments = expand(plan.values, p.id, var.key)
        lit = flatten(segments)
        source = secret_name(p.id) if var.secret else config_name(p.id)
        ref_kind = "secretKeyRef" if var.secret else "configMapKeyRef"
        if lit is not None:
            body.append({"name": var.key, "valueFrom": {ref_kind: {"name": source, "key": var.key}}})
            continue
        # Built from platform keys: expand each piece through earlier entries.
        parts: list[str] = []
        for seg in plan.values[p.id][var.key].segments:
            if isinstance(seg, Lit):
                parts.append(_k8s_escape(seg.text))
            elif isinstance(seg, PlatformRef):
                entry = _platform_env(ctx, seg.key)
                if entry is None:
                    warnings.append(
                        f"{p.id}: {var.key} uses platform key {seg.key}, which this stack does "
                        "not provide; it expands to an empty string"
                    )
                    continue
                if entry["name"] not in defined:
                    head.append(entry)
                    defined.add(entry["name"])
                parts.append(f"$({entry['name']})")
            elif isinstance(seg, Ref):
                ref_lit = flatten(expand(plan.values, seg.service_id, seg.key))
                if ref_lit is None:
                    continue  # a reference to another platform-built value: not supported (lint forbids)
                name = f"ADDONSTACK_REF_{seg.service_id.upper().replace('-', '_')}_{seg.key}"
                if name not in defined:
                    ref_svc = plan.values.get(seg.service_id)
                    ref_secret = True
                    for q in plan.services:
                        if q.id == seg.service_id and (v := q.service.env_var(seg.key)) is not None:
                            ref_secret = v.secret
                    if ref_svc is not None:
                        src = secret_name(seg.service_id) if ref_secret else config_name(seg.service_id)
                        kind = "secretKeyRef" if ref_secret else "configMapKeyRef"
                        head.append({"name": name, "valueFrom": {kind: {"name": src, "key": seg.key}}})
                        defined.add(name)
                parts.append(f"$({name})")
        body.append({"name": var.key, "value": "".join(parts)})
    # Variables only an env override sets: stored in the service's Secret like any undeclared value.
    body += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(p.id), "key": k}}} for k in p.extra_env]
    return head + body


def _stored(plan: StackPlan, p: PlannedService) -> tuple[dict[str, str], dict[str, str]]:
    """(secret data, config data) of a service: every stored variable, in-container or not."""
    secret: dict[str, str] = {}
    config: dict[str, str] = {}
    for key in p.values.values:
        lit = flatten(expand(plan.values, p.id, key))
        if lit is None:
            continue
        var = p.service.env_var(key)
        (secret if var is None or var.secret else config)[key] = lit
    return secret, config


# ---- workload -------------------------------------------------------------------------------------


def _probe(hc: HealthCheck, kind: str) -> dict[str, Any]:
    handler: dict[str, Any]
    if hc.http is not None:
        handler = {"httpGet": {"path": hc.http.path, "port": hc.http.port, "scheme": hc.http.scheme}}
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


def _resources(svc: Service, p: PlannedService, override: ServiceOverride | None) -> dict[str, Any]:
    requests: dict[str, Any] = {"cpu": "50m", "memory": f"{svc.memory_mb}Mi"}
    limits: dict[str, Any] = {"memory": f"{svc.memory_mb * 2}Mi"}
    if override and override.resources:
        r = override.resources
        for src, dst in ((r.requests, requests), (r.limits, limits)):
            if src is not None:
                dst.update({k: v for k, v in src.model_dump(exclude_none=True).items()})
    if p.gpu:
        limits["nvidia.com/gpu"] = 1
    return {"requests": requests, "limits": limits}


def _security(svc: Service) -> dict[str, Any]:
    sc: dict[str, Any] = {"allowPrivilegeEscalation": False, "seccompProfile": {"type": "RuntimeDefault"}}
    if svc.cap_drop_compatible:
        sc["capabilities"] = {"drop": ["ALL"]}
    if svc.run_as_user is not None:
        sc["runAsUser"] = svc.run_as_user
        if svc.run_as_user != 0:
            sc["runAsNonRoot"] = True
    return sc


def _image(p: PlannedService, override: ServiceOverride | None) -> str:
    if override and override.image_tag and p.service.image and p.image == p.service.image_ref:
        return f"{p.service.image}:{override.image_tag}"
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
    init["command"] = [_k8s_escape(c) for c in svc.init_command]
    return {"initContainers": [init]}


def _pvc_spec(size: str) -> dict[str, Any]:
    return {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}


def _workload(plan: StackPlan, ctx: K8sContext, p: PlannedService, warnings: list[str]) -> list[dict[str, Any]]:
    svc = p.service
    ov = ctx.overrides.get(p.id)
    container: dict[str, Any] = {
        "name": p.id,
        "image": _image(p, ov),
        "imagePullPolicy": "IfNotPresent",
    }
    if svc.command:
        container["command"] = [_k8s_escape(c) for c in svc.command]
    if svc.args:
        container["args"] = [_k8s_escape(c) for c in svc.args]
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
    env = _container_env(plan, ctx, p, warnings)
    if env:
        container["env"] = env
    if ov and ov.env_from:
        container["envFrom"] = [{"secretRef": {"name": src.secret_ref.name}} for src in ov.env_from]
    container["resources"] = _resources(svc, p, ov)
    container["securityContext"] = _security(svc)
    if svc.health_check is not None:
        container["readinessProbe"] = _probe(svc.health_check, "readiness")
        container["livenessProbe"] = _probe(svc.health_check, "liveness")
        container["startupProbe"] = _probe(svc.health_check, "startup")
    size = ov.storage_size if ov and ov.storage_size else None
    if svc.volumes:
        container["volumeMounts"] = [{"name": v.name, "mountPath": v.container_path} for v in svc.volumes]
    secret, config = _stored(plan, p)
    pod_annotations = {ANNOTATION_CONFIG_HASH: _hash([secret, config])}
    pod_spec: dict[str, Any] = {
        **_init_containers(svc, container),
        "containers": [container],
        "nodeSelector": {"kubernetes.io/arch": ctx.platform.split("/", 1)[1]},
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "enableServiceLinks": False,
    }
    template = {"metadata": {"labels": labels(ctx, p.id), "annotations": pod_annotations}, "spec": pod_spec}
    replicas = _replicas(svc, ov, warnings)
    objs: list[dict[str, Any]] = []
    if svc.workload == "StatefulSet":
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
        if svc.volumes:
            spec["volumeClaimTemplates"] = [
                {
                    "metadata": {"name": v.name, "labels": labels(ctx, p.id)},
                    "spec": _pvc_spec(size or f"{v.size_gi}Gi"),
                }
                for v in svc.volumes
            ]
        objs.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta(ctx, p.id, p.id), "spec": spec})
    else:
        if svc.volumes:
            pod_spec["volumes"] = [
                {"name": v.name, "persistentVolumeClaim": {"claimName": volume_key(p.id, v.name)}} for v in svc.volumes
            ]
            for v in svc.volumes:
                objs.append(
                    {
                        "apiVersion": "v1",
                        "kind": "PersistentVolumeClaim",
                        "metadata": _meta(ctx, volume_key(p.id, v.name), p.id),
                        "spec": _pvc_spec(size or f"{v.size_gi}Gi"),
                    }
                )
        objs.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": _meta(ctx, p.id, p.id),
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": selector(ctx, p.id)},
                    "strategy": {"type": "Recreate"} if svc.volumes else {"type": "RollingUpdate"},
                    "template": template,
                },
            }
        )
    if svc.ports:
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(ctx, p.id, p.id),
                "spec": {
                    "selector": selector(ctx, p.id),
                    "ports": [
                        {
                            k: v
                            for k, v in {
                                "name": port.name or f"p{port.container}",
                                "port": port.container,
                                "targetPort": port.container,
                                "protocol": "UDP" if port.protocol == "udp" else "TCP",
                                "appProtocol": {"http": "http", "grpc": "kubernetes.io/h2c"}.get(port.protocol),
                            }.items()
                            if v is not None
                        }
                        for port in svc.ports
                    ],
                },
            }
        )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta(ctx, secret_name(p.id), p.id),
            "type": "Opaque",
            "stringData": secret,
        }
    )
    objs.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(ctx, config_name(p.id), p.id),
            "data": config,
        }
    )
    return objs


# ---- platform hosts, database job, skills, ingress, network policy ------------------------------------


def _host_service(ctx: K8sContext, name: str, host: str, port: int) -> list[dict[str, Any]]:
    """``name`` resolves to the platform's server: ExternalName for DNS names, selector-less + EndpointSlice
    for IP addresses (ExternalName cannot point at an IP)."""
    meta = _meta(ctx, name, name, "platform")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": meta,
                "spec": {
                    "type": "ExternalName",
                    "externalName": host,
                    "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
                },
            }
        ]
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {"ports": [{"name": "tcp", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }
    eps_meta = _meta(ctx, f"{name}-platform", name, "platform")
    eps_meta["labels"]["kubernetes.io/service-name"] = name
    eps = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": eps_meta,
        "addressType": "IPv6" if ip.version == 6 else "IPv4",
        "endpoints": [{"addresses": [str(ip)]}],
        "ports": [{"name": "tcp", "port": port, "protocol": "TCP"}],
    }
    return [svc, eps]


def db_job_name(ctx: K8sContext, plan: StackPlan, action: str = "setup") -> str:
    digest = _hash(
        [
            [n.database, n.role, n.extensions, *([n.createdb, n.schemas] if n.createdb or n.schemas else [])]
            for n in plan.databases
        ]
    )[:8]
    return f"{ctx.stack}-db-{action}-{digest}"[:63].rstrip("-")


def _db_job(ctx: K8sContext, plan: StackPlan, action: str) -> dict[str, Any]:
    admin = ctx.database_admin_secret
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": POSTGRES_HOST},
        {"name": "PGPORT", "value": str(POSTGRES_PORT)},
        {"name": "PGDATABASE", "value": "postgres"},
        {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": admin, "key": "username"}}},
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": admin, "key": "password"}}},
    ]
    if action == "setup":
        for need in plan.databases:
            env.append(
                {
                    "name": need.password_env,
                    "valueFrom": {"secretKeyRef": {"name": secret_name(need.service_id), "key": need.password_key}},
                }
            )
    script = setup_script(plan.databases) if action == "setup" else drop_script(plan.databases)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": _meta(ctx, db_job_name(ctx, plan, action), "postgres-setup", f"database-{action}"),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels(ctx, "postgres-setup", f"database-{action}")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 70,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "psql",
                            "image": POSTGRES_CLIENT_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script],
                            "env": env,
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                            },
                        }
                    ],
                },
            },
        },
    }


def db_drop_job(plan: StackPlan, ctx: K8sContext) -> dict[str, Any] | None:
    """The Job that drops the stack's databases (deletion policy Delete); None without databases."""
    return _db_job(ctx, plan, "drop") if plan.databases and ctx.database_admin_secret else None


def skills_config_map(plan: StackPlan, ctx: K8sContext) -> dict[str, Any]:
    data = {path.replace("/", "__"): text for path, text in skill_files(plan.skills).items()}
    data["openclaw.json"] = json.dumps(openclaw_config_patch(plan.skills), indent=2, sort_keys=True) + "\n"
    meta = _meta(ctx, f"{ctx.stack}-skills", "skills", "skills")
    meta["annotations"] = {"addonstack.dev/layout": "key <skillId>__SKILL.md mounts as <skillId>/SKILL.md"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}


def _strip_middleware(ctx: K8sContext, service_id: str, prefix: str) -> dict[str, Any]:
    """Traefik's portable prefix stripping: a StripPrefix Middleware the service's Ingress references."""
    return {
        "apiVersion": TRAEFIK_API_VERSION,
        "kind": "Middleware",
        "metadata": _meta(ctx, f"{service_id}-strip", service_id, "ingress"),
        "spec": {"stripPrefix": {"prefixes": [prefix]}},
    }


def _tls(plan: StackPlan, ctx: K8sContext) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """cert-manager annotation and one ``tls`` block covering every host the stack's Ingresses use.

    Every Ingress carries the same block (same hosts, same Secret), so cert-manager issues one certificate
    for the stack whichever Ingress it reads, and each host is served with it.
    """
    ing = ctx.ingress
    hosts = sorted({h for r in plan.routes if (h := _route_host(plan, ctx, r)) is not None})
    if not ing.tls or not hosts:
        return {}, []
    annotations: dict[str, str] = {}
    if ing.cluster_issuer:
        annotations[ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER] = ing.cluster_issuer
    elif ing.issuer:
        annotations[ANNOTATION_CERT_MANAGER_ISSUER] = ing.issuer
    secret = ing.tls_secret_name or f"{ctx.stack}-tls"
    return annotations, [{"hosts": hosts, "secretName": secret}]


def _route_host(plan: StackPlan, ctx: K8sContext, route: Route) -> str | None:
    if route.protocol != "http" or route.path is None:
        return None
    return route.host or plan.routing.host or ctx.ingress.host


def _ingress_path(
    ctx: K8sContext, route: Route, out: list[dict[str, Any]], warnings: list[str]
) -> tuple[str, str, dict[str, str]]:
    """Path, pathType and annotations of a route; the prefix is stripped only when the plan says so."""
    class_name = ctx.ingress.class_name or ""
    assert route.path is not None
    if route.host is not None:
        return "/", "Prefix", {}
    if not route.strip_prefix:  # the app was told its prefix: passed through as is
        return route.path, "Prefix", {}
    if class_name.endswith("nginx"):
        return (
            f"{route.path}(/|$)(.*)",
            "ImplementationSpecific",
            {"nginx.ingress.kubernetes.io/rewrite-target": "/$2", "nginx.ingress.kubernetes.io/use-regex": "true"},
        )
    if "traefik" in class_name:
        strip = _strip_middleware(ctx, route.service_id, route.path)
        out.append(strip)
        ref = f"{ctx.namespace}-{strip['metadata']['name']}@kubernetescrd"
        return route.path, "Prefix", {"traefik.ingress.kubernetes.io/router.middlewares": ref}
    warnings.append(
        f"ingress: class {class_name!r} has no known prefix stripping; "
        f"{route.service_id} gets {route.path} unstripped (use perServiceHosts)"
    )
    return route.path, "Prefix", {}


def _ingress(plan: StackPlan, ctx: K8sContext, warnings: list[str]) -> list[dict[str, Any]]:
    """One Ingress per routed web service, following the plan's routes (the URLs services were told)."""
    ing = ctx.ingress
    if not ing.enabled:
        return []
    out: list[dict[str, Any]] = []
    tls_annotations, tls = _tls(plan, ctx)
    for route in plan.routes:
        host = _route_host(plan, ctx, route)
        if route.protocol != "http" or route.path is None:
            continue
        path, path_type, annotations = _ingress_path(ctx, route, out, warnings)
        rule: dict[str, Any] = {
            "http": {
                "paths": [
                    {
                        "path": path,
                        "pathType": path_type,
                        "backend": {"service": {"name": route.service_id, "port": {"number": route.port}}},
                    }
                ]
            }
        }
        if host:
            rule["host"] = host
        spec: dict[str, Any] = {"rules": [rule]}
        if ing.class_name:
            spec["ingressClassName"] = ing.class_name
        if tls:
            spec["tls"] = copy.deepcopy(tls)
        annotations.update(tls_annotations)
        meta = _meta(ctx, route.service_id, route.service_id)
        if annotations:
            meta["annotations"] = annotations
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec})
    return out


def _peer(sel: PeerSelector | None) -> dict[str, Any] | None:
    if sel is None or (sel.namespace is None and not sel.pod_labels):
        return None
    peer: dict[str, Any] = {}
    if sel.namespace:
        peer["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": sel.namespace}}
    if sel.pod_labels:
        peer["podSelector"] = {"matchLabels": dict(sel.pod_labels)}
    return peer


def _network_policies(plan: StackPlan, ctx: K8sContext) -> list[dict[str, Any]]:
    if not ctx.network_policy:
        return []
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(ctx, f"{ctx.stack}-default-deny", "network-policy", "network-policy"),
        "spec": {"podSelector": {"matchLabels": {LABEL_STACK: ctx.stack}}, "policyTypes": ["Ingress"]},
    }
    out = [deny]
    routed = {r.service_id for r in plan.routes if r.protocol == "http"}
    for p in plan.services:
        if not p.service.ports:
            continue
        peers: list[dict[str, Any]] = []
        users = [q.id for q in plan.services if p.id in q.service.requires]
        peers += [{"podSelector": {"matchLabels": selector(ctx, u)}} for u in users]
        if ctx.ingress.enabled and p.id in routed and (peer := _peer(ctx.ingress_peer)):
            peers.append(peer)
        if gw := _peer(ctx.gateway_peer):
            peers.append(gw)
        if not peers:
            continue
        out.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": _meta(ctx, f"{p.id}-allow", p.id, "network-policy"),
                "spec": {
                    "podSelector": {"matchLabels": selector(ctx, p.id)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": peers}],
                },
            }
        )
    return out


def render_kubernetes(plan: StackPlan, ctx: K8sContext) -> tuple[list[dict[str, Any]], list[str]]:
    """All child objects of the stack, in apply order, plus render warnings."""
    warnings: list[str] = []
    objs: list[dict[str, Any]] = []
    if plan.databases:
        if ctx.database_host:
            objs += _host_service(ctx, POSTGRES_HOST, ctx.database_host, ctx.database_port)
        else:
            warnings.append("database.host is not set: services that need PostgreSQL cannot start")
    needs_redis = any("redis" in p.service.requires for p in plan.services)
    if needs_redis and ctx.redis_host:
        objs += _host_service(ctx, REDIS_HOST, ctx.redis_host, ctx.redis_port)
    elif needs_redis:
        warnings.append("redis.host is not set: services that need Redis cannot reach it")
    for p in plan.services:
        objs += _workload(plan, ctx, p, warnings)
    if plan.databases and ctx.database_admin_secret:
        objs.append(_db_job(ctx, plan, "setup"))
    elif plan.databases:
        warnings.append("database.adminSecretRef is not set: databases cannot be created")
    objs.append(skills_config_map(plan, ctx))
    objs += _ingress(plan, ctx, warnings)
    objs += _network_policies(plan, ctx)
    return objs, warnings
