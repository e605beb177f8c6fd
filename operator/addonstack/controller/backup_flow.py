"""How backups happen in time: AddonStackBackup objects, and every backup or restore Job (one-shot or scheduled).

The objects come from ``addonstack.backup.jobs`` (pure); these handlers only order them in time:

1. An AddonStackBackup gets its Job (suspended when the stack has volumes). A schedule's CronJob is part of
   the stack's own objects (``decide.desire``) and makes such Jobs by itself.
2. A suspended data Job stops the services its annotation names: the stack gets ``quiesced-by: <job>``,
   the reconcile then renders their replicas as 0. Once their pods are gone the Job is un-suspended.
   One Job holds a stack at a time; another waits.
3. When the Job ends the annotation goes (the reconcile scales the services back), and a backup's result is
   recorded: the manifest read back from the bucket gives its size; the stack's ``status.backup`` and its
   ``BackupFailed`` condition, and the AddonStackBackup's status, say what happened.

Timers drive it (every few seconds while something is in flight), so an operator restart resumes where
the cluster says it is: every step reads its state from the objects, none from memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from addonstack.backup.jobs import BackupRequest, backup_job, data_job_name, location
from addonstack.backup.manifest import PLAN_ENV, DumpPlan, Manifest
from addonstack.backup.store import Store
from addonstack.catalog.loader import load_catalog
from addonstack.constants import (
    ANNOTATION_QUIESCED_BY,
    ANNOTATION_QUIESCED_SERVICES,
    ANNOTATION_RECORDED,
    BACKUP_PLURAL,
    LABEL_BACKUP_ID,
    LABEL_PURPOSE,
    LABEL_SERVICE,
    LABEL_STACK,
    PURPOSE_PRE_UPGRADE,
)
from addonstack.controller.backup_status import BACKUP_CONDITION
from addonstack.controller.cluster import Cluster
from addonstack.controller.status import now
from addonstack.plan.backup_spec import AddonStackBackupSpec
from addonstack.plan.build import StackPlan
from addonstack.plan.resolve import enforced_level
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec, S3Target
from addonstack.reasons import ConditionReason, DataPhase
from addonstack.render.kubernetes import K8sContext
from addonstack.render.stack import StackDefaults, plan_stack

log = logging.getLogger("addonstack.backup")
INTERVAL = 5.0  # seconds between steps of an unfinished backup or restore
Publish = Callable[[dict[str, Any]], Awaitable[None]]  # reconcile a stack now (handlers.publish)
Lock = Callable[[str, str], asyncio.Lock]  # the stack's lock, shared with the reconcile


class Step(Exception):
    """A backup or restore cannot go on: ``reason`` (ConditionReason) and a message naming the fix."""

    def __init__(self, reason: ConditionReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def condition(ok: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": "Complete", "status": "True" if ok else "False", "reason": str(reason),
            "message": message[:2000], "lastTransitionTime": now()}  # fmt: skip


def finished(job: dict[str, Any]) -> bool | None:
    """True/False once the Job succeeded/failed; None while it has not ended."""
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("status") == "True" and c.get("type") in ("Complete", "SuccessCriteriaMet"):
            return True
        if c.get("status") == "True" and c.get("type") in ("Failed", "FailureTarget"):
            return False
    return None


def failure_message(job: dict[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Failed", "FailureTarget") and c.get("status") == "True":
            why = f"{c.get('reason', '')}: {c.get('message', '')}".strip(": ")
            break
    else:
        why = "failed"
    meta = job["metadata"]
    return f"Job {meta['name']} {why}; see `kubectl logs -n {meta['namespace']} job/{meta['name']}`"


def owner(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {"apiVersion": body["apiVersion"], "kind": body["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}  # fmt: skip


async def plan_for(
    cluster: Cluster, stack: dict[str, Any], defaults: StackDefaults
) -> tuple[StackPlan, K8sContext, AddonStackSpec]:
    """The stack's plan as the reconcile makes it (the same credentials, so the same services)."""
    meta = stack["metadata"]
    try:
        spec = AddonStackSpec.model_validate(stack.get("spec") or {})
    except ValidationError as exc:
        raise Step(
            ConditionReason.INVALID_SPEC, f"stack {meta['name']}: its spec is invalid ({exc.error_count()} errors)"
        ) from None
    creds: dict[str, str] = {}
    if spec.credentials_secret_ref:
        creds = await cluster.secret_data(meta["namespace"], spec.credentials_secret_ref.name) or {}
    # The namespace's Pod Security level, as the reconcile reads it: services it skips have nothing to back up.
    level = enforced_level(await cluster.namespace_labels(meta["namespace"]))
    planned = plan_stack(
        load_catalog(), spec, meta["name"], meta["namespace"], defaults, make_rng(None), creds, pod_security=level
    )
    return planned.plan, planned.context, spec


