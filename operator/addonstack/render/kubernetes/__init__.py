"""Kubernetes target: the manifests of one AddonStack, as plain dicts ready for server-side apply.

Pure: no client, no cluster. The operator adds ownerReferences and applies; ``addonstack render
--target k8s`` prints the same objects offline. Every child carries its own ``app.kubernetes.io/*``
labels (never copies of the CR's), services are reachable by their catalog id (``http://qdrant:6333``),
and platform hosts (``postgresql``, ``redis``) resolve to the platform's servers through Services.

One module per kind of object: ``workloads`` (Deployment/StatefulSet and the container), ``storage``
(claims), ``networking`` (Services, Ingresses, NetworkPolicies), ``jobs`` (database Jobs), ``config``
(env, Secrets, ConfigMaps); ``context`` holds the settings and the naming every module shares.
"""

from __future__ import annotations

from typing import Any

from addonstack.constants import POSTGRES_HOST
from addonstack.plan.build import StackPlan
from addonstack.render.kubernetes.config import gateway_env_config_map, skills_config_map
from addonstack.render.kubernetes.context import (
    REDIS_HOST,
    REDIS_PORT,
    IngressSettings,
    K8sContext,
    config_name,
    labels,
    secret_name,
    selector,
)
from addonstack.render.kubernetes.disruption import disruption_budgets
from addonstack.render.kubernetes.images import apply_registry
from addonstack.render.kubernetes.jobs import db_drop_job, db_job, db_job_name
from addonstack.render.kubernetes.networking import host_service, ingresses, network_policies
from addonstack.render.kubernetes.workloads import workload

__all__ = [
    "REDIS_HOST",
    "REDIS_PORT",
    "IngressSettings",
    "K8sContext",
    "config_name",
    "db_drop_job",
    "db_job_name",
    "gateway_env_config_map",
    "labels",
    "render_kubernetes",
    "secret_name",
    "selector",
    "skills_config_map",
]


def render_kubernetes(plan: StackPlan, ctx: K8sContext) -> tuple[list[dict[str, Any]], list[str]]:
    """All child objects of the stack, in apply order, plus render warnings."""
    warnings: list[str] = []
    objs: list[dict[str, Any]] = []
    if plan.databases:
        if ctx.database_host:
            objs += host_service(ctx, POSTGRES_HOST, ctx.database_host, ctx.database_port)
        else:
            warnings.append("database.host is not set: services that need PostgreSQL cannot start")
    needs_redis = any("redis" in p.service.requires for p in plan.services)
    if needs_redis and ctx.redis_host:
        objs += host_service(ctx, REDIS_HOST, ctx.redis_host, ctx.redis_port)
    elif needs_redis:
        warnings.append("redis.host is not set: services that need Redis cannot reach it")
    for p in plan.services:
        objs += workload(plan, ctx, p, warnings)
    if plan.databases and ctx.database_admin_secret:
        objs.append(db_job(ctx, plan, "setup"))
    elif plan.databases:
        warnings.append("database.adminSecretRef is not set: databases cannot be created")
    objs.append(skills_config_map(plan, ctx))
    objs.append(gateway_env_config_map(plan, ctx))
    objs += ingresses(plan, ctx, warnings)
    objs += network_policies(plan, ctx)
    objs += disruption_budgets(ctx, objs)
    apply_registry(objs, plan.image_registry, ctx.image_pull_secrets)
    return objs, warnings
