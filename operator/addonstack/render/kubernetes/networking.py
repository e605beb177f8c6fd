"""How traffic reaches a stack: Services (per workload and for platform hosts), Ingresses with their
prefix handling per controller, and the NetworkPolicies that admit only the stack's own callers.

Services are reachable by their catalog id (``http://qdrant:6333``); platform hosts (``postgresql``,
``redis``) resolve to the platform's servers through ExternalName or selector-less Services.
"""

from __future__ import annotations

import copy
import ipaddress
from typing import Any

from addonstack.constants import (
    ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER,
    ANNOTATION_CERT_MANAGER_ISSUER,
    LABEL_STACK,
    TRAEFIK_API_VERSION,
)
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.public import Route
from addonstack.plan.spec import PeerSelector
from addonstack.render.kubernetes.context import K8sContext, meta, selector


def workload_service(ctx: K8sContext, p: PlannedService) -> dict[str, Any]:
    """The ClusterIP Service in front of a workload, one port per catalog port."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(ctx, p.id, p.id),
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
                for port in p.service.ports
            ],
        },
    }


def host_service(ctx: K8sContext, name: str, host: str, port: int) -> list[dict[str, Any]]:
    """``name`` resolves to the platform's server: ExternalName for DNS names, selector-less + EndpointSlice
    for IP addresses (ExternalName cannot point at an IP)."""
    m = meta(ctx, name, name, "platform")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return [
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": m,
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
        "metadata": m,
        "spec": {"ports": [{"name": "tcp", "port": port, "targetPort": port, "protocol": "TCP"}]},
    }
    eps_meta = meta(ctx, f"{name}-platform", name, "platform")
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


def _strip_middleware(ctx: K8sContext, service_id: str, prefix: str) -> dict[str, Any]:
    """Traefik's portable prefix stripping: a StripPrefix Middleware the service's Ingress references."""
    return {
        "apiVersion": TRAEFIK_API_VERSION,
        "kind": "Middleware",
        "metadata": meta(ctx, f"{service_id}-strip", service_id, "ingress"),
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


def ingresses(plan: StackPlan, ctx: K8sContext, warnings: list[str]) -> list[dict[str, Any]]:
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
        m = meta(ctx, route.service_id, route.service_id)
        if annotations:
            m["annotations"] = annotations
        out.append({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": m, "spec": spec})
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


def network_policies(plan: StackPlan, ctx: K8sContext) -> list[dict[str, Any]]:
    if not ctx.network_policy:
        return []
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta(ctx, f"{ctx.stack}-default-deny", "network-policy", "network-policy"),
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
                "metadata": meta(ctx, f"{p.id}-allow", p.id, "network-policy"),
                "spec": {
                    "podSelector": {"matchLabels": selector(ctx, p.id)},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": peers}],
                },
            }
        )
    return out