async def store_for(cluster: Cluster, namespace: str, target: S3Target) -> Store:
    keys = await cluster.secret_data(namespace, target.secret_ref.name)
    if keys is None or not keys.get("AWS_ACCESS_KEY_ID") or not keys.get("AWS_SECRET_ACCESS_KEY"):
        raise Step(
            ConditionReason.BACKUP_TARGET_MISSING,
            f"Secret {target.secret_ref.name!r} (target.s3.secretRef) is missing or lacks the keys "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        )
    return Store(location(target), keys["AWS_ACCESS_KEY_ID"], keys["AWS_SECRET_ACCESS_KEY"])


async def read_manifest(store: Store, namespace: str, stack: str, backup_id: str) -> Manifest:
    try:
        return await asyncio.to_thread(store.manifest, namespace, stack, backup_id)
    except (BotoCoreError, ClientError, ValidationError) as exc:
        where = store.location.backup_prefix(namespace, stack, backup_id)
        raise Step(
            ConditionReason.BACKUP_NOT_FOUND,
            f"no readable manifest at s3://{store.bucket}/{where}: {type(exc).__name__}: {str(exc)[:300]}",
        ) from None


# ---- every data Job: quiesce, start, resume, record ---------------------------------------------------


async def _stopped(cluster: Cluster, namespace: str, stack: str, services: set[str]) -> bool:
    kinds = [("apps/v1", "Deployment"), ("apps/v1", "StatefulSet")]
    for w in await cluster.list_children(namespace, stack, kinds):
        if (w["metadata"].get("labels") or {}).get(LABEL_SERVICE) not in services:
            continue
        if (w.get("spec") or {}).get("replicas") != 0 or (w.get("status") or {}).get("replicas"):
            return False
    return True


async def _set_quiesce(cluster: Cluster, stack: dict[str, Any], job: str | None, services: str | None) -> None:
    patch = {"metadata": {"annotations": {ANNOTATION_QUIESCED_BY: job, ANNOTATION_QUIESCED_SERVICES: services}}}
    await cluster.merge_patch(stack, patch)


async def advance_job(
    cluster: Cluster, job: dict[str, Any], publish: Publish, record: Callable[..., Awaitable[None]]
) -> None:
    """One step of a data Job's life: stop the services it names, start it, and clean up when it ends."""
    meta = job["metadata"]
    ns, name = meta["namespace"], meta["name"]
    stack_name = (meta.get("labels") or {}).get(LABEL_STACK)
    stack = await cluster.get_stack(ns, stack_name) if stack_name else None
    held_by = ((stack or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_QUIESCED_BY)
    done = finished(job)
    if done is not None:
        if stack is not None and held_by == name:
            await _set_quiesce(cluster, stack, None, None)
            await publish(stack)  # scale the services back now, not at the next resync
        if not (meta.get("annotations") or {}).get(ANNOTATION_RECORDED):
            await record(job, done)
            await cluster.merge_patch(job, {"metadata": {"annotations": {ANNOTATION_RECORDED: now()}}})
        return
    if not (job.get("spec") or {}).get("suspend") or stack is None:
        return
    services = (meta.get("annotations") or {}).get(ANNOTATION_QUIESCED_SERVICES) or ""
    if held_by is None:
        await _set_quiesce(cluster, stack, name, services)
        await publish(stack)
        return
    if held_by != name:
        return  # another backup or restore holds the stack; this one waits its turn
    if await _stopped(cluster, ns, stack_name or "", set(filter(None, services.split(",")))):
        log.info("%s/%s: services %s stopped; starting Job %s", ns, stack_name, services or "-", name)
        await cluster.merge_patch(job, {"spec": {"suspend": False}})


# ---- recording a backup's outcome ------------------------------------------------------------------------


def _dump_plan(job: dict[str, Any]) -> tuple[DumpPlan | None, str | None]:
    """The Job's own plan and the S3 credentials Secret it reads (to find the manifest it wrote)."""
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container.get("env") or []}
    try:
        plan = DumpPlan.model_validate_json(env[PLAN_ENV]["value"])
        secret = env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]["name"]
    except (KeyError, ValidationError):
        return None, None
    return plan, secret


async def record_backup(cluster: Cluster, lock: Lock, job: dict[str, Any], ok: bool) -> None:
    meta = job["metadata"]
    ns = meta["namespace"]
    backup_id = (meta.get("labels") or {}).get(LABEL_BACKUP_ID) or meta["name"]
    plan, secret = _dump_plan(job)
    size: int | None = None
    message = failure_message(job)
    if ok and plan is not None and secret is not None:
        target = S3Target.model_validate({**plan.target.model_dump(), "secretRef": {"name": secret}})
        try:
            manifest = await read_manifest(await store_for(cluster, ns, target), ns, plan.stack, backup_id)
            size, message = manifest.size, f"backup {backup_id} stored ({manifest.size} bytes)"
        except Step as exc:
            message = f"backup {backup_id}: the Job succeeded but its manifest is not readable: {exc}"
    where = f"s3://{plan.target.bucket}/{plan.target.stack_prefix(ns, plan.stack)}" if plan else None
    if plan is not None:
        await _record_on_stack(cluster, lock, ns, plan.stack, backup_id, ok, size, message, where)
    owner_ref = next((r for r in meta.get("ownerReferences") or [] if r.get("kind") == "AddonStackBackup"), None)
    if owner_ref is not None:
        reason = ConditionReason.COMPLETED if ok else ConditionReason.BACKUP_FAILED
        status = {
            "phase": DataPhase.COMPLETED if ok else DataPhase.FAILED,
            "completionTime": now(),
            "message": message,
            "sizeBytes": size,
            "conditions": [condition(ok, reason, message)],
        }
        await cluster.patch_data_status(BACKUP_PLURAL, ns, owner_ref["name"], status)


