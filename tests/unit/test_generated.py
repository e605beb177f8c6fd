"""Generated files are committed current: each stale one is named with the command that rewrites it."""

from __future__ import annotations

from addonstack.render.generate import COMMAND, ROOT, artefacts, stale


def test_every_generated_file_is_current() -> None:
    names = [str(p.relative_to(ROOT)) for p in stale()]
    assert not names, f"stale generated files: {', '.join(names)}; run `{COMMAND}` and commit them"


def test_generate_covers_schemas_crd_chart_and_docs() -> None:
    """Guards the list itself: a generator dropped from it would make the test above pass vacuously."""
    names = {str(p.relative_to(ROOT)) for p in artefacts()}
    assert {
        "catalog/schema/service.schema.json",
        "crds/addonstack.dev_addonstacks.yaml",
        "deploy/chart/addonstack-crds/files/addonstack.dev_addonstacks.yaml",
        "docs/catalog.md",
        "docs/api-reference.md",
    } <= names
