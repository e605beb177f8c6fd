"""What shapes the manifests besides the plan, and the names and labels every child object shares.

The other modules of the package build one kind of object each; they all name and label their
objects through the helpers here, so a stack's children are found by the same selector everywhere.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from addonstack.constants import (
    LABEL_COMPONENT,
    LABEL_INSTANCE,
    LABEL_MANAGED_BY,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_SERVICE,
    LABEL_STACK,
    MANAGED_BY,
    POSTGRES_PORT,
)
from addonstack.plan.spec import PeerSelector, ServiceOverride

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
    size: str | None = None  # spec.size preset (None: medium)
    image_pull_secrets: tuple[str, ...] = ()  # Secret names every pod pulls its images with


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


def meta(ctx: K8sContext, name: str, service_id: str, component: str = "addon") -> dict[str, Any]:
    return {"name": name, "namespace": ctx.namespace, "labels": labels(ctx, service_id, component)}


def content_hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
