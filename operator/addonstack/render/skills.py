"""Skill files for the OpenClaw gateway and the ``openclaw.json`` patch that enables them.

SKILL.md is a text artefact, so it is rendered with a Jinja2 template; the patch is plain data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import jinja2

from addonstack.catalog.model import Skill

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("addonstack.render", "templates"),
    autoescape=False,
    keep_trailing_newline=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
)
_ENV.filters["tojson_compact"] = lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)


def skill_files(skills: Iterable[Skill]) -> dict[str, str]:
    """``{"<skillId>/SKILL.md": contents}`` for each skill, in id order."""
    template = _ENV.get_template("SKILL.md.j2")
    return {f"{s.id}/SKILL.md": template.render(skill=s) for s in sorted(skills, key=lambda s: s.id)}


def openclaw_config_patch(skills: Iterable[Skill]) -> dict[str, object]:
    return {"skills": {"entries": {s.id: {"enabled": True} for s in sorted(skills, key=lambda s: s.id)}}}
