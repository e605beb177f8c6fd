"""Plain-dict helpers for Kubernetes objects shared by the decision and the cluster client.

Kept apart from ``cluster.py`` so the pure decision (``decide.py``) needs no Kubernetes client to import.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["WORKLOAD_KINDS", "ObjectKey", "decode_secret", "kube_time", "labels_of"]

WORKLOAD_KINDS = frozenset({"Deployment", "StatefulSet"})  # the kinds that run a service's pods


@dataclass(frozen=True)
class ObjectKey:
    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectKey:
        meta = obj["metadata"]
        return cls(obj["apiVersion"], obj["kind"], meta.get("namespace", ""), meta["name"])


def decode_secret(obj: dict[str, Any]) -> dict[str, str]:
    data = obj.get("data") or {}
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}


def labels_of(obj: Mapping[str, Any] | None) -> dict[str, str]:
    labels: dict[str, str] = ((obj or {}).get("metadata") or {}).get("labels") or {}
    return labels


def kube_time(value: Any) -> datetime:
    """A Kubernetes timestamp (RFC 3339, ``...Z``; or a datetime, naive taken as UTC) as an aware datetime;
    ValueError when it is not one."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
