"""PodDisruptionBudgets: a service that runs more than one replica keeps all but one through a node drain.

Voluntary disruptions (``kubectl drain``, cluster autoscaler scale-down, node upgrades) evict pods through
the eviction API, which honours PodDisruptionBudgets. ``maxUnavailable: 1`` lets a drain proceed one pod at
a time and never takes a scaled service down whole. A single-replica service gets none: a budget that
allows no eviction would block every drain of its node.
"""

from __future__ import annotations

from typing import Any

from addonstack.constants import LABEL_SERVICE
from addonstack.render.kubernetes.context import K8sContext, meta, selector


def disruption_budgets(ctx: K8sContext, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One budget per Deployment or StatefulSet of ``objs`` with more than one replica."""
    out = []
    for obj in objs:
        if obj["kind"] not in ("Deployment", "StatefulSet") or int(obj["spec"].get("replicas") or 1) <= 1:
            continue
        sid = obj["metadata"]["labels"][LABEL_SERVICE]
        out.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": meta(ctx, sid, sid),
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(ctx, sid)}},
            }
        )
    return out
