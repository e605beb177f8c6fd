"""Pure status computation: from the plan and what the cluster shows, the stack's truthful status.

kstatus conventions: ``Ready`` (all deployed services available), ``Reconciling`` (work in progress),
``Stalled`` (cannot progress without a change from the user), each with ``observedGeneration``.
Transition times only move when a condition's status changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
from addonstack.reasons import ConditionReason
from addonstack.render.kubernetes import K8sContext


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


Problem = tuple[ConditionReason, str]  # (reason, message) of a service or the stack
IMAGE_PULL = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}


def pod_problem(pods: Iterable[Mapping[str, Any]]) -> Problem | None:
    """Why a service's pods do not become ready, when a person must act: the first pod that says so."""
    for pod in pods:
        st = pod.get("status") or {}
        for cond in st.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                return ConditionReason.UNSCHEDULABLE, str(cond.get("message") or "no node fits the pod")
        for cs in (st.get("initContainerStatuses") or []) + (st.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            last = (cs.get("lastState") or {}).get("terminated") or {}
            why, msg = waiting.get("reason"), str(waiting.get("message") or "")
            if why in IMAGE_PULL:
                return ConditionReason.IMAGE_PULL_FAILED, f"{cs.get('image', '')}: {msg or why}"
            if last.get("reason") == "OOMKilled":
                return ConditionReason.OOM_KILLED, f"container {cs.get('name')} ran out of memory (OOMKilled)"
            if why == "CrashLoopBackOff":
                code = last.get("exitCode")
                return ConditionReason.CRASH_LOOP_BACK_OFF, f"container {cs.get('name')} keeps exiting (code {code})"
    return None


def workload_problem(obj: Mapping[str, Any]) -> Problem | None:
    """A Deployment's own verdict: pods refused (quota, LimitRange, admission) or a rollout past its deadline."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            msg = str(cond.get("message") or "")
            quota = "exceeded quota" in msg or "forbidden: exceeded" in msg
            return (ConditionReason.QUOTA_EXCEEDED if quota else ConditionReason.FAILED_CREATE), msg
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return ConditionReason.ROLLOUT_FAILED, str(cond.get("message") or "rollout stalled")
    return None


def workload_settled(obj: Mapping[str, Any]) -> bool:
    """Whether a Deployment or StatefulSet is scaled to 0 or has every replica ready on its current template:
    then its pods say nothing the status uses (a pass whose workloads are all settled lists no pods)."""
    spec = obj.get("spec") or {}
    st = obj.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if desired == 0:
        return True
    gen_ok = int(st.get("observedGeneration") or 0) >= int((obj.get("metadata") or {}).get("generation") or 0)
    ready, updated = int(st.get("readyReplicas") or 0), int(st.get("updatedReplicas") or 0)
    return gen_ok and ready >= desired and updated >= desired


def workload_state(
    obj: Mapping[str, Any] | None, waiting_for_db: bool, pods: Iterable[Mapping[str, Any]] = ()
) -> tuple[str, int, int, str, ConditionReason]:
    """(phase, ready, desired, message, reason) of a Deployment or StatefulSet and its pods."""
    if waiting_for_db:
        msg = "waiting for the database setup Job to complete"
        return "WaitingForDatabase", 0, 0, msg, ConditionReason.WAITING_FOR_DATABASE
    if obj is None:
        return "Pending", 0, 0, "workload not created yet", ConditionReason.PROGRESSING
    desired = int((obj.get("spec") or {}).get("replicas", 1))
    ready = int((obj.get("status") or {}).get("readyReplicas") or 0)
    if desired == 0:
        return "Paused", 0, 0, "scaled to 0 replicas", ConditionReason.READY
    if workload_settled(obj):
        return "Ready", ready, desired, "", ConditionReason.READY
    problem = workload_problem(obj) or pod_problem(pods)
    if problem is not None:
        return "Failed", ready, desired, problem[1], problem[0]
    return "Progressing", ready, desired, f"{ready}/{desired} replicas ready", ConditionReason.PROGRESSING


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
        reason=str(reason),
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
            ConditionReason.READY if ready else reason,
            message if not ready else "all services ready",
            generation,
        ),
        _condition(
            prev,
            "Reconciling",
            reconciling,
            reason if reconciling else ConditionReason.IDLE,
            message if reconciling else "",
            generation,
        ),
        _condition(
            prev,
            "Stalled",
            stalled,
            reason if stalled else ConditionReason.IDLE,
            message if stalled else "",
            generation,
        ),
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
    pods: Mapping[str, list[dict[str, Any]]] | None = None,
) -> AddonStackStatus:
    services = []
    for p in plan.services:
        phase, ready, desired, msg, why = workload_state(
            workloads.get(p.id), p.id in waiting_for_db, (pods or {}).get(p.id, [])
        )
        image = ((workloads.get(p.id) or {}).get("spec") or {}).get("template", {}).get("spec", {}).get(
            "containers", [{}]
        )[0].get("image") or p.image
        services.append(
            ServiceStatus(
                id=p.id, phase=phase, ready_replicas=ready, replicas=desired, image=image, message=msg, reason=str(why)
            )
        )
    n_ready = sum(1 for s in services if s.phase in ("Ready", "Paused"))
    all_ready = n_ready == len(services)
    failed = [s for s in services if s.phase == "Failed"]
    reason: ConditionReason
    if db_failed:
        stalled, reason, message = True, ConditionReason.DATABASE_SETUP_FAILED, db_failed
    elif failed:
        stalled, reason = True, ConditionReason(failed[0].reason or ConditionReason.ROLLOUT_FAILED)
        message = "; ".join(f"{s.id}: {s.reason}: {s.message}" for s in failed)[:2000]
    elif not all_ready:
        stalled, reason, message = (
            False,
            ConditionReason.PROGRESSING,
            (
                f"{n_ready}/{len(services)} services ready; waiting for "
                + ", ".join(s.id for s in services if s.phase not in ("Ready", "Paused"))
            ),
        )
    else:
        stalled, reason, message = False, ConditionReason.READY, "all services ready"
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
