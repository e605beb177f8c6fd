"""The Job and CronJob objects that back up and restore a stack, planned from its StackPlan. Pure.

Ordering: a Job that reads or writes volumes is created *suspended*; the operator stops the workloads that
mount those volumes (``quiesced_services``: every service with a volume for a backup, every service for a
restore), waits until their pods are gone, un-suspends the Job and scales them back when it ends. The
database dumps ride in the same Job: ``pg_dump`` is consistent by itself, and dumping while the volume's
writers are stopped keeps the database and the files of one backup from the same moment. A stack without
volumes is backed up online (the Job is not suspended and no workload stops). A scheduled backup's CronJob
creates its Jobs suspended the same way, so the operator quiesces for it too.

Volumes are mounted from the stack's own claims (RWO is fine: their pods are gone), so this works on any
storage; VolumeSnapshots are not used. A Job that touches volumes runs as root with only the capabilities
to read and restore any owner's files (the namespace needs the ``baseline`` Pod Security level); one that
only dumps databases runs as the image's non-root user.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from addonstack.backup.manifest import (
    BACKUP_ID_ENV,
    KEY_PATH_ENV,
    PLAN_ENV,
    DatabaseTarget,
    DumpPlan,
    RestorePlan,
    S3Location,
    SecretSource,
    VolumeTarget,
)
from addonstack.constants import (
    ANNOTATION_QUIESCED_SERVICES,
    LABEL_BACKUP_ID,
    LABEL_DATA_JOB,
    POSTGRES_HOST,
    POSTGRES_PORT,
)
from addonstack.plan.build import PlannedService, StackPlan
from addonstack.plan.spec import BackupSpec, S3Target
from addonstack.render.compose import volume_key
from addonstack.render.kubernetes import K8sContext, labels, secret_name

MOUNTS = "/var/run/addonstack"
DEFAULT_RETENTION = 7
Trigger = Literal["manual", "schedule", "pre-upgrade"]


@dataclass(frozen=True)
class BackupRequest:
    """One backup (or the template of a schedule's): where it goes and what it records."""

    target: S3Target
    backup_id: str | None = None  # None: a scheduled Job's own name
    trigger: Trigger = "manual"
    encryption_key_secret: str | None = None
    retention: int | None = None
    catalog_revision: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)


def location(target: S3Target) -> S3Location:
    return S3Location(endpoint=target.endpoint, bucket=target.bucket, region=target.region or "us-east-1",
                      prefix=target.prefix or "")  # fmt: skip


def claim_name(p: PlannedService, volume: str) -> str:
    """The claim the stack's workload mounts: a Deployment's own PVC, or a StatefulSet's first replica's."""
    if p.service.workload == "StatefulSet":
        return f"{volume}-{p.id}-0"
    return volume_key(p.id, volume)


def volume_claims(plan: StackPlan) -> list[tuple[str, str, str]]:
    """(service, volume, claim) of every volume of the stack."""
    return [(p.id, v.name, claim_name(p, v.name)) for p in plan.services for v in p.service.volumes]


def quiesced_services(plan: StackPlan, action: Literal["backup", "restore"]) -> list[str]:
    """Services scaled to zero while the Job runs: volume writers for a backup, everything for a restore."""
    if action == "restore":
        return [p.id for p in plan.services] if plan.databases or volume_claims(plan) else []
    return sorted({sid for sid, _, _ in volume_claims(plan)})


def carried_keys(p: PlannedService, plan: StackPlan) -> list[str]:
    """Generated secret values the service's data needs (keys that encrypt or sign what it stored).

    The database password is not one: a restore's target has its own role and password, set by its own
    setup Job, so it is issued anew. Credentials the user supplied stay in the user's Secret.
    """
    db_password = {n.password_key for n in plan.databases if n.service_id == p.id}
    return sorted(e.key for e in p.service.env if e.generate is not None and e.key not in db_password)


def _mount(sid: str, vol: str) -> str:
    return f"{MOUNTS}/volumes/{sid}/{vol}"


def dump_plan(plan: StackPlan, ctx: K8sContext, req: BackupRequest) -> DumpPlan:
    secrets = [
        SecretSource(service=p.id, secret=secret_name(p.id), path=f"{MOUNTS}/secrets/{p.id}", keys=keys)
        for p in plan.services
        if (keys := carried_keys(p, plan))
    ]
    return DumpPlan(
        namespace=ctx.namespace,
        stack=ctx.stack,
        backup_id=req.backup_id,
        trigger=req.trigger,
        catalog_revision=req.catalog_revision,
        spec=req.spec,
        target=location(req.target),
        databases=[DatabaseTarget(service=n.service_id, database=n.database, role=n.role) for n in plan.databases],
        volumes=[VolumeTarget(service=s, volume=v, path=_mount(s, v)) for s, v, _ in volume_claims(plan)],
        secrets=secrets,
        retention=req.retention,
    )


