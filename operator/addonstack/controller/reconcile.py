"""Level-based reconciliation of one AddonStack: read -> plan -> render -> apply -> prune -> status.

The same function runs on create, update, resume and the drift timer, and is idempotent: values
already issued are read back from the stack's Secrets and ConfigMaps and fed to the planner, so a
reconcile, a restart or an update never rotates a secret. Unchanged objects are not re-applied (an
in-memory record of what was applied and the live object's generation), so a resync of a converged
stack writes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from lightkube.core.exceptions import ApiError
from pydantic import ValidationError

from addonstack.catalog.loader import Catalog, format_validation_error, load_catalog
from addonstack.constants import API_GROUP, API_VERSION, KIND, LABEL_COMPONENT, LABEL_SERVICE, LABEL_STACK
from addonstack.controller.cluster import Cluster, ObjectKey, decode_secret
from addonstack.controller.status import stack_status, stalled_status
from addonstack.plan.build import PlanError
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import db_job_name, render_kubernetes
from addonstack.render.stack import StackDefaults, effective, plan_stack

log = logging.getLogger("addonstack.reconcile")

RETAINED_KINDS = {"Secret", "PersistentVolumeClaim"}
WORKLOAD_KINDS = {"Deployment", "StatefulSet"}
APPLY_ORDER = [
    "Secret",
    "ConfigMap",
    "Service",
    "EndpointSlice",
    "PersistentVolumeClaim",
    "Job",
    "StatefulSet",
    "Deployment",
    "Middleware",
    "Ingress",
    "NetworkPolicy",
]


@dataclass
class ApplyCache:
    """What this process last applied per object, and the live generation it produced."""

    entries: dict[ObjectKey, tuple[str, str]] = field(default_factory=dict)

    def fresh(self, key: ObjectKey, digest: str, live: dict[str, Any] | None) -> bool:
        return live is not None and self.entries.get(key) == (digest, _marker(live))

    def record(self, key: ObjectKey, digest: str, live: dict[str, Any]) -> None:
        self.entries[key] = (digest, _marker(live))

    def forget_stack(self, namespace: str, names: set[str]) -> None:
        for key in [k for k in self.entries if k.namespace == namespace and k.name in names]:
            del self.entries[key]


def _marker(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    gen = meta.get("generation")
    return f"g{gen}" if gen is not None else f"r{meta.get('resourceVersion')}"


def _digest(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


@dataclass
class Outcome:
    status: dict[str, Any]
    events: list[tuple[str, str, str]]  # (type, reason, message)


def _owner(body: dict[str, Any]) -> dict[str, Any]:
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
        labels = (obj.get("metadata") or {}).get("labels") or {}
        sid = labels.get(LABEL_SERVICE)
        if labels.get(LABEL_COMPONENT) != "addon" or not sid:
            continue
        if obj["kind"] == "Secret":
            out.setdefault(sid, {}).update(decode_secret(obj))
        elif obj["kind"] == "ConfigMap":
            out.setdefault(sid, {}).update(obj.get("data") or {})
    return out


def _others_own_replicas(live: dict[str, Any] | None) -> bool:
    for mf in (live or {}).get("metadata", {}).get("managedFields") or []:
        if mf.get("manager") == "addonstack-operator":
            continue
        spec = (mf.get("fieldsV1") or {}).get("f:spec") or {}
        if "f:replicas" in spec:
            return True
    return False


async def _apply(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Server-side apply; for a workload whose pod template a hand edit made unmergeable, reset the template.

    Apply only takes back the fields we set: after ``kubectl set env`` turned our ``valueFrom`` into a
    ``value`` owned by kubectl, our ``valueFrom`` would sit next to it and the API server rejects the
    object (422), so no later drift correction could land. A merge patch replaces the template's lists
    (containers, env) with ours wholesale; the apply after it takes ownership again.
    """
    try:
        return await cluster.apply(obj)
    except ApiError as exc:
        if exc.status.code != 422 or live is None or obj["kind"] not in WORKLOAD_KINDS:
            raise
        meta = obj["metadata"]
        log.info("%s %s/%s: hand edits conflict with the operator's pod template; resetting it",
                 obj["kind"], meta["namespace"], meta["name"])  # fmt: skip
        await cluster.merge_patch(obj, {"spec": {"template": obj["spec"]["template"]}})
        return await cluster.apply(obj)


def _controlled_by_other(live: dict[str, Any], stack_uid: str) -> bool:
    """True when another controller owns ``live``: it only carries our labels, so it is not ours to prune."""
    refs = (live.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("controller") and r.get("uid") != stack_uid for r in refs)


