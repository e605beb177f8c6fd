"""From an AddonStack resource to a plan and a render context, with the operator's defaults applied.

Shared by the operator and the offline CLI (``addonstack render --target k8s``), so both produce the
same objects for the same spec. Pure: Secret data comes in as plain dicts.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from addonstack.catalog.loader import Catalog
from addonstack.catalog.model import PodSecurityLevel
from addonstack.constants import BACKUP_AGENT_IMAGE
from addonstack.plan.build import PlanError, StackPlan, build_plan
from addonstack.plan.images import registry_problem
from addonstack.plan.models import StackOptions
from addonstack.plan.public import Routing
from addonstack.plan.spec import MAX_STACK_NAME, AddonStackSpec, Effective, PeerSelector
from addonstack.plan.validate import Platform
from addonstack.render.kubernetes import IngressSettings, K8sContext


@dataclass(frozen=True)
class StackDefaults:
    """Operator-wide defaults; a spec value always wins."""

    platform: str = "linux/amd64"
    gpu: bool = False
    deletion_policy: str = "Retain"
    ingress_enabled: bool = False
    ingress_class: str | None = None
    database_host: str | None = None
    database_port: int = 5432
    database_admin_secret: str | None = None
    network_policy: bool = True
    ingress_namespace: str | None = "ingress-nginx"
    gateway_namespace: str | None = None
    gateway_labels: tuple[tuple[str, str], ...] = (("app.kubernetes.io/name", "openclaw-gateway"),)
    image_registry: str | None = None  # --image-registry: mirror for stacks without spec.imageRegistry
    image_pull_secrets: tuple[str, ...] = ()  # --image-pull-secret: for stacks without spec.imagePullSecrets
    backup_image: str = BACKUP_AGENT_IMAGE  # what backup and restore Jobs run


def credentials_from_secret(cat: Catalog, data: Mapping[str, str]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Map Secret keys ``<serviceId>.<KEY>`` or ``<KEY>`` to per-service credentials (never logs values)."""
    out: dict[str, dict[str, str]] = {}
    warnings: list[str] = []
    for raw_key, value in sorted(data.items()):
        sid, dot, key = raw_key.partition(".")
        if dot:
            svc = cat.services.get(sid)
            if svc is None or svc.env_var(key) is None:
                warnings.append(f"credentials: key {raw_key!r} matches no variable of a catalog service; ignored")
                continue
            out.setdefault(sid, {})[key] = value
            continue
        matched = [s.id for s in cat.services.values() if s.env_var(raw_key) is not None]
        if not matched:
            warnings.append(f"credentials: key {raw_key!r} matches no catalog variable; ignored")
        for m in matched:
            out.setdefault(m, {}).setdefault(raw_key, value)
    return out, warnings


def options_from_spec(
    spec: AddonStackSpec, defaults: StackDefaults, credentials: dict[str, dict[str, str]]
) -> StackOptions:
    registry = spec.image_registry or defaults.image_registry
    if registry is not None and (problem := registry_problem(registry)):
        raise PlanError(problem if spec.image_registry else problem.replace("imageRegistry", "--image-registry", 1))
    return StackOptions(
        image_registry=registry,
        skill_packs=spec.skill_packs or [],
        credentials=credentials,
        prebuilt_images=spec.prebuilt_images or {},
        platform=spec.platform or defaults.platform,
        gpu=spec.gpu if spec.gpu is not None else defaults.gpu,
        allow_experimental=bool(spec.allow_experimental),
        env_overrides={sid: dict(ov.env) for sid, ov in (spec.overrides or {}).items() if ov.env},
    )


def routing_from_spec(spec: AddonStackSpec, defaults: StackDefaults) -> Routing:
    """Public address from spec.ingress: its host when Ingresses are created, https when TLS is configured."""
    ing = spec.ingress
    enabled = ing.enabled if ing and ing.enabled is not None else bool(ing) or defaults.ingress_enabled
    if not enabled or ing is None:
        return Routing()
    tls = bool(ing.tls_secret_name or ing.cluster_issuer or ing.issuer)
    return Routing.from_ingress(ing.host, ing.path_prefix, bool(ing.per_service_hosts), tls)


