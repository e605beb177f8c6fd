"""Upgrade policy on the real control plane: a catalog bump (--catalog-dir with a changed image tag) changes
no Manual stack's Deployment; approving the available revision rolls it to the new image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType

from addonstack.catalog.loader import default_catalog_dir, use_catalog_dir
from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.settings import OperatorSettings
from tests.cluster.operator_harness import TEST_DEFAULTS, get_stack, operator_thread, stack, wait_for, wait_ready

pytestmark = pytest.mark.cluster


def _settings(kubeconfig: Path, catalog_dir: Path | None) -> OperatorSettings:
    return OperatorSettings(
        defaults=TEST_DEFAULTS, drift_interval=4.0, health_port=None, kubeconfig=str(kubeconfig),
        catalog_dir=str(catalog_dir) if catalog_dir else None,
    )  # fmt: skip


def _image(dep: Any) -> str:
    return str(dep.spec.template.spec.containers[0].image)


def test_catalog_bump_waits_for_approval(kubeconfig: Path, client: Client, namespace: str, tmp_path: Path) -> None:
    entry = yaml.safe_load((default_catalog_dir() / "services" / "uptime-kuma.yaml").read_text())
    (tmp_path / "services.uptime-kuma.yaml").write_text(yaml.safe_dump(entry | {"imageTag": "9.9.9"}))
    try:
        with operator_thread(_settings(kubeconfig, None)):
            client.create(codecs.from_dict(stack("up", namespace, {"services": ["uptime-kuma"]})))
            wait_ready(client, "up", namespace)
        before = client.get(Deployment, "uptime-kuma", namespace=namespace)
        with operator_thread(_settings(kubeconfig, tmp_path)):

            def offered() -> dict[str, Any] | None:
                st = get_stack(client, "up", namespace).get("status") or {}
                return st if st.get("availableUpgrades") else None

            st = wait_for("the upgrade to be offered", offered)
            assert st["availableUpgrades"][0]["to"].endswith(":9.9.9")
            held = client.get(Deployment, "uptime-kuma", namespace=namespace)
            assert _image(held) == _image(before)
            assert held.metadata.generation == before.metadata.generation, "a Manual stack's Deployment is unchanged"
            client.patch(
                AddonStackResource, "up", {"spec": {"approvedRevision": st["availableRevision"]}},
                namespace=namespace, patch_type=PatchType.MERGE,
            )  # fmt: skip
            wait_for(
                "the approved image to roll out",
                lambda: _image(client.get(Deployment, "uptime-kuma", namespace=namespace)).endswith(":9.9.9") or None,
            )
            done = wait_ready(client, "up", namespace)
            assert done["status"]["catalogRevision"] == st["availableRevision"]
            assert not done["status"].get("availableUpgrades")
    finally:
        use_catalog_dir(None)
