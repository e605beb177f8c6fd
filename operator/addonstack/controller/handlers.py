"""kopf handlers. Each is a few lines: take the stack's lock, call :func:`reconcile`, patch status.

The stack's own changes (create, spec update, resume) run a reconcile at once; a child's change runs one
through ``watch.py`` (debounced per stack); the timer only repairs drift that no event announced. Status is
patched inside the stack's lock by whichever run computed it, so an older run can never overwrite the
status of a newer one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import kopf

from addonstack.catalog.loader import load_catalog
from addonstack.constants import API_GROUP, FIELD_MANAGER, LABEL_STACK, PLURAL
from addonstack.controller import admission, backup_handlers, bodies, childwatch, echo, fairness, metrics, watch
from addonstack.controller.applied import recorded_unchanged, status_patch, unwatched_kinds
from addonstack.controller.backup_flow import Lock, Publish
from addonstack.controller.cluster import CHILD_KINDS, DRIFT_REUSE, SHARED_READ_TTL, Cluster
from addonstack.controller.finalize import finalize
from addonstack.controller.kopfstate import GenerationDiffBase, UnmarkedProgressStorage
from addonstack.controller.reconcile import ApplyCache, reconcile
from addonstack.controller.settings import OperatorSettings
from addonstack.controller.shards import BUCKETS, Handover
from addonstack.controller.store import ChildStore
from addonstack.controller.upgrade import Waves
from addonstack.plan.revision import catalog_revision
from addonstack.reasons import ConditionReason

log = logging.getLogger("addonstack.handlers")
RESOURCE = (API_GROUP, PLURAL)
# Seconds before kopf retries a handler that raised (an API server restarting, a CRD's storage still
# initialising): kopf's default of 60 s would leave a stack unattended for a minute after a blip.
RETRY_BACKOFF = 5.0


@dataclass
class State:
    """Process-wide operator state, handed to kopf as its memo."""

    settings: OperatorSettings
    cluster: Cluster | None = None
    cache: ApplyCache = field(default_factory=ApplyCache)  # dry runs only (others keep it in status.applied)
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)  # by "namespace/name"
    last_pass: dict[str, float] = field(default_factory=dict)  # by "namespace/name": when its last pass ended
    last_full: dict[str, float] = field(default_factory=dict)  # ... its last pass that listed every recorded kind
    # kopf's live body of each stack (kopf replaces its content with each event) and the resourceVersion this
    # process's last status patch gave the stack: a pass may start from the first when it carries the second.
    live: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    written: dict[str, str] = field(default_factory=dict)
    reconciles: int = 0
    # kopf runs async handlers of all objects at once; this bounds how many reconciles talk to the API server
    # together, so 200 new stacks are served a few at a time instead of all timing out together.
    slots: fairness.PrioritySlots | None = None
    debouncer: watch.Debouncer | None = None
    child_events: echo.ChildEvents | None = None  # which child events are worth a pass (controller/echo.py)
    store: ChildStore | None = None  # the children as the operator's own streams last saw them (store.py)
    handover: Handover | None = None  # sharded: this process's Lease and the buckets it must leave alone
    background: list[asyncio.Task[None]] = field(default_factory=list)
    waves: Waves = field(default_factory=Waves)  # upgrades in flight and stopped waves (controller/upgrade.py)

    def __post_init__(self) -> None:
        self.waves = Waves(self.settings.max_concurrent_upgrades, self.settings.upgrade_deadline)

    def slot(self, rank: int) -> contextlib.AbstractAsyncContextManager[None]:
        """One of ``max_workers`` reconcile slots; edits of existing stacks are served before creates."""
        if self.slots is None:
            self.slots = fairness.PrioritySlots(self.settings.max_workers)
        return self.slots.slot(rank)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self.locks.setdefault(f"{namespace}/{name}", asyncio.Lock())


def _state(memo: Any) -> State:
    state: State = memo.state
    return state


async def startup(settings: kopf.OperatorSettings, memo: Any, **_: Any) -> None:
    state = _state(memo)
    settings.persistence.finalizer = f"{API_GROUP}/finalizer"
    # What kopf writes on a stack, and why so little: controller/kopfstate.py.
    settings.persistence.progress_storage = UnmarkedProgressStorage(prefix=API_GROUP)
    settings.persistence.diffbase_storage = GenerationDiffBase()
    settings.posting.enabled = False  # our own Events, for meaningful transitions only
    settings.execution.max_workers = state.settings.max_workers
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    # The first LIST of each watched kind comes in pages (kopf >= 1.45): one response of every pod, Secret and
    # ConfigMap of 1,000 stacks at once is what a restart used to hold in memory together (docs/performance.md).
    settings.watching.chunk_size = state.settings.list_chunk_size or None
    settings.networking.request_timeout = 60
    # A namespaced operator gets no ClusterRole, so it must not list Namespaces or watch CRDs cluster-wide
    # (kopf would get 403s and warn): it serves the exact namespaces given, CRDs as found at start.
    settings.scanning.disabled = bool(state.settings.namespaces)
    if state.settings.peering_name:
        settings.peering.name = state.settings.peering_name
        settings.peering.priority = state.settings.priority or 0
        settings.peering.mandatory = True
        settings.peering.standalone = False
    else:
        settings.peering.standalone = True
    if (hook := state.settings.webhook) is not None:
        settings.admission.server = kopf.WebhookServer(
            addr=hook.addr, host=hook.host, port=hook.port,
            certfile=hook.certfile, pkeyfile=hook.pkeyfile, cafile=hook.cafile,
        )  # fmt: skip
        settings.admission.managed = hook.config_name
    state.cluster = Cluster.from_kubeconfig(
        state.settings.kubeconfig, dry_run=state.settings.dry_run, qps=state.settings.qps, burst=state.settings.burst
    )
    state.child_events = echo.ChildEvents(state.cluster.own)
    if (shard := state.settings.shard) is not None:
        settings.watching.label_selectors[RESOURCE] = shard.selector()
        state.handover = Handover(shard, state.settings.lease_namespace)
        state.background.append(asyncio.create_task(state.handover.run(state.cluster)))
        for ns in state.settings.namespaces or ("",):
            state.background.append(asyncio.create_task(state.handover.label_new_stacks(state.cluster, ns)))
    # Server-side selection: only labelled children reach the process (not every Secret, Pod and ConfigMap of
    # the cluster); a shard drops the other shards' stacks' events (watch.on_child_event).
    if state.settings.peering_name:  # kopf watches the children (watch.register)
        for group, version, plural, _kind in watch.WATCHED:
            settings.watching.label_selectors[group, version, plural] = LABEL_STACK
    else:  # the operator's own streams (childwatch.py) select by the same label
        shard, events, debounce = state.settings.shard, state.child_events, debouncer(memo)
        state.store = ChildStore()
        state.background.append(asyncio.create_task(childwatch.follow_children(
            state.settings.kubeconfig, state.settings.namespaces, state.settings.list_chunk_size,
            lambda type_, body: watch.on_child_event(type_, body, debounce, events, shard), state.store,
        )))  # fmt: skip
    metrics.serve(state.settings.metrics_bind_address)
    # Parsed here, before the watches start, so the first stack after a start or a failover does not wait for it.
    load_catalog()
    log.info(
        "addonstack operator started (field manager %s, dry_run=%s, namespaces=%s, peering=%s, priority=%s)",
        FIELD_MANAGER,
        state.settings.dry_run,
        ",".join(state.settings.namespaces) or "*",
        state.settings.peering_name or "-",
        state.settings.priority if state.settings.peering else "-",
    )
    if state.settings.shard is not None:
        log.info("shard %d of %d: %d of %d buckets", state.settings.shard.index, state.settings.shard.count,
                 len(state.settings.shard.buckets()), BUCKETS)  # fmt: skip


async def cleanup(memo: Any, **_: Any) -> None:
    state = _state(memo)
    for task in state.background:
        task.cancel()
    await asyncio.gather(*state.background, return_exceptions=True)
    if state.handover is not None and state.cluster is not None:
        await state.handover.release(state.cluster)
    if state.debouncer is not None:
        await state.debouncer.close()
    # The client is closed by run.operator once kopf has returned: handlers and their tasks may still be
    # running here, and kopf re-raises whatever they meet on a closed client as a crash of the operator.


async def publish(
    state: State,
    raw: Mapping[str, Any],
    cause: fairness.Cause = fairness.Cause.CHILD,
    full: bool = False,
    reuse: float = 0.0,
    drift: bool = False,
    light: bool = False,
    store: ChildStore | None = None,
) -> None:
    """Reconcile one stack and patch its status (when it changed) and Events, all under the stack's lock.

    ``full``: list every child kind (create, edit, resume: the passes that find leftovers of kinds the stack no
    longer records); other passes list the kinds of its record (``applied.kinds_to_list``). ``reuse``: see
    ``reconcile.reconcile`` (a child's event pass passes ``cluster.SHARED_READ_TTL``). ``drift``: the timer's
    pass, with ``raw`` kopf's live body of the stack (see :func:`_timer_body`); ``light``: it only checks the
    kinds no watch reports on, and goes on to a full pass when they moved (:func:`_unwatched_unchanged`).
    ``store``: a child's event pass reads the children the watch streams keep (``store.py``)."""
    assert state.cluster is not None
    meta = raw["metadata"]
    if state.handover is not None and not state.handover.may_serve(meta["namespace"], meta["name"]):
        log.debug("%s/%s: an older shard configuration still serves it; the drift timer comes back", *_key(meta))
        return
    rank = fairness.priority(cause, has_status=bool(raw.get("status")) or cause is fairness.Cause.CHILD)
    key = "/".join(_key(meta))
    async with state.lock(meta["namespace"], meta["name"]), state.slot(rank):
        last = state.last_pass.get(key)
        if drift and not fairness.resync_due(last, time.monotonic(), state.settings.drift_interval, busy=False):
            return  # another pass ran while this one waited for the lock or a slot: it did the timer's work
        # kopf's body may be older than the status another run just wrote (and a watch event brings only
        # the stack's name): read the stack again, unless a copy known to be current can stand in (bodies.py),
        # so status transitions and Events are computed once.
        fresh = _known_body(state, key, raw, cause, drift)
        fresh = fresh or await state.cluster.get_stack(meta["namespace"], meta["name"])
        if fresh is None or (fresh.get("metadata") or {}).get("deletionTimestamp"):
            return
        raw = fresh
        if light and await _unwatched_unchanged(state.cluster, raw):
            state.last_pass[key] = time.monotonic()
            return
        started = time.perf_counter()
        # The stack's status.applied is the record of what was applied; a cache per reconcile keeps nothing in
        # memory between reconciles. A dry run writes no status, so it keeps its record in the process.
        cache = state.cache if state.settings.dry_run else ApplyCache()
        try:
            outcome = await reconcile(
                raw,
                state.cluster,
                state.settings.defaults,
                cache,
                waves=state.waves,
                full=full,
                reuse=reuse,
                store=store,
            )
        except Exception:
            metrics.child(metrics.RECONCILES, "error").inc()
            raise
        finally:
            metrics.RECONCILE_SECONDS.observe(time.perf_counter() - started)
        state.reconciles += 1
        state.last_pass[key] = state.last_full[key] = time.monotonic()
        metrics.child(metrics.RECONCILES, metrics.result_of(outcome.status)).inc()
        metrics.observe_stack(meta["namespace"], meta["name"], outcome.status)
        if state.settings.dry_run:
            # Children went through the API server's dry run: a status would describe objects that do not exist.
            log.info("dry-run: %s/%s planned (%s services); status left unchanged", meta.get("namespace"),
                     meta.get("name"), outcome.status.get("summary", ""))  # fmt: skip
            return
        prev = dict(raw.get("status") or {})
        if outcome.status != prev:
            patch = status_patch(prev, outcome.status)  # keys the new status no longer has are dropped
            written = await state.cluster.patch_status(meta["namespace"], meta["name"], patch)
            state.written[key] = written or ""
        for type_, reason, message in outcome.events:
            await state.cluster.event(raw, type_, reason, message)


def _key(meta: Mapping[str, Any]) -> tuple[str, str]:
    return meta["namespace"], meta["name"]


def _known_body(
    state: State, key: str, raw: Mapping[str, Any], cause: fairness.Cause, drift: bool
) -> dict[str, Any] | None:
    """The stack ``key`` as this process already has it, when that can stand in for a GET (``bodies.py``); None:
    read it."""
    if drift:
        return bodies.timer_body(raw)
    if cause is fairness.Cause.CREATE:
        return bodies.created_body(raw, key in state.written)
    return bodies.written_body(state.live.get(key), state.written.get(key))


async def _unwatched_unchanged(cluster: Cluster, stack: Mapping[str, Any]) -> bool:
    """The drift timer's light check (``fairness.light_drift``): the stack's recorded children of the kinds no
    watch reports on are all there as the operator left them, and none was added. One LIST per such kind (none
    for a stack without Ingresses or budgets), no plan; False: a full pass follows."""
    kinds = unwatched_kinds(CHILD_KINDS, stack.get("status"), watch.watched)
    if kinds is None:
        return False
    meta = stack["metadata"]
    live = await cluster.list_children(meta["namespace"], meta["name"], kinds) if kinds else []
    return recorded_unchanged(stack["status"], kinds, live)


async def _run(body: kopf.Body, memo: Any, cause: fairness.Cause, full: bool) -> None:
    await publish(_state(memo), dict(body), cause, full)


async def on_create(body: kopf.Body, memo: Any, **_: Any) -> None:
    await _run(body, memo, fairness.Cause.CREATE, full=True)


async def on_update(body: kopf.Body, memo: Any, **_: Any) -> None:
    await _run(body, memo, fairness.Cause.EDIT, full=True)


async def on_resume(body: kopf.Body, memo: Any, **_: Any) -> None:
    await _run(body, memo, fairness.Cause.RESYNC, full=True)


async def on_timer(body: kopf.Body, memo: Any, **_: Any) -> None:
    if body.metadata.get("deletionTimestamp"):
        return
    state, key = _state(memo), f"{body.metadata.namespace}/{body.metadata.name}"
    busy = key in state.locks and state.locks[key].locked()
    if not fairness.resync_due(state.last_pass.get(key), time.monotonic(), state.settings.drift_interval, busy):
        return
    # A Ready stack's pass may reuse the namespace's quotas, LimitRanges, Leases and labels (cluster.DRIFT_REUSE);
    # one that waits for a person (a quota to raise, a Secret to create) reads them fresh at every timer.
    ready, interval = _ready(body), state.settings.drift_interval
    reuse = DRIFT_REUSE * interval if ready else 0.0
    light = fairness.light_drift(ready and _steady(body), state.last_full.get(key), time.monotonic(), interval)
    await publish(state, body, fairness.Cause.RESYNC, full=False, reuse=reuse, drift=True, light=light)


def _steady(stack: Mapping[str, Any]) -> bool:
    """Whether nothing but drift could move the stack between its full passes: it runs the operator's catalog
    revision with no upgrade rolling, queued or waiting for a window, and reads no Secret of the user's
    (``credentialsSecretRef``: no watch reports its edits, the next pass takes them in)."""
    spec, status = stack.get("spec") or {}, stack.get("status") or {}
    if spec.get("credentialsSecretRef") or status.get("upgrade") or status.get("availableRevision"):
        return False
    return bool(status.get("catalogRevision") == catalog_revision(load_catalog()))


def _ready(stack: Mapping[str, Any]) -> bool:
    return _true_condition(stack, "Ready") is not None


async def on_delete(body: kopf.Body, memo: Any, **_: Any) -> None:
    state = _state(memo)
    assert state.cluster is not None
    async with state.lock(body.metadata.namespace or "", body.metadata.name or ""):
        await finalize(dict(body), state.cluster, state.settings.defaults)


async def on_stack_event(type: str | None, body: kopf.Body, memo: Any, **_: Any) -> None:
    """Keeps kopf's live body of each stack (:func:`_known_body`); a stack that is gone (with or without a
    finalizer) leaves nothing in memory."""
    state = _state(memo)
    ns, name = body.metadata.namespace or "", body.metadata.name or ""
    key = f"{ns}/{name}"
    if type != "DELETED":
        state.live[key] = body  # a reference: kopf keeps this body for the stack's timer anyway
        return
    for kept in (state.live, state.written, state.locks, state.last_pass, state.last_full):
        kept.pop(key, None)
    state.cache.forget_stack(ns, name)
    metrics.observe_stack(ns, name, None)
    debouncer(memo).cancel(ns, name)
    if state.cluster is None:
        return
    # The services it held pass to the next stacks now, not at their next timer (best effort: the timer still does).
    try:
        waiting = [o for o in await state.cluster.list_stacks(ns) if stalled_reason(o) == ConditionReason.NAME_CONFLICT]
    except Exception as exc:
        log.info("stacks of %s not re-evaluated after %s was deleted: %s", ns, name, exc)
        return
    for other in waiting:
        debouncer(memo).schedule(ns, other["metadata"]["name"])


def stalled_reason(stack: dict[str, Any]) -> str | None:
    cond = _true_condition(stack, "Stalled")
    return str(cond.get("reason")) if cond is not None else None


def _true_condition(stack: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    """The stack's condition of ``type_`` when its status is True."""
    for cond in (stack.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cast(Mapping[str, Any], cond)
    return None


def debouncer(memo: Any) -> watch.Debouncer:
    state = _state(memo)
    if state.debouncer is None:

        async def run(namespace: str, name: str) -> None:
            stack = {"metadata": {"namespace": namespace, "name": name}}
            await publish(state, stack, reuse=SHARED_READ_TTL, store=state.store)

        state.debouncer = watch.Debouncer(run)
    return state.debouncer


def data_context(memo: Any) -> tuple[Cluster, Publish, Lock]:
    """What the backup and restore handlers use of the operator's state: the client, a reconcile, the locks."""
    state = _state(memo)
    assert state.cluster is not None

    async def reconcile_now(stack: dict[str, Any]) -> None:
        await publish(state, stack)

    return state.cluster, reconcile_now, state.lock


def build_registry(settings: OperatorSettings) -> kopf.OperatorRegistry:
    """All handlers, with the drift interval and deletion default taken from ``settings``."""
    reg = kopf.OperatorRegistry()

    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kopf logs in by itself only when pykube or kubernetes is installed; we use lightkube.
        if settings.kubeconfig:
            os.environ["KUBECONFIG"] = settings.kubeconfig
            return kopf.login_with_kubeconfig(**kwargs)
        return kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)

    kopf.on.login(registry=reg)(login)
    default_policy = settings.defaults.deletion_policy

    def needs_finalizer(spec: kopf.Spec, **_: Any) -> bool:
        return (spec.get("deletionPolicy") or default_policy) == "Delete"

    kopf.on.startup(registry=reg)(startup)
    kopf.on.cleanup(registry=reg)(cleanup)
    kopf.on.create(*RESOURCE, backoff=RETRY_BACKOFF, registry=reg)(on_create)
    kopf.on.update(*RESOURCE, field="spec", backoff=RETRY_BACKOFF, registry=reg)(on_update)
    kopf.on.resume(*RESOURCE, backoff=RETRY_BACKOFF, registry=reg)(on_resume)
    kopf.timer(
        *RESOURCE,
        interval=settings.drift_interval,
        initial_delay=min(5.0, settings.drift_interval),
        sharp=False,
        backoff=min(RETRY_BACKOFF, settings.drift_interval),  # a failed resync (API down) retries soon too
        registry=reg,
    )(on_timer)
    kopf.on.delete(*RESOURCE, when=needs_finalizer, backoff=RETRY_BACKOFF, registry=reg)(on_delete)
    kopf.on.event(*RESOURCE, registry=reg)(on_stack_event)
    if settings.peering_name:
        watch.register(reg, debouncer, settings.shard, lambda memo: _state(memo).child_events)
    backup_handlers.register(reg, settings, data_context)
    if settings.webhook is not None:
        admission.register(reg, *RESOURCE)
    return reg
