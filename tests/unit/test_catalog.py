"""The catalog loads, lints clean, and its committed JSON Schemas are current."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from addonstack import (
    SERVICE_CATEGORIES,
    get_all_services,
    get_all_skill_packs,
    get_compatible_skill_packs,
    get_service_by_id,
    get_services_by_category,
)
from addonstack.catalog.lint import lint
from addonstack.catalog.loader import CatalogError, default_catalog_dir, load_catalog, load_catalog_from
from addonstack.catalog.schema import render_schemas

CATALOG = default_catalog_dir()


def test_lint_is_clean() -> None:
    assert lint(load_catalog()) == []


def test_catalog_size() -> None:
    cat = load_catalog()
    assert len(get_all_services()) >= 189
    assert len({s.category for s in get_all_services()}) >= 30
    assert len(get_all_skill_packs()) >= 40
    assert all(p.skills and p.required_services for p in cat.packs.values())


def test_no_floating_tags_or_bitnami() -> None:
    for svc in get_all_services():
        if svc.image:
            assert svc.image_tag not in ("latest", "main", "nightly"), svc.id
            assert "bitnami" not in svc.image, svc.id


def test_queries() -> None:
    n8n = get_service_by_id("n8n")
    assert n8n is not None and n8n.postgres is not None
    assert get_service_by_id("does-not-exist") is None
    automation = get_services_by_category("automation")
    assert "n8n" in [s.id for s in automation]
    assert all(s.category == "automation" for s in automation)
    assert any(c.id == "automation" for c in SERVICE_CATEGORIES)
    assert load_catalog() is load_catalog()  # loaded once, cached


def test_compatible_packs_need_all_required_services() -> None:
    packs = get_compatible_skill_packs(["n8n", "ntfy"])
    assert packs, "automation-hub needs only n8n"
    assert all(set(p.required_services) <= {"n8n", "ntfy"} for p in packs)
    assert get_compatible_skill_packs([]) == []


def _copy_catalog(tmp_path: Path) -> Path:
    import shutil

    dst = tmp_path / "catalog"
    shutil.copytree(CATALOG, dst)
    return dst


def test_bad_field_names_file_and_path(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "n8n.yaml"
    path.write_text(path.read_text().replace("memoryMb: 512", "memoryMB: 512"))
    with pytest.raises(CatalogError) as err:
        load_catalog_from(cat)
    msg = str(err.value)
    assert "n8n.yaml" in msg and "memoryMB" in msg and "Extra inputs are not permitted" in msg


def test_wrong_type_names_field(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "qdrant.yaml"
    path.write_text(path.read_text().replace("- container: 6333", "- container: sixty"))
    with pytest.raises(CatalogError) as err:
        load_catalog_from(cat)
    assert "qdrant.yaml" in str(err.value) and "ports.0.container" in str(err.value)


def test_latest_tag_is_rejected(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "qdrant.yaml"
    path.write_text(path.read_text().replace("imageTag: v1.12.1-unprivileged", "imageTag: latest"))
    with pytest.raises(CatalogError, match="not pinned"):
        load_catalog_from(cat)


def test_dangling_reference_is_reported(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "n8n.yaml"
    path.write_text(path.read_text().replace("requires: [postgresql]", "requires: [postgresql, no-such-svc]"))
    problems = lint(load_catalog_from(cat))
    assert any("n8n.yaml" in p and "requires" in p and "no-such-svc" in p for p in problems)


def test_undefined_template_variable_is_reported(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "n8n.yaml"
    path.write_text(path.read_text().replace("${N8N_DB_PASSWORD}", "${N8N_DB_PASSWROD}"))
    problems = lint(load_catalog_from(cat))
    assert any("N8N_DB_PASSWROD" in p for p in problems)


def test_cycle_is_reported(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "qdrant.yaml"
    path.write_text(path.read_text().replace("workload: StatefulSet", "workload: StatefulSet\nrequires: [n8n]"))
    n8n = cat / "services" / "n8n.yaml"
    n8n.write_text(n8n.read_text().replace("requires: [postgresql]", "requires: [postgresql, qdrant]"))
    problems = lint(load_catalog_from(cat))
    assert any("cycle" in p for p in problems)


def test_schema_files_are_json() -> None:
    for name in render_schemas():
        json.loads((CATALOG / "schema" / name).read_text(encoding="utf-8"))


def test_two_entries_claiming_one_database_role_is_reported(tmp_path: Path) -> None:
    cat = _copy_catalog(tmp_path)
    path = cat / "services" / "gitea.yaml"
    text = path.read_text()
    role = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("  role:"))
    path.write_text(text.replace(f"  role: {role}", "  role: n8n"))
    problems = lint(load_catalog_from(cat))
    assert any("postgres.role" in p and "'n8n'" in p and "gitea" in p for p in problems), problems
