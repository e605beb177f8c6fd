"""Load the catalog once, from the wheel or the source tree, and fail with the file and field path.

Parsing uses PyYAML's C loader when present; the result is cached per directory because platforms
call the library in request paths.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from addonstack.catalog.model import Category, Service, Skill, SkillPack

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when available

M = TypeVar("M", bound=BaseModel)


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file, the field path and the problem."""


@functools.cache
def default_catalog_dir() -> Path:
    """The catalog shipped in the wheel, or ``catalog/`` of a source checkout."""
    shipped = resources.files("addonstack") / "_catalog"
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parents[3] / "catalog"


def format_validation_error(source: str, err: ValidationError) -> str:
    lines = [f"{source}: {err.error_count()} problem(s)"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        lines.append(f"  {loc}: {e['msg']}")
    return "\n".join(lines)


def _read_yaml(path: Path) -> Any:
    try:
        with path.open("rb") as fh:
            return yaml.load(fh, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None


def _parse(model: type[M], data: Any, source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise CatalogError(format_validation_error(source, exc)) from None


@dataclass(frozen=True)
class Catalog:
    """All catalog data, indexed by id."""

    services: dict[str, Service]
    categories: dict[str, Category]
    skills: dict[str, Skill]
    packs: dict[str, SkillPack]
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def addons(self) -> list[Service]:
        """Services a tenant can deploy (not the platform's own infrastructure)."""
        return [s for s in self.services.values() if not s.platform_provided]


def _load_dir(directory: Path, model: type[M], sources: dict[str, str], kind: str) -> dict[str, M]:
    items: dict[str, M] = {}
    for path in sorted(directory.glob("*.yaml")):
        item = _parse(model, _read_yaml(path), str(path))
        item_id: str = getattr(item, "id")  # noqa: B009 - every catalog model has an id
        if path.stem != item_id:
            raise CatalogError(f"{path}: id: {item_id!r} must match the file name {path.stem!r}")
        if item_id in items:
            raise CatalogError(f"{path}: id: duplicate {kind} id {item_id!r}")
        items[item_id] = item
        sources[f"{kind}:{item_id}"] = str(path)
    return items


def _load_list(path: Path, model: type[M], sources: dict[str, str], kind: str) -> dict[str, M]:
    raw = _read_yaml(path)
    if not isinstance(raw, list):
        raise CatalogError(f"{path}: (top level): expected a list of {kind} entries")
    items: dict[str, M] = {}
    for i, entry in enumerate(raw):
        item = _parse(model, entry, f"{path}[{i}]")
        item_id: str = getattr(item, "id")  # noqa: B009
        if item_id in items:
            raise CatalogError(f"{path}[{i}]: id: duplicate {kind} id {item_id!r}")
        items[item_id] = item
        sources[f"{kind}:{item_id}"] = f"{path}[{i}]"
    return items


def load_catalog_from(directory: Path) -> Catalog:
    """Parse every file below ``directory``; raise :class:`CatalogError` on the first bad one."""
    sources: dict[str, str] = {}
    return Catalog(
        services=_load_dir(directory / "services", Service, sources, "service"),
        categories=_load_list(directory / "categories.yaml", Category, sources, "category"),
        skills=_load_dir(directory / "skills", Skill, sources, "skill"),
        packs=_load_dir(directory / "packs", SkillPack, sources, "pack"),
        sources=sources,
    )


@functools.cache
def _cached(directory: str) -> Catalog:
    return load_catalog_from(Path(directory))


def load_catalog(directory: Path | str | None = None) -> Catalog:
    """The catalog, loaded once per directory and cached."""
    return _cached(str(Path(directory) if directory is not None else default_catalog_dir()))


def ids(items: Iterable[Service]) -> list[str]:
    return [s.id for s in items]
