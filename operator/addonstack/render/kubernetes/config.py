"""A service's variables as Kubernetes sees them: the container's env entries, its Secret and ConfigMap,
the stack's skills ConfigMap and the gateway's environment (``<stack>-gateway-env``).

Stored values live in ``<id>-env`` (secret) and ``<id>-config`` (plain) and reach the container by
explicit ``valueFrom`` entries; values built from platform keys are assembled with ``$(VAR)`` expansion.
"""

from __future__ import annotations

import json
from typing import Any

from addonstack.catalog.model import COMMAND_VAR, VAR_REF
from addonstack.constants import POSTGRES_HOST, POSTGRES_PORT
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.secrets import Lit, PlatformRef, Ref, expand, flatten
from addonstack.render.kubernetes.context import (
    REDIS_HOST,
    REDIS_PORT,
    K8sContext,
    config_name,
    meta,
    secret_name,
)
from addonstack.render.skills import gateway_env, openclaw_config_patch, skill_files


def k8s_escape(text: str) -> str:
    return text.replace("$(", "$$(")


def k8s_command_item(text: str) -> str:
    """A command, args or initCommand item: its text escaped, each ``${KEY}`` as ``$(KEY)``, which Kubernetes
    expands from the container's own variable (the lint admits only plain in-container variables)."""
    parts = COMMAND_VAR.split(text)
    return "".join(k8s_escape(part) if i % 2 == 0 else f"$({part})" for i, part in enumerate(parts))


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


def _ref_entry(plan: StackPlan, seg: Ref, name: str) -> dict[str, Any] | None:
    """The env entry that brings another service's stored value into this container."""
    if plan.values.get(seg.service_id) is None:
        return None
    ref_secret = True
    for q in plan.services:
        if q.id == seg.service_id and (v := q.service.env_var(seg.key)) is not None:
            ref_secret = v.secret
    src = secret_name(seg.service_id) if ref_secret else config_name(seg.service_id)
    kind = "secretKeyRef" if ref_secret else "configMapKeyRef"
    return {"name": name, "valueFrom": {kind: {"name": src, "key": seg.key}}}


def container_env(plan: StackPlan, ctx: K8sContext, p: PlannedService, warnings: list[str]) -> list[Any]:
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
                parts.append(k8s_escape(seg.text))
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
                if name not in defined and (ref_entry := _ref_entry(plan, seg, name)) is not None:
                    head.append(ref_entry)
                    defined.add(name)
                parts.append(f"$({name})")
        body.append({"name": var.key, "value": "".join(parts)})
    # Variables only an env override sets: stored in the service's Secret like any undeclared value.
    body += [{"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name(p.id), "key": k}}} for k in p.extra_env]
    return head + body


def stored(plan: StackPlan, p: PlannedService) -> tuple[dict[str, str], dict[str, str]]:
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


def env_objects(
    ctx: K8sContext, p: PlannedService, secret: dict[str, str], config: dict[str, str]
) -> list[dict[str, Any]]:
    """The service's Secret and ConfigMap of stored values."""
    return [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": meta(ctx, secret_name(p.id), p.id),
            "type": "Opaque",
            "stringData": secret,
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(ctx, config_name(p.id), p.id),
            "data": config,
        },
    ]


def skills_config_map(plan: StackPlan, ctx: K8sContext) -> dict[str, Any]:
    data = {path.replace("/", "__"): text for path, text in skill_files(plan.skills).items()}
    data["openclaw.json"] = json.dumps(openclaw_config_patch(plan.skills), indent=2, sort_keys=True) + "\n"
    m = meta(ctx, f"{ctx.stack}-skills", "skills", "skills")
    m["annotations"] = {"addonstack.dev/layout": "key <skillId>__SKILL.md mounts as <skillId>/SKILL.md"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data}


def gateway_env_config_map(plan: StackPlan, ctx: K8sContext) -> dict[str, Any]:
    """``<stack>-gateway-env``: the variables the skill files use (``N8N_HOST=n8n``), for the gateway's
    ``envFrom``. Service names resolve in the stack's namespace. A variable that holds one of a service's
    secrets (an access token) is not copied here: the annotation names the Secret key to read it from. One
    built from plain variables (a URL with the service's path prefix) is filled in."""
    secret_refs: dict[str, str] = {}
    by_id = {p.id: p.service for p in plan.services}
    for p in plan.services:
        for item in p.service.gateway_env:
            for ref in VAR_REF.finditer(item.value):
                owner = by_id.get(ref.group(1) or p.id)
                var = owner.env_var(ref.group(2)) if owner is not None else None
                if (var is None or var.secret) and item.key not in secret_refs:
                    secret_refs[item.key] = f"{secret_name(ref.group(1) or p.id)}/{ref.group(2)}"

    def plain(sid: str, key: str) -> str | None:
        return flatten(expand(plan.values, sid, key)) if key in plan.values.get(sid, {}) else None

    data = {k: v for k, v in gateway_env((p.service for p in plan.services), plain).items() if k not in secret_refs}
    m = meta(ctx, f"{ctx.stack}-gateway-env", "gateway", "gateway")
    if secret_refs:
        m["annotations"] = {
            "addonstack.dev/secret-keys": ", ".join(f"{k}={ref}" for k, ref in sorted(secret_refs.items()))
        }
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": m, "data": data}
