"""The plan: everything both render targets need, decided once and without IO.

``build_plan`` is the pure middle of the pipeline. The library (Compose target), the CLI and the
operator (Kubernetes target) all call it; values issued earlier come in as ``existing_values``, which
is how a re-plan keeps every secret.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from addonstack.catalog.loader import Catalog
from addonstack.catalog.model import PodSecurityLevel, Service, Skill
from addonstack.plan.databases import DatabaseNeed, database_needs
from addonstack.plan.images import BUILT_IMAGE_PREFIX, mirror_image
from addonstack.plan.models import SkippedService, StackOptions, instance_slug
from addonstack.plan.ports import PortAssignment, allocate_ports
from addonstack.plan.public import PublicAddress, Route, Routing, plan_routes, public_values
from addonstack.plan.resolve import Resolution, ResolveRequest, resolve
from addonstack.plan.secrets import (
    CredentialError,
    ServiceValues,
    Value,
    env_file_key,
    literal,
    plan_values,
    route_credentials,
)


class PlanError(ValueError):
    """The request cannot be planned as given; the message names the field and the fix."""


@dataclass
class PlannedService:
    service: Service
    image: str
    values: ServiceValues
    ports: list[PortAssignment]
    gpu: bool
    database: DatabaseNeed | None
    # Variables set by an env override that the catalog does not declare (passed to the container as secrets).
    extra_env: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.service.id


@dataclass
class StackPlan:
    instance_id: str
    requested: list[str]
    services: list[PlannedService]
    skipped: list[SkippedService]
    added_dependencies: list[str]
    packs: list[str]
    databases: list[DatabaseNeed]
    routes: list[Route]
    skills: list[Skill]
    warnings: list[str]
    values: dict[str, dict[str, Value]] = field(default_factory=dict)
    public: dict[str, PublicAddress] = field(default_factory=dict)  # routed web services with a public address
    routing: Routing = field(default_factory=Routing)
    image_registry: str | None = None  # the mirror every image is pulled through (plan.images)
    # Literals already worked out by addonstack.render.values (env file, env views and Compose ask alike).
    stored: dict[tuple[str, str], str | None] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ids(self) -> list[str]:
        return [p.id for p in self.services]

    @property
    def slug(self) -> str:
        """The instance id as a DNS label, for names and labels."""
        return instance_slug(self.instance_id)

    def port_assignments(self) -> dict[str, int]:
        return {a.key: a.host for p in self.services for a in p.ports}

    def generated_keys(self) -> list[str]:
        return [env_file_key(p.id, k) for p in self.services for k in p.values.generated]

    def memory_mb(self) -> int:
        return sum(p.service.memory_mb for p in self.services)


def built_image(service_id: str, git_ref: str) -> str:
    """Local tag of an image Compose builds from a git ref (tags allow [A-Za-z0-9_.-])."""
    tag = re.sub(r"[^A-Za-z0-9_.-]", "-", git_ref)[:128]
    return f"{BUILT_IMAGE_PREFIX}{service_id}:{tag}"


def _image(svc: Service, prebuilt: Mapping[str, str], warnings: list[str]) -> str:
    ref = prebuilt.get(svc.id)
    if ref is None and svc.image_ref is None and svc.build is not None and svc.build.ref:
        return built_image(svc.id, svc.build.ref)  # Compose builds it from the pinned git ref
    if ref is None:
        assert svc.image_ref is not None  # resolution skips services that need a build
        return svc.image_ref
    last = ref.rsplit("/", 1)[-1]
    if ":" not in last and "@" not in last:
        warnings.append(f"prebuiltImages.{svc.id}: {ref!r} has no tag; pin one so deployments are repeatable")
    elif last.endswith(":latest"):
        warnings.append(f"prebuiltImages.{svc.id}: {ref!r} uses the floating tag 'latest'")
    return ref


def select_skills(cat: Catalog, deployed: set[str], packs: Sequence[str]) -> list[Skill]:
    """The skills of deployed services (auto-installed) and of the packs whose services are there."""
    ids: dict[str, None] = {}
    for sid in sorted(deployed):
        for ref in cat.services[sid].skills:
            if ref.auto_install:
                ids.setdefault(ref.skill_id, None)
    for pack_id in packs:
        for skill_id in cat.packs[pack_id].skills:
            ids.setdefault(skill_id, None)
    out = []
    for skill_id in ids:
        skill = cat.skills.get(skill_id)
        # A skill needs the services it talks to; the platform provides its own infrastructure.
        if skill is not None and all(
            s in deployed or cat.services[s].platform_provided for s in skill.services if s in cat.services
        ):
            out.append(skill)
    return sorted(out, key=lambda s: s.id)


def _check_credentials(cat: Catalog, credentials: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Check every credential and route each to the variable it feeds (see ``route_credentials``)."""
    routed: dict[str, dict[str, str]] = {}
    for sid, values in credentials.items():
        svc = cat.services.get(sid)
        if svc is None:
            raise PlanError(f"credentials.{sid}: {sid!r} is not a catalog service")
        for key, value in values.items():
            if svc.env_var(key) is None:
                known = ", ".join(e.key for e in svc.env if e.credential) or "none"
                raise PlanError(f"credentials.{sid}.{key}: {sid} has no variable {key!r} (its credentials: {known})")
            # An environment variable cannot hold NUL, and a lone surrogate cannot be written as UTF-8.
            if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
                raise PlanError(f"credentials.{sid}.{key}: the value has a NUL or invalid Unicode character; remove it")
        try:
            routed[sid] = route_credentials(svc, values)
        except CredentialError as exc:
            raise PlanError(str(exc)) from None
    return routed


