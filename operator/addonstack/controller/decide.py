"""The pure half of reconciliation: from what the cluster shows and the stack's spec, what to do and what to say.

``reconcile.py`` reads the cluster, calls these functions and carries out their answer. Nothing here does IO,
so every decision (what to apply, what to prune, which status and events follow) is tested without a cluster
(tests/unit/test_decide.py). Three steps, because two answers need a look at the cluster in between:

1. :func:`desire` - spec + live children -> the objects the stack should have (or a stalled verdict).
2. :func:`decide_actions` - desired + live + apply cache -> which objects to apply (in kind order) and prune.
3. :func:`decide_status` - desired + what the applies returned + errors -> status and Events.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from addonstack.catalog.loader import Catalog, format_validation_error
from addonstack.catalog.model import PodSecurityLevel
from addonstack.constants import API_GROUP, API_VERSION, KIND, LABEL_COMPONENT, LABEL_SERVICE, LABEL_STACK
from addonstack.controller import claims
from addonstack.controller.applycache import ApplyCache, digest
from addonstack.controller.backup_status import backup_cron_jobs, carry_backup_status, quiesced_services
from addonstack.controller.objects import WORKLOAD_KINDS, ObjectKey, decode_secret, labels_of
from addonstack.controller.status import stack_status, stalled_status
from addonstack.controller.upgrade import (
    UpgradeDecision,
    Waves,
    backup_gate,
    decide_upgrade,
    recorded_images,
    running_images,
    with_upgrade_status,
)
from addonstack.plan.build import PlanError, StackPlan
from addonstack.plan.models import StackOptions
from addonstack.plan.resources import quota_problems, summary, totals
from addonstack.plan.revision import catalog_revision, pin_images
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec, Effective, StackResources
from addonstack.plan.validate import check_stack
from addonstack.reasons import ConditionReason, EventReason
from addonstack.render.kubernetes import K8sContext, db_job_name, render_kubernetes
from addonstack.render.stack import StackDefaults, effective, plan_stack, platform

RETAINED_KINDS = {"Secret", "PersistentVolumeClaim"}
APPLY_ORDER = [
    "Secret",
    "ConfigMap",
    "Service",
    "EndpointSlice",
    "PersistentVolumeClaim",
    "Job",
    "StatefulSet",
    "Deployment",
    "PodDisruptionBudget",
    "CronJob",
    "Middleware",
    "Ingress",
    "NetworkPolicy",
]

Event = tuple[str, str, str]  # (type, reason, message)


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[Event]


@dataclass
class Observed:
    """What the executor read before deciding: the stack, its children, and its credentials Secret."""

    body: dict[str, Any]
    live: list[dict[str, Any]]
    credentials: dict[str, str] | None = None  # None: no credentialsSecretRef, or its Secret was not found
    pods: list[dict[str, Any]] = field(default_factory=list)  # read for reasons only, never applied or pruned
    admin_secret_keys: frozenset[str] | None = None  # keys of the database admin Secret (None: not read)
    pod_security: PodSecurityLevel | None = None  # the namespace's enforce label (None: absent or unreadable)
    # The namespace's ResourceQuotas and LimitRanges (None: not readable, so not checked).
    quotas: list[dict[str, Any]] | None = None
    limit_ranges: list[dict[str, Any]] | None = None
    pre_upgrade_backup: dict[str, Any] | None = None  # the AddonStackBackup an upgrade waits for (upgrade.py)
    listed: tuple[tuple[str, str], ...] | None = None  # child kinds read into live (None: every kind)

    @property
    def by_key(self) -> dict[ObjectKey, dict[str, Any]]:
        return {ObjectKey.of(o): o for o in self.live}

    @property
    def generation(self) -> int:
        return int(self.body["metadata"].get("generation") or 0)

    @property
    def prev(self) -> dict[str, Any] | None:
        return self.body.get("status") or None


@dataclass
class Desired:
    """The objects the stack should have now, and what the status needs to know about them."""

    spec: AddonStackSpec
    plan: StackPlan
    ctx: K8sContext
    options: StackOptions
    objects: dict[ObjectKey, dict[str, Any]]
    waiting: set[str]  # services whose workloads wait for the database setup Job
    db_failed: str | None
    warnings: list[str]
    upgrade: UpgradeDecision | None = None  # which images the stack keeps and what status says (upgrade.py)
    resources: StackResources | None = None


@dataclass
class Actions:
    """What the executor does: apply ``batches`` in order (objects of one batch together), then prune."""

    batches: list[list[tuple[ObjectKey, dict[str, Any], str, dict[str, Any] | None]]]
    unchanged: dict[ObjectKey, dict[str, Any]]
    prune: list[ObjectKey]


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    meta = body["metadata"]
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def existing_values(live: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Values already issued, from the stack's per-service Secrets and ConfigMaps."""
    out: dict[str, dict[str, str]] = {}
    for obj in live:
        labels = labels_of(obj)
        sid = labels.get(LABEL_SERVICE)
        if labels.get(LABEL_COMPONENT) != "addon" or not sid:
            continue
        if obj["kind"] == "Secret":
            out.setdefault(sid, {}).update(decode_secret(obj))
        elif obj["kind"] == "ConfigMap":
            out.setdefault(sid, {}).update(obj.get("data") or {})
    return out


