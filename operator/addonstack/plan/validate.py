"""Admission rules that need the catalog: one pure function for the webhook and ``addonstack validate``.

Where each rule lives (see docs/reliability.md):

* CRD schema and CEL (``render/crd.py``) - the API server itself: types, ranges, patterns, unknown
  service ids and skill packs (enums), duplicates (list-type set), override keys, ingress and database
  field combinations.
* This module - rules that need the catalog; served by the operator's validating webhook
  (``controller/admission.py``) and run offline by ``addonstack validate``. It repeats the CRD's id checks
  so the offline command rejects what the API server would, and evaluates the ingress field combinations
  (``plan.spec.INGRESS_RULES``, the same rules and words the CRD gets as CEL). :func:`check_stack` adds what the planned
  services need from the platform (PostgreSQL and its admin Secret, Redis); the operator runs it before
  its first write and stalls with the same words ``addonstack validate`` prints.
* The webhook alone - rules that need other objects: two stacks in one namespace creating the same child.
* Status, not admission - anything that can change without editing the stack: missing credentials,
  a credentials Secret not found yet, operator defaults (gpu, platform, database host), services
  without a published image. Those are skipped with a reason in ``status.skipped``.

Messages name the field and say how to fix it. They never echo values of secret-bearing fields; the
spec holds none (credentials come from a Secret), and ids are checked against the catalog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from addonstack.catalog.loader import Catalog
from addonstack.constants import INFRASTRUCTURE_IDS
from addonstack.plan.build import StackPlan
from addonstack.plan.images import registry_problem
from addonstack.plan.spec import INGRESS_RULES, AddonStackSpec
from addonstack.reasons import ConditionReason


def _is_platform(cat: Catalog, sid: str) -> bool:
    svc = cat.services.get(sid)
    return sid in INFRASTRUCTURE_IDS or (svc is not None and svc.platform_provided)


def stack_services(cat: Catalog, roots: Iterable[str]) -> dict[str, str]:
    """Every addon the stack can deploy, mapped to the requested id that brings it in."""
    via: dict[str, str] = {}

    def visit(sid: str, root: str) -> None:
        if sid in via or sid not in cat.services or _is_platform(cat, sid):
            return
        via[sid] = root
        for dep in cat.services[sid].requires:
            visit(dep, root)

    for root in roots:
        visit(root, root)
    return via


def _list(items: Iterable[str]) -> str:
    return ", ".join(sorted(items))


def _need(ids: list[str]) -> str:
    """``n8n needs`` / ``a, b need``."""
    return f"{_list(ids)} {'needs' if len(ids) == 1 else 'need'}"


def requested_services(cat: Catalog, spec: AddonStackSpec) -> list[str]:
    """spec.services plus the services of the requested skill packs, in order, without duplicates."""
    out: dict[str, None] = dict.fromkeys(spec.services)
    for pack_id in spec.skill_packs or []:
        pack = cat.packs.get(pack_id)
        if pack is not None:
            out.update(dict.fromkeys(pack.required_services))
    return list(out)


def check_spec(cat: Catalog, spec: AddonStackSpec) -> list[str]:
    """Problems that make the stack unfit to admit, each ``<field>: <what is wrong>; <how to fix>``."""
    requested = requested_services(cat, spec)
    stack = stack_services(cat, requested)
    return [
        *_check_ids(cat, spec),
        *_check_conflicts(cat, stack),
        *_check_contradictions(cat, spec, requested),
        *_check_settings(cat, spec, stack),
        *_check_images(spec),
        *(rule.message for rule in INGRESS_RULES if spec.ingress is not None and rule.broken(spec.ingress)),
    ]


def _check_ids(cat: Catalog, spec: AddonStackSpec) -> list[str]:
    """Unknown, duplicate or platform ids (the CRD checks these too; repeated for the offline command)."""
    problems: list[str] = []
    seen: set[str] = set()
    for sid in spec.services:
        if sid in seen:
            problems.append(f"services: {sid} is listed twice; list each service once")
        seen.add(sid)
        if _is_platform(cat, sid):
            problems.append(
                f"services: {sid} is platform infrastructure, provided by the platform rather than deployed "
                "as an addon; remove it (configure spec.database or spec.redis to point at the platform's server)"
            )
        elif sid not in cat.services:
            problems.append(f"services: {sid} is not a catalog service; see `addonstack catalog list`")
    for pack_id in spec.skill_packs or []:
        if pack_id not in cat.packs:
            problems.append(f"skillPacks: {pack_id} is not a skill pack; see `addonstack packs list`")
    return problems


def _check_conflicts(cat: Catalog, stack: dict[str, str]) -> list[str]:
    """Declared conflicts: the planner would skip one of the two, so the request can never be met."""
    problems: list[str] = []
    reported: set[frozenset[str]] = set()
    for sid in stack:
        for other in cat.services[sid].conflicts:
            pair = frozenset((sid, other))
            if other in stack and pair not in reported:
                reported.add(pair)
                a, b = sorted(pair)
                how = "".join(
                    f" ({x} comes with {stack[x]})" for x in (a, b) if stack[x] != x
                )  # dependencies are named by the requested service that needs them
                problems.append(f"services: {a} and {b} conflict (catalog `conflicts`){how}; keep only one of them")
    return problems


def _check_contradictions(cat: Catalog, spec: AddonStackSpec, requested: list[str]) -> list[str]:
    """Explicit contradictions inside the spec (operator defaults are a status matter)."""
    problems: list[str] = []
    prebuilt = spec.prebuilt_images or {}
    for sid in requested:
        svc = cat.services.get(sid)
        if svc is None or _is_platform(cat, sid):
            continue
        if spec.gpu is False and svc.gpu == "required":
            problems.append(
                f"gpu: {sid} needs an NVIDIA GPU but spec.gpu is false; set gpu: true (on nodes with a GPU) "
                f"or remove {sid}"
            )
        if spec.platform is not None and spec.platform not in svc.platforms and sid not in prebuilt:
            problems.append(
                f"platform: {sid} is published for {_list(svc.platforms)} only, not {spec.platform}; pass "
                f"prebuiltImages.{sid} built for {spec.platform}, change platform, or remove {sid}"
            )
    return problems


def _check_settings(cat: Catalog, spec: AddonStackSpec, stack: dict[str, str]) -> list[str]:
    """Per-service settings that can never take effect."""
    problems: list[str] = []
    prebuilt = spec.prebuilt_images or {}
    in_stack = "add it to spec.services or remove the entry"
    for sid in sorted(prebuilt):
        if sid not in cat.services:
            problems.append(f"prebuiltImages.{sid}: not a catalog service; see `addonstack catalog list`")
        elif sid not in stack:
            problems.append(f"prebuiltImages.{sid}: {sid} is not part of this stack; {in_stack}")
    for sid, ov in sorted((spec.overrides or {}).items()):
        svc = cat.services.get(sid)
        if svc is None:
            problems.append(f"overrides.{sid}: not a catalog service; see `addonstack catalog list`")
            continue
        if sid not in stack:
            problems.append(
                f"overrides.{sid}: {sid} is not part of this stack (spec.services, their dependencies and "
                f"skill packs); {in_stack}"
            )
            continue
        if ov.replicas is not None and ov.replicas > 1 and not svc.scalable:
            problems.append(
                f"overrides.{sid}.replicas: {sid} is not safe to run with more than one replica "
                "(catalog scalable: false); use 1, or 0 to pause it"
            )
        if ov.storage_size is not None and not svc.volumes:
            problems.append(f"overrides.{sid}.storageSize: {sid} has no volumes; remove storageSize")
        if ov.image_tag is not None and (sid in prebuilt or svc.needs_build):
            where = f"prebuiltImages.{sid}"
            problems.append(
                f"overrides.{sid}.imageTag: {sid} runs the image from {where}, not a catalog image; "
                f"put the tag in {where} and remove imageTag"
            )
    return problems


def _check_images(spec: AddonStackSpec) -> list[str]:
    """The registry mirror's syntax (``plan.images`` holds the rule the library input and the flag share)."""
    problems: list[str] = []
    if spec.image_registry is not None and (problem := registry_problem(spec.image_registry)):
        problems.append(problem)
    names = [ref.name for ref in spec.image_pull_secrets or []]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"imagePullSecrets: {name} is listed twice; list each Secret once")
    return problems


