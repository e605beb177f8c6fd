"""Level-based reconciliation of one AddonStack: read -> decide -> apply -> prune -> status.

This is the thin executor: it reads the cluster, asks ``decide.py`` (pure) what to do, and does it. The same
function runs on create, update, resume, a child's watch event and the drift timer, and is idempotent:
values already issued are read back from the stack's Secrets and ConfigMaps and fed to the planner, so a
reconcile, a restart or an update never rotates a secret. Unchanged objects are not re-applied (a
record of what was applied and the live object's generation, kept in the stack's ``status.applied``: see
``applied.py``), so a resync of a converged stack writes nothing, and neither does a restarted operator.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lightkube.core.exceptions import ApiError

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import API_GROUP, API_VERSION, BACKUP_KIND, LABEL_STACK
from addonstack.controller import applied as applied_record
from addonstack.controller import claiming, metrics
from addonstack.controller.applycache import ApplyCache
from addonstack.controller.backup_status import pre_upgrade_backup
from addonstack.controller.cluster import CHILD_KINDS, Cluster, gather_all
from addonstack.controller.decide import (
    APPLY_ORDER,
    RETAINED_KINDS,
    Desired,
    Observed,
    Outcome,
    change_kind,
    conflict_lookups,
    decide_actions,
    decide_status,
    desire,
    name_conflicts,
    status_changed,
)
from addonstack.controller.objects import WORKLOAD_KINDS, ObjectKey, labels_of
from addonstack.controller.status import workload_settled
from addonstack.controller.store import ChildStore
from addonstack.controller.upgrade import Waves, pre_upgrade_backup_name
from addonstack.plan.resolve import enforced_level
from addonstack.plan.revision import catalog_revision
from addonstack.reasons import EventReason
from addonstack.render.stack import StackDefaults

__all__ = ["APPLY_ORDER", "RETAINED_KINDS", "WORKLOAD_KINDS", "ApplyCache", "Outcome", "reconcile", "status_changed"]

log = logging.getLogger("addonstack.reconcile")
POD_KINDS = (("v1", "Pod"),)  # listed for the reasons their container states hold; never applied or pruned


async def _apply(cluster: Cluster, obj: dict[str, Any], live: dict[str, Any] | None) -> dict[str, Any]:
    """Server-side apply; for a workload whose pod template a hand edit made unmergeable, reset the template;
    for one of the service's previous stack (its selector names that stack), replace it.

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
        if (live.get("spec") or {}).get("selector") != obj["spec"].get("selector"):
            # A handover: the workload of the service's last holder, whose selector names that stack and cannot
            # change. Its owner is gone or dropped the service, so it would go anyway; until it did, every pass
            # of the new holder failed here, and nothing but the drift timer came back to try again.
            log.info("%s %s/%s: its selector names the service's previous stack; replacing it",
                     obj["kind"], meta["namespace"], meta["name"])  # fmt: skip
            await cluster.delete(obj["apiVersion"], obj["kind"], meta["namespace"], meta["name"])
            return await cluster.apply(obj)
        log.info("%s %s/%s: hand edits conflict with the operator's pod template; resetting it",
                 obj["kind"], meta["namespace"], meta["name"])  # fmt: skip
        await cluster.merge_patch(obj, {"spec": {"template": obj["spec"]["template"]}})
        return await cluster.apply(obj)


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


Named = dict[tuple[str, str, str], dict[str, dict[str, Any]]]  # (apiVersion, kind, namespace) -> name -> object


async def _list_kinds(
    cluster: Cluster, ns: str, stack: str, kinds: tuple[tuple[str, str], ...], named: Named | None
) -> list[dict[str, Any]]:
    """The stack's objects of ``kinds``: by its label, or with ``named`` (a new stack, whose every object is a new
    name) each kind listed once for the whole namespace into ``named``, so the name-conflict check
    (:func:`_existing`) reads the others' objects from there instead of listing the kind again."""
    if named is None:
        return await cluster.list_children(ns, stack, kinds)
    found: list[dict[str, Any]] = []
    for (api_version, kind), objs in zip(
        kinds, await gather_all(*(cluster.list_named(av, k, ns) for av, k in kinds)), strict=True
    ):
        named[(api_version, kind, ns)] = objs
        found += [o for o in objs.values() if labels_of(o).get(LABEL_STACK) == stack]
    return found


