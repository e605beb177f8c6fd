"""Reading a stack back for an update: our own files (the ``x-addonstack`` state block) or the TypeScript
package's (no state block), into one :class:`CurrentStack`.

An update must forget nothing: the state block keeps every option the stack was made with, and files
``@better-openclaw/core`` wrote are migrated by rebuilding that state from the Compose and env files, keeping
every value and port, with a warning for each thing inferred. Only text that cannot be read is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from addonstack.catalog.loader import Catalog
from addonstack.constants import INFRASTRUCTURE_IDS, POSTGRES_SETUP_ID
from addonstack.plan.secrets import env_prefix
from addonstack.render import envfile, yamlio
from addonstack.render.compose import MARKER

_FLAT_LINE = re.compile(r"^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_WHOLE_REF = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}$")
_RANDOM_HEX = re.compile(r"^[0-9a-f]{32,}$")
_PLATFORM_PREFIXES = ("REDIS_", "POSTGRES_", "OPENCLAW_")
UNASSIGNED = "unassigned"  # env section for migrated keys no catalog service declares


class StateError(ValueError):
    """The current files cannot be read; the message names the field."""


@dataclass
class CurrentStack:
    """What an update starts from."""

    requested: list[str]
    services: list[str]  # services the state block lists (ours) or the Compose file holds (migrated)
    skill_packs: list[str]
    settings: dict[str, Any]
    compose_services: dict[str, dict[str, Any]]
    volumes: dict[str, Any]
    values: dict[str, dict[str, str]]  # service id -> catalog key -> value
    env_sections: dict[str, dict[str, str]]  # service id -> env-file key -> value, as written
    migrated: bool = False
    warnings: list[str] = field(default_factory=list)

    def image(self, sid: str) -> str | None:
        image = self.compose_services.get(sid, {}).get("image")
        return image if isinstance(image, str) else None

    def ports(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for sid in self.services:
            for spec in self.compose_services.get(sid, {}).get("ports") or []:
                parts = str(spec).split("/", 1)[0].split(":")
                if len(parts) >= 2 and parts[-2].isdigit() and parts[-1].isdigit() and 1 <= int(parts[-2]) <= 65535:
                    out[f"{sid}:{parts[-1]}"] = int(parts[-2])
        return out


def _load_compose(text: str) -> dict[str, Any]:
    try:
        doc = yamlio.load_fresh(text)
    except Exception as exc:  # PyYAML raises several error types; all mean "not YAML"
        raise StateError(f"currentCompose: not valid YAML ({exc.__class__.__name__}); nothing was changed") from None
    if not isinstance(doc, dict):
        raise StateError("currentCompose: expected a Compose file (a mapping with services); nothing was changed")
    services = {} if doc.get("services") is None else doc["services"]
    if not isinstance(services, dict) or not all(isinstance(v, dict) for v in services.values()):
        raise StateError("currentCompose: services must map each service name to its definition")
    for sid, svc in services.items():
        if not isinstance(svc.get("ports", []), list) or not isinstance(svc.get("image", ""), str):
            raise StateError(f"currentCompose: services.{sid}: ports must be a list and image a string")
    doc["services"] = services
    return doc


def _ours(doc: dict[str, Any], env_text: str, instance_id: str) -> CurrentStack:
    marker = doc[MARKER]
    if marker.get("instance") != instance_id:
        raise StateError(f"currentCompose: belongs to instance {marker.get('instance')!r}, not {instance_id!r}")
    for name in ("requested", "services", "skillPacks"):
        value = marker.setdefault(name, []) if name == "skillPacks" else marker.get(name)
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise StateError(f"currentCompose: {MARKER}.{name} must be a list of ids")
    settings = marker.get("settings") or {}
    if not isinstance(settings, dict):
        raise StateError(f"currentCompose: {MARKER}.settings must be a mapping")
    try:
        parsed = envfile.parse(env_text)
    except envfile.EnvFileError as exc:
        raise StateError(str(exc)) from None
    if parsed.instance_id != instance_id:
        raise StateError(f"currentEnv: belongs to instance {parsed.instance_id!r}, not {instance_id!r}")
    values: dict[str, dict[str, str]] = {}
    for sid, lines in parsed.values.items():
        prefix = env_prefix(sid) + "__"
        values[sid] = {k[len(prefix) :]: v for k, v in lines.items() if k.startswith(prefix)}
    return CurrentStack(
        requested=list(marker["requested"]),
        services=list(marker["services"]),
        skill_packs=list(marker["skillPacks"]),
        settings=dict(settings),
        compose_services=doc["services"],
        volumes=doc.get("volumes") or {},
        values=values,
        env_sections=parsed.values,
    )


def _flat_env(text: str) -> dict[str, str]:
    """The TypeScript package's env file: ``KEY=value`` lines, raw values, comments."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = _FLAT_LINE.match(stripped)
        if m is None:
            raise StateError(f"currentEnv line {lineno}: expected KEY=value (a comment starts with #)")
        out[m.group(1)] = m.group(2).strip()
    return out


