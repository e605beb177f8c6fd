"""The operator's Prometheus metrics, all defined here (one registry, one HTTP endpoint).

Served at ``--metrics-bind-address`` (default ``:8080``, path ``/metrics``; ``0`` turns it off). Labels are
closed sets (results, condition types, kinds), never stack names or anything a tenant writes, so the
number of series stays fixed however many stacks run. No secret value ever reaches a metric.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter as Tally
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("addonstack.metrics")

REGISTRY = CollectorRegistry(auto_describe=True)
RECONCILES = Counter(
    "addonstack_reconciles", "Reconciles by result (ready, progressing, stalled, error).", ["result"],
    registry=REGISTRY,
)  # fmt: skip
RECONCILE_SECONDS = Histogram(
    "addonstack_reconcile_duration_seconds", "Time one reconcile took (read, decide, apply, prune).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30), registry=REGISTRY,
)  # fmt: skip
STACKS = Gauge(
    "addonstack_stacks", "Stacks whose condition is True, by condition (Ready, Reconciling, Stalled).",
    ["condition"], registry=REGISTRY,
)  # fmt: skip
APPLIED = Counter("addonstack_objects_applied", "Child objects written by server-side apply.", ["kind"],
                  registry=REGISTRY)  # fmt: skip
PRUNED = Counter("addonstack_objects_pruned", "Child objects deleted because the stack no longer has them.",
                 ["kind"], registry=REGISTRY)  # fmt: skip
CACHE_HITS = Counter("addonstack_apply_cache_hits", "Child objects not re-applied because they are unchanged.",
                     registry=REGISTRY)  # fmt: skip
WATCH_EVENTS = Counter("addonstack_watch_events", "Events on children that scheduled a stack re-evaluation.",
                       ["kind"], registry=REGISTRY)  # fmt: skip
WATCH_EVENTS_IGNORED = Counter(
    "addonstack_watch_events_ignored",
    "Events on children that could not move their stack: the operator's own writes coming back, changes to "
    "nothing the status reads (controller/echo.py).", ["kind"], registry=REGISTRY,
)  # fmt: skip
STORE_OBJECTS = Gauge(
    "addonstack_store_objects", "Children kept from the watch streams for event passes (controller/store.py).",
    ["kind"], registry=REGISTRY,
)  # fmt: skip
STORE_READS = Counter(
    "addonstack_store_reads",
    "Child kinds an event pass read: from the watch streams' store (store), or listed from the API server "
    "because the store had not listed the kind or differed from the stack's record (listed).", ["source"],
    registry=REGISTRY,
)  # fmt: skip

CONDITIONS = ("Ready", "Reconciling", "Stalled")
_by_stack: dict[tuple[str, str], frozenset[str]] = {}
_holding: Tally[str] = Tally()  # stacks whose condition is True, by condition (what STACKS shows)


@functools.cache
def child(metric: Counter | Gauge, value: str) -> Any:
    """``metric.labels(value)``, looked up once per label value: prometheus-client checks and locks on every
    ``labels`` call, and the watch streams count each of a burst's ten thousand events (2 % of the operator's
    CPU). The label sets are closed (kinds, sources), so this holds a handful of entries."""
    return metric.labels(value)


def result_of(status: Mapping[str, Any]) -> str:
    true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    return "stalled" if "Stalled" in true else "ready" if "Ready" in true else "progressing"


def observe_stack(namespace: str, name: str, status: Mapping[str, Any] | None) -> None:
    """Record the stack's conditions (None: the stack is gone) and refresh the per-condition gauge."""
    key = (namespace, name)
    _holding.subtract(_by_stack.pop(key, frozenset()))
    if status is not None:
        held = _by_stack[key] = frozenset(
            str(c.get("type")) for c in status.get("conditions") or [] if c.get("status") == "True"
        )
        _holding.update(held)
    for cond in CONDITIONS:  # kept as counts: summing over every stack on each pass grew with the stacks served
        child(STACKS, cond).set(_holding[cond])


def serve(bind_address: str | None) -> None:
    """Start the /metrics endpoint in a thread; a port already taken is logged, not fatal."""
    if not bind_address or bind_address == "0":
        return
    host, _, port = bind_address.rpartition(":")
    try:
        start_http_server(int(port), addr=host or "0.0.0.0", registry=REGISTRY)
    except (OSError, ValueError) as exc:
        log.error("metrics endpoint %s not started: %s (set --metrics-bind-address, or 0 to turn it off)",
                  bind_address, exc)  # fmt: skip
        return
    log.info("metrics at http://%s:%s/metrics", host or "0.0.0.0", port)