def _apply_env_overrides(
    planned: Sequence[PlannedService], options: StackOptions, field_name: str, warnings: list[str]
) -> None:
    """User overrides, applied after every other value (``field_name`` is how the input spells the field)."""
    by_id = {p.id: p for p in planned}
    for sid, env in options.env_overrides.items():
        where = field_name.format(sid=sid)
        p = by_id.get(sid)
        if p is None:
            if env:
                warnings.append(f"{where}: {sid} is not deployed in this stack; its overrides are ignored")
            continue
        for key, value in env.items():
            if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
                raise PlanError(f"{where}.{key}: the value has a NUL or invalid Unicode character; remove it")
            var = p.service.env_var(key)
            if var is not None and var.generate is not None:
                warnings.append(
                    f"{where}.{key}: a plain value replaces a generated secret; keep secrets out of the stack "
                    "definition (Kubernetes: overrides.<id>.envFrom with a Secret)"
                )
            if var is None and key not in p.extra_env:
                p.extra_env.append(key)
            p.values.values[key] = literal(value, "override")


def _apply_public(
    planned: Sequence[PlannedService], public: Mapping[str, PublicAddress], supplied: StackOptions
) -> None:
    """Public-URL variables: they win over defaults and earlier values (a host change reaches the app),
    not over a value the caller supplied for that variable."""
    for p in planned:
        for key, value in public_values(p.service, public).items():
            if key not in supplied.credentials.get(p.id, {}):
                p.values.values[key] = literal(value, "public")


def _planned_service(
    svc: Service,
    options: StackOptions,
    existing_values: Mapping[str, Mapping[str, str]],
    rng: random.Random,
    ports: list[PortAssignment],
    database: DatabaseNeed | None,
    warnings: list[str],
) -> PlannedService:
    sv = plan_values(
        svc, options.credentials.get(svc.id, {}), existing_values.get(svc.id, {}), options.generate_secrets, rng
    )
    if sv.unset_secrets:
        warnings.append(
            f"{svc.id}: generateSecrets is false and no value was supplied for "
            f"{', '.join(sv.unset_secrets)}; set them before starting the service"
        )
    return PlannedService(
        service=svc,
        image=mirror_image(_image(svc, options.prebuilt_images, warnings), options.image_registry),
        values=sv,
        ports=ports,
        gpu=options.gpu and svc.gpu != "none",
        database=database,
    )


