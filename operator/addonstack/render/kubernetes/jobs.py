"""The Jobs that create and drop a stack's PostgreSQL databases and roles.

The Job's name carries a digest of the databases it sets up, so a changed set runs a new Job and an
unchanged one is never re-run. Passwords reach psql through env entries from the services' Secrets.
"""

from __future__ import annotations

from typing import Any

from addonstack.constants import POSTGRES_CLIENT_IMAGE, POSTGRES_HOST, POSTGRES_PORT
from addonstack.plan.build import StackPlan
from addonstack.plan.databases import drop_script, setup_script
from addonstack.render.kubernetes.context import K8sContext, content_hash, labels, meta, secret_name


def db_job_name(ctx: K8sContext, plan: StackPlan, action: str = "setup") -> str:
    digest = content_hash(
        [
            [n.database, n.role, n.extensions, *([n.createdb, n.schemas] if n.createdb or n.schemas else [])]
            for n in plan.databases
        ]
    )[:8]
    return f"{ctx.stack}-db-{action}-{digest}"[:63].rstrip("-")


def _psql_env(ctx: K8sContext, plan: StackPlan, action: str) -> list[dict[str, Any]]:
    admin = ctx.database_admin_secret
    env: list[dict[str, Any]] = [
        {"name": "PGHOST", "value": POSTGRES_HOST},
        {"name": "PGPORT", "value": str(POSTGRES_PORT)},
        {"name": "PGDATABASE", "value": "postgres"},
        {"name": "PGUSER", "valueFrom": {"secretKeyRef": {"name": admin, "key": "username"}}},
        {"name": "PGPASSWORD", "valueFrom": {"secretKeyRef": {"name": admin, "key": "password"}}},
    ]
    if action == "setup":
        for need in plan.databases:
            env.append(
                {
                    "name": need.password_env,
                    "valueFrom": {"secretKeyRef": {"name": secret_name(need.service_id), "key": need.password_key}},
                }
            )
    return env


def db_job(ctx: K8sContext, plan: StackPlan, action: str) -> dict[str, Any]:
    script = setup_script(plan.databases) if action == "setup" else drop_script(plan.databases)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta(ctx, db_job_name(ctx, plan, action), "postgres-setup", f"database-{action}"),
        "spec": {
            "backoffLimit": 6,
            "template": {
                "metadata": {"labels": labels(ctx, "postgres-setup", f"database-{action}")},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 70,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "psql",
                            "image": POSTGRES_CLIENT_IMAGE,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script],
                            "env": _psql_env(ctx, plan, action),
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "32Mi"},
                                "limits": {"memory": "128Mi"},
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]},
                                "readOnlyRootFilesystem": True,
                            },
                        }
                    ],
                },
            },
        },
    }


def db_drop_job(plan: StackPlan, ctx: K8sContext) -> dict[str, Any] | None:
    """The Job that drops the stack's databases (deletion policy Delete); None without databases."""
    return db_job(ctx, plan, "drop") if plan.databases and ctx.database_admin_secret else None
