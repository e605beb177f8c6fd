"""Deletion policy Delete: drop the databases, then the Secrets and volumes a stack would otherwise keep.

Only stacks with ``deletionPolicy: Delete`` get this cleanup; with Retain, garbage collection removes the
owned children and the data stays. Every stack still carries the operator's finalizer while the operator
runs (kopf requires one for the drift timer, and releases Retain stacks at once), so if the operator is
gone for good, remove the finalizer by hand (docs/troubleshooting.md): the stack is deleted without
cleanup and its owned children are garbage-collected (tests/cluster/test_deletion.py).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from addonstack.catalog.loader import load_catalog
from addonstack.controller.cluster import Cluster
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import db_drop_job, db_job_name
from addonstack.render.stack import StackDefaults, plan_stack

log = logging.getLogger("addonstack.finalize")


async def finalize(body: dict[str, Any], cluster: Cluster, defaults: StackDefaults) -> None:
    meta = body["metadata"]
    name, ns = meta["name"], meta["namespace"]
    try:
        spec = AddonStackSpec.model_validate(body.get("spec") or {})
        planned = plan_stack(load_catalog(), spec, name, ns, defaults, make_rng(None))
        plan, ctx = planned.plan, planned.context
    except ValueError:
        plan = None
    if plan is not None and plan.databases and ctx.database_admin_secret:
        job = db_drop_job(plan, ctx)
        assert job is not None
        job_name = db_job_name(ctx, plan, "drop")
        live = await cluster.get("batch/v1", "Job", ns, job_name)
        if live is None:
            await cluster.apply(job)
            raise kopf.TemporaryError("dropping databases", delay=5)
        st = live.get("status") or {}
        if not int(st.get("succeeded") or 0):
            failed = any(c.get("type") == "Failed" and c.get("status") == "True" for c in st.get("conditions") or [])
            if failed:
                raise kopf.PermanentError(
                    f"database drop Job {job_name} failed; see its logs, then remove the finalizer by hand to give up"
                )
            raise kopf.TemporaryError("waiting for the database drop Job", delay=5)
        await cluster.delete("batch/v1", "Job", ns, job_name)
    for obj in await cluster.list_children(ns, name, kinds=(("v1", "Secret"), ("v1", "PersistentVolumeClaim"))):
        await cluster.delete(obj["apiVersion"], obj["kind"], ns, obj["metadata"]["name"])
    log.info("stack %s/%s: deleted its Secrets and volumes (deletionPolicy Delete)", ns, name)