def restore_plan(plan: StackPlan, source: tuple[str, str, str], target: S3Target) -> RestorePlan:
    """Restore into ``plan``'s stack the backup ``source`` = (namespace, stack, backup id)."""
    ns, stack, backup_id = source
    return RestorePlan(
        source_namespace=ns,
        source_stack=stack,
        backup_id=backup_id,
        target=location(target),
        databases=[DatabaseTarget(service=n.service_id, database=n.database, role=n.role) for n in plan.databases],
        volumes=[VolumeTarget(service=s, volume=v, path=_mount(s, v)) for s, v, _ in volume_claims(plan)],
    )


def _env(ctx: K8sContext, plan_json: str, target: S3Target, key_secret: str | None, scheduled: bool) -> list[Any]:
    env: list[dict[str, Any]] = [
        {"name": PLAN_ENV, "value": plan_json},
        {"name": "PGHOST", "value": POSTGRES_HOST},
        {"name": "PGPORT", "value": str(POSTGRES_PORT)},
        {"name": "PGDATABASE", "value": "postgres"},
    ]
    if ctx.database_admin_secret:
        admin = ctx.database_admin_secret
        env += [
            {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": admin, "key": "username"}}},
            {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": admin, "key": "password"}}},
        ]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.append({"name": key, "valueFrom": {"secretKeyRef": {"name": target.secret_ref.name, "key": key}}})
    if key_secret:
        env.append({"name": KEY_PATH_ENV, "value": f"{MOUNTS}/sealing-key/key"})
    if scheduled:  # the backup is named after the Job the CronJob made
        path = "metadata.labels['batch.kubernetes.io/job-name']"
        env.append({"name": BACKUP_ID_ENV, "valueFrom": {"fieldRef": {"fieldPath": path}}})
    return env


def _security(root: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod, container) security contexts: root with file capabilities only when volumes are touched."""
    pod: dict[str, Any] = {"seccompProfile": {"type": "RuntimeDefault"}}
    container: dict[str, Any] = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True}
    if root:
        pod.update(runAsUser=0, runAsNonRoot=False)
        # All in Pod Security baseline's list (DAC_READ_SEARCH is not; DAC_OVERRIDE already reads and searches).
        caps = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]
        container["capabilities"] = {"drop": ["ALL"], "add": caps}
    else:
        pod.update(runAsUser=10001, runAsGroup=10001, runAsNonRoot=True)
        container["capabilities"] = {"drop": ["ALL"]}
    return pod, container


def _pod_spec(
    plan: StackPlan, ctx: K8sContext, command: str, env: list[Any], key_secret: str | None, image: str, write: bool
) -> dict[str, Any]:
    claims = volume_claims(plan)
    volumes: list[dict[str, Any]] = [{"name": "work", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "work", "mountPath": "/tmp"}]
    for i, (sid, vol, claim) in enumerate(claims):
        volumes.append({"name": f"vol-{i}", "persistentVolumeClaim": {"claimName": claim, "readOnly": not write}})
        mounts.append({"name": f"vol-{i}", "mountPath": _mount(sid, vol), "readOnly": not write})
    if command == "dump":
        for i, p in enumerate(p for p in plan.services if carried_keys(p, plan)):
            items = [{"key": k, "path": k} for k in carried_keys(p, plan)]
            volumes.append(
                {"name": f"secret-{i}", "secret": {"secretName": secret_name(p.id), "items": items, "optional": True}}
            )
            mounts.append({"name": f"secret-{i}", "mountPath": f"{MOUNTS}/secrets/{p.id}", "readOnly": True})
        if key_secret:
            items = [{"key": "key", "path": "key"}]
            volumes.append({"name": "sealing-key", "secret": {"secretName": key_secret, "items": items}})
            mounts.append({"name": "sealing-key", "mountPath": f"{MOUNTS}/sealing-key", "readOnly": True})
    pod_sc, container_sc = _security(bool(claims))
    return {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": {"kubernetes.io/arch": ctx.platform.split("/", 1)[1]},
        "securityContext": pod_sc,
        "volumes": volumes,
        "containers": [
            {
                "name": "agent",
                "image": image,
                "imagePullPolicy": "IfNotPresent",
                "command": ["python", "-m", "addonstack.backup.agent", command],
                "env": env,
                "volumeMounts": mounts,
                "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
                "securityContext": container_sc,
            }
        ],
    }


def _job_spec(template_labels: dict[str, str], pod: dict[str, Any], suspend: bool) -> dict[str, Any]:
    return {
        "suspend": suspend,
        "backoffLimit": 1,
        "activeDeadlineSeconds": 6 * 3600,
        "ttlSecondsAfterFinished": 7 * 24 * 3600,
        "template": {"metadata": {"labels": template_labels}, "spec": pod},
    }


def _quiesce(plan: StackPlan, action: Literal["backup", "restore"]) -> dict[str, str]:
    """The services the operator stops before it un-suspends the Job (read by controller/backup_handlers.py)."""
    return {ANNOTATION_QUIESCED_SERVICES: ",".join(quiesced_services(plan, action))}


def _labels(ctx: K8sContext, kind: str, backup_id: str | None) -> dict[str, str]:
    out = {**labels(ctx, f"addonstack-{kind}", kind), LABEL_DATA_JOB: kind}
    if backup_id:
        out[LABEL_BACKUP_ID] = backup_id
    return out


def _job(
    plan: StackPlan,
    ctx: K8sContext,
    action: Literal["backup", "restore"],
    name: str,
    job_labels: dict[str, str],
    spec: dict[str, Any],
) -> dict[str, Any]:
    """A backup or restore Job, annotated with the services the operator stops around it."""
    meta = {"name": name, "namespace": ctx.namespace, "labels": job_labels, "annotations": _quiesce(plan, action)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}


def backup_job(plan: StackPlan, ctx: K8sContext, req: BackupRequest, name: str, image: str) -> dict[str, Any]:
    """The one-shot backup Job (suspended when workloads must stop first)."""
    data = dump_plan(plan, ctx, req)
    key = req.encryption_key_secret
    pod = _pod_spec(plan, ctx, "dump", _env(ctx, data.to_json(), req.target, key, False), key, image, write=False)
    job_labels = _labels(ctx, "backup", req.backup_id)
    return _job(
        plan,
        ctx,
        "backup",
        name,
        job_labels,
        _job_spec(job_labels, pod, suspend=bool(quiesced_services(plan, "backup"))),
    )


def cron_job_name(stack: str) -> str:
    return f"{stack}-backup"


def backup_cron_job(
    plan: StackPlan,
    ctx: K8sContext,
    spec: BackupSpec,
    image: str,
    catalog_revision: str | None,
    stack_spec: dict[str, Any],
) -> dict[str, Any] | None:
    """The stack's scheduled backups; None without ``spec.backup.schedule``."""
    if not spec.schedule:
        return None
    key = spec.encryption_key_secret_ref.name if spec.encryption_key_secret_ref else None
    req = BackupRequest(
        spec.target.s3, None, "schedule", key, spec.retention or DEFAULT_RETENTION, catalog_revision, stack_spec
    )
    data = dump_plan(plan, ctx, req)
    pod = _pod_spec(plan, ctx, "dump", _env(ctx, data.to_json(), req.target, key, True), key, image, write=False)
    job_labels = _labels(ctx, "backup", None)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": cron_job_name(ctx.stack), "namespace": ctx.namespace, "labels": job_labels},
        "spec": {
            "schedule": spec.schedule,
            "timeZone": "Etc/UTC",
            "suspend": bool(spec.suspend),
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": job_labels, "annotations": _quiesce(plan, "backup")},
                "spec": _job_spec(job_labels, pod, suspend=bool(quiesced_services(plan, "backup"))),
            },
        },
    }


def restore_job(
    plan: StackPlan, ctx: K8sContext, source: tuple[str, str, str], target: S3Target, name: str, image: str
) -> dict[str, Any]:
    """The restore Job, always suspended: the operator starts it once the stack's workloads are stopped."""
    data = restore_plan(plan, source, target)
    pod = _pod_spec(plan, ctx, "restore", _env(ctx, data.to_json(), target, None, False), None, image, write=True)
    job_labels = _labels(ctx, "restore", source[2])
    return _job(plan, ctx, "restore", name, job_labels, _job_spec(job_labels, pod, suspend=True))


def data_job_name(kind: Literal["backup", "restore"], name: str) -> str:
    """``backup-<name>`` / ``restore-<name>``; a name too long for a Job keeps its start and gets a hash."""
    full = f"{kind}-{name}"
    if len(full) <= 63:
        return full
    return f"{full[:54]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