def _events(prev: dict[str, Any] | None, status: dict[str, Any]) -> list[tuple[str, str, str]]:
    def ready(s: dict[str, Any] | None) -> str | None:
        for c in (s or {}).get("conditions") or []:
            if c.get("type") == "Ready":
                return str(c.get("status"))
        return None

    events: list[tuple[str, str, str]] = []
    if ready(prev) != "True" and ready(status) == "True":
        events.append(("Normal", "Ready", f"all {status.get('summary', '')} services are ready"))
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
            events.append(("Warning", "ServiceSkipped", f"{sid} skipped: {reason}"))
    for sid in before.keys() - after.keys():
        events.append(("Normal", "ServiceResumed", f"{sid} is no longer skipped"))
    return events


def _dump(status: Any) -> dict[str, Any]:
    out: dict[str, Any] = status.model_dump(by_alias=True, exclude_none=True)
    return out


def _safe_error(obj: dict[str, Any], exc: ApiError) -> str:
    """An apply error fit for status: for Secrets only the reason, never the server's message."""
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if obj["kind"] == "Secret":
        return f"{where}: {exc.status.reason or exc.status.code}"
    if obj["kind"] == "Middleware" and exc.status.code == 404:
        return (
            f"{where}: Traefik's CRDs ({obj['apiVersion']}) are not installed; install Traefik, "
            "or use spec.ingress.className nginx or spec.ingress.perServiceHosts"
        )
    return f"{where}: {exc.status.message}"


async def name_conflicts(
    cluster: Cluster, stack: str, desired: dict[ObjectKey, dict[str, Any]], ours: dict[ObjectKey, dict[str, Any]]
) -> list[tuple[str, str]]:
    """(service id, message) for each object this stack would create that already belongs to someone else.

    Children are named by service id (so ``http://qdrant:6333`` works), hence two stacks in one namespace
    that both deploy a service would fight over its objects. Only names not yet ours are looked up, so a
    converged resync costs nothing; the first owner keeps the object and the newcomer is told how to fix it.
    """
    found: list[tuple[str, str]] = []
    missing: dict[tuple[str, str, str], list[ObjectKey]] = {}
    for key in desired:
        if key not in ours:
            missing.setdefault((key.api_version, key.kind, key.namespace), []).append(key)
    existing: dict[ObjectKey, dict[str, Any]] = {}
    for (api_version, kind, ns), keys in missing.items():
        if len(keys) == 1:  # one GET; several names of a kind (a new stack): one LIST of the namespace
            one = await cluster.get(api_version, kind, ns, keys[0].name)
            named = {keys[0].name: one} if one is not None else {}
        else:
            named = await cluster.list_named(api_version, kind, ns)
        existing.update({k: named[k.name] for k in keys if k.name in named})
    for key, obj in desired.items():
        live = existing.get(key)
        if live is None:
            continue
        labels = (live.get("metadata") or {}).get("labels") or {}
        owner = labels.get(LABEL_STACK)
        if owner == stack:
            continue
        sid = obj["metadata"]["labels"].get(LABEL_SERVICE, "")
        whose = f"AddonStack {owner!r}" if owner else "an object not managed by AddonStack"
        found.append(
            (
                sid,
                f"{key.kind}/{key.name} already belongs to {whose} in this namespace; {sid} is not deployed: "
                "remove it from one of the stacks or put this stack in its own namespace",
            )
        )
    return found


