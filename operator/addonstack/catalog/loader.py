"""Load the catalog once, from the wheel or the source tree, and fail with the file and field path.

A provider can add entries of its own, or replace ours by id, from a directory of the same layout
(``--catalog-dir`` / ``ADDONSTACK_CATALOG_DIR``, or ``load_catalog(extra_dir=...)``): the merged catalog
goes through the same lint as ours, and any problem is one :class:`CatalogError` naming the file and the
field, so a process never runs on a half-loaded catalog. Parsing uses PyYAML's C loader when present; the
result is cached per directory pair because platforms call the library in request paths.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from addonstack.catalog.lint import lint
from addonstack.catalog.model import Catalog as Catalog
from addonstack.catalog.model import Category, Service, Skill, SkillPack

CATALOG_DIR_ENV = "ADDONSTACK_CATALOG_DIR"
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


def _load_dir(directory: Path, model: type[M], sources: dict[str, str], kind: str, flat: bool = False) -> dict[str, M]:
    """``<directory>/*.yaml``; with ``flat``, also ``<directory>.<id>.yaml`` beside it (ConfigMap keys have no /)."""
    paths = sorted(directory.glob("*.yaml"))
    if flat:
        paths += sorted(directory.parent.glob(f"{directory.name}.*.yaml"))
    items: dict[str, M] = {}
    for path in paths:
        item = _parse(model, _read_yaml(path), str(path))
        item_id: str = getattr(item, "id")  # noqa: B009 - every catalog model has an id
        stem = path.stem.removeprefix(f"{directory.name}.") if path.parent != directory else path.stem
        if stem != item_id:
            raise CatalogError(f"{path}: id: {item_id!r} must match the file name {stem!r}")
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


def load_provider_entries(directory: Path) -> Catalog:
    """A provider's directory: ``services/``, ``skills/``, ``packs/`` and ``categories.yaml``, each optional.

    Files may also sit flat, named ``services.<id>.yaml`` (``skills.``, ``packs.``), so a ConfigMap's keys
    mounted as a volume form a valid directory.
    """
    if not directory.is_dir():
        raise CatalogError(f"{directory}: catalog directory not found (--catalog-dir / {CATALOG_DIR_ENV})")
    sources: dict[str, str] = {}
    categories = directory / "categories.yaml"
    found = Catalog(
        services=_load_dir(directory / "services", Service, sources, "service", flat=True),
        categories=_load_list(categories, Category, sources, "category") if categories.is_file() else {},
        skills=_load_dir(directory / "skills", Skill, sources, "skill", flat=True),
        packs=_load_dir(directory / "packs", SkillPack, sources, "pack", flat=True),
        sources=sources,
    )
    if not (found.services or found.categories or found.skills or found.packs):
        raise CatalogError(
            f"{directory}: no catalog entries (expected services/<id>.yaml, skills/<id>.yaml, packs/<id>.yaml, "
            "categories.yaml, or flat services.<id>.yaml files as a ConfigMap gives them)"
        )
    return found


def merge(base: Catalog, extra: Catalog) -> Catalog:
    """``base`` with ``extra``'s entries added, and replacing base entries of the same id."""
    return Catalog(
        services={**base.services, **extra.services},
        categories={**base.categories, **extra.categories},
        skills={**base.skills, **extra.skills},
        packs={**base.packs, **extra.packs},
        sources={**base.sources, **extra.sources},
    )


def merged_catalog(base: Catalog, extra_dir: Path) -> Catalog:
    """The built-in catalog with a provider's entries, checked by the catalog lint as a whole."""
    cat = merge(base, load_provider_entries(extra_dir))
    if problems := lint(cat):
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise CatalogError(f"{extra_dir}: the merged catalog has {len(problems)} problem(s):\n  {shown}{more}")
    return cat


@functools.cache
def _cached(directory: str, extra_dir: str | None) -> Catalog:
    if extra_dir:
        return merged_catalog(_cached(directory, None), Path(extra_dir))
    return load_catalog_from(Path(directory))


_configured_extra: str | None = None


def use_catalog_dir(extra_dir: Path | str | None) -> None:
    """Set the provider directory for every later :func:`load_catalog` call of this process (CLI, operator)."""
    global _configured_extra
    _configured_extra = str(extra_dir) if extra_dir else None


def provider_dir() -> str | None:
    """The provider directory in effect: :func:`use_catalog_dir`, else ``ADDONSTACK_CATALOG_DIR``."""
    return _configured_extra or os.environ.get(CATALOG_DIR_ENV) or None


def load_catalog(directory: Path | str | None = None, extra_dir: Path | str | None = None) -> Catalog:
    """The catalog, loaded once per directory and cached.

    ``extra_dir`` (default: :func:`provider_dir` when ``directory`` is not given) holds a provider's entries,
    merged over the built-in ones. Raises :class:`CatalogError` naming the file and field of a bad entry.
    """
    extra = str(extra_dir) if extra_dir else (provider_dir() if directory is None else None)
    return _cached(str(Path(directory) if directory is not None else default_catalog_dir()), extra)


def ids(items: Iterable[Service]) -> list[str]:
    return [s.id for s in items]
