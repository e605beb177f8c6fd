"""Backups and restores on the real control plane (kwok runs no containers: kwok completes Job pods).

What is checked is what the operator does with the objects: the CronJob of ``spec.backup``, the order around
a Job that reads volumes (the stack's workloads are scaled to zero before the Job is un-suspended, and back
after it ends), the status of the AddonStackBackup and of the stack, and a restore that clones the stack
into another namespace with the secrets the data needs. Since no container runs, the test plays the Job's
part itself: it runs the real agent with the plan the operator put in the Job (volume paths pointed at a
local directory) against a real S3 server, so the manifest the operator reads back is the agent's own.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import CronJob, Job
from lightkube.resources.core_v1 import Secret

from addonstack.backup import agent
from addonstack.backup.manifest import PLAN_ENV, DumpPlan
from addonstack.backup.store import Store
from addonstack.render.crd import render_data_crds
from tests.cluster.operator_harness import (
    admin_secret,
    condition,
    get_stack,
    running_operator,
    stack,
    wait_for,
    wait_ready,
)
from tests.s3server import S3Server, s3_server

pytestmark = [pytest.mark.cluster, pytest.mark.s3]
Backup = create_namespaced_resource("addonstack.dev", "v1alpha1", "AddonStackBackup", "addonstackbackups")
Restore = create_namespaced_resource("addonstack.dev", "v1alpha1", "AddonStackRestore", "addonstackrestores")
SERVICES = ["gitea", "chromadb"]  # a Deployment with a database and volumes, a StatefulSet with a volume
SEAL_KEY = "a provider's sealing key, long enough"
PURPOSE = "addonstack.dev/purpose"
BACKED_UP: dict[str, Any] = {}  # what the first test leaves the second (its namespace is deleted after it)


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1", aws_access_key_id=server.access_key,
                     aws_secret_access_key=server.secret_key).create_bucket(Bucket="backups")  # fmt: skip
        yield server


@pytest.fixture(scope="module")
def operator_proc(kubeconfig: Path, client: Client) -> Iterator[None]:
    for crd in render_data_crds().values():
        client.apply(codecs.from_dict(crd), field_manager="addonstack-tests", force=True)
    for name in ("addonstackbackups.addonstack.dev", "addonstackrestores.addonstack.dev"):
        wait_for(f"CRD {name}", lambda n=name: _established(client, n), timeout=30)
    with running_operator(kubeconfig):
        yield


def _established(client: Client, name: str) -> bool:
    conditions = client.get(CustomResourceDefinition, name).status.conditions or []
    return any(c.type == "Established" and c.status == "True" for c in conditions)


def _secrets(client: Client, ns: str, s3: S3Server) -> None:
    admin_secret(client, ns)
    for name, data in (("s3", s3.env()), ("seal", {"key": SEAL_KEY})):
        meta = {"name": name, "namespace": ns}
        client.apply(codecs.from_dict({"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": data}))


def _target(s3: S3Server) -> dict[str, Any]:
    return {"s3": {"endpoint": s3.endpoint, "bucket": "backups", "prefix": "dev", "secretRef": {"name": "s3"}}}


class Sampler:
    """Samples (Job suspended, Job finished, gitea's spec/status replicas) until stopped: the ordering record."""

    def __init__(self, client: Client, ns: str, job: str) -> None:
        self.client, self.ns, self.job = client, ns, job
        self.samples: list[tuple[bool, bool, int | None, int | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                job = self.client.get(Job, self.job, namespace=self.ns)
                dep = self.client.get(Deployment, "gitea", namespace=self.ns)
            except Exception:
                time.sleep(0.1)
                continue
            conds = {c.type: c.status for c in (job.status.conditions or [])} if job.status else {}
            done = conds.get("Complete") == "True" or conds.get("Failed") == "True"
            status_replicas = dep.status.replicas if dep.status else None
            self.samples.append((bool(job.spec.suspend), done, dep.spec.replicas, status_replicas))
            time.sleep(0.1)


def _play_the_job(client: Client, ns: str, job_name: str, s3: S3Server, tmp: Path) -> dict[str, Any]:
    """Do what the Job's container would: the real agent, with the operator's plan, volumes in ``tmp``."""
    job = client.get(Job, job_name, namespace=ns).to_dict()
    env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    plan = DumpPlan.model_validate_json(env[PLAN_ENV]["value"])
    for vol in plan.volumes:
        path = tmp / vol.service / vol.volume
        path.mkdir(parents=True)
        (path / "data.txt").write_text(f"{vol.service}/{vol.volume}")
        vol.path = str(path)
    for src in plan.secrets:  # the Job mounts the service's Secret; here its live values are written as files
        live = client.get(Secret, src.secret, namespace=ns)
        path = tmp / "secrets" / src.service
        path.mkdir(parents=True)
        for key in src.keys:
            (path / key).write_bytes(base64.b64decode((live.data or {})[key]))
        src.path = str(path)
    (tmp / "key").write_text(SEAL_KEY)
    plan.databases = []  # no PostgreSQL here: tests/backup/test_agent.py dumps and restores real ones
    store = Store(plan.target, s3.access_key, s3.secret_key)
    os.environ["ADDONSTACK_BACKUP_KEY_FILE"] = str(tmp / "key")
    try:
        manifest = agent.dump(plan, store, tmp)
    finally:
        del os.environ["ADDONSTACK_BACKUP_KEY_FILE"]
    return {"plan": plan, "manifest": manifest, "job": job}


def test_backup_quiesces_runs_records_and_resumes(
    client: Client, operator_proc: None, namespace: str, s3: S3Server, tmp_path: Path
) -> None:
    _secrets(client, namespace, s3)
    spec = {"services": SERVICES, "backup": {"schedule": "30 2 * * *", "retention": 3, "target": _target(s3),
                                             "encryptionKeySecretRef": {"name": "seal"}}}  # fmt: skip
    client.create(codecs.from_dict(stack("shop", namespace, spec)))
    wait_ready(client, "shop", namespace)
    cron = client.get(CronJob, "shop-backup", namespace=namespace).to_dict()
    assert cron["spec"]["schedule"] == "30 2 * * *" and cron["spec"]["jobTemplate"]["spec"]["suspend"] is True
    cron_plan = json.loads(
        {e["name"]: e for e in cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["env"]}[
            PLAN_ENV
        ]["value"]
    )
    assert cron_plan["retention"] == 3 and cron_plan["trigger"] == "schedule"

    sampler = Sampler(client, namespace, "backup-shop-pre-1a2b")
    sampler.thread.start()
    client.create(codecs.from_dict({
        "apiVersion": "addonstack.dev/v1alpha1", "kind": "AddonStackBackup",
        "metadata": {"name": "shop-pre-1a2b", "namespace": namespace, "labels": {PURPOSE: "pre-upgrade"}},
        "spec": {"stackName": "shop"},
    }))  # fmt: skip
    # While the Job waits suspended the operator stops gitea and chromadb; the test writes what the Job would.
    wait_for("the backup Job", lambda: client.get(Job, "backup-shop-pre-1a2b", namespace=namespace))
    played = _play_the_job(client, namespace, "backup-shop-pre-1a2b", s3, tmp_path)
    assert played["plan"].trigger == "pre-upgrade" and played["plan"].backup_id == "shop-pre-1a2b"

    def completed() -> dict[str, Any] | str:
        obj = client.get(Backup, "shop-pre-1a2b", namespace=namespace).to_dict()
        phase = (obj.get("status") or {}).get("phase")
        return obj if phase in ("Completed", "Failed") else f"phase {phase}"

    done = wait_for("the backup to complete", completed, timeout=120)
    wait_ready(client, "shop", namespace)  # gitea and chromadb are back
    sampler.stop.set()
    sampler.thread.join()
    status = done["status"]
    assert status["phase"] == "Completed", status
    assert status["sizeBytes"] == played["manifest"].size > 0
    assert status["location"].startswith(f"s3://backups/dev/{namespace}/shop/shop-pre-1a2b")
    # Ordering: the Job never ran while gitea had pods, and gitea was stopped for it.
    running = [s for s in sampler.samples if not s[0] and not s[1]]
    assert running, "the sampler never saw the Job running"
    assert all(spec_r == 0 and not status_r for _, _, spec_r, status_r in running), sampler.samples
    assert client.get(StatefulSet, "chromadb", namespace=namespace).spec.replicas == 1
    st = get_stack(client, "shop", namespace)["status"]
    assert st["backup"]["lastBackup"] == "shop-pre-1a2b" and st["backup"]["lastSizeBytes"] == status["sizeBytes"]
    assert condition(get_stack(client, "shop", namespace), "BackupFailed")["status"] == "False"
    assert "quiesced-by" not in str(get_stack(client, "shop", namespace)["metadata"].get("annotations"))
    BACKED_UP.update(namespace=namespace, secret=client.get(Secret, "gitea-env", namespace=namespace).data or {})


def test_restore_clones_into_another_namespace_with_the_sealed_secrets(
    client: Client, operator_proc: None, namespace: str, s3: S3Server, tmp_path: Path
) -> None:
    if not BACKED_UP:
        pytest.fail("needs the backup made by test_backup_quiesces_runs_records_and_resumes (run the module)")
    source_ns, source = BACKED_UP["namespace"], BACKED_UP["secret"]
    _secrets(client, namespace, s3)
    client.create(codecs.from_dict({
        "apiVersion": "addonstack.dev/v1alpha1", "kind": "AddonStackRestore",
        "metadata": {"name": "clone-1", "namespace": namespace},
        "spec": {"source": {"namespace": source_ns, "stackName": "shop", "backupId": "shop-pre-1a2b", **_target(s3)},
                 "target": {"stackName": "shop-copy"}, "encryptionKeySecretRef": {"name": "seal"}},
    }))  # fmt: skip

    def finished() -> dict[str, Any] | str:
        obj = client.get(Restore, "clone-1", namespace=namespace).to_dict()
        st = obj.get("status") or {}
        return obj if st.get("phase") in ("Completed", "Failed") else f"{st.get('phase')}: {st.get('message')}"

    done = wait_for("the restore to finish", finished, timeout=180)["status"]
    assert done["phase"] == "Completed", done
    assert done["createdStack"] is True and done["targetStack"] == "shop-copy"
    assert "gitea.GITEA__security__SECRET_KEY" in done["carriedSecretKeys"]
    clone = client.get(Secret, "gitea-env", namespace=namespace).data or {}
    assert clone["GITEA__security__SECRET_KEY"] == source["GITEA__security__SECRET_KEY"], "the data's key travelled"
    db_key = "GITEA_DB_PASSWORD" if "GITEA_DB_PASSWORD" in source else next(k for k in source if "DB_PASSWORD" in k)
    assert clone[db_key] != source[db_key], "the clone's database password is its own"
    job = client.get(Job, "restore-clone-1", namespace=namespace).to_dict()
    plan = json.loads(
        {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}[PLAN_ENV]["value"]
    )
    assert plan["sourceNamespace"] == source_ns and [d["service"] for d in plan["databases"]] == ["gitea"]
    wait_ready(client, "shop-copy", namespace)
