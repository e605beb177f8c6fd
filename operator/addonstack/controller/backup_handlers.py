"""kopf handlers of backups and restores: timers on AddonStackBackup and AddonStackRestore objects and on the
Jobs they and the stacks' CronJobs create. Each is a few lines around ``backup_flow`` and ``restore_flow``,
which read every state from the cluster (so an operator restart resumes in flight work).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from addonstack.constants import API_GROUP, BACKUP_PLURAL, LABEL_DATA_JOB, LABEL_STACK, RESTORE_PLURAL
from addonstack.controller import backup_flow, restore_flow
from addonstack.controller.backup_flow import INTERVAL, Lock, Publish
from addonstack.controller.cluster import Cluster
from addonstack.controller.settings import OperatorSettings
from addonstack.controller.shards import Shard


def _patch(patch: kopf.Patch, update: dict[str, Any] | None) -> None:
    for key, value in (update or {}).items():
        patch.status[key] = value


def _stack_of(kind: str, body: kopf.Body) -> str:
    """The stack a data Job, backup or restore works on (the shard that owns that stack handles it)."""
    spec = body.get("spec") or {}
    if kind == "job":
        return str((body.get("metadata", {}).get("labels") or {}).get(LABEL_STACK, ""))
    if kind == "backup":
        return str(spec.get("stackName", ""))
    target = (spec.get("target") or {}).get("stackName")
    return str(target or (spec.get("source") or {}).get("stackName", ""))


def _owned(shard: Shard | None, kind: str) -> Callable[..., bool]:
    def when(body: kopf.Body, namespace: str | None, **_: Any) -> bool:
        return shard is None or shard.owns(namespace or "", _stack_of(kind, body))

    return when


Context = Callable[[Any], tuple[Cluster, Publish, Lock]]  # kopf's memo -> client, reconcile-now, stack lock


def register(reg: kopf.OperatorRegistry, settings: OperatorSettings, context: Context) -> None:
    """Timers on data Jobs, AddonStackBackups and AddonStackRestores (``context`` reads the operator's state)."""

    async def on_job(body: kopf.Body, memo: Any, **_: Any) -> None:
        cluster, publish, lock = context(memo)
        job = dict(body)
        kind = (job["metadata"].get("labels") or {}).get(LABEL_DATA_JOB)

        async def record(j: dict[str, Any], ok: bool) -> None:
            if kind == "backup":
                await backup_flow.record_backup(cluster, lock, j, ok)
                if stack := (j["metadata"].get("labels") or {}).get(LABEL_STACK):
                    # An upgrade may wait for this backup (upgrade.BackupGate): decide now, not at the next resync.
                    await publish({"metadata": {"namespace": j["metadata"]["namespace"], "name": stack}})

        await backup_flow.advance_job(cluster, job, publish, record)

    async def on_backup(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        cluster, _publish, _lock = context(memo)
        _patch(patch, await backup_flow.advance_backup(cluster, settings.defaults, dict(body)))

    async def on_restore(body: kopf.Body, patch: kopf.Patch, memo: Any, **_: Any) -> None:
        cluster, publish, lock = context(memo)
        _patch(patch, await restore_flow.advance_restore(cluster, settings.defaults, dict(body), publish, lock))

    jobs = {LABEL_DATA_JOB: kopf.PRESENT}
    shard = settings.shard
    kopf.timer(
        "batch", "v1", "jobs", labels=jobs, when=_owned(shard, "job"), interval=INTERVAL, sharp=False, registry=reg
    )(on_job)
    kopf.timer(API_GROUP, BACKUP_PLURAL, when=_owned(shard, "backup"), interval=INTERVAL, sharp=False, registry=reg)(
        on_backup
    )
    kopf.timer(API_GROUP, RESTORE_PLURAL, when=_owned(shard, "restore"), interval=INTERVAL, sharp=False, registry=reg)(
        on_restore
    )
