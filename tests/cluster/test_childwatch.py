"""The children's watch streams (controller/childwatch.py) on the real API server: the listing (in pages), the
events that follow it across the server's end of a stream, and the label filter. A 410 Gone, which a young
dev cluster's watch cache never answers, is in tests/unit/test_childwatch.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from addonstack.constants import LABEL_STACK
from addonstack.controller.childwatch import KindWatch, stream_client

pytestmark = pytest.mark.cluster
CONFIGMAPS = ("", "v1", "configmaps", "ConfigMap")
Seen = list[tuple[str | None, str]]


def _config_map(client: Client, ns: str, name: str, stack: str | None) -> None:
    labels = {LABEL_STACK: stack} if stack else {}
    client.create(ConfigMap(metadata=ObjectMeta(name=name, namespace=ns, labels=labels), data={"k": "v"}))


async def _until(seen: Seen, wanted: tuple[str | None, str], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while wanted not in seen:
            await asyncio.sleep(0.05)


def test_a_kind_is_listed_then_followed_across_the_servers_end_of_a_stream(
    kubeconfig: Path, client: Client, namespace: str
) -> None:
    ns = namespace
    _config_map(client, ns, "before", "s")
    seen: Seen = []

    def note(type_: str | None, body: Mapping[str, Any]) -> None:
        assert body["kind"] == "ConfigMap" and body["apiVersion"] == "v1"  # list items get both
        seen.append((type_, body["metadata"]["name"]))

    async def main() -> None:
        api = stream_client(str(kubeconfig))  # the streams' own client: TLS from the kubeconfig, any connections
        watch = KindWatch(api, CONFIGMAPS, ns, chunk=1)  # pages of one object: the listing comes in pages
        task = asyncio.create_task(watch.follow(note, server_timeout=1))
        try:
            await _until(seen, (None, "before"))
            first = watch.version
            await asyncio.sleep(2.5)  # the server has ended the first stream by now; the next one follows
            await asyncio.to_thread(_config_map, client, ns, "after", "s")
            await asyncio.to_thread(_config_map, client, ns, "unlabelled", None)
            await _until(seen, ("ADDED", "after"))
            await asyncio.to_thread(client.delete, ConfigMap, "after", namespace=ns)
            await _until(seen, ("DELETED", "after"))
            assert watch.version != first
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await api.close()

    asyncio.run(main())
    assert seen == [(None, "before"), ("ADDED", "after"), ("DELETED", "after")]  # nothing of "unlabelled"
