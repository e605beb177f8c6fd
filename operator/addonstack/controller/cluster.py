"""The one module that talks to the Kubernetes API (through lightkube's async client).

Everything above it works on plain dicts. Writes go through server-side apply with one field
manager, and every write honours ``dry_run``. Secret values pass through here but are never logged.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

from aiolimiter import AsyncLimiter
from lightkube import AsyncClient, codecs, operators
from lightkube.core.exceptions import ApiError
from lightkube.core.resource import NamespacedResource
from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import (
    Generic,
    GenericGlobalResource,
    GenericNamespacedResource,
    create_namespaced_resource,
)
from lightkube.resources.core_v1 import Namespace
from lightkube.types import CascadeType, OnErrorAction, OnErrorResult, PatchType

from addonstack.constants import (
    API_GROUP,
    API_VERSION,
    BACKUP_KIND,
    BACKUP_PLURAL,
    FIELD_MANAGER,
    KIND,
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_STACK,
    MANAGED_BY,
    PLURAL,
    RESTORE_KIND,
    RESTORE_PLURAL,
    TRAEFIK_API_VERSION,
)
from addonstack.controller.echo import OwnWrites
from addonstack.controller.objects import decode_secret
from addonstack.controller.retries import api_errors, with_retries
from addonstack.controller.transport import kube_client

log = logging.getLogger("addonstack.cluster")

AddonStackResource = create_namespaced_resource(API_GROUP, API_VERSION, KIND, PLURAL)
DATA_RESOURCES = {
    BACKUP_PLURAL: create_namespaced_resource(API_GROUP, API_VERSION, BACKUP_KIND, BACKUP_PLURAL),
    RESTORE_PLURAL: create_namespaced_resource(API_GROUP, API_VERSION, RESTORE_KIND, RESTORE_PLURAL),
}
# Registered so Traefik Middlewares can be applied and listed; clusters without Traefik's CRDs answer 404.
_TRAEFIK_GROUP, _TRAEFIK_VERSION = TRAEFIK_API_VERSION.split("/")
TraefikMiddleware = create_namespaced_resource(_TRAEFIK_GROUP, _TRAEFIK_VERSION, "Middleware", "middlewares")

# Kinds a stack owns, listed for pruning and status (apiVersion, kind).
CHILD_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("discovery.k8s.io/v1", "EndpointSlice"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
    (TRAEFIK_API_VERSION, "Middleware"),
)
NAMESPACE_LABELS_TTL = 30.0  # seconds a namespace's labels are reused (one GET per namespace, not per reconcile)
# Seconds a pass that a child's event started may reuse what another pass read of the namespace (quotas,
# LimitRanges, claim Leases, the database admin Secret's key names). A new stack's children change a dozen
# times in its first seconds; each change re-evaluates the stack, and these reads would be repeated for
# nothing. Passes for a create, an edit or a resume always read them fresh and refresh what is kept. A minute,
# not 15 s: in a burst a stack's readiness pass comes 10 to 60 s after its create pass, and read these again.
SHARED_READ_TTL = 60.0
# The drift timer's passes over Ready stacks reuse them (and the namespace's labels) up to 1.5 intervals old
# (``handlers.on_timer``; a stack that is not Ready reads them fresh at every timer, so a raised quota is seen at
# the next one): no event announces a changed quota, LimitRange, claim Lease or namespace label, so the timer is
# what sees them, and within 1.5 intervals is the bound ``fairness.resync_due`` already gives drift. With one
# stack per namespace every other timer pass of a stack reads them: 4 of the 10 requests of a converged stack's
# pass, where the timer's passes are most of a large operator's steady load.
DRIFT_REUSE = 1.5  # drift intervals
RECENT_LIMIT = 4096  # entries kept of reused reads; those older than any caller reuses go when it is reached
RECENT_MAX_AGE = max(NAMESPACE_LABELS_TTL, SHARED_READ_TTL)
MAX_IN_FLIGHT = 24  # list and apply requests at once (bench/operator.py: more only adds timeouts here)
OPTIONAL_KINDS = {(TRAEFIK_API_VERSION, "Middleware")}  # CRD-backed: absent on clusters without Traefik


@functools.cache
def _model(api_version: str, kind: str) -> Any:
    """The kind as lightkube's plain-dict resource, with the API paths of its typed model (or its own generic
    resource, for the CRD-backed kinds). The rest of the operator works on dicts: with the typed models every
    request converted our dict to a model and every answer back to a dict (msgspec ``convert`` and
    ``to_builtins``: about 3 % of the operator's CPU in a burst of new stacks). A dict resource goes to and from
    JSON directly, and keeps every field the API server sends, where a model drops those it does not know."""
    model = resource_registry.load(api_version, kind)
    if model is None or issubclass(model, Generic):
        return model
    base = GenericNamespacedResource if issubclass(model, NamespacedResource) else GenericGlobalResource
    return type(kind, (base,), {"_api_info": model._api_info})


def _claim_kept(lease: dict[str, Any]) -> dict[str, Any]:
    """What the claims read of a Lease (and what is kept of the namespace's list for event passes to reuse)."""
    keep = ("name", "namespace", "labels", "annotations", "resourceVersion")
    return {"metadata": {k: v for k, v in (lease.get("metadata") or {}).items() if k in keep}}


def _to_dict(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    return result


T = TypeVar("T")


async def gather_all(*awaitables: Awaitable[Any]) -> list[Any]:
    """:func:`asyncio.gather`, except that when one fails the others are cancelled and awaited before the
    error is raised. Plain gather leaves them running: at a stop they then meet the closed client, and kopf,
    which collects every task still running when it stops, re-raised that as a crash of the operator."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class Cluster:
    """Thin async wrapper: get, list by label, apply, delete, status patch, events."""

    def __init__(self, client: AsyncClient, dry_run: bool = False, qps: float = 0, burst: int = 0) -> None:
        self.client = client
        self.dry_run = dry_run
        # Client-side rate limit (like client-go's --kube-api-qps/--kube-api-burst): ``burst`` requests at once,
        # then ``qps`` per second; 0 turns it off.
        self.limiter = AsyncLimiter(max(burst, 1), max(burst, 1) / qps) if qps > 0 else None
        self.writes = 0  # requests that change state; benchmarks and tests read it
        # Requests in flight from this process: reconciles apply and list in parallel, and an API server
        # that is slow to answer must not see hundreds at once (each would hit the client's 10 s timeout).
        self.inflight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._unreadable: set[str] = set()  # kinds the operator may not list (logged once)
        # Reads reused for a while (namespace labels, and what SHARED_READ_TTL covers): key -> (read at, value).
        self._recent: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._longest = 0.0  # the longest max_age a caller asked for: entries younger are kept
        self.own = OwnWrites()  # what our writes produced, so their watch events are known as ours (echo.py)

    async def _send(self, call: Callable[[], Awaitable[T]]) -> T:
        """One request: within the rate limit and the in-flight bound, retried with backoff on 429 and 5xx
        (``retries.py``)."""
        return await with_retries(lambda: self._once(call))

    async def _once(self, call: Callable[[], Awaitable[T]]) -> T:
        if self.limiter is not None:
            await self.limiter.acquire()
        async with self.inflight:
            with api_errors():
                return await call()

    @classmethod
    def from_kubeconfig(cls, path: str | None = None, dry_run: bool = False, qps: float = 0, burst: int = 0) -> Self:
        return cls(kube_client(path, field_manager=FIELD_MANAGER), dry_run, qps, burst)  # over aiohttp (transport.py)

    async def close(self) -> None:
        await self.client.close()

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            obj = await self._send(lambda: self.client.get(_model(api_version, kind), name, namespace=namespace))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return _to_dict(obj)

    async def namespace_labels(self, namespace: str, max_age: float = 0.0) -> dict[str, str] | None:
        """The namespace's labels (its Pod Security level), cached briefly (``NAMESPACE_LABELS_TTL``, or
        ``max_age`` when longer); None when they cannot be read.

        The grant is ``get`` on ``namespaces``; without it (a 403) the operator works as before, without the
        Pod Security check, and says so once in the log."""
        key = ("namespace-labels", namespace)

        async def fetch() -> dict[str, str] | None:
            try:
                obj = await self._send(lambda: self.client.get(Namespace, namespace))
            except ApiError as exc:
                if exc.status.code not in (403, 404):
                    raise
                if key not in self._recent:
                    log.info("cannot read namespace %s (no get on namespaces): Pod Security levels not checked",
                             namespace)  # fmt: skip
                return None
            return dict(obj.metadata.labels or {}) if obj.metadata is not None else {}

        return await self._reuse(key, max(NAMESPACE_LABELS_TTL, max_age), fetch)

    async def _reuse(self, key: tuple[str, ...], max_age: float, fetch: Callable[[], Awaitable[T]]) -> T:
        """``fetch()``, or its value from a read less than ``max_age`` seconds ago (0: always read). Every read
        is remembered, so a pass that must read fresh also refreshes what the next event passes reuse."""
        hit = self.kept(key, max_age)
        if hit is not None:
            value: T = hit[1]  # a None read (no such Secret, an unreadable namespace) is reused as well
            return value
        value = await fetch()
        self.keep(key, value)
        return value

    def kept(self, key: tuple[str, ...], max_age: float) -> tuple[float, Any] | None:
        """(when, what) was kept under ``key``, if less than ``max_age`` seconds ago."""
        hit = self._recent.get(key)
        self._longest = max(self._longest, max_age)
        return hit if max_age > 0 and hit is not None and asyncio.get_running_loop().time() - hit[0] < max_age else None

    def keep(self, key: tuple[str, ...], value: Any) -> None:
        """Keep ``value`` under ``key`` for passes that may reuse it (:meth:`kept`)."""
        now = asyncio.get_running_loop().time()
        if len(self._recent) >= RECENT_LIMIT:
            keep = max(RECENT_MAX_AGE, self._longest)
            self._recent = {k: v for k, v in self._recent.items() if now - v[0] < keep}
        self._recent[key] = (now, value)

    def forget(self, key: tuple[str, ...]) -> None:
        self._recent.pop(key, None)

    async def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        obj = await self.get("v1", "Secret", namespace, name)
        return decode_secret(obj) if obj is not None else None

    async def secret_keys(self, namespace: str, name: str, max_age: float = 0.0) -> frozenset[str] | None:
        """The key names of a Secret (None when it does not exist); its values are not kept."""

        async def fetch() -> frozenset[str] | None:
            data = await self.secret_data(namespace, name)
            return frozenset(data) if data is not None else None

        return await self._reuse(("secret-keys", namespace, name), max_age, fetch)

    async def _list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Objects of one kind in a namespace; none when the kind is an optional CRD the cluster lacks."""

        async def collect() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            async for obj in self.client.list(_model(api_version, kind), namespace=namespace, labels=labels):
                d = _to_dict(obj)
                d.setdefault("apiVersion", api_version)
                d.setdefault("kind", kind)
                found.append(d)
            return found

        try:
            return await self._send(collect)
        except ApiError as exc:
            if exc.status.code == 404 and (api_version, kind) in OPTIONAL_KINDS:
                return []  # the CRD is not installed, so nothing of that kind exists
            raise

    async def list_children(
        self, namespace: str, stack: str, kinds: Iterable[tuple[str, str]] = CHILD_KINDS
    ) -> list[dict[str, Any]]:
        # One LIST per kind, all in flight together (a reconcile waits for one round trip, not eleven).
        per_kind = await gather_all(*(self._list(av, kind, namespace, {LABEL_STACK: stack}) for av, kind in kinds))
        return [obj for found in per_kind for obj in found]

    async def list_leases(self, namespace: str, label: str) -> list[dict[str, Any]]:
        """Leases of a namespace that carry ``label`` (the shard Leases, controller/shards.py)."""
        return await self._list("coordination.k8s.io/v1", "Lease", namespace, {label: operators.exists()})

    async def list_readable(
        self, api_version: str, kind: str, namespace: str, max_age: float = 0.0
    ) -> list[dict[str, Any]] | None:
        """Every object of a kind in a namespace, or None when the operator may not list them (RBAC): what
        the caller cannot read it does not check (logged once per kind)."""
        try:
            return await self._reuse(
                ("list", api_version, kind, namespace), max_age, lambda: self._list(api_version, kind, namespace)
            )
        except ApiError as exc:
            if exc.status.code != 403:
                raise
            if kind not in self._unreadable:
                self._unreadable.add(kind)
                log.warning("cannot list %s in %s (%s); stacks are not checked against them", kind, namespace,
                            exc.status.message)  # fmt: skip
            return None

    async def list_claims(self, namespace: str, max_age: float = 0.0) -> list[dict[str, Any]]:
        """The service-name claim Leases of a namespace (controller/claims.py): the metadata the claims read
        (name, labels, annotations, resourceVersion), since the list is kept for event passes to reuse."""
        labels = {LABEL_COMPONENT: "claim", LABEL_MANAGED_BY: MANAGED_BY}

        async def fetch() -> list[dict[str, Any]]:
            return [_claim_kept(o) for o in await self._list("coordination.k8s.io/v1", "Lease", namespace, labels)]

        return await self._reuse(("claims", namespace), max_age, fetch)

    async def release_claim(self, namespace: str, name: str) -> None:
        """Delete a claim Lease this stack no longer needs."""
        self._recent.pop(("claims", namespace), None)
        await self.delete("coordination.k8s.io/v1", "Lease", namespace, name)

    async def list_stacks(self, namespace: str) -> list[dict[str, Any]]:
        """Every AddonStack of a namespace (claims compare them; controller/claims.py)."""
        return await self._list(f"{API_GROUP}/{API_VERSION}", KIND, namespace)

    async def write_claim(self, lease: dict[str, Any]) -> bool:
        """Create a claim Lease, or replace it when it carries the resourceVersion read; False when another
        writer came first (409), so the caller reads again instead of overwriting its decision."""
        self.writes += 1
        key = ("claims", lease["metadata"]["namespace"])
        try:
            obj = codecs.from_dict(lease)
            if lease["metadata"].get("resourceVersion"):
                written = await self._send(lambda: self.client.replace(obj, field_manager=FIELD_MANAGER))
            else:
                written = await self._send(lambda: self.client.create(obj, field_manager=FIELD_MANAGER))
        except BaseException as exc:
            self._recent.pop(key, None)  # lost to another writer, or unknown: the next pass reads the list
            if isinstance(exc, ApiError) and exc.status.code in (404, 409):
                return False
            raise
        self._remember_claim(key, _claim_kept(_to_dict(written)))
        return True

    def _remember_claim(self, key: tuple[str, str], lease: dict[str, Any]) -> None:
        """Put a Lease this process wrote, as the server answered it, into the kept claim list of its namespace
        (when there is one; it keeps its read time, so what others wrote is read again within the same age).
        The event passes of a new stack reuse that list: they listed again the Leases its create pass had just
        written, one LIST per new stack. A claim is still never decided on a reused list (``claiming.settle``)."""
        hit = self._recent.get(key)
        if hit is None:
            return
        name = lease["metadata"].get("name")
        rest = [o for o in hit[1] if o["metadata"].get("name") != name]
        self._recent[key] = (hit[0], [*rest, lease])

    async def list_named(self, api_version: str, kind: str, namespace: str) -> dict[str, dict[str, Any]]:
        """Every object of a kind in a namespace, by name (one request instead of a GET per name)."""
        return {d["metadata"]["name"]: d for d in await self._list(api_version, kind, namespace)}

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply with our field manager; conflicts with other managers are forced only
        for fields we own by design (the caller drops fields another manager owns)."""
        self.writes += 1
        meta = obj["metadata"]
        with self.own.sending(obj["kind"], meta.get("namespace") or "", meta["name"]):
            result = await self._send(
                lambda: self.client.apply(
                    _model(obj["apiVersion"], obj["kind"])(obj),
                    meta["name"],
                    namespace=meta.get("namespace"),
                    field_manager=FIELD_MANAGER,
                    force=True,
                    dry_run=self.dry_run,
                )
            )
            return self._wrote(_to_dict(result))

    def _wrote(self, result: dict[str, Any]) -> dict[str, Any]:
        if not self.dry_run:
            self.own.wrote(result)
        return result

    async def merge_patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch (lists replaced whole) of the live object named like ``obj``, as our manager."""
        self.writes += 1
        meta = obj["metadata"]
        with self.own.sending(obj["kind"], meta.get("namespace") or "", meta["name"]):
            result = await self._send(lambda: self.client.patch(
                _model(obj["apiVersion"], obj["kind"]), meta["name"], patch, namespace=meta.get("namespace"),
                patch_type=PatchType.MERGE, field_manager=FIELD_MANAGER, dry_run=self.dry_run,
            ))  # fmt: skip
            return self._wrote(_to_dict(result))

    async def get_stack(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The AddonStack itself (None when it is gone)."""
        try:
            obj = await self._send(lambda: self.client.get(AddonStackResource, name, namespace=namespace))
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise
        return _to_dict(obj)

    async def stacks_without(self, label: str, namespace: str) -> AsyncIterator[dict[str, Any]]:
        """Every AddonStack that lacks ``label``, now and as they come (a watch; retried when it breaks)."""

        def retry(exc: Exception, count: int) -> OnErrorResult:
            log.warning("watch of unlabelled AddonStacks broke (%s); retrying", exc.__class__.__name__)
            return OnErrorResult(OnErrorAction.RETRY, sleep=min(30.0, 2.0 * count))

        watch = self.client.watch(
            AddonStackResource, namespace=namespace, labels={label: operators.not_exists()}, on_error=retry
        )
        async for op, obj in watch:
            if op in ("ADDED", "MODIFIED"):
                yield _to_dict(obj)

    async def label_stack(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Merge labels into the AddonStack's metadata (a stack that is gone is not an error)."""
        self.writes += 1
        try:
            await self._send(lambda: self.client.patch(
                AddonStackResource, name, {"metadata": {"labels": labels}}, namespace=namespace,
                patch_type=PatchType.MERGE, field_manager=FIELD_MANAGER,
            ))  # fmt: skip
        except ApiError as exc:
            if exc.status.code != 404:
                raise

    async def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> str | None:
        """Merge-patch the stack's status subresource (a key set to None is removed); its new resourceVersion."""
        self.writes += 1
        written = await self._send(lambda: self.client.patch(
            AddonStackResource.Status, name, {"status": status}, namespace=namespace,
            patch_type=PatchType.MERGE, field_manager=FIELD_MANAGER,
        ))  # fmt: skip
        return (_to_dict(written).get("metadata") or {}).get("resourceVersion")

    async def patch_data_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status of an AddonStackBackup or AddonStackRestore."""
        self.writes += 1
        await self._send(lambda: self.client.patch(
            DATA_RESOURCES[plural].Status, name, {"status": status}, namespace=namespace,
            patch_type=PatchType.MERGE, field_manager=FIELD_MANAGER,
        ))  # fmt: skip

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        if self.dry_run:
            log.info("dry-run: would delete %s/%s in %s", kind, name, namespace)
            return
        self.writes += 1
        with self.own.sending(kind, namespace, name):
            try:
                await self._send(
                    lambda: self.client.delete(
                        _model(api_version, kind), name, namespace=namespace, cascade=CascadeType.BACKGROUND
                    )
                )
            except ApiError as exc:
                if exc.status.code != 404:
                    raise
                return
            self.own.deleted(kind, namespace, name)

    async def event(self, involved: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """Record a Kubernetes Event on the AddonStack (messages never contain secret values)."""
        if self.dry_run:
            return
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1000],
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "source": {"component": "addonstack-operator"},
            "reportingComponent": "addonstack-operator",
        }
        self.writes += 1
        try:
            await self.client.create(codecs.from_dict(body))
        except ApiError as exc:  # events are best effort
            log.debug("event not recorded: %s", exc.status.message)
