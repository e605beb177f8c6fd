"""JSON Schemas of the catalog files, generated from the pydantic model and committed.

Editors validate catalog YAML with them (``# yaml-language-server: $schema=...``); a test fails when
the committed copies are stale. Regenerate with ``python -m addonstack.catalog.schema``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel

from addonstack.catalog.loader import default_catalog_dir
from addonstack.catalog.model import Category, Service, Skill, SkillPack

SCHEMAS: dict[str, type[BaseModel]] = {
    "service.schema.json": Service,
    "skill.schema.json": Skill,
    "skill-pack.schema.json": SkillPack,
    "category.schema.json": Category,
}


def render_schemas() -> dict[str, str]:
    """File name -> JSON text of every catalog schema."""
    out: dict[str, str] = {}
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema(by_alias=True)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        out[name] = json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def write_schemas(directory: Path | None = None) -> list[Path]:
    target = (directory or default_catalog_dir()) / "schema"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_schemas().items():
        path = target / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_schemas(Path(sys.argv[1]) if len(sys.argv) > 1 else None):
        print(p)