def context_from_spec(spec: AddonStackSpec, name: str, namespace: str, defaults: StackDefaults) -> K8sContext:
    ing = spec.ingress
    db = spec.database
    redis = spec.redis
    net = spec.network_policy
    return K8sContext(
        stack=name,
        namespace=namespace,
        platform=spec.platform or defaults.platform,
        deletion_policy=spec.deletion_policy or defaults.deletion_policy,
        ingress=IngressSettings(
            enabled=ing.enabled if ing and ing.enabled is not None else bool(ing) or defaults.ingress_enabled,
            class_name=(ing.class_name if ing and ing.class_name else defaults.ingress_class),
            host=ing.host if ing else None,
            tls_secret_name=ing.tls_secret_name if ing else None,
            path_prefix=(ing.path_prefix or "") if ing else "",
            per_service_hosts=bool(ing and ing.per_service_hosts),
            cluster_issuer=ing.cluster_issuer if ing else None,
            issuer=ing.issuer if ing else None,
        ),
        database_host=(db.host if db and db.host else defaults.database_host),
        database_port=(db.port if db and db.port else defaults.database_port),
        database_admin_secret=(
            db.admin_secret_ref.name if db and db.admin_secret_ref else defaults.database_admin_secret
        ),
        redis_host=redis.host if redis else None,
        redis_port=redis.port if redis and redis.port else 6379,
        redis_password=(
            (redis.password_secret_ref.name, redis.password_secret_ref.key)
            if redis and redis.password_secret_ref
            else None
        ),
        network_policy=net.enabled if net and net.enabled is not None else defaults.network_policy,
        ingress_peer=(
            net.ingress_controller
            if net and net.ingress_controller
            else PeerSelector(namespace=defaults.ingress_namespace)
        ),
        gateway_peer=(
            net.gateway
            if net and net.gateway
            else PeerSelector(namespace=defaults.gateway_namespace, pod_labels=dict(defaults.gateway_labels))
        ),
        overrides=dict(spec.overrides or {}),
        size=spec.size,
        image_pull_secrets=(
            tuple(ref.name for ref in spec.image_pull_secrets)
            if spec.image_pull_secrets is not None
            else defaults.image_pull_secrets
        ),
    )


def effective(ctx: K8sContext, options: StackOptions) -> Effective:
    return Effective(
        platform=ctx.platform,
        gpu=options.gpu,
        deletion_policy=ctx.deletion_policy,
        ingress_class_name=ctx.ingress.class_name if ctx.ingress.enabled else None,
        database_host=ctx.database_host,
        network_policy=ctx.network_policy,
        image_registry=options.image_registry,
        size=ctx.size or "medium",
    )


def issued_values(cat: Catalog, live: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """The live values a re-plan must keep: those of secret variables (generated or built from secrets).

    Plain values (the ConfigMaps) are worked out again on every reconcile, so a changed catalog default, a
    removed env override or a new public host reaches the service instead of the first value sticking.
    """
    out: dict[str, dict[str, str]] = {}
    for sid, values in live.items():
        svc = cat.services.get(sid)
        if svc is not None:
            out[sid] = {k: v for k, v in values.items() if (var := svc.env_var(k)) is not None and var.secret}
    return out


@dataclass(frozen=True)
class PlannedStack:
    """What planning a stack resource yields: the plan, where it renders, and the options it was planned with.

    Named fields rather than a tuple, so callers say which part they use and a new part breaks nobody."""

    plan: StackPlan
    context: K8sContext
    options: StackOptions


def plan_stack(
    cat: Catalog,
    spec: AddonStackSpec,
    name: str,
    namespace: str,
    defaults: StackDefaults,
    rng: random.Random,
    credential_data: Mapping[str, str] | None = None,
    existing_values: Mapping[str, Mapping[str, str]] | None = None,
    target: str = "kubernetes",
    pod_security: PodSecurityLevel | None = None,
) -> PlannedStack:
    """Plan a stack resource. Raises ``PlanError`` for specs that cannot be planned.

    ``target`` "compose" is for ``addonstack render --target compose`` (Docker-socket services are then
    skipped for the missing opt-in rather than for being on Kubernetes). ``pod_security`` is the level
    the namespace enforces (its ``pod-security.kubernetes.io/enforce`` label)."""
    if len(name) > MAX_STACK_NAME:
        raise PlanError(
            f"metadata.name: {name!r} is {len(name)} characters; at most {MAX_STACK_NAME}, because it prefixes "
            "the names of the stack's objects: choose a shorter name"
        )
    creds, warnings = credentials_from_secret(cat, credential_data or {})
    options = options_from_spec(spec, defaults, creds)
    plan = build_plan(
        cat,
        name,
        spec.services,
        options,
        rng,
        existing_values=issued_values(cat, existing_values or {}),
        routing=routing_from_spec(spec, defaults),
        target=target,
        override_field="overrides.{sid}.env",
        pod_security=pod_security,
    )
    plan.warnings[:0] = warnings
    return PlannedStack(plan, context_from_spec(spec, name, namespace, defaults), options)


def platform(ctx: K8sContext, admin_secret_keys: frozenset[str] | None = None) -> Platform:
    """What the stack can count on from the platform (spec values, else the operator's defaults)."""
    return Platform(
        database_host=ctx.database_host,
        admin_secret=ctx.database_admin_secret,
        admin_secret_keys=admin_secret_keys,
        redis_host=ctx.redis_host,
    )
