"""The library surface platforms call: generate/update an addon stack, and catalog queries.

Both entry points are thin: validate -> :func:`build_plan` -> Compose/env/skills renderers. Errors a
caller can fix raise :class:`AddonStackError` (a ``ValueError``) whose message names the field;
input that fails its model raises pydantic's ``ValidationError`` from ``model_validate``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import Category, Service, SkillPack
from addonstack.constants import POSTGRES_SETUP_ID
from addonstack.plan.build import PlanError, StackPlan, build_plan, select_skills
from addonstack.plan.images import mirror_image, unmirror_image
from addonstack.plan.models import (
    AddonStackInput,
    AddonStackResult,
    AddonStackUpdateInput,
    AddonStackUpdateResult,
    PrePullImage,
    ProxyRoute,
    ServiceEnv,
    StackMetadata,
    StackOptions,
    StreamRoute,
    UpdateMetadata,
)
from addonstack.plan.secrets import CredentialError, env_file_key, make_rng, route_credentials
from addonstack.render import yamlio
from addonstack.render.compose import init_id, render_compose, render_env_file, volumes_id
from addonstack.render.skills import gateway_env, openclaw_config_patch, workspace_skill_files
from addonstack.render.state import CurrentStack, StateError, read_current
from addonstack.render.values import stored_value

# The options a stack is made with, kept in the Compose file's state block and applied again by update.
SETTINGS = (
    "gpu",
    "platform",
    "prebuilt_images",
    "image_registry",
    "reserved_ports",
    "port_overrides",
    "existing_services",
    "generate_secrets",
    "openclaw_version",
    "ai_providers",
)


class AddonStackError(ValueError):
    """Input that cannot be turned into a stack; the message says which field and how to fix it."""


def _catalog(catalog: Catalog | None) -> Catalog:
    return catalog if catalog is not None else load_catalog()


# ---- catalog queries --------------------------------------------------------------------------


def get_all_services(catalog: Catalog | None = None) -> list[Service]:
    """Every deployable addon service, sorted by id (platform infrastructure excluded)."""
    return sorted(_catalog(catalog).addons(), key=lambda s: s.id)


def get_service_by_id(service_id: str, catalog: Catalog | None = None) -> Service | None:
    return _catalog(catalog).services.get(service_id)


def get_services_by_category(category_id: str, catalog: Catalog | None = None) -> list[Service]:
    return [s for s in get_all_services(catalog) if s.category == category_id]


def get_all_skill_packs(catalog: Catalog | None = None) -> list[SkillPack]:
    return sorted(_catalog(catalog).packs.values(), key=lambda p: p.id)


def get_compatible_skill_packs(service_ids: list[str], catalog: Catalog | None = None) -> list[SkillPack]:
    """Packs whose required services are all present; best matches (most overlap) first."""
    have = set(service_ids)
    packs = [p for p in get_all_skill_packs(catalog) if set(p.required_services) <= have]

    def score(p: SkillPack) -> tuple[int, int, str]:
        overlap = len(set(p.required_services) | (set(p.optional_services) & have))
        return (-overlap, -len(p.skills), p.id)

    return sorted(packs, key=score)


class _Categories:
    """``SERVICE_CATEGORIES``: loaded on first use so importing the package stays cheap."""

    def _items(self) -> list[Category]:
        return list(load_catalog().categories.values())

    def __iter__(self) -> Any:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, index: int) -> Category:
        return self._items()[index]

    def __repr__(self) -> str:
        return f"SERVICE_CATEGORIES({[c.id for c in self._items()]})"


SERVICE_CATEGORIES = _Categories()


# ---- generate ------------------------------------------------------------------------------


def _env_views(plan: StackPlan) -> list[ServiceEnv]:
    """Every variable as a platform UI shows it. Each service's variables go to pydantic as plain dicts in
    one validation of its :class:`ServiceEnv` (the same checks, in Rust, without one ``__init__`` per
    variable): measured 2.7 -> 2.1 ms for the 1,300 variables of all deployable services."""
    out = []
    for p in plan.services:
        sid, values = p.id, p.values.values
        views = []
        for var in p.service.env:
            value = values.get(var.key)
            if value is None:
                continue
            lit = stored_value(plan, sid, var.key)
            views.append(
                {
                    "key": var.key,
                    "description": var.description,
                    "value": lit if lit is not None else (var.default or ""),
                    "secret": var.secret,
                    "env_key": env_file_key(sid, var.key) if lit is not None else None,
                    "generated": value.origin == "generated",
                    "credential": var.credential,
                }
            )
        out.append(ServiceEnv(service_name=p.service.name, service_id=sid, vars=views))
    return out


def _routes(plan: StackPlan) -> tuple[list[ProxyRoute], list[StreamRoute]]:
    """HTTP routes (always with a path) and the gRPC/TCP/UDP ports, apart."""
    hosts = {(a.service_id, a.container): a.host for p in plan.services for a in p.ports}
    http: list[ProxyRoute] = []
    streams: list[StreamRoute] = []
    for r in plan.routes:
        if r.protocol == "http" and r.path is not None:
            http.append(
                ProxyRoute(service_id=r.service_id, path=r.path, port=r.port, strip_prefix=r.strip_prefix, host=r.host)
            )
        elif r.protocol in ("grpc", "tcp", "udp"):
            streams.append(
                StreamRoute(
                    service_id=r.service_id,
                    port=r.port,
                    host_port=hosts.get((r.service_id, r.port)),
                    protocol=r.protocol,
                )
            )
    return http, streams


def _pre_pull(plan: StackPlan) -> list[PrePullImage]:
    """Every image, priority 1 for GPU or >= 2 GiB services (the large images), 2 from 512 MiB, else 3."""
    out = []
    for p in plan.services:
        mem = p.service.memory_mb
        priority = 1 if p.service.gpu != "none" or mem >= 2048 else 2 if mem >= 512 else 3
        out.append(PrePullImage(service_id=p.id, image=p.image, priority=priority))
    return sorted(out, key=lambda i: i.priority)


def _metadata(plan: StackPlan) -> dict[str, Any]:
    return {
        "service_count": len(plan.services),
        "resolved_services": plan.ids,
        "skipped_services": plan.skipped,
        "port_assignments": plan.port_assignments(),
        "added_dependencies": plan.added_dependencies,
        "generated_secret_keys": plan.generated_keys(),
        "estimated_memory_mb": plan.memory_mb(),
        "skill_count": len(plan.skills),
        "pre_pull_images": _pre_pull(plan),
        "instance_slug": plan.slug,
    }


def _settings(options: StackOptions) -> dict[str, Any]:
    """The state block's ``settings``: every option, and the names (never values) of credentials."""
    data = options.model_dump(by_alias=True, include=set(SETTINGS), mode="json")
    data["credentialKeys"] = {sid: sorted(keys) for sid, keys in options.credentials.items()}
    return data


