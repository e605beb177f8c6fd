"""Pure status computation: from the plan and what the cluster shows, the stack's truthful status.

kstatus conventions: ``Ready`` (all deployed services available), ``Reconciling`` (work in progress),
``Stalled`` (cannot progress without a change from the user), each with ``observedGeneration``.
Transition times only move when a condition's status changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from addonstack.plan.build import StackPlan
from addonstack.plan.spec import (
    AddonStackStatus,
    Condition,
    Effective,
    RouteStatus,
    ServiceStatus,
    SkippedStatus,
)
from addonstack.render.kubernetes import K8sContext


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def workload_state(obj: Mapping[str, Any] | None, waiting_for_db: bool) -> tuple[str, int, int, str]:
    """(phase, ready, desired, message) of a Deployment or StatefulSet."""
    if waiting_for_db:
        return "WaitingForDatabase", 0, 0, "waiting for the database setup Job to complete"
    if obj is None:
        return "Pending", 0, 0, "workload not created yet"
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(st.get("readyReplicas") or 0)
    if desired == 0:
        return "Paused", 0, 0, "scaled to 0 replicas"
    gen_ok = int(st.get("observedGeneration") or 0) >= int((obj.get("metadata") or {}).get("generation") or 0)
    updated = int(st.get("updatedReplicas") or 0)
    for cond in st.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "Failed", ready, desired, cond.get("message", "rollout stalled")
    if gen_ok and ready >= desired and updated >= desired:
        return "Ready", ready, desired, ""
    return "Progressing", ready, desired, f"{ready}/{desired} replicas ready"


def _condition(
    prev: Mapping[str, Mapping[str, Any]],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
) -> Condition:
    value = "True" if status else "False"
    old = prev.get(type_)
    since = old.get("lastTransitionTime") if old and old.get("status") == value else None
    return Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=since or now(),
        observed_generation=generation,
    )


def conditions(
    prev_status: Mapping[str, Any] | None,
    generation: int,
    *,
    ready: bool,
    reconciling: bool,
    stalled: bool,
    reason: str,
    message: str,
) -> list[Condition]:
    prev = {c.get("type", ""): c for c in (prev_status or {}).get("conditions") or []}
    return [
        _condition(
            prev,
            "Ready",
            ready,
            "Ready" if ready else reason,
            message if not ready else "all services ready",
            generation,
        ),
        _condition(
            prev,
            "Reconciling",
            reconciling,
            reason if reconciling else "Idle",
            message if reconciling else "",
            generation,
        ),
        _condition(prev, "Stalled", stalled, reason if stalled else "Idle", message if stalled else "", generation),
    ]


def stalled_status(
    prev_status: Mapping[str, Any] | None, generation: int, reason: str, message: str
) -> AddonStackStatus:
    """Status for a spec that cannot be acted on; keeps the last known services and routes."""
    prev = AddonStackStatus.model_validate(prev_status or {}) if prev_status else AddonStackStatus()
    return prev.model_copy(
        update={
            "observed_generation": generation,
            "conditions": conditions(
                prev_status,
                generation,
                ready=False,
                reconciling=False,
                stalled=True,
                reason=reason,
                message=message,
            ),
        }
    )


def stack_status(
    plan: StackPlan,
    ctx: K8sContext,
    eff: Effective,
    workloads: Mapping[str, Mapping[str, Any] | None],
    waiting_for_db: set[str],
    db_failed: str | None,
    warnings: list[str],
    prev_status: Mapping[str, Any] | None,
    generation: int,
) -> AddonStackStatus:
    services = []
    for p in plan.services:
        phase, ready, desired, msg = workload_state(workloads.get(p.id), p.id in waiting_for_db)
        image = ((workloads.get(p.id) or {}).get("spec") or {}).get("template", {}).get("spec", {}).get(
            "containers", [{}]
        )[0].get("image") or p.image
        services.append(
            ServiceStatus(id=p.id, phase=phase, ready_replicas=ready, replicas=desired, image=image, message=msg)
        )
    n_ready = sum(1 for s in services if s.phase in ("Ready", "Paused"))
    all_ready = n_ready == len(services)
    failed = [s.id for s in services if s.phase == "Failed"]
    if db_failed:
        stalled, reason, message = True, "DatabaseSetupFailed", db_failed
    elif failed:
        stalled, reason, message = True, "RolloutFailed", f"rollout failed: {', '.join(failed)}"
    elif not all_ready:
        stalled, reason, message = (
            False,
            "Progressing",
            (
                f"{n_ready}/{len(services)} services ready; waiting for "
                + ", ".join(s.id for s in services if s.phase not in ("Ready", "Paused"))
            ),
        )
    else:
        stalled, reason, message = False, "Ready", "all services ready"
    routes = []
    for r in plan.routes:
        url = None
        address = plan.public.get(r.service_id) if r.protocol == "http" and ctx.ingress.enabled else None
        if address is not None:
            url = f"{address.url}/"  # the URL the service was told, as the Ingress serves it
        routes.append(RouteStatus(service_id=r.service_id, protocol=r.protocol, port=r.port, path=r.path, url=url))
    return AddonStackStatus(
        observed_generation=generation,
        conditions=conditions(
            prev_status,
            generation,
            ready=all_ready and not stalled,
            reconciling=not all_ready and not stalled,
            stalled=stalled,
            reason=reason,
            message=message,
        ),
        summary=f"{n_ready}/{len(services)}",
        skipped_count=len(plan.skipped),
        services=services,
        skipped=[
            SkippedStatus(
                service_id=s.service_id,
                reason=s.reason,
                details=s.details,
                required_credentials=s.required_credentials,
            )
            for s in plan.skipped
        ],
        routes=routes,
        warnings=warnings,
        effective=eff,
        generated_secret_keys=sorted(f"{p.id}.{v.key}" for p in plan.services for v in p.service.env if v.generate),
    )