# ---- the whole rule set: the spec's rules plus what the planned services need from the platform ----------


@dataclass(frozen=True)
class Platform:
    """What the stack can count on, from its spec and the operator's defaults (``render.stack`` fills it)."""

    database_host: str | None = None
    admin_secret: str | None = None
    admin_secret_keys: frozenset[str] | None = None  # None: not looked at (offline); keys only, never values
    redis_host: str | None = None


@dataclass(frozen=True)
class Problem:
    reason: ConditionReason
    message: str


ADMIN_KEYS = ("username", "password")


def check_platform(plan: StackPlan, platform: Platform) -> list[Problem]:
    """Services that cannot work with what the platform provides: PostgreSQL, its admin Secret, Redis."""
    problems: list[Problem] = []
    needs_db = sorted({n.service_id for n in plan.databases})
    if needs_db and not platform.database_host:
        problems.append(Problem(ConditionReason.DATABASE_NOT_CONFIGURED, (
            f"database: {_need(needs_db)} PostgreSQL but no database is configured; set spec.database.host "
            "and spec.database.adminSecretRef, or start the operator with --database-host and "
            "--database-admin-secret, or remove those services"
        )))  # fmt: skip
    elif needs_db and not platform.admin_secret:
        problems.append(Problem(ConditionReason.ADMIN_SECRET_MISSING, (
            f"database.adminSecretRef: {_need(needs_db)} databases created but no admin Secret is named; "
            "set spec.database.adminSecretRef.name (a Secret with keys username and password) or start the "
            "operator with --database-admin-secret"
        )))  # fmt: skip
    elif needs_db and platform.admin_secret_keys is not None:
        lacking = [k for k in ADMIN_KEYS if k not in platform.admin_secret_keys]
        if lacking:
            what = "does not exist" if not platform.admin_secret_keys else f"lacks the keys {', '.join(lacking)}"
            problems.append(Problem(ConditionReason.ADMIN_SECRET_MISSING, (
                f"database.adminSecretRef: Secret {platform.admin_secret!r} {what}; create it in the stack's "
                "namespace with keys username and password of a role that may CREATE ROLE and CREATE DATABASE"
            )))  # fmt: skip
    needs_redis = sorted(p.id for p in plan.services if "redis" in p.service.requires)
    if needs_redis and not platform.redis_host:
        problems.append(Problem(ConditionReason.REDIS_NOT_CONFIGURED, (
            f"redis: {_need(needs_redis)} Redis but none is configured; set spec.redis.host (and "
            "spec.redis.passwordSecretRef), or remove those services"
        )))  # fmt: skip
    return problems


def check_stack(cat: Catalog, spec: AddonStackSpec, plan: StackPlan, platform: Platform) -> list[Problem]:
    """Every rule, in one place: ``addonstack validate``, the library and the operator (before it writes)."""
    problems = [Problem(ConditionReason.INVALID_SPEC, p) for p in check_spec(cat, spec)]
    return problems + check_platform(plan, platform)