def _rendered(
    plan: StackPlan,
    options: StackOptions,
    kept_env: Mapping[str, Mapping[str, str]] | None = None,
    kept_compose: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Compose, env, skill and route outputs that generate and update both return."""
    doc = render_compose(plan, _settings(options), kept_compose)
    http, streams = _routes(plan)
    return {
        "_compose": doc,  # for update's comparison; not a result field
        "compose_override": yamlio.dump_sectioned(doc, ("services", "volumes"), plan.slug),
        "env_file": render_env_file(plan, kept_env),
        "env_vars": _env_views(plan),
        "proxy_routes": http,
        "stream_routes": streams,
        "skill_files": workspace_skill_files(plan.skills),
        "openclaw_config_patch": openclaw_config_patch(plan.skills),
        "additional_files": {},
        "gateway_env": gateway_env((p.service for p in plan.services), lambda sid, key: stored_value(plan, sid, key)),
    }


def _plan(
    cat: Catalog,
    instance_id: str,
    services: list[str],
    options: StackOptions,
    seed: int | None,
    existing_values: Mapping[str, Mapping[str, str]] | None = None,
    existing_ports: Mapping[str, int] | None = None,
) -> StackPlan:
    try:
        return build_plan(cat, instance_id, services, options, make_rng(seed), existing_values, existing_ports)
    except PlanError as exc:
        raise AddonStackError(str(exc)) from None


def _as_input(value: AddonStackInput | Mapping[str, Any]) -> AddonStackInput:
    return value if isinstance(value, AddonStackInput) else AddonStackInput.model_validate(value)


def generate_addon_stack(
    stack: AddonStackInput | Mapping[str, Any], *, seed: int | None = None, catalog: Catalog | None = None
) -> AddonStackResult:
    """Plan and render a new stack. ``seed`` makes secrets (and so the output) reproducible."""
    inp = _as_input(stack)
    plan = _plan(_catalog(catalog), inp.instance_id, inp.services, inp, seed)
    rendered = _rendered(plan, inp)
    del rendered["_compose"]
    return AddonStackResult(
        **rendered,
        metadata=StackMetadata(**_metadata(plan)),
        warnings=plan.warnings,
    )


# ---- update --------------------------------------------------------------------------------

# Secrets whose loss makes stored data unreadable or identities invalid: never issued anew silently.
_DATA_BOUND = re.compile(r"ENCRYPT|CRYPT|MASTER|SALT|PRIVATE|KEY_BASE|SIGNING|VAULT|DB_KEY|DATA_KEY")


def _options(inp: AddonStackUpdateInput, state: CurrentStack) -> StackOptions:
    """Every stored setting, replaced by the update input only where the input gives the field."""
    given = inp.model_fields_set
    stored = {k: v for k, v in state.settings.items() if k != "credentialKeys"}
    merged = StackOptions.model_validate(stored).model_dump() if stored else {}
    data = {name: getattr(inp, name) for name in StackOptions.model_fields}
    for name in SETTINGS:
        if name not in given and name in merged and _alias(name) in stored:
            data[name] = merged[name]
    data["skill_packs"] = list(dict.fromkeys([*state.skill_packs, *inp.skill_packs]))
    try:
        return StackOptions.model_validate(data)
    except ValidationError as exc:
        raise AddonStackError(f"currentCompose: stored settings no longer valid: {exc.errors()[0]['msg']}") from None


def _alias(name: str) -> str:
    field = StackOptions.model_fields[name]
    return field.alias or name


def _removals(inp: AddonStackUpdateInput, state: CurrentStack, cat: Catalog, warnings: list[str]) -> set[str]:
    current = state.services
    removing: set[str] = set()
    for sid in inp.remove_services:
        if sid not in current and sid not in state.compose_services:
            warnings.append(f"removeServices: {sid} is not in the stack; nothing to remove")
            continue
        removing.add(sid)
    for sid in sorted(removing):
        users = [u for u in current if u not in removing and u in cat.services and sid in cat.services[u].requires]
        if users:
            warnings.append(f"removeServices: {sid} is still required by {', '.join(users)}; remove those too. Kept.")
            removing.discard(sid)
    return removing


def _existing(inp: AddonStackUpdateInput, state: CurrentStack, cat: Catalog) -> dict[str, dict[str, str]]:
    """Values already issued, with credentials the update gives applied over them (routed to their source)."""
    out = {sid: dict(v) for sid, v in state.values.items()}
    for sid, creds in inp.credentials.items():
        svc = cat.services.get(sid)
        if svc is None:
            continue  # build_plan names the field
        try:
            routed = route_credentials(svc, creds)
        except CredentialError as exc:
            raise AddonStackError(str(exc)) from None
        mine = out.setdefault(sid, {})
        mine.update(routed)
        # Values derived from a replaced one are worked out again from it, not kept stale.
        changed = set(routed)
        for var in svc.env:
            if var.key not in routed and any(k in changed for _, k in var.references()):
                mine.pop(var.key, None)
    return out


def _check_lost_secrets(plan: StackPlan, state: CurrentStack, regenerate: bool, warnings: list[str]) -> None:
    """A service that stays gets a new value only for secrets its section lacked; say so, or refuse."""
    for p in plan.services:
        if p.id not in state.services or not p.values.generated:
            continue
        bound = [k for k in p.values.generated if _DATA_BOUND.search(k)]
        if bound and not regenerate:
            raise AddonStackError(
                f"currentEnv: {', '.join(env_file_key(p.id, k) for k in bound)} of {p.id} is missing; a new value "
                "makes its stored data unreadable. Restore the line, or set regenerateMissingSecrets: true"
            )
        warnings.append(f"{p.id}: {', '.join(p.values.generated)} missing from currentEnv; new values were generated")


def _pin_images(plan: StackPlan, state: CurrentStack, upgrade: bool, warnings: list[str]) -> None:
    """Services that stay keep the image they run unless ``upgrade`` is set; a new ``imageRegistry`` moves
    them to the mirror all the same (the same image, pulled from elsewhere)."""
    before = state.settings.get("imageRegistry")
    for p in plan.services:
        old = state.image(p.id)
        if p.id not in state.services or old is None or old == p.image:
            continue
        old = mirror_image(unmirror_image(old, before if isinstance(before, str) else None), plan.image_registry)
        if old == p.image:
            continue
        if upgrade:
            warnings.append(f"{p.id}: image {old} -> {p.image} (upgrade)")
        else:
            warnings.append(f"{p.id}: keeps {old}; the catalog now pins {p.image} (set upgrade: true to move)")
            p.image = old


def _orphans(plan: StackPlan, state: CurrentStack, removing: set[str], cat: Catalog, warnings: list[str]) -> set[str]:
    """Catalog services that were only dependencies (never requested) of services now removed: nothing that
    stays requires them, so they go with the services they were added for (their values with them)."""
    if not removing:
        return set()
    planned, skipped = set(plan.ids), {s.service_id for s in plan.skipped}
    orphans = {
        sid
        for sid in state.services
        if sid in cat.services and sid not in state.requested and sid not in planned | skipped | removing
    }
    for sid in sorted(orphans):
        warnings.append(f"{sid}: removed as well; it was only a dependency of {', '.join(sorted(removing))}")
    return orphans


def _carried(plan: StackPlan, state: CurrentStack, removing: set[str], warnings: list[str]) -> list[str]:
    """Services that exist and were not asked to go but are not planned: kept exactly as they are. The
    one-shot init and volume-ownership services of a removed service go with it (they run that service's
    start-up step with its variables, and hand it its volumes)."""
    carried = []
    planned = set(plan.ids)
    # steps the render makes again for planned services, or drops with removed ones
    inits = {one for sid in removing | planned for one in (init_id(sid), volumes_id(sid))}
    for sid in [*state.services, *state.compose_services]:
        if sid in planned or sid in removing or sid in carried or sid == POSTGRES_SETUP_ID or sid in inits:
            continue
        if sid not in state.compose_services:
            continue
        carried.append(sid)
        why = next((s.details for s in plan.skipped if s.service_id == sid), None)
        warnings.append(
            f"{sid}: kept as it is ({why or 'not a catalog service or added by hand'}); removeServices drops it"
        )
    return carried


def _update_delta(
    cat: Catalog, plan: StackPlan, state: CurrentStack, added: list[str], removed: list[str], new: dict[str, Any]
) -> dict[str, Any]:
    """The TypeScript package's change fields, from the old and the new stack."""
    before_ids = {s for s in state.services if s in cat.services}
    old_skills = {s.id for s in select_skills(cat, before_ids, [p for p in state.skill_packs if p in cat.packs])}
    new_skills = {s.id for s in plan.skills}
    added_skills = sorted(new_skills - old_skills)
    old_gateway = gateway_env(cat.services[s] for s in state.services if s in cat.services)
    http, _ = _routes(plan)
    old_doc = state.compose_services
    new_doc = new.pop("_compose")["services"]
    changed = [s for s in plan.ids if s in old_doc and s not in added and new_doc.get(s) != old_doc.get(s)]
    restart = [*added, *changed]
    if added_skills or old_skills - new_skills or set(old_gateway) != set(new["gateway_env"]):
        restart.append("openclaw-gateway")
    routed_before = {
        s
        for s in removed
        if s in cat.services and any(p.protocol == "http" and p.exposed for p in cat.services[s].ports)
    }
    return {
        "new_skill_files": {k: v for k, v in new["skill_files"].items() if k.split("/")[-2] in added_skills},
        "removed_skill_slugs": sorted(old_skills - new_skills),
        "add_proxy_routes": [r for r in http if r.service_id in added],
        "remove_proxy_routes": sorted(routed_before),
        "restart_required": restart,
        "openclaw_config_patch": {
            "skills": {
                "add": {s: {"enabled": True} for s in added_skills},
                "remove": sorted(old_skills - new_skills),
                **new["openclaw_config_patch"]["skills"],
            }
        },
    }


def update_addon_stack(
    change: AddonStackUpdateInput | Mapping[str, Any],
    *,
    seed: int | None = None,
    catalog: Catalog | None = None,
) -> AddonStackUpdateResult:
    """Add and remove services of an existing stack, keeping every value, port, image and setting that exists."""
    inp = change if isinstance(change, AddonStackUpdateInput) else AddonStackUpdateInput.model_validate(change)
    cat = _catalog(catalog)
    try:
        state = read_current(inp.current_compose, inp.current_env, inp.instance_id, cat)
    except StateError as exc:
        raise AddonStackError(str(exc)) from None
    warnings: list[str] = list(state.warnings)
    options = _options(inp, state)
    removing = _removals(inp, state, cat, warnings)
    requested = [s for s in state.requested if s not in removing]
    requested += [s for s in inp.add_services if s not in requested]
    # Values and ports of every current service go in: one that comes back (a dependency of a requested
    # service, even one skipped) keeps them instead of getting new secrets; the others are simply unused.
    plan = _plan(cat, inp.instance_id, requested, options, seed, _existing(inp, state, cat), state.ports())
    for sid in sorted(removing & set(plan.ids)):
        warnings.append(f"removeServices: {sid} is still a dependency of a requested service; kept with its values")
    _check_lost_secrets(plan, state, inp.regenerate_missing_secrets, warnings)
    _pin_images(plan, state, inp.upgrade, warnings)
    removing |= _orphans(plan, state, removing, cat, warnings)
    carried = _carried(plan, state, removing, warnings)
    plan.warnings[:0] = warnings
    keep = (set(state.services) | set(state.env_sections)) - removing
    kept_env = {sid: lines for sid, lines in state.env_sections.items() if sid in keep}
    rendered = _rendered(plan, options, kept_env, {sid: state.compose_services[sid] for sid in carried})
    before = set(state.services)
    added = [s for s in plan.ids if s not in before]
    removed = [s for s in state.services if s not in plan.ids and s not in carried]
    images = [p.image for p in plan.services if state.image(p.id) != p.image]
    memory = sum(cat.services[s].memory_mb for s in added) - sum(
        cat.services[s].memory_mb for s in removed if s in cat.services
    )
    rendered.update(_update_delta(cat, plan, state, added, removed, rendered))
    meta = _metadata(plan)
    held = state.ports()  # services carried over as they are still hold their host ports
    meta["port_assignments"].update({k: v for k, v in held.items() if k.split(":", 1)[0] in carried})
    return AddonStackUpdateResult(
        **rendered,
        images_to_pull=list(dict.fromkeys(images)),
        metadata=UpdateMetadata(
            **meta,
            added=added,
            removed=removed,
            unchanged=[s for s in plan.ids if s in before] + carried,
            estimated_memory_delta=memory,
        ),
        warnings=plan.warnings,
    )