async def _record_on_stack(
    cluster: Cluster, lock: Lock, ns: str, stack_name: str, backup_id: str, ok: bool, size: int | None,
    message: str, where: str | None,
) -> None:  # fmt: skip
    async with lock(ns, stack_name):
        stack = await cluster.get_stack(ns, stack_name)
        if stack is None:
            return
        status = stack.get("status") or {}
        backup = dict(status.get("backup") or {})
        stamp = now()
        if ok:
            backup.update(lastBackup=backup_id, lastSuccessTime=stamp, lastSizeBytes=size, location=where)
        else:
            backup.update(lastFailureTime=stamp, lastFailure=message[:1000])
        reason = ConditionReason.COMPLETED if ok else ConditionReason.BACKUP_FAILED
        cond = {"type": BACKUP_CONDITION, "status": "False" if ok else "True", "reason": str(reason),
                "message": message[:2000], "lastTransitionTime": stamp}  # fmt: skip
        others = [c for c in status.get("conditions") or [] if c.get("type") != BACKUP_CONDITION]
        await cluster.patch_status(ns, stack_name, {"backup": backup, "conditions": [*others, cond]})
        await cluster.event(stack, "Normal" if ok else "Warning", str(reason), message)


# ---- AddonStackBackup ----------------------------------------------------------------------------------


async def advance_backup(cluster: Cluster, defaults: StackDefaults, body: dict[str, Any]) -> dict[str, Any] | None:
    """One step of an AddonStackBackup; returns the status fields to patch (None: nothing changed)."""
    status = body.get("status") or {}
    if status.get("phase") and DataPhase(status["phase"]).done:
        return None
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    job_name = data_job_name("backup", name)
    job = await cluster.get("batch/v1", "Job", ns, job_name)
    try:
        if job is None:
            return await _start_backup(cluster, defaults, body, job_name)
    except Step as exc:
        return {"phase": DataPhase.FAILED, "message": str(exc), "completionTime": now(),
                "conditions": [condition(False, exc.reason, str(exc))]}  # fmt: skip
    if finished(job) is not None:
        return None  # advance_job records the outcome
    phase = DataPhase.QUIESCING if (job.get("spec") or {}).get("suspend") else DataPhase.RUNNING
    return {"phase": phase} if status.get("phase") != phase else None


async def _start_backup(
    cluster: Cluster, defaults: StackDefaults, body: dict[str, Any], job_name: str
) -> dict[str, Any]:
    meta = body["metadata"]
    ns, name = meta["namespace"], meta["name"]
    spec = AddonStackBackupSpec.model_validate(body.get("spec") or {})
    stack = await cluster.get_stack(ns, spec.stack_name)
    if stack is None:
        raise Step(ConditionReason.BACKUP_TARGET_MISSING, f"stackName: no AddonStack {spec.stack_name!r} in {ns}")
    plan, ctx, stack_spec = await plan_for(cluster, stack, defaults)
    configured = stack_spec.backup
    target = spec.target or (configured.target if configured else None)
    if target is None:
        raise Step(
            ConditionReason.BACKUP_TARGET_MISSING,
            f"no target: set spec.target, or spec.backup.target on AddonStack {spec.stack_name}",
        )
    await store_for(cluster, ns, target.s3)  # the credentials Secret exists and has its keys
    key_ref = spec.encryption_key_secret_ref or (configured.encryption_key_secret_ref if configured else None)
    purpose = (meta.get("labels") or {}).get(LABEL_PURPOSE)
    revision = (stack.get("status") or {}).get("catalogRevision")
    req = BackupRequest(
        target.s3, name, "pre-upgrade" if purpose == PURPOSE_PRE_UPGRADE else "manual",
        key_ref.name if key_ref else None, None, revision if isinstance(revision, str) else None,
        dict(stack.get("spec") or {}),
    )  # fmt: skip
    job = backup_job(plan, ctx, req, job_name, defaults.backup_image)
    job["metadata"]["ownerReferences"] = [owner(body)]
    await cluster.apply(job)
    suspended = job["spec"]["suspend"]
    return {
        "phase": DataPhase.QUIESCING if suspended else DataPhase.RUNNING,
        "backupId": name,
        "jobName": job_name,
        "startTime": now(),
        "catalogRevision": req.catalog_revision,
        "location": f"s3://{target.s3.bucket}/{location(target.s3).backup_prefix(ns, spec.stack_name, name)}",
        "conditions": [condition(False, ConditionReason.PROGRESSING, f"Job {job_name} created")],
    }
