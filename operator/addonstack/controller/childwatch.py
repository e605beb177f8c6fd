"""The children's watch streams of a standalone operator, read without kopf's per-object machinery.

Every event of a stack's children only feeds ``echo.ChildEvents`` and the debouncer (``watch.on_child_event``),
which drop nine in ten of them. Through kopf each event still went through a worker task of its own object,
kopf's batching, per-object logging and handler invocation: in a burst of new stacks (ten thousand child
events for 200 stacks) that was about a quarter of the operator's CPU (py-spy, docs/performance.md, where
the burst's throughput against a raw client is the figure it weighs on).

Here each watched kind (per served namespace, or cluster-wide) is one LIST and then one WATCH from the list's
resourceVersion, as client-go's reflectors do: objects decode to plain dicts (no model per pod), the stream
resumes from the last version seen when the server ends it, a 410 Gone (the version is compacted away) lists
again, and any other error retries the same after a random exponential wait. The LIST's objects are
``listed`` (type None), as kopf's initial listing was: every stack gets its pass from kopf's resume handler.
What the streams say of the kinds ``store.py`` keeps goes there first, so a child's event pass reads it instead
of listing again.

With kopf peering the children stay with kopf (``watch.register``): a paused operator must not act on
events, and the pause is kopf's alone.

The streams have a client of their own (:func:`stream_client`), with no bound on connections, as kopf's has:
each stream holds a connection for as long as it runs (8 cluster-wide, 8 per namespace for a namespaced
operator), and in the operator's client, whose pool holds 100, they would leave its requests waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from lightkube import ALL_NS, AsyncClient, operators
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import GenericNamespacedResource, create_api_info
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_never, wait_random_exponential

from addonstack.constants import LABEL_STACK
from addonstack.controller.cluster import gather_all
from addonstack.controller.store import ALL, STORED_KINDS, ChildStore
from addonstack.controller.transport import kube_client
from addonstack.controller.watch import WATCHED

log = logging.getLogger("addonstack.childwatch")

SERVER_TIMEOUT = 300  # seconds the API server keeps one stream open before the watch resumes from its version
OnEvent = Callable[[str | None, Mapping[str, Any]], None]
SELECTOR: dict[str, Any] = {LABEL_STACK: operators.exists()}  # only a stack's children, as kopf's watches selected them


def _resource(group: str, version: str, plural: str, kind: str) -> type[GenericNamespacedResource]:
    """A resource class that decodes to plain dicts. Not registered with lightkube: the rest of the operator
    keeps its models of these kinds."""

    class Watched(GenericNamespacedResource):
        _api_info = create_api_info(group, version, kind, plural)

    Watched.__name__ = Watched.__qualname__ = kind
    return Watched


def stream_client(kubeconfig: str | None) -> AsyncClient:
    """A client for the watch streams: the operator's kubeconfig (or the pod's service account), any number of
    connections, over the operator's aiohttp transport (transport.py) with the TLS settings lightkube derives
    from the config (CA, client cert)."""
    return kube_client(kubeconfig, limit=0)


class KindWatch:
    """One kind in one namespace (or ``ALL_NS``): list, then watch from the list's version, forever."""

    def __init__(
        self,
        client: AsyncClient,
        watched: tuple[str, str, str, str],
        namespace: str,
        chunk: int,
        store: ChildStore | None = None,
    ) -> None:
        group, version, plural, kind = watched
        self.client = client
        self.res = _resource(group, version, plural, kind)
        self.api_version = f"{group}/{version}" if group else version
        self.kind = kind
        self.namespace = namespace
        self.chunk = chunk or None
        self.version: str | None = None  # the last resourceVersion seen; None: list first
        self.store = store if kind in STORED_KINDS else None  # kept for event passes (store.py)
        self.scope = ALL if namespace == ALL_NS else namespace

    async def follow(self, on_event: OnEvent, server_timeout: int = SERVER_TIMEOUT) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(Exception),
            wait=wait_random_exponential(multiplier=0.5, max=30),
            stop=stop_never,
            before_sleep=self._log_retry,
        )
        async for attempt in retrying:
            with attempt:
                await self.session(on_event, server_timeout)

    async def session(self, on_event: OnEvent, server_timeout: int) -> None:
        """List when no version is known, then follow the stream (lightkube opens the next one whenever the
        server ends one). Returns only by an error."""
        if self.version is None:
            await self._list(on_event)
        try:
            async for type_, obj in self.client.watch(
                self.res,
                namespace=self.namespace,
                labels=SELECTOR,
                resource_version=self.version,
                server_timeout=server_timeout,
            ):
                body: dict[str, Any] = dict(obj)
                self.version = (body.get("metadata") or {}).get("resourceVersion") or self.version
                if self.store is not None:  # before the event can start a pass that reads it
                    self.store.event(type_, body)
                on_event(type_, body)
        except ApiError as exc:
            if exc.status.code == 410:  # compacted: what happened since our version is lost, list again
                self.version = None
            raise

    async def _list(self, on_event: OnEvent) -> None:
        if self.store is not None:
            self.store.listing(self.kind, self.scope)
        found = self.client.list(self.res, namespace=self.namespace, chunk_size=self.chunk, labels=SELECTOR)
        async for obj in found:
            body = dict(obj)
            body.setdefault("apiVersion", self.api_version)  # a list's items carry neither
            body.setdefault("kind", self.kind)
            on_event(None, body)
            if self.store is not None:
                self.store.stage(self.scope, body)
        if self.store is not None:
            self.store.listed(self.kind, self.scope)
        self.version = found.resourceVersion

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome is not None else None
        where = "every namespace" if self.namespace == ALL_NS else self.namespace
        log.warning("watch of %s in %s broke (%s); again in %.1f s", self.kind, where, exc,
                    state.upcoming_sleep)  # fmt: skip


async def follow_children(
    kubeconfig: str | None, namespaces: tuple[str, ...], chunk: int, on_event: OnEvent, store: ChildStore | None = None
) -> None:
    """Every watched kind in every served namespace (none given: cluster-wide), until cancelled; what they say of
    the kinds ``store`` keeps goes there too."""
    client = stream_client(kubeconfig)
    try:
        watches = [KindWatch(client, w, ns, chunk, store) for w in WATCHED for ns in (namespaces or (ALL_NS,))]
        await gather_all(*(w.follow(on_event) for w in watches))
    finally:
        await client.close()