def others_own_replicas(live: dict[str, Any] | None) -> bool:
    for mf in (live or {}).get("metadata", {}).get("managedFields") or []:
        if mf.get("manager") == "addonstack-operator":
            continue
        spec = (mf.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in spec:
            return True
    return False


def controlled_by_other(live: dict[str, Any], stack_uid: str) -> bool:
    """True when another controller owns ``live``: it only carries our labels, so it is not ours to prune."""
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") != stack_uid for r in refs)


def _stalled(
    observed: Observed,
    reason: ConditionReason,
    message: str,
    warnings: list[str] | None = None,
    resources: StackResources | None = None,
    eff: Effective | None = None,
) -> Outcome:
    status = stalled_status(observed.prev, observed.generation, reason, message)
    if warnings is not None:
        status = status.model_copy(update={"warnings": warnings})
    if resources is not None:
        status = status.model_copy(update={"resources": resources, "effective": eff})
    st = dump(status)
    return Outcome(st, transition_events(observed.prev, st))


def _database_job(
    plan: StackPlan, ctx: K8sContext, live: dict[ObjectKey, dict[str, Any]]
) -> tuple[set[str], str | None]:
    """(services waiting for the database setup Job, the Job's failure message)."""
    job_name = db_job_name(ctx, plan) if plan.databases else None
    if not job_name:
        return set(), None
    jst = (live.get(ObjectKey("batch/v1", "Job", ctx.namespace, job_name)) or {}).get("status") or {}
    if int(jst.get("succeeded") or 0) > 0:
        return set(), None
    failed = None
    for cond in jst.get("conditions") or []:
        if cond.get("type") == "Failed" and cond.get("status") == "True":
            failed = f"database setup Job {job_name} failed: {cond.get('message', '')}"
    return {n.service_id for n in plan.databases}, failed


def desire(
    observed: Observed, defaults: StackDefaults, cat: Catalog, now: datetime | None = None, waves: Waves | None = None
) -> Desired | Outcome:
    """The objects the stack should have, or a stalled :class:`Outcome` for a spec that cannot be planned.

    The upgrade policy decides first which images the stack keeps: ``cat`` with those pinned is what is planned.
    """
    body = observed.body
    meta = body["metadata"]
    name, ns = meta["name"], meta["namespace"]
    try:
        spec = AddonStackSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        return _stalled(observed, ConditionReason.INVALID_SPEC, format_validation_error("spec", exc))
    warnings: list[str] = []
    if spec.credentials_secret_ref and observed.credentials is None:
        warnings.append(f"credentialsSecretRef: Secret {spec.credentials_secret_ref.name!r} not found")
    live = observed.by_key
    w = waves or Waves()
    blocked = w.blocked(f"{ns}/{name}", catalog_revision(cat)) if waves is not None else None
    workloads = {labels_of(o).get(LABEL_SERVICE, ""): o for k, o in live.items() if k.kind in WORKLOAD_KINDS}
    running = running_images(cat, spec, workloads) if not (observed.prev or {}).get("images") else None
    when = now or datetime.now(UTC)
    gate = backup_gate(spec, name, catalog_revision(cat), observed.pre_upgrade_backup)
    upgrade = decide_upgrade(spec, observed.prev, cat, when, observed.generation, w.deadline, blocked, running, gate)
    cat = pin_images(cat, upgrade.pins)
    try:
        creds, issued = observed.credentials or {}, existing_values(observed.live)
        level = observed.pod_security
        planned = plan_stack(cat, spec, name, ns, defaults, make_rng(None), creds, issued, pod_security=level)
        plan, ctx, options = planned.plan, planned.context, planned.options
    except PlanError as exc:
        return _stalled(observed, ConditionReason.INVALID_SPEC, str(exc))
    # The one rule set (``addonstack validate`` prints the same words): nothing is written for a stack that
    # cannot work; what runs from an earlier spec keeps running.
    if problems := check_stack(cat, spec, plan, platform(ctx, observed.admin_secret_keys)):
        message = "; ".join(p.message for p in problems)[:2000]
        return _stalled(observed, problems[0].reason, message, warnings + plan.warnings)
    objs, render_warnings = render_kubernetes(plan, ctx)
    objs += backup_cron_jobs(plan, ctx, spec, defaults.backup_image, body)
    quiesced = quiesced_services(body)
    warnings += plan.warnings + render_warnings
    # The namespace's quota and LimitRanges: nothing is written that the API server would refuse.
    want = totals(objs, observed.limit_ranges or [])
    resources = summary(want)
    if found := quota_problems(objs, observed.live, observed.quotas or [], observed.limit_ranges or [], want):
        message = "; ".join(p.message for p in found)[:2000]
        return _stalled(observed, found[0].reason, message, warnings, resources, effective(ctx, options))
    # Database first: workloads that need it wait until the setup Job has completed.
    waiting, db_failed = _database_job(plan, ctx, live)
    desired: dict[ObjectKey, dict[str, Any]] = {}
    owner = owner_reference(body)
    for obj in objs:
        sid = labels_of(obj).get(LABEL_SERVICE)
        if obj["kind"] in WORKLOAD_KINDS and sid in waiting:
            continue
        if not (ctx.deletion_policy == "Retain" and obj["kind"] in RETAINED_KINDS):
            obj["metadata"]["ownerReferences"] = [owner]
        key = ObjectKey.of(obj)
        declared = spec.overrides is not None and sid in spec.overrides and spec.overrides[sid].replicas is not None
        if obj["kind"] in WORKLOAD_KINDS and sid in quiesced:
            obj["spec"]["replicas"] = 0  # a backup or restore Job reads or writes its volumes now
        elif obj["kind"] in WORKLOAD_KINDS and not declared and others_own_replicas(live.get(key)):
            obj["spec"].pop("replicas", None)  # an HPA or `kubectl scale` owns them; replicas in the stack win
        desired[key] = obj
    return Desired(spec, plan, ctx, options, desired, waiting, db_failed, warnings, upgrade, resources)


def conflict_lookups(desired: Desired, observed: Observed) -> dict[tuple[str, str, str], list[ObjectKey]]:
    """Names this stack would create that are not yet its own, by (apiVersion, kind, namespace)."""
    ours = observed.by_key
    missing: dict[tuple[str, str, str], list[ObjectKey]] = {}
    for key in desired.objects:
        if key not in ours:
            missing.setdefault((key.api_version, key.kind, key.namespace), []).append(key)
    return missing


def name_conflicts(
    stack: str,
    desired: dict[ObjectKey, dict[str, Any]],
    existing: dict[ObjectKey, dict[str, Any]],
    claimed: Mapping[str, str] | None = None,
) -> list[tuple[str, str]]:
    """(service id, message) for each service this stack may not write: another stack holds its claim
    (``claimed``: service id -> holder, controller/claims.py), or a desired object's name is taken by something
    AddonStack does not manage (never taken over).

    Children are named by service id (so ``http://qdrant:6333`` works), hence two stacks in one namespace
    that both deploy a service want the same names; the claim gives all of them to one stack. Objects of a
    service this stack holds that still carry another stack's label are adopted (a handover). Without
    ``claimed`` (no claims read), any object labelled by another stack is a conflict.
    """
    held = claimed or {}
    names: dict[str, list[str]] = {}
    for key, obj in desired.items():
        names.setdefault(labels_of(obj).get(LABEL_SERVICE, ""), []).append(f"{key.kind}/{key.name}")
    found = [(sid, claims.conflict_message(sid, holder, names.get(sid, ()))) for sid, holder in held.items()]
    for key, obj in desired.items():
        sid = labels_of(obj).get(LABEL_SERVICE, "")
        live = existing.get(key)
        if live is None or sid in held:
            continue
        owner = labels_of(live).get(LABEL_STACK)
        if owner == stack or (owner and claimed is not None):
            continue
        whose = f"AddonStack {owner!r}" if owner else "an object not managed by AddonStack"
        found.append(
            (
                sid,
                f"{key.kind}/{key.name} already belongs to {whose} in this namespace; {sid} is not deployed: "
                "remove it from one of the stacks or put this stack in its own namespace",
            )
        )
    return found


def decide_actions(
    desired: Desired, observed: Observed, cache: ApplyCache, blocked: set[str] | frozenset[str] = frozenset()
) -> Actions:
    """Objects to apply (skipping those the cache shows unchanged) in kind order, and live objects to prune.

    Kinds go in APPLY_ORDER (Secrets before the workloads that read them); objects of one kind do not depend
    on each other, so the executor applies one batch together: a new stack waits for 11 round trips, not 30.
    Services in ``blocked`` (name conflicts) get nothing applied.
    """
    live = observed.by_key
    wanted = {k: o for k, o in desired.objects.items() if labels_of(o).get(LABEL_SERVICE) not in blocked}
    ordered = sorted(wanted.items(), key=lambda kv: APPLY_ORDER.index(kv[1]["kind"]))
    batches: list[list[tuple[ObjectKey, dict[str, Any], str, dict[str, Any] | None]]] = []
    unchanged: dict[ObjectKey, dict[str, Any]] = {}
    for _, of_kind in itertools.groupby(ordered, key=lambda kv: kv[1]["kind"]):
        batch = []
        for key, obj in of_kind:
            d = digest(obj)
            current = live.get(key)
            if current is not None and cache.fresh(key, d, current):
                unchanged[key] = current
            else:
                batch.append((key, obj, d, current))
        if batch:
            batches.append(batch)
    return Actions(batches, unchanged, _prunable(desired, observed))


def change_kind(cache: ApplyCache, key: ObjectKey, digest: str, live: dict[str, Any] | None) -> EventReason | None:
    """Why an object is applied: created (never seen), repaired (ours, unchanged, but the live one was deleted
    or edited by someone else), or None for an update of our own (the spec changed, or after a restart)."""
    entry = cache.entries.get(key)
    if live is None and entry is None:
        return EventReason.CREATED
    if entry is not None and entry[0] == digest:
        return EventReason.REPAIRED
    return None


def _prunable(desired: Desired, observed: Observed) -> list[ObjectKey]:
    retain = desired.ctx.deletion_policy == "Retain"
    uid = observed.body["metadata"]["uid"]
    prune: list[ObjectKey] = []
    for key, obj in observed.by_key.items():
        if key in desired.objects:
            continue
        if key.kind in RETAINED_KINDS and retain:
            continue  # data and issued secrets outlive the service (re-adding it reuses them)
        if key.kind in WORKLOAD_KINDS and labels_of(obj).get(LABEL_SERVICE) in desired.waiting:
            continue
        if key.kind == "Job" and "db-drop" in key.name:
            continue
        if controlled_by_other(obj, uid):
            continue  # e.g. the EndpointSlices kube-controller-manager makes for our Services (they copy our labels)
        prune.append(key)
    return prune


def decide_status(
    desired: Desired,
    observed: Observed,
    applied: dict[ObjectKey, dict[str, Any]],
    errors: list[str],
    conflicts: list[tuple[str, str]],
) -> Outcome:
    """The stack's status and the Events its change deserves, from what the applies returned."""
    prev, generation = observed.prev, observed.generation
    workloads = {labels_of(o).get(LABEL_SERVICE, ""): o for k, o in applied.items() if k.kind in WORKLOAD_KINDS}
    pods: dict[str, list[dict[str, Any]]] = {}
    for pod in observed.pods:
        pods.setdefault(labels_of(pod).get(LABEL_SERVICE, ""), []).append(pod)
    status = stack_status(
        desired.plan,
        desired.ctx,
        effective(desired.ctx, desired.options),
        workloads,
        desired.waiting,
        desired.db_failed,
        desired.warnings,
        prev,
        generation,
        pods,
    )
    status = status.model_copy(update={"resources": desired.resources})
    errors = [msg for _, msg in conflicts] + errors
    if errors:
        reason = ConditionReason.NAME_CONFLICT if conflicts else ConditionReason.APPLY_FAILED
        status = status.model_copy(
            update={"conditions": stalled_status(prev, generation, reason, "; ".join(errors)[:2000]).conditions}
        )
    if desired.upgrade is not None:
        images = recorded_images([(p.id, p.service.image_ref) for p in desired.plan.services])
        status = with_upgrade_status(status, desired.upgrade, images, prev)
    st = carry_backup_status(prev, dump(status))
    upgraded = list(desired.upgrade.events) if desired.upgrade is not None and not errors else []
    return Outcome(st, upgraded + transition_events(prev, st))


def transition_events(prev: dict[str, Any] | None, status: dict[str, Any]) -> list[Event]:
    """Events for meaningful transitions only: became Ready, a new stall reason, a service skipped or back."""

    def ready(s: dict[str, Any] | None) -> str | None:
        for c in (s or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                return str(c.get("status"))
        return None

    events: list[Event] = []
    if ready(prev) != "True" and ready(status) == "True":
        events.append(("Normal", EventReason.READY, f"all {status.get('summary', '')} services are ready"))
    stalled = next((c for c in status.get("conditions", []) if c["type"] == "Stalled"), None)
    was = next((c for c in (prev or {}).get("conditions", []) if c.get("type") == "Stalled"), None)
    if (
        stalled
        and stalled["status"] == "True"
        and (not was or was.get("status") != "True" or was.get("reason") != stalled["reason"])
    ):
        events.append(("Warning", stalled["reason"], stalled["message"]))
    before = {s["serviceId"]: s["reason"] for s in (prev or {}).get("skipped", [])}
    after = {s["serviceId"]: s["reason"] for s in status.get("skipped", [])}
    for sid, reason in after.items():
        if before.get(sid) != reason:
            events.append(("Warning", EventReason.SERVICE_SKIPPED, f"{sid} skipped: {reason}"))
    for sid in before.keys() - after.keys():
        events.append(("Normal", EventReason.SERVICE_RESUMED, f"{sid} is no longer skipped"))
    return events


def dump(status: Any) -> dict[str, Any]:
    out: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True)
    return out


def status_changed(prev: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    return (prev or {}) != new
