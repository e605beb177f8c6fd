"""Skill files for the OpenClaw gateway and the ``openclaw.json`` patch that enables them.

SKILL.md is a text artefact, so it is rendered with a Jinja2 template; the patch is plain data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

import jinja2

from addonstack.catalog.model import VAR_REF, Service, Skill

# Where the OpenClaw gateway reads skills, relative to its data directory (the TypeScript package's keys).
SKILL_ROOT = "openclaw/workspace/skills/"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("addonstack.render", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["tojson_compact"] = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)


# Skills are frozen catalog objects loaded once, so each is rendered once: keyed by identity, holding the
# skill itself so the id cannot be reused by another object while the entry lives.
_RENDERED: dict[int, tuple[Skill, str]] = {}


def _render(skill: Skill) -> str:
    hit = _RENDERED.get(id(skill))
    if hit is not None and hit[0] is skill:
        return hit[1]
    text = _ENV.get_template("SKILL.md.j2").render(skill=skill)
    if len(_RENDERED) >= 1024:
        _RENDERED.clear()
    _RENDERED[id(skill)] = (skill, text)
    return text


def skill_files(skills: Iterable[Skill]) -> dict[str, str]:
    """``{"<skillId>/SKILL.md": contents}`` for each skill, in id order."""
    return {f"{s.id}/SKILL.md": _render(s) for s in sorted(skills, key=lambda s: s.id)}


def openclaw_config_patch(skills: Iterable[Skill]) -> dict[str, object]:
    return {"skills": {"entries": {s.id: {"enabled": True} for s in sorted(skills, key=lambda s: s.id)}}}


def workspace_skill_files(skills: Iterable[Skill]) -> dict[str, str]:
    """``{"openclaw/workspace/skills/<skillId>/SKILL.md": contents}``: the library's keys."""
    return {SKILL_ROOT + rel: text for rel, text in skill_files(skills).items()}


def gateway_env(
    services: Iterable[Service], lookup: Callable[[str, str], str | None] = lambda sid, key: None
) -> dict[str, str]:
    """What the gateway needs so its skills reach the services (``N8N_HOST=n8n``), in service order.

    Values are the Compose service names and container ports, or ``${KEY}`` of the service's own variable
    (an access token the skill sends), filled in by ``lookup(service_id, key)``. A key two services both
    declare keeps the first one's value.
    """
    out: dict[str, str] = {}
    for svc in services:

        def fill(m: re.Match[str], sid: str = svc.id) -> str:
            return lookup(m.group(1) or sid, m.group(2)) or ""

        for item in svc.gateway_env:
            if item.key not in out:
                out[item.key] = VAR_REF.sub(fill, item.value)
    return out
