"""The children's watch streams (controller/childwatch.py) where the server answers what a young dev cluster never
does: a 410 Gone for a version compacted away (its watch cache still serves every version since it started), and a
stream that breaks. The rest runs on the real API server in tests/cluster/test_childwatch.py."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from addonstack.constants import LABEL_STACK
from addonstack.controller import childwatch
from addonstack.controller.childwatch import KindWatch

CONFIGMAPS = ("", "v1", "configmaps", "ConfigMap")


def _item(name: str, rv: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "n", "labels": {LABEL_STACK: "s"}, "resourceVersion": rv}}


class Listing:
    def __init__(self, items: list[dict[str, Any]], version: str) -> None:
        self.items, self.resourceVersion = items, version

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        for item in self.items:
            yield dict(item)


class Server:
    """History before version 10 is compacted; every stream sends one change and then breaks."""

    def __init__(self) -> None:
        self.lists = 0
        self.watched_from: list[str | None] = []

    def list(self, res: Any, **_: Any) -> Listing:
        self.lists += 1
        return Listing([_item("a", "10")], "10")

    def watch(self, res: Any, *, resource_version: str | None, **_: Any) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        self.watched_from.append(resource_version)
        return self._stream(int(resource_version or 0))

    async def _stream(self, since: int) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        if since < 10:
            raise ApiError(status=Status(code=410, reason="Expired", message="too old resource version"))
        yield "MODIFIED", {"kind": "ConfigMap", "apiVersion": "v1", **_item("a", str(since + 1))}
        raise ConnectionError("the stream broke")


def test_a_compacted_version_lists_again_and_a_broken_stream_resumes_from_the_last_version() -> None:
    server = Server()
    seen: list[tuple[str | None, str, str]] = []

    def note(type_: str | None, body: Mapping[str, Any]) -> None:
        seen.append((type_, body["kind"], body["metadata"]["resourceVersion"]))

    async def main() -> None:
        watch = KindWatch(server, CONFIGMAPS, "n", chunk=0)  # type: ignore[arg-type]
        watch.version = "5"
        with pytest.raises(ApiError):
            await watch.session(note, 300)
        assert watch.version is None and server.lists == 0  # the next session lists first
        with pytest.raises(ConnectionError):
            await watch.session(note, 300)
        assert server.lists == 1 and watch.version == "11"
        with pytest.raises(ConnectionError):
            await watch.session(note, 300)
        assert server.lists == 1 and watch.version == "12"  # resumed from its version: no second listing

    asyncio.run(main())
    assert server.watched_from == ["5", "10", "11"]
    assert seen == [(None, "ConfigMap", "10"), ("MODIFIED", "ConfigMap", "11"), ("MODIFIED", "ConfigMap", "12")]


def test_follow_retries_after_every_error_until_cancelled(monkeypatch: pytest.MonkeyPatch) -> None:
    server = Server()
    seen: list[str | None] = []

    async def main() -> None:
        watch = KindWatch(server, CONFIGMAPS, "n", chunk=0)  # type: ignore[arg-type]
        monkeypatch.setattr(childwatch, "wait_random_exponential", lambda **_: lambda state: 0.0)
        task = asyncio.create_task(watch.follow(lambda t, b: seen.append(t)))
        async with asyncio.timeout(10):
            while len(server.watched_from) < 4:
                await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert server.lists == 1 and server.watched_from[:4] == ["10", "11", "12", "13"]
    assert seen[:3] == [None, "MODIFIED", "MODIFIED"]
