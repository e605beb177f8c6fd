"""The backup and restore Jobs and the schedule's CronJob, as planned from a stack (pure; no cluster).

What the objects must say for the ordering to hold: a Job that touches volumes is created suspended (the
operator stops the writers first), mounts exactly the stack's claims (read-only for a backup), and carries
the generated secrets the data needs but never the database password; a database-only stack is backed up
online. The objects pass the Kubernetes schema of the version the dev cluster runs.
"""

from __future__ import annotations

import json
import random
from typing import Any

import kubernetes_validate
import pytest

from addonstack.backup.jobs import (
    BackupRequest,
    backup_cron_job,
    backup_job,
    carried_keys,
    quiesced_services,
    restore_job,
    volume_claims,
)
from addonstack.backup.manifest import PLAN_ENV, DumpPlan, RestorePlan
from addonstack.catalog.loader import load_catalog
from addonstack.constants import LABEL_DATA_JOB
from addonstack.plan.spec import AddonStackSpec, BackupSpec, S3Target
from addonstack.render.stack import StackDefaults, plan_stack

CAT = load_catalog()
TARGET = S3Target.model_validate(
    {"endpoint": "http://minio.backup:9000", "bucket": "tenant-backups", "prefix": "p1", "secretRef": {"name": "s3"}}
)
DEFAULTS = StackDefaults(database_host="pg.platform", database_admin_secret="pg-admin")


def _plan(services: list[str]) -> Any:
    spec = AddonStackSpec.model_validate({"services": services})
    planned = plan_stack(CAT, spec, "shop", "team-a", DEFAULTS, random.Random(0))
    return planned.plan, planned.context


def _env(job: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}


def _valid(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, "1.33", strict=True)


def test_backup_job_quiesces_mounts_claims_read_only_and_seals_generated_secrets() -> None:
    plan, ctx = _plan(["baserow", "chromadb"])
    req = BackupRequest(TARGET, "nightly-1", "manual", "seal-key", None, "rev-7", {"services": ["baserow"]})
    job = backup_job(plan, ctx, req, "backup-nightly-1", "agent:1")
    _valid(job)
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["suspend"] is True and quiesced_services(plan, "backup") == ["baserow", "chromadb"]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert claims == {"baserow-data", "chroma-data-chromadb-0"} == {c for _, _, c in volume_claims(plan)}
    assert all(m["readOnly"] for m in pod["containers"][0]["volumeMounts"] if m["name"].startswith("vol-"))
    data = DumpPlan.model_validate_json(_env(job)[PLAN_ENV]["value"])
    assert [(d.service, d.database) for d in data.databases] == [("baserow", "baserow")]
    assert data.backup_id == "nightly-1" and data.catalog_revision == "rev-7"
    sealed = {s.service: s.keys for s in data.secrets}
    assert "BASEROW_DB_PASSWORD" not in sealed["baserow"] and {"SECRET_KEY", "BASEROW_JWT_SIGNING_KEY"} <= set(
        sealed["baserow"]
    )
    secret_vols = [v["secret"] for v in pod["volumes"] if "secret" in v]
    assert {v["secretName"] for v in secret_vols} == {"baserow-env", "seal-key"}
    env = _env(job)
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "pg-admin", "key": "password"}
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "s3"
    assert not any("value" in e and e["name"].startswith(("PGPASS", "AWS_")) for e in env.values())
    assert (
        pod["securityContext"]["runAsUser"] == 0
        and "ALL" in pod["containers"][0]["securityContext"]["capabilities"]["drop"]
    )
    assert job["metadata"]["labels"][LABEL_DATA_JOB] == "backup"


def test_database_only_stack_is_backed_up_online_as_non_root() -> None:
    db_only = next(
        s.id
        for s in CAT.addons()
        if s.postgres and not s.volumes and s.maturity == "stable" and set(s.requires) <= {"postgresql"}
    )
    plan, ctx = _plan([db_only])
    job = backup_job(plan, ctx, BackupRequest(TARGET, "b1"), "backup-b1", "agent:1")
    _valid(job)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["suspend"] is False and quiesced_services(plan, "backup") == []
    assert (
        pod["securityContext"]["runAsNonRoot"] is True
        and "add" not in pod["containers"][0]["securityContext"]["capabilities"]
    )


def test_schedule_is_a_cron_job_named_by_its_jobs_with_retention() -> None:
    plan, ctx = _plan(["baserow"])
    spec = BackupSpec.model_validate(
        {"schedule": "0 3 * * *", "retention": 4, "target": {"s3": TARGET.model_dump(by_alias=True)}}
    )
    cron = backup_cron_job(plan, ctx, spec, "agent:1", "rev-7", {"services": ["baserow"]})
    assert cron is not None
    _valid(cron)
    assert cron["spec"]["schedule"] == "0 3 * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert job_spec["suspend"] is True
    env = {e["name"]: e for e in job_spec["template"]["spec"]["containers"][0]["env"]}
    data = DumpPlan.model_validate_json(env[PLAN_ENV]["value"])
    assert data.trigger == "schedule" and data.retention == 4 and data.backup_id is None
    assert env["ADDONSTACK_BACKUP_ID"]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        "['batch.kubernetes.io/job-name']"
    )
    assert backup_cron_job(plan, ctx, spec.model_copy(update={"schedule": None}), "agent:1", None, {}) is None


def test_restore_job_is_suspended_writes_volumes_and_maps_to_the_target_names() -> None:
    plan, ctx = _plan(["baserow"])
    job = restore_job(plan, ctx, ("team-a", "old-shop", "nightly-1"), TARGET, "restore-r1", "agent:1")
    _valid(job)
    pod = job["spec"]["template"]["spec"]
    assert job["spec"]["suspend"] is True and quiesced_services(plan, "restore") == ["baserow"]
    assert not any(m.get("readOnly") for m in pod["containers"][0]["volumeMounts"])
    assert not any("secret" in v for v in pod["volumes"]), "a restore Job needs no service Secret"
    data = RestorePlan.model_validate_json(_env(job)[PLAN_ENV]["value"])
    assert (data.source_stack, data.backup_id, data.target.prefix) == ("old-shop", "nightly-1", "p1")
    assert [(v.service, v.volume) for v in data.volumes] == [("baserow", "baserow-data")]


def test_plans_never_hold_a_secret_value() -> None:
    plan, ctx = _plan(["baserow"])
    values = {
        v for p in plan.services for v in (plan.values.get(p.id) or {}).values() if isinstance(v, str) and len(v) > 8
    }
    stored = [val for (_, _), val in plan.stored.items() if val and len(val) > 12]
    text = json.dumps([backup_job(plan, ctx, BackupRequest(TARGET, "b"), "backup-b", "a"),
                       restore_job(plan, ctx, ("n", "s", "b"), TARGET, "restore-r", "a")])  # fmt: skip
    leaked = [v for v in [*values, *stored] if v in text]
    assert not leaked
    assert carried_keys(plan.services[0], plan), "the test needs a service with generated secrets"


@pytest.mark.parametrize("bad", ["0 3 * *", "every day", "@sometimes"])
def test_schedule_must_be_cron(bad: str) -> None:
    with pytest.raises(ValueError, match="schedule"):
        BackupSpec.model_validate({"schedule": bad, "target": {"s3": TARGET.model_dump(by_alias=True)}})
