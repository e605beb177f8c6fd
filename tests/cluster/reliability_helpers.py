"""Helpers shared by the reliability tests (crash, restart, drift, deletion): namespaces that clean up after
themselves even when a stack keeps a finalizer, a recorder of every Secret value ever issued, small readers."""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from collections.abc import Collection, Iterator
from typing import Any, Self

from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Secret
from lightkube.types import PatchType

from addonstack.constants import LABEL_STACK
from addonstack.controller.cluster import AddonStackResource
from tests.cluster.operator_harness import admin_secret

FINALIZER = "addonstack.dev/finalizer"


@contextlib.contextmanager
def namespaces(client: Client, stem: str, count: int) -> Iterator[list[str]]:
    """``count`` fresh namespaces with the admin Secret; on exit their stacks lose any finalizer (no
    operator may be left to remove it) and the namespaces are deleted without waiting."""
    names = [f"t-{stem}-{i}-{uuid.uuid4().hex[:6]}" for i in range(count)]
    for name in names:
        client.create(Namespace(metadata=ObjectMeta(name=name, labels={"addonstack.dev/test": "true"})))
        admin_secret(client, name)
    try:
        yield names
    finally:
        for name in names:
            with contextlib.suppress(ApiError):
                for obj in client.list(AddonStackResource, namespace=name):
                    if obj.metadata.finalizers:
                        client.patch(AddonStackResource, obj.metadata.name, {"metadata": {"finalizers": None}},
                                     namespace=name, patch_type=PatchType.MERGE)  # fmt: skip
            with contextlib.suppress(ApiError):
                client.delete(Namespace, name)


def decode(secret: Any) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}


class _Watch:
    """Lists one kind, then watches it from that version in a background thread, for the length of a
    ``with`` block; subclasses take each object in :meth:`_on` (``ADDED`` for the listed ones)."""

    def __init__(self, kubeconfig: str, resource: Any, namespace: str, name: str) -> None:
        self._resource, self._namespace = resource, namespace
        self._client = Client(config=KubeConfig.from_file(kubeconfig), field_manager="addonstack-tests")
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._client.close()  # ends the blocking watch read in the thread
        self._thread.join(timeout=1)  # a watch read may not notice the close until its next event

    def _on(self, op: str, obj: Any) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        listing = self._client.list(self._resource, namespace=self._namespace)
        for obj in listing:
            self._on("ADDED", obj)
        rv = listing.resourceVersion
        self._ready.set()
        with contextlib.suppress(Exception):  # the client is closed to stop the watch
            for op, obj in self._client.watch(self._resource, namespace=self._namespace, resource_version=rv):
                if self._stop.is_set():
                    return
                self._on(op, obj)


class SecretRecorder(_Watch):
    """Watches the Secrets of some namespaces from now on and remembers the first value of every key.

    Every later version of a Secret is compared byte for byte with those first values, so a value that
    changed even briefly (and was put back) is still counted. Deleting a Secret is not a change.
    """

    def __init__(self, kubeconfig: str, namespaces: list[str]) -> None:
        self.namespaces = set(namespaces)
        self.first: dict[tuple[str, str, str], bytes] = {}
        self.changed: list[str] = []  # "ns/secret key" (never the values)
        self.lost_keys: list[str] = []
        self.events = 0
        self._lock = threading.Lock()
        super().__init__(kubeconfig, Secret, "*", "secret-recorder")

    def _on(self, op: str, s: Any) -> None:
        ns, name = s.metadata.namespace, s.metadata.name
        if ns not in self.namespaces or LABEL_STACK not in (s.metadata.labels or {}):
            return
        with self._lock:
            self.events += 1
            if op == "DELETED":
                return
            values = decode(s)
            for key, value in values.items():
                first = self.first.setdefault((ns, name, key), value)
                if first != value:
                    self.changed.append(f"{ns}/{name} {key}")
            for fns, fname, fkey in list(self.first):
                if (fns, fname) == (ns, name) and fkey not in values:
                    self.lost_keys.append(f"{ns}/{name} {fkey}")

    def compare_live(self, client: Client, gone_ok: Collection[tuple[str, str]] = ()) -> list[str]:
        """Keys whose live value differs from the first one seen, or that disappeared (except Secrets of
        ``gone_ok`` (namespace, name) pairs). Reads the API, not the watch, so it does not lag."""
        differ = []
        with self._lock:
            first = dict(self.first)
        live: dict[tuple[str, str], dict[str, bytes]] = {}
        for ns in self.namespaces:
            for s in client.list(Secret, namespace=ns):
                live[(ns, s.metadata.name)] = decode(s)
        for (ns, name, key), value in first.items():
            if (ns, name) in gone_ok:
                continue
            now = live.get((ns, name), {}).get(key)
            if now != value:
                differ.append(f"{ns}/{name} {key}: {'missing' if now is None else 'changed'}")
        return differ


class Seen(_Watch):
    """Every object of one kind that appears in a namespace from now on, by name (first version seen), so a
    test can tell that something existed even if it was deleted again before the test looked."""

    def __init__(self, kubeconfig: str, resource: Any, namespace: str) -> None:
        self.objects: dict[str, Any] = {}
        super().__init__(kubeconfig, resource, namespace, "seen")

    def _on(self, op: str, obj: Any) -> None:
        self.objects.setdefault(obj.metadata.name, obj)