def _from_store(
    store: ChildStore | None, status: dict[str, Any] | None, ns: str, stack: str, kinds: tuple[tuple[str, str], ...]
) -> tuple[list[dict[str, Any]], tuple[tuple[str, str], ...]]:
    """The stack's objects of the kinds the watch streams' store holds as the stack's record has them
    (``store.py``, ``applied.holds``), and the kinds left to list."""
    if store is None:
        return [], kinds
    kept: list[dict[str, Any]] = []
    missing: list[tuple[str, str]] = []
    for api_version, kind in kinds:
        objs = store.children(kind, ns, stack)
        if objs is not None and applied_record.holds(status, kind, objs):
            kept += objs
        else:
            missing.append((api_version, kind))
    metrics.child(metrics.STORE_READS, "store").inc(len(kinds) - len(missing))
    metrics.child(metrics.STORE_READS, "listed").inc(len(missing))
    return kept, tuple(missing)


async def _read_children(
    cluster: Cluster,
    body: dict[str, Any],
    kinds: tuple[tuple[str, str], ...],
    named: Named | None,
    store: ChildStore | None,
) -> list[dict[str, Any]]:
    """The stack's children of ``kinds``: what the store holds as recorded, the rest listed (:func:`_list_kinds`)."""
    meta = body["metadata"]
    if named is not None:
        store = None  # a new stack has no record to check the store against
    kept, missing = _from_store(store, body.get("status"), meta["namespace"], meta["name"], kinds)
    listed = await _list_kinds(cluster, meta["namespace"], meta["name"], missing, named) if missing else []
    return kept + listed


async def observe(
    body: dict[str, Any],
    cluster: Cluster,
    defaults: StackDefaults,
    full: bool = True,
    reuse: float = 0.0,
    named: Named | None = None,
    store: ChildStore | None = None,
) -> Observed:
    """What the decision reads first: the children (every kind, or with ``full`` False the kinds the stack's
    record holds: ``applied.kinds_to_list``), the credentials Secret, the database admin Secret's key names
    (when the record shows a database: :func:`_read_admin_keys`), and the Pod Security level the namespace
    enforces. Pods are read after the applies, only when a workload is not settled (:func:`_read_pods`).
    ``reuse``: how old the namespace's quotas, LimitRanges, labels and the admin Secret's key names may be
    (``cluster.SHARED_READ_TTL`` for passes a child's event started, ``cluster.DRIFT_REUSE`` intervals for the
    drift timer's).
    ``named`` (a stack never reconciled): its kinds are listed namespace-wide into it (see :func:`_list_kinds`).
    ``store`` (a child's event pass): kinds the watch streams' store holds as recorded are read from there."""
    ns = body["metadata"]["namespace"]
    ref = ((body.get("spec") or {}).get("credentialsSecretRef") or {}).get("name")
    admin = _admin_secret(body, defaults) if applied_record.records_database(body.get("status")) else None
    kinds = applied_record.kinds_to_list(CHILD_KINDS, body.get("status"), full)
    creds, admin_keys, live, ns_labels, quotas, limit_ranges = await gather_all(
        cluster.secret_data(ns, ref) if ref else asyncio.sleep(0, None),
        cluster.secret_keys(ns, admin, reuse) if admin else asyncio.sleep(0, None),
        _read_children(cluster, body, kinds, named, store),
        cluster.namespace_labels(ns, reuse),
        cluster.list_readable("v1", "ResourceQuota", ns, reuse),
        cluster.list_readable("v1", "LimitRange", ns, reuse),
    )
    keys = (admin_keys or frozenset()) if admin else None  # only the key names of the admin Secret are read
    return Observed(body, live, creds, [], keys, enforced_level(ns_labels), quotas=quotas, limit_ranges=limit_ranges,
                    listed=None if kinds == CHILD_KINDS else kinds)  # fmt: skip


def _admin_secret(body: dict[str, Any], defaults: StackDefaults) -> str | None:
    """The database admin Secret the stack names, or the operator's default."""
    spec = body.get("spec") or {}
    return ((spec.get("database") or {}).get("adminSecretRef") or {}).get("name") or defaults.database_admin_secret


