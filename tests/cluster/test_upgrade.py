"""Upgrade policy on the real control plane: a catalog bump (--catalog-dir with a changed image tag) changes
no Manual stack's Deployment; approving the available revision rolls it to the new image; a stack with
spec.backup first gets its pre-upgrade AddonStackBackup and moves only once that backup has completed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.types import PatchType

from addonstack.catalog.loader import default_catalog_dir, use_catalog_dir
from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.settings import OperatorSettings
from addonstack.render.crd import render_data_crds
from tests.cluster.operator_harness import TEST_DEFAULTS, get_stack, operator_thread, stack, wait_for, wait_ready

pytestmark = pytest.mark.cluster
Backup = create_namespaced_resource("addonstack.dev", "v1alpha1", "AddonStackBackup", "addonstackbackups")


def _settings(kubeconfig: Path, catalog_dir: Path | None) -> OperatorSettings:
    return OperatorSettings(
        defaults=TEST_DEFAULTS, drift_interval=4.0, health_port=None, kubeconfig=str(kubeconfig),
        catalog_dir=str(catalog_dir) if catalog_dir else None,
    )  # fmt: skip


def _image(dep: Any) -> str:
    return str(dep.spec.template.spec.containers[0].image)


def _bumped_catalog(tmp_path: Path) -> Path:
    entry = yaml.safe_load((default_catalog_dir() / "services" / "uptime-kuma.yaml").read_text())
    (tmp_path / "services.uptime-kuma.yaml").write_text(yaml.safe_dump(entry | {"imageTag": "9.9.9"}))
    return tmp_path


def test_catalog_bump_waits_for_approval(kubeconfig: Path, client: Client, namespace: str, tmp_path: Path) -> None:
    _bumped_catalog(tmp_path)
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
            done = _ready_at(client, "up", namespace, st["availableRevision"])
            assert done["status"]["catalogRevision"] == st["availableRevision"]
            assert not done["status"].get("availableUpgrades")
    finally:
        use_catalog_dir(None)


def _ready_at(client: Client, name: str, namespace: str, revision: str) -> dict[str, Any]:
    """The stack Ready with ``revision`` in its status. The new image is applied before the pass writes the status
    that names the revision, so a stack seen Ready right after the rollout may still show the last pass's."""

    def probe() -> dict[str, Any] | str:
        obj = wait_ready(client, name, namespace)
        got = obj["status"].get("catalogRevision")
        return obj if got == revision else f"Ready at revision {got}"

    result: dict[str, Any] = wait_for(f"stack {namespace}/{name} Ready at revision {revision}", probe, timeout=60)
    return result


def _upgrade_condition(client: Client, name: str, namespace: str) -> dict[str, Any]:
    conditions = (get_stack(client, name, namespace).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "UpgradeAvailable"), {})


def test_approved_upgrade_waits_for_the_pre_upgrade_backup(
    kubeconfig: Path, client: Client, namespace: str, tmp_path: Path
) -> None:
    """The backup itself (Job, agent, S3) is tests/cluster/test_backup.py's; here its target Secret is missing,
    so the real backup handler fails it, and the test then marks it Completed in place of a good backup."""
    for crd in render_data_crds().values():
        client.apply(codecs.from_dict(crd), field_manager="addonstack-tests", force=True)
    target = {"s3": {"endpoint": "http://s3.invalid:9000", "bucket": "backups", "secretRef": {"name": "no-such"}}}
    catalog = _bumped_catalog(tmp_path)
    try:
        with operator_thread(_settings(kubeconfig, None)):
            client.create(
                codecs.from_dict(stack("gated", namespace, {"services": ["uptime-kuma"], "backup": {"target": target}}))
            )
            wait_ready(client, "gated", namespace)
        before = _image(client.get(Deployment, "uptime-kuma", namespace=namespace))
        with operator_thread(_settings(kubeconfig, catalog)):
            offered = wait_for(
                "the upgrade to be offered",
                lambda: (get_stack(client, "gated", namespace).get("status") or {}).get("availableUpgrades"),
            )
            assert offered[0]["to"].endswith(":9.9.9")
            st = get_stack(client, "gated", namespace)["status"]["availableRevision"]
            assert not list(client.list(Backup, namespace=namespace)), "no backup before the move is approved"
            client.patch(
                AddonStackResource, "gated", {"spec": {"approvedRevision": st}},
                namespace=namespace, patch_type=PatchType.MERGE,
            )  # fmt: skip
            name = f"gated-pre-{st.rsplit('-', 1)[1]}"
            backup = wait_for(
                f"AddonStackBackup {name}", lambda: client.get(Backup, name, namespace=namespace)
            ).to_dict()
            labels = {"addonstack.dev/stack": "gated", "addonstack.dev/purpose": "pre-upgrade"}
            assert backup["metadata"]["labels"] == labels and backup["spec"] == {"stackName": "gated"}
            cond = wait_for(
                "the failed backup to hold the upgrade",
                lambda: (
                    (c := _upgrade_condition(client, "gated", namespace)).get("reason") == "UpgradeBackupFailed" and c
                ),
            )
            assert name in cond["message"]
            assert client.get(Backup, name, namespace=namespace).to_dict()["status"]["phase"] == "Failed"
            assert _image(client.get(Deployment, "uptime-kuma", namespace=namespace)) == before
            client.patch(
                Backup.Status, name, {"status": {"phase": "Completed"}},
                namespace=namespace, patch_type=PatchType.MERGE,
            )  # fmt: skip
            wait_for(
                "the upgrade after the completed backup",
                lambda: _image(client.get(Deployment, "uptime-kuma", namespace=namespace)).endswith(":9.9.9") or None,
            )
            done = _ready_at(client, "gated", namespace, st)
            assert done["status"]["catalogRevision"] == st
    finally:
        use_catalog_dir(None)