async def reconcile(
    body: dict[str, Any],
    cluster: Cluster,
    defaults: StackDefaults,
    cache: ApplyCache,
    catalog: Catalog | None = None,
) -> Outcome:
    cat = catalog or load_catalog()
    meta = body["metadata"]
    name, ns = meta["name"], meta["namespace"]
    generation = int(meta.get("generation") or 0)
    prev = body.get("status") or None
    try:
        spec = AddonStackSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        st = _dump(stalled_status(prev, generation, "InvalidSpec", format_validation_error("spec", exc)))
        return Outcome(st, _events(prev, st))

    warnings: list[str] = []
    cred_data: dict[str, str] = {}
    if spec.credentials_secret_ref:
        found = await cluster.secret_data(ns, spec.credentials_secret_ref.name)
        if found is None:
            warnings.append(f"credentialsSecretRef: Secret {spec.credentials_secret_ref.name!r} not found")
        else:
            cred_data = found
    live = await cluster.list_children(ns, name)
    live_by_key = {ObjectKey.of(o): o for o in live}
    try:
        plan, ctx, options = plan_stack(cat, spec, name, ns, defaults, make_rng(None), cred_data, existing_values(live))
    except PlanError as exc:
        st = _dump(stalled_status(prev, generation, "InvalidSpec", str(exc)))
        return Outcome(st, _events(prev, st))
    objs, render_warnings = render_kubernetes(plan, ctx)
    warnings += plan.warnings + render_warnings

    # Database first: workloads that need it wait until the setup Job has completed.
    waiting: set[str] = set()
    db_failed: str | None = None
    job_name = db_job_name(ctx, plan) if plan.databases else None
    if job_name:
        job = live_by_key.get(ObjectKey("batch/v1", "Job", ns, job_name))
        jst = (job or {}).get("status") or {}
        done = int(jst.get("succeeded") or 0) > 0
        if not done:
            waiting = {n.service_id for n in plan.databases}
            for cond in jst.get("conditions") or []:
                if cond.get("type") == "Failed" and cond.get("status") == "True":
                    db_failed = f"database setup Job {job_name} failed: {cond.get('message', '')}"

    desired: dict[ObjectKey, dict[str, Any]] = {}
    owner = _owner(body)
    for obj in objs:
        sid = obj["metadata"]["labels"].get(LABEL_SERVICE)
        if obj["kind"] in WORKLOAD_KINDS and sid in waiting:
            continue
        if not (ctx.deletion_policy == "Retain" and obj["kind"] in RETAINED_KINDS):
            obj["metadata"]["ownerReferences"] = [owner]
        key = ObjectKey.of(obj)
        declared = spec.overrides is not None and sid in spec.overrides and spec.overrides[sid].replicas is not None
        if obj["kind"] in WORKLOAD_KINDS and not declared and _others_own_replicas(live_by_key.get(key)):
            obj["spec"].pop("replicas", None)  # an HPA or `kubectl scale` owns them; replicas in the stack win
        desired[key] = obj

    conflicts = await name_conflicts(cluster, name, desired, live_by_key)
    if conflicts:
        blocked = {sid for sid, _ in conflicts}
        desired = {k: o for k, o in desired.items() if o["metadata"]["labels"].get(LABEL_SERVICE) not in blocked}

    errors: list[str] = []
    applied: dict[ObjectKey, dict[str, Any]] = {}
    ordered = sorted(desired.items(), key=lambda kv: APPLY_ORDER.index(kv[1]["kind"]))
    for _, of_kind in itertools.groupby(ordered, key=lambda kv: kv[1]["kind"]):
        # Kinds go in APPLY_ORDER (Secrets before the workloads that read them); objects of one kind do not
        # depend on each other, so they are applied together: a new stack waits for 11 round trips, not 30.
        todo: list[tuple[ObjectKey, dict[str, Any], str, dict[str, Any] | None]] = []
        for key, obj in of_kind:
            digest = _digest(obj)
            current = live_by_key.get(key)
            if cache.fresh(key, digest, current):
                assert current is not None
                applied[key] = current
                continue
            todo.append((key, obj, digest, current))
        results = await asyncio.gather(*(_apply(cluster, o, c) for _, o, _, c in todo), return_exceptions=True)
        for (key, obj, digest, _), result in zip(todo, results, strict=True):
            if isinstance(result, ApiError):
                errors.append(_safe_error(obj, result))
                continue
            if isinstance(result, BaseException):
                raise result
            cache.record(key, digest, result)
            applied[key] = result

    for key, obj in live_by_key.items():
        if key in desired:
            continue
        kind = key.kind
        if kind in RETAINED_KINDS and ctx.deletion_policy == "Retain":
            continue  # data and issued secrets outlive the service (re-adding it reuses them)
        if kind in WORKLOAD_KINDS and (obj["metadata"].get("labels") or {}).get(LABEL_SERVICE) in waiting:
            continue
        if kind == "Job" and "db-drop" in key.name:
            continue
        if _controlled_by_other(obj, owner["uid"]):
            continue  # e.g. the EndpointSlices kube-controller-manager makes for our Services (they copy our labels)
        await cluster.delete(key.api_version, kind, ns, key.name)
        cache.entries.pop(key, None)

    workloads = {
        (o["metadata"].get("labels") or {}).get(LABEL_SERVICE, ""): o
        for k, o in applied.items()
        if k.kind in WORKLOAD_KINDS
    }
    status = stack_status(plan, ctx, effective(ctx, options), workloads, waiting, db_failed, warnings, prev, generation)
    if conflicts:
        errors = [msg for _, msg in conflicts] + errors
    if errors:
        reason = "NameConflict" if conflicts else "ApplyFailed"
        status = status.model_copy(
            update={"conditions": stalled_status(prev, generation, reason, "; ".join(errors)[:2000]).conditions}
        )
    st = _dump(status)
    return Outcome(st, _events(prev, st))


def status_changed(prev: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    return (prev or {}) != new