async def _read_admin_keys(
    cluster: Cluster, observed: Observed, desired: Desired | Outcome, defaults: StackDefaults, reuse: float
) -> bool:
    """The admin Secret's key names, when :func:`observe` left them unread (the stack's record holds no database
    setup Job) and the decision turns out to need them: a plan with databases, or a stack that cannot be planned
    (its message names every problem). A stack without databases reads no Secret of the database's admin. True
    when something was read."""
    admin = _admin_secret(observed.body, defaults)
    if admin is None or observed.admin_secret_keys is not None:
        return False
    if isinstance(desired, Desired) and not desired.plan.databases:
        return False
    namespace = observed.body["metadata"]["namespace"]
    observed.admin_secret_keys = (await cluster.secret_keys(namespace, admin, reuse)) or frozenset()
    return True


async def _read_pods(cluster: Cluster, observed: Observed, applied: dict[ObjectKey, dict[str, Any]]) -> None:
    """The stack's pods, read only when a workload is not settled: their container states explain why (a pass
    whose workloads are all ready, such as the drift timer's over a converged stack, lists no pods)."""
    if any(k.kind in WORKLOAD_KINDS and not workload_settled(o) for k, o in applied.items()):
        meta = observed.body["metadata"]
        observed.pods = await cluster.list_children(meta["namespace"], meta["name"], POD_KINDS)


async def _read_unlisted(cluster: Cluster, observed: Observed, desired: Desired, named: Named | None = None) -> bool:
    """A pass that listed only some kinds (an event pass: the recorded ones; a new stack: what a deleted stack
    of its name may have left) reads any desired kind outside them before deciding (see :func:`_list_kinds` for
    ``named``). True when that found objects of the stack, so the decision must be made again (a new stack's
    lists find none, and its plan was made once instead of twice)."""
    if observed.listed is None:
        return False
    wanted = {(key.api_version, key.kind) for key in desired.objects}
    missing = tuple(k for k in CHILD_KINDS if k in wanted and k not in observed.listed)
    if not missing:
        return False
    meta = observed.body["metadata"]
    found = await _list_kinds(cluster, meta["namespace"], meta["name"], missing, named)
    observed.live += found
    observed.listed += missing
    return bool(found)


async def _pre_upgrade_backup(cluster: Cluster, body: dict[str, Any], cat: Catalog) -> dict[str, Any] | None:
    """The AddonStackBackup a move to the operator's revision waits for; read only for a stack with
    ``spec.backup`` whose images are from another revision (a converged stack costs no request)."""
    revision = catalog_revision(cat)
    if not (body.get("spec") or {}).get("backup") or (body.get("status") or {}).get("catalogRevision") == revision:
        return None
    meta = body["metadata"]
    name = pre_upgrade_backup_name(meta["name"], revision)
    return await cluster.get(f"{API_GROUP}/{API_VERSION}", BACKUP_KIND, meta["namespace"], name)


async def _request_backup(cluster: Cluster, desired: Desired, body: dict[str, Any]) -> None:
    """Create the pre-upgrade backup the upgrade decision waits for (the backup handlers take it from there)."""
    if desired.upgrade is None or not desired.upgrade.backup:
        return
    try:
        await cluster.apply(pre_upgrade_backup(desired.upgrade.backup, body))
    except ApiError as exc:  # the condition keeps saying the upgrade waits; the next reconcile tries again
        log.warning("AddonStackBackup %s not created: %s", desired.upgrade.backup, exc.status.message)


async def _existing(
    cluster: Cluster, desired: Desired, observed: Observed, named: Named
) -> dict[ObjectKey, dict[str, Any]]:
    """Live objects with the names this stack would create but does not own yet (none on a converged resync)."""
    existing: dict[ObjectKey, dict[str, Any]] = {}
    for (api_version, kind, ns), keys in conflict_lookups(desired, observed).items():
        if (api_version, kind, ns) in named:  # listed whole already (a new stack)
            found = named[(api_version, kind, ns)]
            existing.update({k: found[k.name] for k in keys if k.name in found})
            continue
        if len(keys) == 1:  # one GET; several names of a kind (a new stack): one LIST of the namespace
            one = await cluster.get(api_version, kind, ns, keys[0].name)
            by_name = {keys[0].name: one} if one is not None else {}
        else:
            by_name = await cluster.list_named(api_version, kind, ns)
        existing.update({k: by_name[k.name] for k in keys if k.name in by_name})
    return existing


