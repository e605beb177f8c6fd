"""How a restore happens in time: from an AddonStackRestore to the data back in a running stack.

1. Pending -> Preparing: read the backup's manifest; put the secret values the data needs into the target
   stack's Secrets (unsealed with the provider's key, or copied from the Secrets the backup names); create
   the target stack from the backup's spec when it does not exist (a clone). The database password is not
   carried: the target's own setup Job issues one for its own role.
2. Preparing -> Quiescing: once the target's database setup Job has completed and its volume claims exist,
   create the restore Job, suspended; ``backup_flow.advance_job`` stops every service of the stack, starts
   the Job and scales them back when it ends.
3. Running -> Completed or Failed, from the Job.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from addonstack.backup import crypto
from addonstack.backup.jobs import data_job_name, restore_job, volume_claims
from addonstack.backup.manifest import Manifest
from addonstack.backup.store import Store
from addonstack.constants import API_GROUP, API_VERSION, KIND
from addonstack.controller.backup_flow import (
    Lock,
    Publish,
    Step,
    condition,
    failure_message,
    finished,
    owner,
    plan_for,
    read_manifest,
    store_for,
)
from addonstack.controller.cluster import Cluster
from addonstack.controller.status import now
from addonstack.plan.backup_spec import AddonStackRestoreSpec
from addonstack.reasons import ConditionReason, DataPhase
from addonstack.render.kubernetes import K8sContext, db_job_name, labels, secret_name
from addonstack.render.stack import StackDefaults


def _failed(reason: ConditionReason, message: str) -> dict[str, Any]:
    return {"phase": DataPhase.FAILED, "message": message, "completionTime": now(),
            "conditions": [condition(False, reason, message)]}  # fmt: skip


async def _sealed_values(
    cluster: Cluster, store: Store, manifest: Manifest, spec: AddonStackRestoreSpec, ns: str
) -> dict[str, dict[str, str]]:
    entry = manifest.secrets
    assert entry is not None and entry.artifact is not None
    ref = spec.encryption_key_secret_ref
    data = await cluster.secret_data(ns, ref.name) if ref else None
    if not data or not data.get("key"):
        raise Step(
            ConditionReason.SEALING_KEY_MISSING,
            "the backup's secret values are sealed: set spec.encryptionKeySecretRef to a Secret in "
            f"{ns} with the provider's key under 'key'" + (f" (Secret {ref.name!r} has none)" if ref else ""),
        )
    prefix = store.location.backup_prefix(manifest.namespace, manifest.stack, manifest.backup_id)
    try:
        blob = await asyncio.to_thread(store.get_bytes, prefix + entry.artifact.key)
        context = f"{manifest.namespace}/{manifest.stack}/{manifest.backup_id}"
        return crypto.unseal(blob, data["key"].encode().strip(), context)
    except crypto.SealError as exc:
        raise Step(ConditionReason.SEALING_KEY_MISSING, str(exc)) from None
    except (BotoCoreError, ClientError) as exc:
        raise Step(ConditionReason.BACKUP_NOT_FOUND, f"sealed secrets not readable: {type(exc).__name__}") from None


async def _referenced_values(cluster: Cluster, manifest: Manifest) -> dict[str, dict[str, str]]:
    assert manifest.secrets is not None
    out: dict[str, dict[str, str]] = {}
    for service, secret in manifest.secrets.secrets.items():
        data = await cluster.secret_data(manifest.namespace, secret)
        if data is None:
            raise Step(
                ConditionReason.RESTORE_FAILED,
                f"the backup names Secret {manifest.namespace}/{secret} for {service}'s data and it is gone; "
                "seal backups with spec.backup.encryptionKeySecretRef so their secrets travel with them",
            )
        out[service] = {k: data[k] for k in manifest.secrets.keys.get(service, []) if k in data}
    return out


async def _write_secret(cluster: Cluster, ns: str, stack: str, service: str, values: dict[str, str]) -> None:
    """Put carried values into the target stack's ``<service>-env`` Secret (the plan then keeps them)."""
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in values.items()}
    name = secret_name(service)
    live = await cluster.get("v1", "Secret", ns, name)
    if live is not None:
        await cluster.merge_patch(live | {"apiVersion": "v1", "kind": "Secret"}, {"data": encoded})
        return
    ctx = K8sContext(stack=stack, namespace=ns)
    meta = {"name": name, "namespace": ns, "labels": labels(ctx, service)}
    await cluster.apply({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque", "data": encoded})


async def _prepare(
    cluster: Cluster, store: Store, manifest: Manifest, spec: AddonStackRestoreSpec, ns: str, target: str
) -> dict[str, Any]:
    carried: dict[str, dict[str, str]] = {}
    if manifest.secrets is not None and manifest.secrets.keys:
        if manifest.secrets.mode == "sealed":
            carried = await _sealed_values(cluster, store, manifest, spec, ns)
        else:
            carried = await _referenced_values(cluster, manifest)
    for service, values in carried.items():
        if values:
            await _write_secret(cluster, ns, target, service, values)
    created = await cluster.get_stack(ns, target) is None
    if created:
        stack = {"apiVersion": f"{API_GROUP}/{API_VERSION}", "kind": KIND,
                 "metadata": {"name": target, "namespace": ns}, "spec": manifest.spec}  # fmt: skip
        await cluster.apply(stack)
    keys = sorted(f"{service}.{key}" for service, values in carried.items() for key in values)
    message = f"secrets carried ({len(keys)}); " + ("target stack created" if created else "target stack exists")
    return {"phase": DataPhase.PREPARING, "targetStack": target, "createdStack": created, "startTime": now(),
            "carriedSecretKeys": keys, "message": message,
            "conditions": [condition(False, ConditionReason.PROGRESSING, message)]}  # fmt: skip


async def _start_job(
    cluster: Cluster, defaults: StackDefaults, body: dict[str, Any], spec: AddonStackRestoreSpec, target: str
) -> dict[str, Any] | None:
    """Create the suspended restore Job once the target stack has its databases and claims; None: not yet."""
    ns = body["metadata"]["namespace"]
    stack = await cluster.get_stack(ns, target)
    if stack is None:
        return None
    plan, ctx, _ = await plan_for(cluster, stack, defaults)
    if plan.databases:
        setup = await cluster.get("batch/v1", "Job", ns, db_job_name(ctx, plan))
        if setup is None or finished(setup) is None:
            return None
        if finished(setup) is False:
            raise Step(ConditionReason.RESTORE_FAILED, f"the target's database setup failed: {failure_message(setup)}")
    for _, _, claim in volume_claims(plan):
        if await cluster.get("v1", "PersistentVolumeClaim", ns, claim) is None:
            return None
    job_name = data_job_name("restore", body["metadata"]["name"])
    source = (spec.source.namespace or ns, spec.source.stack_name, spec.source.backup_id)
    job = restore_job(plan, ctx, source, spec.source.s3, job_name, defaults.backup_image)
    job["metadata"]["ownerReferences"] = [owner(body)]
    await cluster.apply(job)
    return {"phase": DataPhase.QUIESCING, "jobName": job_name, "message": f"Job {job_name} created"}


async def advance_restore(
    cluster: Cluster, defaults: StackDefaults, body: dict[str, Any], publish: Publish, lock: Lock
) -> dict[str, Any] | None:
    """One step of an AddonStackRestore; returns the status fields to patch (None: nothing changed)."""
    status = body.get("status") or {}
    phase = DataPhase(status["phase"]) if status.get("phase") else DataPhase.PENDING
    if phase.done:
        return None
    meta = body["metadata"]
    ns = meta["namespace"]
    spec = AddonStackRestoreSpec.model_validate(body.get("spec") or {})
    target = (spec.target.stack_name if spec.target else None) or spec.source.stack_name
    job = await cluster.get("batch/v1", "Job", ns, data_job_name("restore", meta["name"]))
    if job is not None:
        done = finished(job)
        if done is None:
            now_phase = DataPhase.QUIESCING if (job.get("spec") or {}).get("suspend") else DataPhase.RUNNING
            return {"phase": now_phase} if now_phase != phase else None
        if not done:
            return _failed(ConditionReason.RESTORE_FAILED, failure_message(job))
        message = f"backup {spec.source.backup_id} restored into {target}"
        return {"phase": DataPhase.COMPLETED, "completionTime": now(), "message": message,
                "conditions": [condition(True, ConditionReason.COMPLETED, message)]}  # fmt: skip
    try:
        if phase == DataPhase.PENDING:
            store = await store_for(cluster, ns, spec.source.s3)
            source_ns = spec.source.namespace or ns
            manifest = await read_manifest(store, source_ns, spec.source.stack_name, spec.source.backup_id)
            return await _prepare(cluster, store, manifest, spec, ns, target)
        return await _start_job(cluster, defaults, body, spec, target)
    except Step as exc:
        return _failed(exc.reason, str(exc))
