"""What a stack reconcile keeps of the backup machinery: the services a backup or restore Job has stopped
(annotations on the stack), what a backup manifest records of the stack, and the ``status.backup`` and
``BackupFailed`` condition the backup handlers own (a reconcile carries them over instead of dropping them).
Pure functions over the stack's body, so ``decide`` stays about the stack's own objects.
"""

from __future__ import annotations

from typing import Any

from addonstack.backup.jobs import backup_cron_job
from addonstack.constants import (
    ANNOTATION_QUIESCED_BY,
    ANNOTATION_QUIESCED_SERVICES,
    API_GROUP,
    API_VERSION,
    BACKUP_KIND,
    KIND,
    LABEL_PURPOSE,
    LABEL_STACK,
    PURPOSE_PRE_UPGRADE,
)
from addonstack.plan.build import StackPlan
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import K8sContext

BACKUP_CONDITION = "BackupFailed"  # on the stack: True when its newest backup failed


def quiesced_services(body: dict[str, Any]) -> set[str]:
    """Services a backup or restore Job has stopped (annotations it set on the stack; see addonstack.backup.jobs)."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if not annotations.get(ANNOTATION_QUIESCED_BY):
        return set()
    return {s for s in (annotations.get(ANNOTATION_QUIESCED_SERVICES) or "").split(",") if s}


def backup_record(body: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """What a backup manifest records of the stack: the catalog revision it runs, and its spec."""
    revision = (body.get("status") or {}).get("catalogRevision")
    return (revision if isinstance(revision, str) else None), dict(body.get("spec") or {})


def backup_cron_jobs(
    plan: StackPlan, ctx: K8sContext, spec: AddonStackSpec, image: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    """The stack's backup CronJob when ``spec.backup`` is set (none without a schedule)."""
    if spec.backup is None:
        return []
    cron = backup_cron_job(plan, ctx, spec.backup, image, *backup_record(body))
    return [cron] if cron else []


def carry_backup_status(prev: dict[str, Any] | None, status: dict[str, Any]) -> dict[str, Any]:
    """The backup handlers own ``status.backup`` and the ``BackupFailed`` condition; a reconcile keeps them."""
    if not prev:
        return status
    if "backup" in prev:
        status["backup"] = prev["backup"]
    kept = [c for c in prev.get("conditions") or [] if c.get("type") == BACKUP_CONDITION]
    if kept:
        status["conditions"] = [c for c in status.get("conditions", []) if c.get("type") != BACKUP_CONDITION] + kept
    return status


def pre_upgrade_backup(name: str, stack: dict[str, Any]) -> dict[str, Any]:
    """The AddonStackBackup an upgrade waits for (``upgrade.BackupGate``): target and key come from the stack's
    ``spec.backup``; owned by the stack (not as its controller), so it goes when the stack goes."""
    meta = stack["metadata"]
    owner = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND, "name": meta["name"], "uid": meta["uid"]}
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": BACKUP_KIND,
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": {LABEL_STACK: meta["name"], LABEL_PURPOSE: PURPOSE_PRE_UPGRADE},
            "ownerReferences": [owner],
        },
        "spec": {"stackName": meta["name"]},
    }