async def reconcile(
    body: dict[str, Any],
    cluster: Cluster,
    defaults: StackDefaults,
    cache: ApplyCache,
    catalog: Catalog | None = None,
    waves: Waves | None = None,
    full: bool = True,
    reuse: float = 0.0,
    store: ChildStore | None = None,
) -> Outcome:
    """One pass; ``full`` False: list only the kinds the stack records (event and timer passes); ``reuse``:
    the age up to which reads of the namespace's shared objects may be reused (event and drift passes);
    ``store``: the watch streams' store, for a child's event pass (:func:`observe`)."""
    named: Named | None = None if body.get("status") else {}  # a new stack: its kinds listed namespace-wide
    observed = await observe(body, cluster, defaults, full, reuse, named, store)
    cat = catalog or load_catalog()
    observed.pre_upgrade_backup = await _pre_upgrade_backup(cluster, body, cat)
    desired = desire(observed, defaults, cat, waves=waves)
    more = await gather_all(
        _read_unlisted(cluster, observed, desired, named) if isinstance(desired, Desired) else asyncio.sleep(0, False),
        _read_admin_keys(cluster, observed, desired, defaults, reuse),
    )
    if any(more):
        desired = desire(observed, defaults, cat, waves=waves)  # with what the cluster held of it, complete now
    if isinstance(desired, Outcome):
        return desired
    await _request_backup(cluster, desired, body)
    stack = body["metadata"]["name"]
    applied_record.seed(cache, stack, observed.prev, desired.objects)
    existing = await _existing(cluster, desired, observed, named or {})
    blocked = await claiming.settle(cluster, desired, observed, existing, defaults, cat, reuse)
    if adopted := claiming.adoptable(existing, blocked):  # a handover: read what the last holder issued
        observed.live += adopted
        again = desire(observed, defaults, cat, waves=waves)
        if isinstance(again, Outcome):
            return again
        desired = again
    conflicts = name_conflicts(stack, desired.objects, existing, blocked)
    actions = decide_actions(desired, observed, cache, {sid for sid, _ in conflicts})
    errors: list[str] = []
    applied = dict(actions.unchanged)
    metrics.CACHE_HITS.inc(len(actions.unchanged))
    changed: dict[EventReason, list[str]] = {}
    for batch in actions.batches:
        results = await asyncio.gather(*(_apply(cluster, o, c) for _, o, _, c in batch), return_exceptions=True)
        for (key, obj, digest, live), result in zip(batch, results, strict=True):
            if isinstance(result, ApiError):
                errors.append(_safe_error(obj, result))
                continue
            if isinstance(result, BaseException):
                raise result
            if (why := change_kind(cache, key, digest, live)) is not None:
                changed.setdefault(why, []).append(f"{key.kind}/{key.name}")
            metrics.child(metrics.APPLIED, key.kind).inc()
            cache.record(stack, key, digest, result)
            applied[key] = result
    for key in actions.prune:
        await cluster.delete(key.api_version, key.kind, key.namespace, key.name)
        cache.forget(key)
        metrics.child(metrics.PRUNED, key.kind).inc()
        changed.setdefault(EventReason.PRUNED, []).append(f"{key.kind}/{key.name}")
    if named is None:  # a new stack has no pods yet
        await _read_pods(cluster, observed, applied)
    outcome = decide_status(desired, observed, applied, errors, conflicts)
    if waves is not None:
        waves.observe(f"{observed.body['metadata']['namespace']}/{stack}", outcome.status.get("upgrade"))
    outcome.status[applied_record.FIELD] = applied_record.record_of(cache, desired.objects)
    outcome.events[:0] = [("Normal", why, _summary(why, names)) for why, names in changed.items()]
    return outcome


VERBS = {EventReason.CREATED: "created", EventReason.REPAIRED: "restored", EventReason.PRUNED: "deleted"}


def _summary(why: EventReason, names: list[str]) -> str:
    """``created 9 objects: Secret/gatus-env, ...`` (names only, never contents)."""
    more = f" and {len(names) - 8} more" if len(names) > 8 else ""
    tail = " (deleted or edited outside the operator)" if why is EventReason.REPAIRED else ""
    return f"{VERBS[why]} {len(names)} object(s){tail}: {', '.join(names[:8])}{more}"
