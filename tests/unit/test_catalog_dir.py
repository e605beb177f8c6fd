"""A provider's own catalog (--catalog-dir / ADDONSTACK_CATALOG_DIR): merged, overriding by id, checked by the
same lint, and a bad entry stops the start with the file and the field (never a half-loaded catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from addonstack.api import generate_addon_stack
from addonstack.catalog.loader import CatalogError, default_catalog_dir, load_catalog, use_catalog_dir
from addonstack.cli.main import cli


def _entry(service_id: str) -> dict[str, object]:
    return dict(yaml.safe_load((default_catalog_dir() / "services" / f"{service_id}.yaml").read_text()))


def _write(directory: Path, entry: dict[str, object]) -> Path:
    (directory / "services").mkdir(parents=True, exist_ok=True)
    path = directory / "services" / f"{entry['id']}.yaml"
    path.write_text(yaml.safe_dump(entry), encoding="utf-8")
    return path


@pytest.fixture
def provider(tmp_path: Path) -> Path:
    """An override of uptime-kuma (another image tag) and a new service of the provider's own."""
    bumped = _entry("uptime-kuma") | {"imageTag": "9.9.9"}
    _write(tmp_path, bumped)
    own = _entry("uptime-kuma") | {"id": "acme-status", "name": "ACME status page", "imageTag": "1.0.0"}
    own.pop("postgres", None)
    _write(tmp_path, own)
    return tmp_path


def test_entries_are_added_and_override_ours_by_id(provider: Path) -> None:
    cat = load_catalog(extra_dir=provider)
    assert cat.services["uptime-kuma"].image_tag == "9.9.9"
    assert "acme-status" in cat.services
    assert cat.sources["service:uptime-kuma"].startswith(str(provider))
    assert load_catalog().services["uptime-kuma"].image_tag != "9.9.9", "the built-in catalog is unchanged"
    assert len(cat.services) == len(load_catalog().services) + 1


def test_the_library_takes_the_env_var(provider: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADDONSTACK_CATALOG_DIR", str(provider))
    result = generate_addon_stack({"instanceId": "t1", "services": ["acme-status"]})
    assert "acme-status" in result.compose_override
    assert "9.9.9" not in result.compose_override


def test_a_bad_field_names_the_file_and_field(tmp_path: Path) -> None:
    path = _write(tmp_path, _entry("uptime-kuma") | {"memoryMb": 1})
    with pytest.raises(CatalogError) as info:
        load_catalog(extra_dir=tmp_path)
    assert str(path) in str(info.value) and "memoryMb" in str(info.value)


def test_a_broken_reference_fails_the_same_lint(tmp_path: Path) -> None:
    path = _write(tmp_path, _entry("uptime-kuma") | {"requires": ["no-such-service"]})
    with pytest.raises(CatalogError) as info:
        load_catalog(extra_dir=tmp_path)
    assert f"{path}: requires: unknown service 'no-such-service'" in str(info.value)


def test_an_empty_or_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no catalog entries"):
        load_catalog(extra_dir=tmp_path)
    with pytest.raises(CatalogError, match="not found"):
        load_catalog(extra_dir=tmp_path / "missing")


def test_cli_flag_and_bad_entry_exit_2(provider: Path, tmp_path: Path) -> None:
    try:
        res = CliRunner().invoke(cli, ["--catalog-dir", str(provider), "catalog", "show", "acme-status", "--json"])
        assert res.exit_code == 0, res.output
        assert json.loads(res.output)["id"] == "acme-status"
    finally:
        use_catalog_dir(None)
    bad = tmp_path / "bad"
    _write(bad, _entry("uptime-kuma") | {"imageTag": "latest"})
    env = {k: v for k, v in os.environ.items() if k != "ADDONSTACK_CATALOG_DIR"}
    run = subprocess.run(
        [str(Path(sys.executable).parent / "addonstack"), "--catalog-dir", str(bad), "catalog", "list"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "uptime-kuma.yaml" in run.stderr and "imageTag" in run.stderr and "Traceback" not in run.stderr


def test_operator_refuses_to_start_on_a_bad_catalog(tmp_path: Path) -> None:
    _write(tmp_path, _entry("uptime-kuma") | {"ports": "x"})
    res = CliRunner().invoke(cli, ["operator", "run", "--catalog-dir", str(tmp_path)])
    use_catalog_dir(None)
    assert res.exit_code == 2, res.output
    assert "uptime-kuma.yaml" in res.output and "ports" in res.output


def test_flat_files_as_a_configmap_mounts_them(tmp_path: Path) -> None:
    entry = _entry("uptime-kuma") | {"imageTag": "9.9.8"}
    (tmp_path / "services.uptime-kuma.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    assert load_catalog(extra_dir=tmp_path).services["uptime-kuma"].image_tag == "9.9.8"
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    (misnamed / "services.other.yaml").write_text(yaml.safe_dump(entry), encoding="utf-8")
    with pytest.raises(CatalogError, match=r"services.other.yaml: id: 'uptime-kuma' must match the file name 'other'"):
        load_catalog(extra_dir=misnamed)
