"""Every generated file of the repository from one place: ``make generate`` writes them, a unit test
(tests/unit/test_generated.py) fails naming each stale file and this command.

Covered: the catalog's JSON Schemas, the CRD and the CRD chart's copies of crds/, and the generated docs
(catalog, API reference, public URLs). The plain manifests under deploy/manifests/ are ``helm template``
of the charts, so ``make generate`` runs tools/gen-manifests.sh after this module (tests/unit/test_deploy.py
compares them, as it needs helm).
"""

from __future__ import annotations

from pathlib import Path

from addonstack.catalog.schema import render_schemas
from addonstack.render.crd import chart_copies, crd_path, crd_yaml, data_crd_files
from addonstack.render.docs import render_all

ROOT = Path(__file__).resolve().parents[3]
COMMAND = "make generate"


def artefacts(root: Path = ROOT) -> dict[Path, str]:
    """Path -> the text it should hold, for every generated file."""
    out = {root / "catalog" / "schema" / name: text for name, text in render_schemas().items()}
    crd = crd_yaml()
    out[crd_path(root)] = crd
    data_crds = data_crd_files(root)
    out.update(data_crds)
    for src, dst in chart_copies(root):
        out[dst] = crd if src == crd_path(root) else data_crds.get(src) or src.read_text(encoding="utf-8")
    for src, text in data_crds.items():  # new files are not in crds/ yet on the first run
        out[src.parent.parent / "deploy" / "chart" / "addonstack-crds" / "files" / src.name] = text
    out.update({root / "docs" / name: text for name, text in render_all().items()})
    return out


def stale(root: Path = ROOT) -> list[Path]:
    """Generated files whose committed text differs from what the code generates now (or that are missing)."""
    return [p for p, text in artefacts(root).items() if not p.is_file() or p.read_text(encoding="utf-8") != text]


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite the stale files; returns them."""
    changed = stale(root)
    wanted = artefacts(root)
    for path in changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path], encoding="utf-8")
    return changed


if __name__ == "__main__":
    for p in write():
        print(f"regenerated {p.relative_to(ROOT)}")