def _environment(entry: dict[str, Any]) -> dict[str, str]:
    env = entry.get("environment") or {}
    if isinstance(env, list):
        return dict(str(item).split("=", 1) for item in env if "=" in str(item))
    return {str(k): "" if v is None else str(v) for k, v in env.items()} if isinstance(env, dict) else {}


def _migrate(doc: dict[str, Any], env_text: str, cat: Catalog) -> CurrentStack:
    """Rebuild the state of files the TypeScript package wrote (see docs/library.md, migration)."""
    flat = _flat_env(env_text)
    warnings = ["Migrated files without an AddonStack state block (written by @better-openclaw/core):"]
    compose = doc["services"]
    ids = [sid for sid in compose if sid != POSTGRES_SETUP_ID and sid not in INFRASTRUCTURE_IDS]
    known = [sid for sid in ids if sid in cat.services and not cat.services[sid].platform_provided]
    warnings.append(f"inferred services from the Compose file: {', '.join(ids) or 'none'}")
    used: dict[str, list[str]] = {}
    values: dict[str, dict[str, str]] = {}
    for sid in known:
        svc = cat.services[sid]
        env = _environment(compose[sid])
        mine: dict[str, str] = {}
        for var in svc.env:
            raw = env.get(var.key)
            source = var.key
            if raw is not None and (m := _WHOLE_REF.match(raw)):
                source = m.group(1)
                raw = flat.get(source)
            elif raw is None or "${" in raw:
                raw = flat.get(var.key)
            if raw is None:
                continue
            if var.default and "${" in var.default and _RANDOM_HEX.match(raw):
                warnings.append(
                    f"{sid}.{var.key}: random text replaced a value built from {var.default}; derived again"
                )
                continue
            mine[var.key] = raw
            used.setdefault(source, []).append(sid)
        values[sid] = mine
    for key, users in used.items():
        if len(set(users)) > 1:
            warnings.append(f"{key} was one value shared by {', '.join(sorted(set(users)))}; each keeps a copy")
    leftovers = {k: v for k, v in flat.items() if k not in used and not k.startswith(_PLATFORM_PREFIXES)}
    sections: dict[str, dict[str, str]] = {}
    if leftovers:
        sections[UNASSIGNED] = leftovers
        warnings.append(f"kept env keys no catalog service declares in section {UNASSIGNED!r}: {', '.join(leftovers)}")
    settings: dict[str, Any] = {}
    gpu = [s for s in known if cat.services[s].gpu != "none"]
    if gpu:
        settings["gpu"] = True
        warnings.append(f"inferred gpu: true from {', '.join(gpu)}")
    prebuilt = {s: compose[s]["image"] for s in known if cat.services[s].needs_build and compose[s].get("image")}
    if prebuilt:
        settings["prebuiltImages"] = prebuilt
        warnings.append(f"inferred prebuiltImages for {', '.join(prebuilt)} from their Compose images")
    if "tailscale" in known:
        warnings.append("tailscale was added to every stack by @better-openclaw/core; kept (removeServices drops it)")
    return CurrentStack(
        requested=known,
        services=ids,
        skill_packs=[],
        settings=settings,
        compose_services=compose,
        volumes=doc.get("volumes") or {},
        values=values,
        env_sections=sections,
        migrated=True,
        warnings=warnings,
    )


def read_current(compose_text: str, env_text: str, instance_id: str, cat: Catalog) -> CurrentStack:
    """The stack an update starts from; raises :class:`StateError` naming the field it cannot read."""
    doc = _load_compose(compose_text)
    if isinstance(doc.get(MARKER), dict):
        return _ours(doc, env_text, instance_id)
    if MARKER in doc:
        raise StateError(f"currentCompose: {MARKER} must be a mapping")
    if env_text.lstrip().startswith(envfile.HEADER) or envfile.HEADER in env_text:
        raise StateError(
            f"currentCompose: was not produced by AddonStack (no {MARKER} block) but currentEnv was; pass the "
            "Compose file written with it; nothing was changed"
        )
    if not doc["services"]:
        raise StateError("currentCompose: has no services and no state block; nothing to update")
    return _migrate(doc, env_text, cat)
