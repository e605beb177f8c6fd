"""Validators for rendered output: the Compose specification schema and the Kubernetes schemas."""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from typing import Any

import jsonschema

REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-[^}]*)?\}")


@functools.cache
def _compose_validator() -> Any:
    path = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.validators.validator_for(schema)(schema)


def compose_errors(doc: Any) -> list[str]:
    """Schema violations of a Compose document (empty when valid)."""
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _compose_validator().iter_errors(doc)]


def compose_refs(text: str) -> set[str]:
    """Variables a Compose file interpolates (``$$`` escapes excluded)."""
    return set(REF.findall(text.replace("$$", "")))