def _resolve_request(
    services: Sequence[str],
    options: StackOptions,
    known: dict[str, dict[str, str]],
    target: str,
    pod_security: PodSecurityLevel | None = None,
) -> ResolveRequest:
    return ResolveRequest(
        services=list(services),
        skill_packs=options.skill_packs,
        platform=options.platform,
        gpu=options.gpu,
        prebuilt_images=options.prebuilt_images,
        known_values=known,
        allow_experimental=options.allow_experimental,
        target=target,
        allow_docker_socket=options.allow_docker_socket,
        generate_secrets=options.generate_secrets,
        pod_security=pod_security,
    )


def _ports(
    cat: Catalog,
    res: Resolution,
    options: StackOptions,
    existing_ports: Mapping[str, int] | None,
    warnings: list[str],
) -> list[PortAssignment]:
    """Host ports of the resolved services, clear of reserved ports and of services kept outside the plan."""
    deployed = set(res.ids)
    used_by_host = [
        p.default_host
        for sid in options.existing_services
        if sid in cat.services and sid not in deployed
        for p in cat.services[sid].ports
        if p.exposed
    ]
    try:
        return allocate_ports(
            res.services,
            options.reserved_ports,
            used_by_host,
            options.port_overrides,
            existing_ports or {},
            warnings,
        )
    except ValueError as exc:
        raise PlanError(str(exc)) from None


def build_plan(
    cat: Catalog,
    instance_id: str,
    services: Sequence[str],
    options: StackOptions,
    rng: random.Random,
    existing_values: Mapping[str, Mapping[str, str]] | None = None,
    existing_ports: Mapping[str, int] | None = None,
    routing: Routing | None = None,
    target: str = "compose",
    override_field: str = "envOverrides.{sid}",
    pod_security: PodSecurityLevel | None = None,
) -> StackPlan:
    """Resolve, allocate ports, choose values and routes. Raises :class:`PlanError` on bad input.

    ``routing`` defaults to the input's ``publicBaseUrl``; the Kubernetes path passes the one from
    ``spec.ingress``. ``target`` decides what Docker-socket services get; ``pod_security`` (the level the
    target namespace enforces) skips services whose images need more.
    """
    existing_values = existing_values or {}
    routing = routing if routing is not None else Routing.from_base_url(options.public_base_url)
    credentials = _check_credentials(cat, options.credentials)
    options = options.model_copy(update={"credentials": credentials})  # each credential on its source variable
    known = {
        sid: {**existing_values.get(sid, {}), **credentials.get(sid, {})}
        for sid in set(existing_values) | set(credentials)
    }
    res = resolve(cat, _resolve_request(services, options, known, target, pod_security))
    warnings = list(res.warnings)
    deployed = set(res.ids)
    for sid in options.prebuilt_images:
        if sid not in cat.services:
            warnings.append(f"prebuiltImages.{sid}: not a catalog service; ignored")
    ports = _ports(cat, res, options, existing_ports, warnings)
    by_service: dict[str, list[PortAssignment]] = {}
    for a in ports:
        by_service.setdefault(a.service_id, []).append(a)

    needs = {n.service_id: n for n in database_needs(res.services)}
    planned = [
        _planned_service(svc, options, existing_values, rng, by_service.get(svc.id, []), needs.get(svc.id), warnings)
        for svc in res.services
    ]
    values = {p.id: p.values.values for p in planned}
    routes, public = plan_routes(planned, routing, warnings)
    _apply_public(planned, public, options)
    _apply_env_overrides(planned, options, override_field, warnings)
    return StackPlan(
        instance_id=instance_id,
        requested=list(services),
        services=planned,
        skipped=res.skipped,
        added_dependencies=res.added_dependencies,
        packs=res.packs,
        databases=list(needs.values()),
        routes=routes,
        skills=select_skills(cat, deployed, res.packs),
        warnings=warnings,
        values=values,
        public=public,
        routing=routing,
        image_registry=options.image_registry,
    )
