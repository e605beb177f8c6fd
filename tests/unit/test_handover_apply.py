"""A service changing hands: the previous stack's workload, whose selector names that stack and cannot change,
is replaced by the new holder's (reconcile._apply), while a hand edit of ours only has its template reset."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from addonstack.controller import cluster as real
from addonstack.controller.reconcile import _apply


def deployment(stack: str) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": "searxng", "app.kubernetes.io/instance": stack}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "searxng", "namespace": "team"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}}},
    }


class Cluster:
    """Refuses the first apply as the API server does an apply that changes a selector (422)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def apply(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("apply")
        if self.calls.count("apply") == 1:
            raise ApiError(status=Status(code=422, message="spec.selector: field is immutable"))
        return obj

    async def delete(self, api_version: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append(f"delete {kind}/{name}")

    async def merge_patch(self, obj: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("merge_patch")
        return obj


def test_the_previous_holders_workload_is_replaced() -> None:
    cluster = Cluster()
    asyncio.run(_apply(cast(real.Cluster, cluster), deployment("tenant-01"), deployment("tenant-00")))
    assert cluster.calls == ["apply", "delete Deployment/searxng", "apply"]


def test_a_hand_edit_of_our_own_workload_only_has_its_template_reset() -> None:
    cluster = Cluster()
    asyncio.run(_apply(cast(real.Cluster, cluster), deployment("tenant-01"), deployment("tenant-01")))
    assert cluster.calls == ["apply", "merge_patch", "apply"]
