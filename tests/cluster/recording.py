"""A recording client for cluster tests that check what one pass reads and writes (test_pass_reads.py,
test_claims.py): the operator's own client, noting each request, and one reconcile run with it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from addonstack.controller.applycache import ApplyCache
from addonstack.controller.cluster import Cluster
from addonstack.controller.reconcile import reconcile
from tests.cluster.operator_harness import TEST_DEFAULTS


class Recording(Cluster):
    """The operator's client, noting each read (kind, name or ``*`` for a list) and each write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen_reads: list[tuple[str, str]] = []
        self.seen_writes: list[str] = []

    def note_read(self, kind: str, name: str) -> None:
        self.seen_reads.append((kind, name))

    def note_write(self, what: str) -> None:
        self.seen_writes.append(what)

    async def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.note_read(kind, name)
        return await super().get(api_version, kind, namespace, name)

    async def _list(
        self, api_version: str, kind: str, namespace: str, labels: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self.note_read(kind, "*")
        return await super()._list(api_version, kind, namespace, labels)

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.note_write(f"apply {obj['kind']}/{obj['metadata']['name']}")
        return await super().apply(obj)

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.note_write(f"delete {kind}/{name}")
        await super().delete(api_version, kind, namespace, name)

    async def write_claim(self, lease: dict[str, Any]) -> bool:
        self.note_write(f"claim {lease['metadata']['name']}")
        return await super().write_claim(lease)


def recorded_pass(kubeconfig: Path, body: dict[str, Any], full: bool) -> tuple[Any, Recording]:
    """One reconcile of ``body`` with a recording client, as the operator runs it (nothing patched after)."""

    async def main() -> tuple[Any, Recording]:
        cluster = Recording.from_kubeconfig(str(kubeconfig))
        try:
            outcome = await reconcile(body, cluster, TEST_DEFAULTS, ApplyCache(), full=full)
        finally:
            await cluster.close()
        return outcome, cluster

    return asyncio.run(main())
