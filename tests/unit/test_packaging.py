"""Packaging (issue 15, point 9): ``python -m build`` makes a wheel and an sdist that install into a clean
virtualenv, where the library generates a stack from the packaged catalog and mypy sees the types."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import addonstack
from addonstack import AddonStackError, AddonStackInput, StreamRoute, generate_addon_stack
r = generate_addon_stack(AddonStackInput(instance_id="pkg", services=["qdrant"]), seed=1)
assert r.metadata.resolved_services == ["qdrant"], r.metadata
print("ok", addonstack.__version__, addonstack.__file__)
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src") / "addonstack"
    # Build from a copy of the tracked files, as a checkout would be (no .venv, caches or results).
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (ROOT / rel).is_file():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel)
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return out


def test_wheel_and_sdist_carry_the_typed_package_and_the_catalog(dist: Path) -> None:
    wheel = next(dist.glob("addonstack-*.whl"))
    sdist = next(dist.glob("addonstack-*.tar.gz"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "addonstack/py.typed" in names
    assert "addonstack/_catalog/services/n8n.yaml" in names
    assert any(n.endswith("templates/SKILL.md.j2") for n in names)
    with tarfile.open(sdist) as tf:
        members = tf.getnames()
    assert any(m.endswith("operator/addonstack/py.typed") for m in members)
    assert any(m.endswith("catalog/services/n8n.yaml") for m in members)


@pytest.mark.parametrize("kind", ["whl", "tar.gz"])
def test_each_artifact_installs_into_a_clean_venv(dist: Path, tmp_path: Path, kind: str) -> None:
    artifact = next(dist.glob(f"addonstack-*.{kind}"))
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env)
    python = env / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(artifact)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    proc = subprocess.run([str(python), "-c", SCRIPT], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ok ") and str(env) in proc.stdout  # the installed copy, not the checkout
    cli = subprocess.run([str(env / "bin" / "addonstack"), "catalog", "show", "qdrant", "--json"], capture_output=True)
    assert cli.returncode == 0 and b'"id": "qdrant"' in cli.stdout
